import dc from 'node:diagnostics_channel'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, it, expect } from 'vitest'
import { AdminServer } from '../../src/admin/server.js'
import { systemClock } from '../../src/clock.js'
import { parseConfig } from '../../src/config/load.js'
import type { HealthConfig, UpstreamConfig } from '../../src/config/types.js'
import { HealthChecker, startHealthChecks } from '../../src/health/active.js'
import { httpProbe, tcpProbe, MAX_PROBE_BODY } from '../../src/health/probes.js'
import type { HealthCheckResult, ServerStateChange } from '../../src/observability/events.js'
import { reloadRuntime } from '../../src/runtime/reload.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { waitFor } from '../helpers/wait.js'

const HOST = '127.0.0.1'
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function listen (server: net.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, HOST, () => { server.off('error', reject); resolve() })
  })
  return (server.address() as AddressInfo).port
}

async function close (server: net.Server): Promise<void> {
  if (!server.listening) return
  if (server instanceof http.Server) server.closeAllConnections()
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
}

/** An HTTP server whose answer the test can change; records what it received. */
async function startHttp (): Promise<{ port: number, answer: { status: number, body: string }, seen: http.IncomingHttpHeaders[], paths: string[] }> {
  const answer = { status: 200, body: 'ok' }
  const seen: http.IncomingHttpHeaders[] = []
  const paths: string[] = []
  const server = http.createServer((req, res) => {
    seen.push(req.headers)
    paths.push(req.url ?? '')
    res.on('error', () => {})
    res.writeHead(answer.status, { 'content-type': 'text/plain' })
    res.end(answer.body)
  })
  server.on('clientError', (_err, socket) => { socket.destroy() })
  const port = await listen(server)
  cleanups.push(() => close(server))
  return { port, answer, seen, paths }
}

/** Accepts connections and never answers. */
async function startHang (): Promise<{ port: number, server: net.Server }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    // Read (and drop) so a client closing is noticed; never write.
    socket.resume()
    socket.on('close', () => { sockets.delete(socket) })
  })
  const port = await listen(server)
  cleanups.push(async () => {
    for (const s of sockets) s.destroy()
    await close(server)
  })
  return { port, server }
}

async function connections (server: net.Server): Promise<number> {
  return await new Promise((resolve) => { server.getConnections((_err, n) => { resolve(n) }) })
}

/** A port nobody listens on right now. */
async function closedPort (): Promise<number> {
  const server = net.createServer()
  const port = await listen(server)
  await close(server)
  return port
}

function upstreamWith (name: string, port: number, health: HealthConfig): Upstream {
  const config: UpstreamConfig = {
    name,
    balance: 'round-robin',
    servers: [{ text: `${HOST}:${port}`, host: HOST, port, weight: 1, backup: false, maxConnections: 0 }],
    connectTimeout: 1000,
    retries: 0,
    health,
    slowStart: 0,
  }
  return new Upstream(config, { clock: systemClock, random: Math.random })
}

type Entry = { kind: 'check', ok: boolean, detail?: string } | { kind: 'state', from: string, to: string }

/** Records health checks and state changes of one upstream, in publication order. */
function record (upstream: string): Entry[] {
  const log: Entry[] = []
  const onCheck = (m: unknown): void => {
    const e = m as HealthCheckResult
    if (e.upstream === upstream) log.push({ kind: 'check', ok: e.ok, ...(e.detail === undefined ? {} : { detail: e.detail }) })
  }
  const onState = (m: unknown): void => {
    const e = m as ServerStateChange
    if (e.upstream === upstream) log.push({ kind: 'state', from: e.from, to: e.to })
  }
  dc.subscribe('tandem:health:check', onCheck)
  dc.subscribe('tandem:server:state', onState)
  cleanups.push(() => {
    dc.unsubscribe('tandem:health:check', onCheck)
    dc.unsubscribe('tandem:server:state', onState)
  })
  return log
}

const base: HealthConfig = {
  type: 'tcp', path: '/healthz', expectStatus: [200, 399], interval: 50, timeout: 1000, rise: 2, fall: 2,
}

function startChecker (upstream: Upstream): HealthChecker {
  const checker = new HealthChecker(upstream, { clock: systemClock, random: Math.random })
  checker.start()
  cleanups.push(() => { checker.stop() })
  return checker
}

