import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { AdminServer } from '../../src/admin/server.js'
import { parseConfig } from '../../src/config/load.js'
import { channels } from '../../src/observability/events.js'
import { createMetrics } from '../../src/observability/metrics.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'
import { httpConfig } from '../helpers/tandem.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const SPEC_METRICS: Array<[string, string]> = [
  ['tandem_http_requests_total', 'counter'],
  ['tandem_http_request_duration_seconds', 'histogram'],
  ['tandem_tcp_connections_total', 'counter'],
  ['tandem_tcp_bytes_total', 'counter'],
  ['tandem_active_connections', 'gauge'],
  ['tandem_upstream_server_up', 'gauge'],
  ['tandem_upstream_server_active_connections', 'gauge'],
  ['tandem_upstream_server_requests_total', 'counter'],
  ['tandem_upstream_server_failures_total', 'counter'],
  ['tandem_upstream_server_response_time_seconds', 'gauge'],
  ['tandem_health_checks_total', 'counter'],
  ['tandem_rate_limited_total', 'counter'],
  ['tandem_peer_role', 'gauge'],
  ['tandem_peer_transitions_total', 'counter'],
  ['tandem_peer_messages_rejected_total', 'counter'],
  ['tandem_config_reloads_total', 'counter'],
  // Declared on every node; sampled only with peer: (below).
  ['tandem_peer_up', 'gauge'],
  ['tandem_peer_in_sync', 'gauge'],
]

/** An admin server and one listener whose upstream is closed: the process metrics alone matter. */
async function adminOnly (): Promise<string> {
  return httpConfig({ servers: [`127.0.0.1:${await closedPort()}`], top: 'admin: { listen: 127.0.0.1:0 }' })
}

