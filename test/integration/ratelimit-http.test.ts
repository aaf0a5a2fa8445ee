import net from 'node:net'
import dc from 'node:diagnostics_channel'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import type { HttpRequestEnd } from '../../src/observability/events.js'
import { parseConfig } from '../../src/config/load.js'
import { createMetrics } from '../../src/observability/metrics.js'
import { reloadRuntime } from '../../src/runtime/reload.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'

let upstream: TestUpstream | undefined
let proxy: RunningTandem | undefined

afterEach(async () => {
  await proxy?.stop()
  proxy = undefined
  await upstream?.close()
  upstream = undefined
})

/** An upstream and a proxy whose listener / routes use `limits` (YAML lines under rateLimits). */
async function start (limits: string, listener = '', routes?: string): Promise<RunningTandem> {
  upstream = await startUpstream({ name: 'u' })
  proxy = await startProxy(httpConfig({
    servers: [upstream.address],
    listener,
    ...(routes === undefined ? {} : { routes }),
    top: `rateLimits:\n${limits}`,
  }))
  return proxy
}

interface Answer { status: number, headers: Record<string, string | string[] | undefined> }
async function get (path = '/', headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(proxy!.url() + path, { headers })
  await res.body.text()
  return { status: res.statusCode, headers: res.headers }
}