describe('probes', () => {
  it('tcpProbe passes on a listening port and fails on a closed one', async () => {
    const { port } = await startHang()
    const ok = await tcpProbe(HOST, port, 2000)
    expect(ok.ok).toBe(true)
    expect(ok.detail).toBeUndefined()
    expect(ok.ms).toBeLessThan(2000) // well inside the probe's timeout
    const refused = await tcpProbe(HOST, await closedPort(), 2000)
    expect({ ok: refused.ok, detail: refused.detail }).toEqual({ ok: false, detail: 'ECONNREFUSED' })
  })

  it('httpProbe checks the status range and sends a fresh, closing request', async () => {
    const srv = await startHttp()
    const cfg = { path: '/healthz', expectStatus: [200, 399] as const }
    const ok = await httpProbe(HOST, srv.port, cfg, 2000)
    expect({ ok: ok.ok, detail: ok.detail }).toEqual({ ok: true, detail: 'status 200' })
    expect(srv.paths).toEqual(['/healthz'])
    expect(srv.seen[0]?.host).toBe(`${HOST}:${srv.port}`)
    expect(srv.seen[0]?.connection).toBe('close')
    srv.answer.status = 500
    const bad = await httpProbe(HOST, srv.port, cfg, 2000)
    expect({ ok: bad.ok, detail: bad.detail }).toEqual({ ok: false, detail: 'status 500' })
    srv.answer.status = 399
    expect((await httpProbe(HOST, srv.port, cfg, 2000)).ok).toBe(true)
    srv.answer.status = 400
    expect((await httpProbe(HOST, srv.port, cfg, 2000)).detail).toBe('status 400')
  })

  it('httpProbe matches expectBody within the first 64 KiB only', async () => {
    const srv = await startHttp()
    const cfg = { path: '/healthz', expectStatus: [200, 200] as const, expectBody: 'ok' }
    srv.answer.body = 'all ok here'
    expect(await httpProbe(HOST, srv.port, cfg, 2000)).toMatchObject({ ok: true, detail: 'status 200' })
    srv.answer.body = 'nope'
    expect(await httpProbe(HOST, srv.port, cfg, 2000)).toMatchObject({ ok: false, detail: 'body lacks expected text' })
    srv.answer.body = 'x'.repeat(MAX_PROBE_BODY - 1) + 'ok'
    expect(await httpProbe(HOST, srv.port, cfg, 2000)).toMatchObject({ ok: false, detail: 'body lacks expected text in its first 65536 bytes' })
    srv.answer.body = 'x'.repeat(MAX_PROBE_BODY - 2) + 'ok' + 'y'.repeat(1000)
    expect(await httpProbe(HOST, srv.port, cfg, 2000)).toMatchObject({ ok: true, detail: 'status 200' })
    // A 500 fails on the status even if the body matches.
    srv.answer.status = 500
    srv.answer.body = 'ok'
    expect(await httpProbe(HOST, srv.port, cfg, 2000)).toMatchObject({ ok: false, detail: 'status 500' })
  })

  it('the timeout covers the whole probe and the socket is closed after it', async () => {
    const hang = await startHang()
    const r = await httpProbe(HOST, hang.port, { path: '/', expectStatus: [200, 399] }, 150)
    expect({ ok: r.ok, detail: r.detail }).toEqual({ ok: false, detail: 'timeout after 150 ms' })
    expect(r.ms).toBeGreaterThanOrEqual(145)
    await waitFor(async () => await connections(hang.server) === 0, 5000, 20, 'hanging server connection closed')
  }, 20_000)

  it('abort ends a probe at once; bad input becomes a failure, never a throw', async () => {
    const hang = await startHang()
    const ac = new AbortController()
    const pending = httpProbe(HOST, hang.port, { path: '/', expectStatus: [200, 399] }, 10_000, { signal: ac.signal })
    await waitFor(async () => await connections(hang.server) === 1, 5000, 20, 'probe connected')
    ac.abort()
    expect(await pending).toMatchObject({ ok: false, detail: 'aborted' })
    await waitFor(async () => await connections(hang.server) === 0, 5000, 20, 'aborted probe closed')
    expect(await tcpProbe(HOST, hang.port, 1000, { signal: ac.signal })).toMatchObject({ ok: false, detail: 'aborted' })
    const badPath = await httpProbe(HOST, hang.port, { path: '/a b', expectStatus: [200, 399] }, 1000)
    expect(badPath).toMatchObject({ ok: false, detail: 'ERR_UNESCAPED_CHARACTERS' })
    const badPort = await tcpProbe(HOST, 70000, 1000)
    expect(badPort).toMatchObject({ ok: false, detail: 'ERR_SOCKET_BAD_PORT' })
  }, 20_000)
})