/** The value of the sample `name` whose labels are exactly `labels`, or undefined. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[k!] = v!
    const keys = Object.keys(labels)
    if (keys.length === Object.keys(got).length && keys.every((k) => got[k] === labels[k])) return Number(m[3])
  }
  return undefined
}

async function echoServer (): Promise<{ address: string }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    s.pipe(s)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}` }
}

async function start (yaml: string, beforeStart?: () => void): Promise<{ runtime: Runtime, metrics: () => Promise<string>, res: () => Promise<{ status: number, type: string }> }> {
  const config = parseConfig(yaml, 'test.yaml')
  const runtime = new Runtime(config)
  const admin = new AdminServer(config.admin!, { runtime: () => runtime, version: '0.0.0-test' })
  await admin.listen()
  cleanups.push(() => admin.close())
  beforeStart?.()
  await runtime.start()
  cleanups.push(async () => { await runtime.stop(1000) })
  const url = `http://127.0.0.1:${admin.address().port}/metrics`
  return {
    runtime,
    metrics: async () => await (await request(url)).body.text(),
    res: async () => {
      const r = await request(url)
      await r.body.text()
      return { status: r.statusCode, type: String(r.headers['content-type']) }
    },
  }
}

async function get (url: string): Promise<void> {
  const res = await request(url)
  expect(res.statusCode).toBe(200)
  await res.body.text()
}

describe('metrics', () => {
  it('declares every spec metric with its type, plus process metrics; counts requests exactly', async () => {
    const [a, b] = [await startUpstream({ name: 'a' }), await startUpstream({ name: 'b' })] as [TestUpstream, TestUpstream]
    cleanups.push(() => a.close(), () => b.close())
    const t = await start(`
admin: { listen: 127.0.0.1:0 }
log: { level: silent, access: false }
upstreams:
  web:
    servers: [{ address: ${a.address} }, { address: ${b.address} }]
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - name: all
        match: { pathPrefix: / }
        upstream: web
  - name: spare
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: web
`)
    const meta = await t.res()
    expect(meta).toEqual({ status: 200, type: 'text/plain; version=0.0.4; charset=utf-8' })

    const N = 7
    const proxy = `http://127.0.0.1:${t.runtime.listener('public')!.address().port}`
    for (let i = 0; i < N; i++) await get(proxy + '/p/' + i)
    const http = { listener: 'public', route: 'all', upstream: 'web' }
    let text = ''
    await waitFor(async () => { text = await t.metrics(); return sample(text, 'tandem_http_requests_total', { ...http, code: '200' }) === N }, 5000, 20, 'request count')
    expect(sample(text, 'tandem_http_request_duration_seconds_count', http)).toBe(N)
    expect(sample(text, 'tandem_http_request_duration_seconds_bucket', { ...http, le: '+Inf' })).toBe(N)
    expect(sample(text, 'tandem_upstream_server_requests_total', { upstream: 'web', server: a.address })).toBe(4)
    expect(sample(text, 'tandem_upstream_server_requests_total', { upstream: 'web', server: b.address })).toBe(3)
    for (const [upstream, server] of [['web', a.address], ['web', b.address]] as const) {
      expect(sample(text, 'tandem_upstream_server_up', { upstream, server })).toBe(1)
      expect(sample(text, 'tandem_upstream_server_active_connections', { upstream, server })).toBe(0)
    }
    expect(sample(text, 'tandem_upstream_server_response_time_seconds', { upstream: 'web', server: a.address })).toBeGreaterThan(0)
    expect(sample(text, 'tandem_active_connections', { listener: 'spare' })).toBe(0)
    expect(sample(text, 'tandem_peer_role', { role: 'active' })).toBe(1)
    expect(sample(text, 'tandem_peer_role', { role: 'standby' })).toBe(0)
    expect(sample(text, 'tandem_peer_role', { role: 'fault' })).toBe(0)
    // Regression: a node without peer: exported tandem_peer_up 0, so the shipped TandemPeerDown
    // alert (tandem_peer_up == 0) fired on every standalone node. The names are declared (the
    // spec lists them) with no sample.
    expect(text).not.toMatch(/^tandem_peer_(up|in_sync)\b/m)
    expect(text).toContain('# HELP tandem_peer_up ')
    expect(sample(text, 'tandem_config_reloads_total', { result: 'success' })).toBe(0)
    expect(sample(text, 'tandem_config_reloads_total', { result: 'failure' })).toBe(0)
    for (const [name, type] of SPEC_METRICS) expect(text).toContain(`# TYPE ${name} ${type}\n`)
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(`# TYPE ${name} `)
    }
  })

  it('counts the process CPU since it started, user plus system in process_cpu_seconds_total', async () => {
    const t = await start(await adminOnly())
    const cpu = (text: string): [number, number, number] => ['user_', 'system_', ''].map((k) => sample(text, `process_cpu_${k}seconds_total`) ?? -1) as [number, number, number]
    // The counters add up deltas in seconds: allow the float rounding of the sums.
    const EPS = 1e-6
    const before = process.cpuUsage()
    const [user, system, total] = cpu(await t.metrics())
    const after = process.cpuUsage()
    // The test process is the tandem process: its CPU before the first scrape is counted, none from after it.
    expect(user).toBeGreaterThanOrEqual(before.user / 1e6 - EPS)
    expect(user).toBeLessThanOrEqual(after.user / 1e6 + EPS)
    expect(system).toBeGreaterThanOrEqual(before.system / 1e6 - EPS)
    expect(system).toBeLessThanOrEqual(after.system / 1e6 + EPS)
    expect(total).toBeCloseTo(user + system, 6)
    const spin = Date.now() + 50
    while (Date.now() < spin) { /* burn user CPU, so the second scrape has more to count */ }
    const before2 = process.cpuUsage()
    const [user2, system2, total2] = cpu(await t.metrics())
    const after2 = process.cpuUsage()
    expect(user2).toBeGreaterThan(user)
    expect(user2).toBeGreaterThanOrEqual(before2.user / 1e6 - EPS)
    expect(user2).toBeLessThanOrEqual(after2.user / 1e6 + EPS)
    expect(total2).toBeCloseTo(user2 + system2, 6)
  })

  it('nodejs_gc_duration_seconds counts collections by kind, as prom-client names it', async () => {
    const t = await start(await adminOnly())
    const minor = (text: string): number => sample(text, 'nodejs_gc_duration_seconds_count', { kind: 'minor' }) ?? 0
    const first = await t.metrics()
    expect(first).toContain('# TYPE nodejs_gc_duration_seconds histogram\n')
    // Short-lived garbage, the young generation's work: scavenges (minor) must follow.
    let keep: unknown[] = []
    for (let i = 0; i < 2_000_000; i++) { keep.push({ i }); if (keep.length > 10_000) keep = [] }
    // Node delivers GC entries to observers a turn later.
    let second = ''
    await waitFor(async () => minor(second = await t.metrics()) > minor(first), 5000, 20, 'minor collections counted')
    expect(sample(second, 'nodejs_gc_duration_seconds_sum', { kind: 'minor' })).toBeGreaterThan(0)
    expect(sample(second, 'nodejs_gc_duration_seconds_bucket', { kind: 'minor', le: '+Inf' })).toBe(minor(second))
  })

  it('counts TCP connections and bytes each way', async () => {
    const echo = await echoServer()
    const web = await startUpstream({ name: 'web' })
    cleanups.push(() => web.close())
    const t = await start(`
admin: { listen: 127.0.0.1:0 }
log: { level: silent, access: false }
upstreams:
  web:
    servers: [{ address: ${web.address} }]
  echo:
    servers: [{ address: ${echo.address} }]
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: web
  - name: raw
    protocol: tcp
    listen: 127.0.0.1:0
    upstream: echo
`)
    let text = ''
    const sock = net.connect(t.runtime.listener('raw')!.address().port, '127.0.0.1')
    sock.on('error', () => {})
    sock.end('hello')
    let echoed = ''
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => { echoed += d })
    await new Promise<void>((resolve) => { sock.on('close', () => { resolve() }) })
    expect(echoed).toBe('hello')
    await waitFor(async () => { text = await t.metrics(); return sample(text, 'tandem_tcp_connections_total', { listener: 'raw', upstream: 'echo' }) === 1 }, 5000, 20, 'tcp count')
    expect(sample(text, 'tandem_tcp_bytes_total', { listener: 'raw', direction: 'in' })).toBe(5)
    expect(sample(text, 'tandem_tcp_bytes_total', { listener: 'raw', direction: 'out' })).toBe(5)
    expect(sample(text, 'tandem_upstream_server_requests_total', { upstream: 'echo', server: echo.address })).toBe(1)
    await waitFor(async () => sample(await t.metrics(), 'tandem_active_connections', { listener: 'raw' }) === 0, 5000, 20, 'no open tcp connection')
  })

  it('counts failures by reason and health checks by result', async () => {
    const live = await startUpstream({ name: 'live' })
    cleanups.push(() => live.close())
    const dead = `127.0.0.1:${await closedPort()}`
    let checks = 0
    const onCheck = (): void => { checks++ }
    cleanups.push(() => { channels.healthCheck.unsubscribe(onCheck) })
    const t = await start(`
admin: { listen: 127.0.0.1:0 }
log: { level: silent, access: false }
upstreams:
  web:
    retries: 1
    servers: [{ address: ${live.address} }, { address: ${dead} }]
  checked:
    servers: [{ address: ${live.address} }]
    health: { type: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: web
`, () => { channels.healthCheck.subscribe(onCheck) })
    const proxy = `http://127.0.0.1:${t.runtime.listener('public')!.address().port}`
    for (let i = 0; i < 4; i++) await get(proxy + '/')
    const deadServer = t.runtime.upstreams.get('web')!.server(dead)!
    expect(deadServer.failures).toBe(2)
    let text = await t.metrics()
    expect(sample(text, 'tandem_upstream_server_failures_total', { upstream: 'web', server: dead, reason: 'connect' })).toBe(2)
    expect(sample(text, 'tandem_http_requests_total', { listener: 'public', route: 'route-1', upstream: 'web', code: '200' })).toBe(4)

    await waitFor(() => checks >= 3, 10_000, 20, 'three health checks')
    await t.runtime.stop(1000)
    text = await t.metrics()
    expect(sample(text, 'tandem_health_checks_total', { upstream: 'checked', server: live.address, result: 'pass' })).toBe(checks)
    expect(sample(text, 'tandem_health_checks_total', { upstream: 'checked', server: live.address, result: 'fail' })).toBeUndefined()
  })

  it('keeps separate registries per runtime, counts TCP events, and stops counting after close()', async () => {
    const runtime = new Runtime(parseConfig(`
log: { level: silent, access: false }
upstreams: { web: { servers: [{ address: 127.0.0.1:9 }] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, routes: [{ match: { pathPrefix: / }, upstream: web }] }]
`, 'test.yaml'))
    const m1 = createMetrics(() => runtime)
    const m2 = createMetrics(() => runtime)
    const event = { listener: 'l', route: 'r', method: 'GET', host: 'h', path: '/', status: 200, client: '127.0.0.1', upstream: 'web', bytesIn: 0, bytesOut: 0, totalMs: 2, retries: 0 }
    const tcp = { listener: 't', client: '127.0.0.1', upstream: 'web', server: '127.0.0.1:9', bytesIn: 10, bytesOut: 32, durationMs: 5, end: 'closed' as const }
    channels.httpRequestEnd.publish(event)
    channels.tcpConnectionEnd.publish(tcp)
    m1.close()
    channels.httpRequestEnd.publish(event)
    channels.tcpConnectionEnd.publish({ ...tcp, upstream: undefined, server: undefined, bytesIn: 0, bytesOut: 0, end: 'no-server' as const })
    const labels = { listener: 'l', route: 'r', upstream: 'web', code: '200' }
    const one = await m1.registry.metrics()
    const two = await m2.registry.metrics()
    expect(sample(one, 'tandem_http_requests_total', labels)).toBe(1)
    expect(sample(two, 'tandem_http_requests_total', labels)).toBe(2)
    expect(sample(two, 'tandem_http_request_duration_seconds_sum', { listener: 'l', route: 'r', upstream: 'web' })).toBe(0.004)
    expect(sample(one, 'tandem_tcp_connections_total', { listener: 't', upstream: 'web' })).toBe(1)
    expect(sample(one, 'tandem_tcp_connections_total', { listener: 't', upstream: '' })).toBeUndefined()
    expect(sample(two, 'tandem_tcp_connections_total', { listener: 't', upstream: '' })).toBe(1)
    expect(sample(two, 'tandem_tcp_bytes_total', { listener: 't', direction: 'in' })).toBe(10)
    expect(sample(two, 'tandem_tcp_bytes_total', { listener: 't', direction: 'out' })).toBe(32)
    m2.close()
    expect(channels.httpRequestEnd.hasSubscribers).toBe(false)
    expect(channels.tcpConnectionEnd.hasSubscribers).toBe(false)
  })

  // Regression: failures and health checks of a server a reload removed stayed in every scrape
  // (its _up and _requests_total went), so series grew with server churn and disagreed.
  it('per-server counters of a server the runtime no longer has are dropped, as its gauges are', async () => {
    const config = (servers: string): ReturnType<typeof parseConfig> => parseConfig(`
log: { level: silent, access: false }
upstreams: { web: { servers: [${servers}] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, routes: [{ match: { pathPrefix: / }, upstream: web }] }]
`, 'test.yaml')
    let runtime = new Runtime(config('{ address: 127.0.0.1:9 }, { address: 127.0.0.1:8 }'))
    const m = createMetrics(() => runtime)
    try {
      for (const server of ['127.0.0.1:9', '127.0.0.1:8']) {
        channels.serverFailure.publish({ upstream: 'web', server, reason: 'connect' })
        channels.healthCheck.publish({ upstream: 'web', server, ok: false })
      }
      let text = await m.registry.metrics()
      for (const server of ['127.0.0.1:9', '127.0.0.1:8']) {
        expect(sample(text, 'tandem_upstream_server_failures_total', { upstream: 'web', server, reason: 'connect' })).toBe(1)
        expect(sample(text, 'tandem_health_checks_total', { upstream: 'web', server, result: 'fail' })).toBe(1)
      }
      runtime = new Runtime(config('{ address: 127.0.0.1:9 }'))
      text = await m.registry.metrics()
      expect(sample(text, 'tandem_upstream_server_failures_total', { upstream: 'web', server: '127.0.0.1:9', reason: 'connect' })).toBe(1)
      expect(sample(text, 'tandem_health_checks_total', { upstream: 'web', server: '127.0.0.1:9', result: 'fail' })).toBe(1)
      expect(text).not.toContain('server="127.0.0.1:8"')
    } finally {
      m.close()
    }
  })
})