describe('rate limiting over HTTP (local buckets)', () => {
  it('tandem\'s own answers to admitted requests (404, 502) carry the limit\'s headers too, on both paths', async () => {
    upstream = await startUpstream({ name: 'u' })
    const dead = `127.0.0.1:${await closedPort()}`
    proxy = await startProxy(`
log: { level: silent, access: false }
rateLimits:
  api: { key: client-ip, rate: 1/m, burst: 10 }
upstreams:
  web: { servers: [ { address: ${upstream.address} } ] }
  dead: { servers: [ { address: ${dead} } ] }
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    rateLimit: api
    routes:
      - { match: { pathPrefix: /ok }, upstream: web }
      - { match: { pathPrefix: /dead }, upstream: dead }
`)
    const seen: string[] = []
    for (const [method, path] of [['GET', '/ok'], ['GET', '/nope'], ['GET', '/dead'], ['POST', '/nope'], ['POST', '/dead']] as const) {
      // A POST with a body goes the general (node:http) path, a GET the lean one.
      const res = await request(proxy.url() + path, { method, ...(method === 'POST' && { body: 'x' }) })
      await res.body.text()
      seen.push(`${method} ${path} ${res.statusCode} ${String(res.headers['ratelimit-limit'])} ${String(res.headers['ratelimit-remaining'])}`)
    }
    expect(seen).toEqual([
      'GET /ok 200 10 9',
      'GET /nope 404 10 8',
      'GET /dead 502 10 7',
      'POST /nope 404 10 6',
      'POST /dead 502 10 5',
    ])
  })

  it('exact burst: of 20 concurrent requests exactly 5 pass; the upstream sees exactly those', async () => {
    await start('  api: { key: client-ip, rate: 1/m, burst: 5 }', '    rateLimit: api')
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await get()))
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5)
    expect(answers.filter((a) => a.status === 429)).toHaveLength(15)
    expect(upstream!.count).toBe(5)
    const denied = answers.find((a) => a.status === 429)!
    expect(denied.headers['retry-after']).toBe('60')
    expect(denied.headers['ratelimit-limit']).toBe('5')
    expect(denied.headers['ratelimit-remaining']).toBe('0')
    expect(denied.headers['ratelimit-reset']).toBe('300')
  })

  it('draft-6 headers on allowed responses count down; a sequential burst passes exactly', async () => {
    await start('  api: { key: client-ip, rate: 1/m, burst: 4 }', '    rateLimit: api')
    const seen: string[] = []
    for (let i = 0; i < 6; i++) {
      const a = await get()
      seen.push(`${a.status} ${String(a.headers['ratelimit-limit'])} ${String(a.headers['ratelimit-remaining'])}`)
    }
    expect(seen.slice(0, 4)).toEqual(['200 4 3', '200 4 2', '200 4 1', '200 4 0'])
    expect(seen[4]).toBe('429 4 0')
    expect(seen[5]).toBe('429 4 0')
  })

  it('draft-11 headers: RateLimit-Policy and RateLimit; none: only Retry-After on the 429', async () => {
    await start([
      '  d11: { key: client-ip, rate: 1/m, burst: 3, headers: draft-11 }',
      '  quiet: { key: global, rate: 1/m, burst: 1, headers: none }',
    ].join('\n'), '', [
      '      - match: { pathPrefix: /quiet }\n        upstream: web\n        rateLimit: quiet',
      '      - match: { pathPrefix: / }\n        upstream: web\n        rateLimit: d11',
    ].join('\n'))
    const first = await get('/')
    expect(first.status).toBe(200)
    // q: the burst; w: seconds a full refill takes (3 at 1/m); t: seconds until full again.
    expect(first.headers['ratelimit-policy']).toBe('"d11";q=3;w=180')
    expect(first.headers.ratelimit).toBe('"d11";r=2;t=60')
    expect(first.headers['ratelimit-limit']).toBeUndefined()
    await get('/'); await get('/')
    const denied = await get('/')
    expect(denied.status).toBe(429)
    expect(denied.headers['retry-after']).toBe('60')
    expect(denied.headers.ratelimit).toBe('"d11";r=0;t=180')
    const q1 = await get('/quiet')
    expect(q1.status).toBe(200)
    expect(Object.keys(q1.headers).filter((h) => h.startsWith('ratelimit'))).toEqual([])
    const q2 = await get('/quiet')
    expect(q2.status).toBe(429)
    expect(q2.headers['retry-after']).toBe('60')
    expect(Object.keys(q2.headers).filter((h) => h.startsWith('ratelimit'))).toEqual([])
  })

  it('per-key isolation: header:x-api-key buckets are separate; requests without it share one', async () => {
    await start('  keyed: { key: "header:X-Api-Key", rate: 1/m, burst: 3 }', '    rateLimit: keyed')
    const run = async (key: string | undefined): Promise<number> => {
      let ok = 0
      for (let i = 0; i < 5; i++) if ((await get('/', key === undefined ? {} : { 'x-api-key': key })).status === 200) ok++
      return ok
    }
    expect(await run('alpha')).toBe(3)
    expect(await run('beta')).toBe(3)
    expect(await run('alpha')).toBe(0)
    expect(await run(undefined)).toBe(3)
    expect(await run(undefined)).toBe(0)
    expect(upstream!.count).toBe(9)
  })

  it('X-Forwarded-For is ignored without trusted proxies: one bucket for the socket address', async () => {
    await start('  ip: { key: client-ip, rate: 1/m, burst: 2 }', '    rateLimit: ip')
    const statuses = []
    for (const xff of ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4']) statuses.push((await get('/', { 'x-forwarded-for': xff })).status)
    expect(statuses).toEqual([200, 200, 429, 429])
  })

  it('X-Forwarded-For from a trusted proxy: the right-most untrusted entry is the key', async () => {
    await start('  ip: { key: client-ip, rate: 1/m, burst: 2 }', '    rateLimit: ip\n    trustedProxies: [127.0.0.1/32, 10.0.0.0/8]')
    const status = async (xff: string): Promise<number> => (await get('/', { 'x-forwarded-for': xff })).status
    expect([await status('1.1.1.1'), await status('1.1.1.1'), await status('1.1.1.1')]).toEqual([200, 200, 429])
    expect(await status('2.2.2.2')).toBe(200)
    // 10.0.0.5 is a trusted hop: the client is 1.1.1.1, already empty. A spoofed left entry changes nothing.
    expect(await status('9.9.9.9, 1.1.1.1, 10.0.0.5')).toBe(429)
    expect(await status('1.1.1.1, 2.2.2.2')).toBe(200)
    expect(await status('1.1.1.1, 2.2.2.2')).toBe(429)
  })

  it('listener and route limits: the tighter is reported; a route denial costs the listener nothing', async () => {
    await start([
      '  wide: { key: client-ip, rate: 1/m, burst: 10 }',
      '  narrow: { key: route, rate: 1/m, burst: 2 }',
    ].join('\n'), '    rateLimit: wide', [
      '      - name: tight\n        match: { pathPrefix: /tight }\n        upstream: web\n        rateLimit: narrow',
      '      - match: { pathPrefix: / }\n        upstream: web',
    ].join('\n'))
    const t1 = await get('/tight')
    expect([t1.status, t1.headers['ratelimit-limit'], t1.headers['ratelimit-remaining']]).toEqual([200, '2', '1'])
    await get('/tight')
    const t3 = await get('/tight')
    expect([t3.status, t3.headers['ratelimit-limit']]).toEqual([429, '2'])
    for (let i = 0; i < 5; i++) await get('/tight') // denied by the route: the listener bucket keeps 8
    const other = await get('/other')
    expect([other.status, other.headers['ratelimit-limit'], other.headers['ratelimit-remaining']]).toEqual([200, '10', '7'])
  })

  it('one limit on the listener and on a route is one bucket: exactly burst pass (was: each request charged twice)', async () => {
    await start('  per-client: { key: client-ip, rate: 1/m, burst: 3 }', '    rateLimit: per-client', [
      '      - match: { pathPrefix: / }\n        upstream: web\n        rateLimit: per-client',
    ].join('\n'))
    const answers: Array<[number, unknown]> = []
    for (let i = 0; i < 5; i++) {
      const a = await get('/x')
      answers.push([a.status, a.headers['ratelimit-remaining']])
    }
    expect(answers).toEqual([[200, '2'], [200, '1'], [200, '0'], [429, '0'], [429, '0']])
  })

  it('listener and route limits both deny: Retry-After is the longer wait, the route\'s (was: the listener\'s 1 s)', async () => {
    await start([
      '  fast: { key: client-ip, rate: 1/s, burst: 1 }',
      '  slow: { key: client-ip, rate: 1/m, burst: 1, headers: draft-11 }',
    ].join('\n'), '    rateLimit: fast', '      - match: { pathPrefix: / }\n        upstream: web\n        rateLimit: slow')
    expect((await get()).status).toBe(200)
    const denied = await get()
    expect([denied.status, denied.headers['retry-after'], denied.headers['ratelimit-policy']]).toEqual([429, '60', '"slow";q=1;w=60'])
    expect(upstream!.count).toBe(1)
  })

  it.each([
    ['the listener', '    rateLimit: per-route\n', ''],
    ['the route', '', '        rateLimit: per-route\n'],
  ])('key: route on %s is per route of each listener: default route names on two listeners are two buckets', async (_where, onListener, onRoute) => {
    upstream = await startUpstream({ name: 'u' })
    const listener = (name: string): string => `  - name: ${name}
    protocol: http
    listen: 127.0.0.1:0
${onListener}    routes:
      - match: { pathPrefix: / }
        upstream: web
${onRoute}`
    proxy = await startProxy(`
log: { level: silent, access: false }
rateLimits:
  per-route: { key: route, rate: 1/m, burst: 1 }
upstreams:
  web:
    servers: [{ address: ${upstream.address} }]
listeners:
${listener('a')}${listener('b')}`)
    const status = async (l: string): Promise<number> => {
      const res = await request(proxy!.url(l) + '/')
      await res.body.text()
      return res.statusCode
    }
    expect([await status('a'), await status('a'), await status('b'), await status('b')]).toEqual([200, 429, 200, 429])
    expect(upstream.count).toBe(2)
  })

  it('a denied request with a body never reaches the upstream and is not waited for', async () => {
    await start('  ip: { key: client-ip, rate: 1/m, burst: 1 }', '    rateLimit: ip')
    expect((await get()).status).toBe(200)
    const socket = net.connect(proxy!.port(), '127.0.0.1')
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString() })
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    // 10 MB announced, 64 KiB sent: the answer must come without the rest.
    socket.write('POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 10485760\r\n\r\n' + 'x'.repeat(65536))
    await closed
    expect(text).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/)
    expect(text.toLowerCase()).toContain('connection: close')
    expect(text.toLowerCase()).toContain('retry-after: 60')
    expect(upstream!.count).toBe(1)
  })

  it('LRU eviction at maxKeys: a key pushed out starts again from a full bucket', async () => {
    await start('  ip: { key: client-ip, rate: 1/m, burst: 1, maxKeys: 2 }', '    rateLimit: ip\n    trustedProxies: [127.0.0.1/32]')
    const status = async (ip: string): Promise<number> => (await get('/', { 'x-forwarded-for': ip })).status
    expect([await status('1.0.0.1'), await status('1.0.0.1')]).toEqual([200, 429])
    expect([await status('1.0.0.2'), await status('1.0.0.2')]).toEqual([200, 429])
    expect(await status('1.0.0.1')).toBe(429) // 1.0.0.2 is now the least recently used
    expect(await status('1.0.0.3')).toBe(200) // evicts 1.0.0.2
    expect(await status('1.0.0.2')).toBe(200) // back, full (evicts 1.0.0.1)
    expect(await status('1.0.0.1')).toBe(200)
    expect(proxy!.runtime.limiters.get('ip')!.table.size).toBe(2)
  })

  it('counts denials in tandem_rate_limited_total and names the limit in the access line', async () => {
    await start('  api: { key: client-ip, rate: 1/m, burst: 2 }', '    rateLimit: api')
    const metrics = createMetrics(() => proxy!.runtime)
    const ends: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { ends.push(m as HttpRequestEnd) }
    dc.subscribe('tandem:http:request-end', onEnd)
    try {
      for (let i = 0; i < 5; i++) await get('/x')
      const text = await metrics.registry.metrics()
      expect(text).toContain('tandem_rate_limited_total{listener="public",limit="api"} 3')
      expect(text).toContain('tandem_rate_limit_store_errors_total{reason="timeout"} 0')
      const denied = ends.filter((e) => e.status === 429)
      expect(denied).toHaveLength(3)
      expect(denied[0]).toMatchObject({ listener: 'public', error: 'RATE_LIMITED', limit: 'api', path: '/x' })
    } finally {
      dc.unsubscribe('tandem:http:request-end', onEnd)
      metrics.close()
    }
  })

  it('a reload keeps the buckets of an unchanged limit, on the same bound listener', async () => {
    upstream = await startUpstream({ name: 'u' })
    const port = await closedPort()
    const yaml = (extra: string): string => httpConfig({
      servers: [upstream!.address],
      listener: '    rateLimit: ip',
      top: `rateLimits:\n  ip: { key: client-ip, rate: 1/m, burst: 2 }\n${extra}`,
    }).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${port}`)
    proxy = await startProxy(yaml(''))
    expect([(await get()).status, (await get()).status]).toEqual([200, 200])
    const before = proxy
    const { runtime, retired } = await reloadRuntime(before.runtime, parseConfig(yaml('  extra: { key: global, rate: 1/s }'), 'test.yaml'))
    proxy = { ...before, runtime, stop: async (ms = 1000) => await runtime.stop(ms) }
    await retired
    expect(runtime.listeners[0]).toBe(before.runtime.listeners[0]) // the same socket serves on
    expect((await get()).status).toBe(429) // the bucket came along
  })
})