describe('probes: an upgrade answer', () => {
  // Was: http.request has no 'response' for a 101, so the probe waited out its whole timeout and
  // reported `timeout after N ms`.
  it('a 101 Switching Protocols fails at once as `status 101`, and its socket is closed', async () => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => { sockets.delete(socket) })
      socket.on('error', () => {})
      socket.once('data', () => { socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n') })
    })
    const port = await listen(server)
    cleanups.push(async () => {
      for (const s of sockets) s.destroy()
      await close(server)
    })
    const started = Date.now()
    const r = await httpProbe(HOST, port, { path: '/healthz', expectStatus: [100, 399] }, 20_000)
    expect({ ok: r.ok, detail: r.detail }).toEqual({ ok: false, detail: 'status 101' })
    // Far inside the 20 s timeout: decided on the answer, not by the timer.
    expect(Date.now() - started).toBeLessThan(10_000)
    await waitFor(async () => await connections(server) === 0, 5000, 20, 'upgraded probe socket closed')
  }, 30_000)
})

describe('probes under tandem\'s own load', () => {
  // Regression: with the event loop busy relaying, a probe's timer fired late and, run before
  // the I/O that had answered meanwhile, failed healthy idle servers (both went down: 503s).
  it('a probe whose deadline passed while the event loop was blocked still sees the answer that came meanwhile', async () => {
    const server = net.createServer((s) => { s.on('error', () => {}); s.destroy() })
    const port = await listen(server)
    cleanups.push(() => close(server))
    for (let i = 0; i < 3; i++) {
      const probe = tcpProbe(HOST, port, 100)
      const until = Date.now() + 300
      while (Date.now() < until) { /* the loop busy for three timeouts, as under heavy relaying */ }
      expect(await probe).toMatchObject({ ok: true })
    }
  })
})

describe('HealthChecker over real sockets', () => {
  it('tcp: a closed port goes down after exactly `fall` failures, and comes back after exactly `rise` passes', async () => {
    const port = await closedPort()
    const upstream = upstreamWith('tcp-rise', port, { ...base, rise: 3 })
    const server = upstream.servers[0]!
    const log = record('tcp-rise')
    startChecker(upstream)
    await waitFor(() => !server.healthy, 5000, 20, 'server marked down')
    const failed = { kind: 'check', ok: false, detail: 'ECONNREFUSED' }
    expect(log.slice(0, base.fall + 1)).toEqual([...Array.from({ length: base.fall }, () => failed), { kind: 'state', from: 'up', to: 'down' }])
    expect(server.lastCheck).toMatchObject({ ok: false, detail: 'ECONNREFUSED' })

    const listener = net.createServer((s) => { s.on('error', () => {}); s.destroy() })
    await listen(listener, port)
    cleanups.push(() => close(listener))
    await waitFor(() => server.healthy, 10_000, 20, 'server back up')
    const up = log.findIndex((e) => e.kind === 'state' && e.to === 'up')
    expect(log[up]).toEqual({ kind: 'state', from: 'down', to: 'up' })
    const down = log.findIndex((e) => e.kind === 'state' && e.to === 'down')
    const between = log.slice(down + 1, up)
    // Only checks in between; it came back right after the third pass in a row, not before.
    expect(between.every((e) => e.kind === 'check')).toBe(true)
    const oks = between.map((e) => e.kind === 'check' && e.ok)
    expect(oks.slice(-3)).toEqual([true, true, true])
    expect(oks.slice(0, -3).every((ok) => !ok)).toBe(true)
    expect(log.filter((e) => e.kind === 'state').length).toBe(2)
    expect(upstream.pick()).toBe(server)
  }, 20_000)

  it('http: 500 takes the server down, a matching body brings it back, a wrong body takes it down', async () => {
    const srv = await startHttp()
    srv.answer.status = 500
    const upstream = upstreamWith('http-flip', srv.port, { ...base, type: 'http', expectStatus: [200, 299], expectBody: 'ok' })
    const server = upstream.servers[0]!
    startChecker(upstream)
    await waitFor(() => !server.healthy, 5000, 20, 'down on 500')
    expect(server.lastCheck).toMatchObject({ ok: false, detail: 'status 500' })
    expect(upstream.pick()).toBeUndefined()

    srv.answer.status = 200
    await waitFor(() => server.healthy, 10_000, 20, 'up on 200 ok')
    expect(server.lastCheck).toMatchObject({ ok: true, detail: 'status 200' })

    srv.answer.body = 'degraded'
    await waitFor(() => !server.healthy, 10_000, 20, 'down on a body without "ok"')
    expect(server.lastCheck).toMatchObject({ ok: false, detail: 'body lacks expected text' })
    expect(srv.paths.every((p) => p === '/healthz')).toBe(true)
  }, 30_000)

  it('http: a server that accepts and never answers is down by timeout', async () => {
    const hang = await startHang()
    const upstream = upstreamWith('http-hang', hang.port, { ...base, type: 'http', timeout: 100 })
    const server = upstream.servers[0]!
    startChecker(upstream)
    await waitFor(() => !server.healthy, 5000, 20, 'down by timeout')
    expect(server.lastCheck).toMatchObject({ ok: false, detail: 'timeout after 100 ms' })
    expect(server.state(systemClock.now())).toBe('down')
  }, 20_000)

  it('stop() closes the probe in flight and leaves no handles behind', async () => {
    const hang = await startHang()
    const count = (type: string): number => process.getActiveResourcesInfo().filter((t) => t === type).length
    const sockets = count('TCPSocketWrap')
    const timers = count('Timeout')
    const upstream = upstreamWith('stop', hang.port, { ...base, type: 'http', timeout: 60_000 })
    const server = upstream.servers[0]!
    const handle = startHealthChecks([upstream], { clock: systemClock, random: Math.random })
    await waitFor(async () => await connections(hang.server) === 1, 5000, 20, 'probe in flight')
    // Sockets of earlier tests may still be closing, so the counts are compared as upper bounds.
    handle.stop()
    await waitFor(async () => await connections(hang.server) === 0, 5000, 20, 'probe socket closed')
    await waitFor(() => count('TCPSocketWrap') <= sockets, 5000, 20, 'no client socket left')
    // The probe's 60 s timer is gone (the checker's own timers are unref'd and never counted).
    await waitFor(() => count('Timeout') <= timers, 5000, 20, 'no probe timer left')
    // The aborted probe's result is ignored: nothing was recorded and health is untouched.
    expect(server.lastCheck).toBeUndefined()
    expect(server.healthy).toBe(true)
  }, 20_000)
})

describe('check data in /api/status across a reload', () => {
  // Was: the new checker counted from 0 but the status kept the old checker's streak, and after
  // a reload that removed `health` the last (failed) result stayed in the status for ever.
  it('a reload shows the fresh streak; one without `health` drops the last result', async () => {
    let probes = 0
    const held: http.ServerResponse[] = []
    const srv = http.createServer((_req, res) => {
      // Two failures, then no answer: the third check is still pending when the reload comes.
      if (++probes <= 2) { res.writeHead(500).end(); return }
      held.push(res)
    })
    const port = await listen(srv)
    cleanups.push(async () => {
      for (const res of held) res.destroy()
      await close(srv)
    })
    const yaml = (health: string): string => `
admin: { listen: 127.0.0.1:0 }
log: { level: silent, access: false }
upstreams:
  web:
    servers: [ { address: ${HOST}:${port} } ]
${health}
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: web
`
    const check = (interval: string): string => `    health: { type: http, path: /h, interval: ${interval}, timeout: 900ms, rise: 2, fall: 3 }`
    const first = parseConfig(yaml(check('1s')), 'health.yaml')
    let runtime = new Runtime(first)
    await runtime.start()
    const runtimes = [runtime]
    cleanups.push(async () => { for (const r of runtimes.reverse()) await r.stop(500) })
    const admin = new AdminServer(first.admin!, { runtime: () => runtime, version: 'test' })
    await admin.listen()
    cleanups.push(() => admin.close())
    const status = async (): Promise<Record<string, unknown>> => {
      const res = await fetch(`http://127.0.0.1:${admin.address().port}/api/status`)
      const body = await res.json() as { upstreams: Array<{ servers: Array<Record<string, unknown>> }> }
      return body.upstreams[0]!.servers[0]!
    }
    const reload = async (text: string): Promise<void> => {
      const r = await reloadRuntime(runtime, parseConfig(text, 'health.yaml'))
      runtime = r.runtime
      runtimes.push(r.runtime)
      cleanups.push(async () => { await r.retired })
    }

    await waitFor(() => runtime.upstreams.get('web')!.servers[0]!.checkStreak === 2, 10_000, 10, 'two failed checks')
    expect(await status()).toMatchObject({ state: 'up', checks: { toward: 'down', streak: 2, of: 3 }, lastCheck: { ok: false, detail: 'status 500' } })

    // The new checker's first probe is 3 s away at the most and then hangs: nothing counts meanwhile.
    await reload(yaml(check('30s')))
    expect(await status()).toMatchObject({ state: 'up', checks: { toward: 'down', streak: 0, of: 3 } })

    await reload(yaml(''))
    const after = await status()
    expect({ state: after.state, checks: after.checks, lastCheck: after.lastCheck }).toEqual({ state: 'up', checks: null, lastCheck: null })
    expect(runtime.upstreams.get('web')!.servers[0]!.checkStreak).toBe(0)
  }, 30_000)
})
