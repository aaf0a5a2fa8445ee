// A real redis-server per file (test/helpers/redis.ts). Timing-sensitive: run under the shared
// lock. Each onError mode is driven through a hung (SIGSTOP) and a dead (SIGKILL) Redis.
import dc from 'node:diagnostics_channel'
import type { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import net from 'node:net'
import type { HttpRequestEnd, RateLimitStoreState } from '../../src/observability/events.js'
import { createMetrics } from '../../src/observability/metrics.js'
import { haveRedis, redisAdmin, startRedis, type TestRedis } from '../helpers/redis.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { closeKind, connect, echo, startTcpServer } from '../helpers/tcp.js'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

let redis: TestRedis
let admin: Redis
let upstream: TestUpstream
let proxy: RunningTandem | undefined
const agent = new Agent({ connections: 64, headersTimeout: 10_000, bodyTimeout: 10_000 })

beforeAll(async () => {
  if (!haveRedis) return
  redis = await startRedis()
  admin = await redisAdmin(redis)
  upstream = await startUpstream({ name: 'u' })
}, 30_000)

afterAll(async () => {
  if (!haveRedis) return
  admin.disconnect()
  await redis.stop()
  await upstream.close()
  await agent.close()
})

afterEach(async () => {
  await proxy?.stop()
  proxy = undefined
  redis.resume()
  await waitFor(async () => await admin.ping().then(() => true, () => false), 10_000, 50, 'redis back')
  await admin.flushall()
})

async function start (limit: string, store: string): Promise<RunningTandem> {
  proxy = await startProxy(httpConfig({
    servers: [upstream.address],
    listener: '    rateLimit: api',
    top: `rateLimits:\n  api: ${limit}\nrateLimitStore:\n  redis: { url: "${redis.url}", prefix: "t:", ${store} }`,
  }))
  const p = proxy
  await waitFor(() => p.runtime.limiters.redis?.available === true, 10_000, 10, 'redis store connected')
  return p
}

interface Timed { status: number, ms: number, headers: Record<string, unknown> }
async function get (path = '/'): Promise<Timed> {
  const t0 = performance.now()
  const res = await request(proxy!.url() + path, { dispatcher: agent })
  await res.body.text()
  return { status: res.statusCode, ms: performance.now() - t0, headers: res.headers }
}

describe.skipIf(!haveRedis)('rate limiting through Redis', () => {
  it('exact burst in one round trip per request; keys under prefix expire when the bucket is full', async () => {
    await start('{ key: client-ip, rate: 1/m, burst: 5 }', 'timeout: 1s')
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await get()))
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5)
    const denied = answers.find((a) => a.status === 429)!
    expect(denied.headers['retry-after']).toBe('60')
    expect(denied.headers['ratelimit-limit']).toBe('5')
    expect(await admin.keys('t:*')).toEqual(['t:api:127.0.0.1'])
    const ttl = await admin.pttl('t:api:127.0.0.1')
    expect(ttl).toBeGreaterThan(290_000)
    expect(ttl).toBeLessThanOrEqual(300_001)
  })

  it('a listener and a route limit go to Redis in one call; the tighter is reported', async () => {
    proxy = await startProxy(httpConfig({
      servers: [upstream.address],
      listener: '    rateLimit: wide',
      routes: '      - match: { pathPrefix: / }\n        upstream: web\n        rateLimit: narrow',
      top: `rateLimits:\n  wide: { key: global, rate: 1/m, burst: 10 }\n  narrow: { key: client-ip, rate: 1/m, burst: 3 }\nrateLimitStore:\n  redis: { url: "${redis.url}", prefix: "t:", timeout: 1s }`,
    }))
    const p = proxy
    await waitFor(() => p.runtime.limiters.redis?.available === true, 10_000, 10, 'redis store connected')
    const scripts = async (): Promise<number> => {
      const stats = await admin.info('commandstats')
      const calls = (name: string): number => Number(stats.match(new RegExp(`cmdstat_${name}:calls=(\\d+)`))?.[1] ?? 0)
      return calls('evalsha') + calls('eval')
    }
    expect((await get()).status).toBe(200) // loads the script (EVALSHA, then EVAL on NOSCRIPT)
    const before = await scripts()
    const a = await get()
    const b = await get()
    const c = await get()
    expect(await scripts() - before).toBe(3)
    expect([a.status, b.status, c.status]).toEqual([200, 200, 429])
    expect([a.headers['ratelimit-limit'], a.headers['ratelimit-remaining']]).toEqual(['3', '1'])
    expect(c.headers['ratelimit-limit']).toBe('3')
    // The denied third request moved neither bucket: both advanced by three intervals (60 s each).
    const wide = Number(await admin.get('t:wide:'))
    const narrow = Number(await admin.get('t:narrow:127.0.0.1'))
    expect(narrow - wide).toBe(0)
  })

  it('key: route in Redis: one key per route of its listener, PREFIX LIMIT ":" LISTENER NUL ROUTE', async () => {
    proxy = await startProxy(httpConfig({
      servers: [upstream.address],
      routes: '      - match: { pathPrefix: / }\n        upstream: web\n        rateLimit: per-route',
      top: `rateLimits:\n  per-route: { key: route, rate: 1/m, burst: 1 }\nrateLimitStore:\n  redis: { url: "${redis.url}", prefix: "t:", timeout: 1s }`,
    }))
    const p = proxy
    await waitFor(() => p.runtime.limiters.redis?.available === true, 10_000, 10, 'redis store connected')
    expect([(await get()).status, (await get()).status]).toEqual([200, 429])
    expect(await admin.keys('t:*')).toEqual(['t:per-route:public\0route-1'])
  })

  // Regression: a client that reset its connection while Redis decided got no access line at
  // all (admission returned nothing once the client was gone).
  it('a client that leaves while Redis decides has one access line: 499 CLIENT_CLOSED', async () => {
    const p = await start('{ key: client-ip, rate: 1/m, burst: 5 }', 'timeout: 300ms, onError: allow')
    const before = upstream.count
    const store = p.runtime.limiters.redis!
    let asked = 0
    const decide = store.decide.bind(store)
    store.decide = (limits, keys) => { asked++; return decide(limits, keys) }
    const seen: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { seen.push(m as HttpRequestEnd) }
    dc.subscribe('tandem:http:request-end', onEnd)
    try {
      redis.pause()
      const s = net.connect(p.port(), '127.0.0.1')
      s.on('error', () => {})
      s.write('GET /left?x=1 HTTP/1.1\r\nHost: a\r\n\r\n')
      await waitFor(() => asked === 1, 5000, 5, 'the decision asked of Redis')
      s.resetAndDestroy()
      await waitFor(() => seen.length === 1, 5000, 10, 'the access line')
      expect(seen[0]).toMatchObject({ status: 499, error: 'CLIENT_CLOSED', path: '/left?x=1', route: 'route-1', upstream: 'web' })
      expect(upstream.count).toBe(before)
    } finally {
      dc.unsubscribe('tandem:http:request-end', onEnd)
    }
  })

  it('TCP: new connections limited through Redis; the upstream never sees a refused one', async () => {
    const up = await startTcpServer(echo)
    try {
      proxy = await startProxy(`
log: { level: silent, access: false }
upstreams: { cache: { servers: [{ address: ${up.address} }] } }
listeners: [{ name: conns, protocol: tcp, listen: 127.0.0.1:0, upstream: cache, rateLimit: nc }]
rateLimits: { nc: { key: client-ip, rate: 1/m, burst: 2 } }
rateLimitStore: { redis: { url: "${redis.url}", prefix: "t:", timeout: 1s, onError: deny } }
`)
      const p = proxy
      await waitFor(() => p.runtime.limiters.redis?.available === true, 10_000, 10, 'redis store connected')
      const port = p.port('conns')
      const echoed = async (): Promise<boolean> => {
        const s = await connect(port)
        let got = ''
        s.on('data', (d: Buffer) => { got += d.toString() })
        s.write('ping')
        const closed = closeKind(s)
        const ok = await Promise.race([closed.then(() => false), waitFor(() => got === 'ping', 5000, 5).then(() => true)])
        s.destroy()
        return ok
      }
      expect([await echoed(), await echoed(), await echoed(), await echoed()]).toEqual([true, true, false, false])
      expect(up.accepted).toBe(2)
      expect(await admin.exists('t:nc:127.0.0.1')).toBe(1)
    } finally {
      await up.close()
    }
  })

  it('TCP: maxConnections holds while connections wait for the Redis decision (was: a burst all passed)', async () => {
    const up = await startTcpServer(echo)
    try {
      proxy = await startProxy(`
log: { level: silent, access: false }
upstreams: { cache: { servers: [{ address: ${up.address} }] } }
listeners: [{ name: conns, protocol: tcp, listen: 127.0.0.1:0, upstream: cache, rateLimit: nc, maxConnections: 2 }]
rateLimits: { nc: { key: client-ip, rate: 1000/s, burst: 1000 } }
rateLimitStore: { redis: { url: "${redis.url}", prefix: "t:", timeout: 1s, onError: deny } }
`)
      const p = proxy
      await waitFor(() => p.runtime.limiters.redis?.available === true, 10_000, 10, 'redis store connected')
      const port = p.port('conns')
      const clients = await Promise.all(Array.from({ length: 10 }, async () => await connect(port)))
      const outcomes = await Promise.all(clients.map(async (s) => {
        let got = ''
        s.on('data', (d: Buffer) => { got += d.toString() })
        s.write('x')
        const closed = closeKind(s)
        return await Promise.race([closed.then(() => 'closed'), waitFor(() => got === 'x', 5000, 5).then(() => 'echoed')])
      }))
      for (const s of clients) s.destroy()
      expect(outcomes.filter((o) => o === 'echoed')).toHaveLength(2)
      expect(outcomes.filter((o) => o === 'closed')).toHaveLength(8)
      expect(up.accepted).toBe(2)
    } finally {
      await up.close()
    }
  })

  it('at start the first requests wait for the connection instead of being answered by onError (was: 429 with onError deny)', async () => {
    proxy = await startProxy(httpConfig({
      servers: [upstream.address],
      listener: '    rateLimit: api',
      top: `rateLimits:\n  api: { key: global, rate: 1/m, burst: 5 }\nrateLimitStore:\n  redis: { url: "${redis.url}", prefix: "t:", timeout: 1s, onError: deny }`,
    }))
    // No wait for the store: the first request races the connection.
    const statuses = await Promise.all(Array.from({ length: 3 }, async () => (await get()).status))
    expect(statuses).toEqual([200, 200, 200])
    expect(Number(await admin.get('t:api:'))).toBeGreaterThan(0)
  })

  it('Redis unreachable from the start: every decision answered by onError is counted as unavailable', async () => {
    const dead = await closedPort()
    proxy = await startProxy(httpConfig({
      servers: [upstream.address],
      listener: '    rateLimit: api',
      top: `rateLimits:\n  api: { key: global, rate: 1/m, burst: 5 }\nrateLimitStore:\n  redis: { url: "redis://127.0.0.1:${dead}", timeout: 200ms, onError: allow }`,
    }))
    const p = proxy
    const metrics = createMetrics(() => p.runtime)
    const unavailable = async (): Promise<number> => Number((await metrics.registry.metrics()).match(/tandem_rate_limit_store_errors_total\{reason="unavailable"\} (\d+)/)?.[1] ?? 0)
    await waitFor(async () => (await get()).status === 200 && !(p.runtime.limiters.redis?.available ?? true), 5000, 20, 'answered by onError')
    const before = await unavailable()
    for (let i = 0; i < 6; i++) expect((await get()).status).toBe(200)
    expect(await unavailable()).toBeGreaterThanOrEqual(before + 6)
  })

  // Regressions from a fault-injection audit: one key of the wrong type (written by something
  // else) opened the breaker for every client, and with Redis out of memory the breaker flapped
  // every 200 ms, since its check wrote nothing (25 warnings and 25 "back" lines in 5 s).
  it('a key of the wrong type fails its own decisions only; the store stays up for every other key', async () => {
    const p = await start('{ key: "header:x-key", rate: 1/m, burst: 50 }', 'timeout: 500ms, onError: deny')
    const keyed = async (key: string): Promise<number> => {
      const res = await request(p.url(), { dispatcher: agent, headers: { 'x-key': key } })
      await res.body.text()
      return res.statusCode
    }
    expect(await keyed('bad')).toBe(200)
    // The bucket of key "bad" under the store's prefix and the limit's name.
    const name = 't:api:bad'
    expect(await admin.exists(name)).toBe(1)
    await admin.del(name)
    await admin.lpush(name, 'x')
    for (let i = 0; i < 5; i++) expect(await keyed('bad')).toBe(429) // onError deny, for this key
    for (let i = 0; i < 10; i++) expect(await keyed(`good-${i}`)).toBe(200)
    expect(p.runtime.limiters.redis?.available).toBe(true)
  })

  it('Redis out of memory: one warning, the breaker stays open until writes work again, then one "back"', async () => {
    const states: RateLimitStoreState[] = []
    const onState = (m: unknown): void => { states.push(m as RateLimitStoreState) }
    dc.subscribe('tandem:ratelimit:store-state', onState)
    try {
      const p = await start('{ key: client-ip, rate: 1/m, burst: 1000 }', 'timeout: 500ms, onError: allow')
      expect((await get()).status).toBe(200)
      await admin.config('SET', 'maxmemory', '1')
      await waitFor(async () => { await get(); return p.runtime.limiters.redis?.available === false }, 5000, 20, 'the breaker open')
      const until = Date.now() + 2000
      while (Date.now() < until) {
        expect((await get()).status).toBe(200) // answered by onError: allow
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(states.map((e) => e.state)).toEqual(['down'])
      await admin.config('SET', 'maxmemory', '0')
      await waitFor(() => p.runtime.limiters.redis?.available === true, 5000, 20, 'the store back')
      expect(states.map((e) => e.state)).toEqual(['down', 'up'])
    } finally {
      dc.unsubscribe('tandem:ratelimit:store-state', onState)
      await admin.config('SET', 'maxmemory', '0')
    }
  })

  for (const failure of ['hung (SIGSTOP)', 'dead (SIGKILL)'] as const) {
    for (const onError of ['local', 'allow', 'deny'] as const) {
      it(`Redis ${failure}, onError ${onError}: the first request waits at most the timeout, later ones not at all; resumes within 1 s`, async () => {
        const timeoutMs = 500
        const p = await start('{ key: global, rate: 1/m, burst: 3 }', `timeout: ${timeoutMs}ms, onError: ${onError}`)
        const metrics = createMetrics(() => p.runtime)
        const states: RateLimitStoreState[] = []
        const onState = (m: unknown): void => { states.push(m as RateLimitStoreState) }
        dc.subscribe('tandem:ratelimit:store-state', onState)
        try {
          expect((await get()).status).toBe(200) // through Redis: 2 left there
          if (failure === 'hung (SIGSTOP)') redis.pause()
          else await redis.kill()
          // Five at once as the outage begins: each waits at most the timeout (plus a loaded machine's slack).
          const firsts = await Promise.all(Array.from({ length: 5 }, async () => await get()))
          for (const r of firsts) expect(r.ms).toBeLessThan(timeoutMs + 1000)
          const later: Timed[] = []
          for (let i = 0; i < 10; i++) later.push(await get())
          // Without waiting: none near the timeout, most far below (a loaded machine adds some).
          for (const r of later) expect(r.ms).toBeLessThan(timeoutMs)
          expect(later.map((r) => r.ms).sort((x, y) => x - y)[5]).toBeLessThan(100)
          const statuses = [...firsts, ...later].map((r) => r.status)
          if (onError === 'allow') expect(statuses).toEqual(Array(15).fill(200))
          if (onError === 'deny') {
            expect(statuses).toEqual(Array(15).fill(429))
            expect(later[0]!.headers['retry-after']).toBe('1')
          }
          // local: this node's own buckets, untouched so far, hold exactly the burst.
          if (onError === 'local') expect(statuses.filter((s) => s === 200)).toHaveLength(3)
          expect(states.filter((s) => s.state === 'down')).toHaveLength(1)
          const text = await metrics.registry.metrics()
          const reason = failure === 'hung (SIGSTOP)' ? 'timeout' : 'unavailable'
          expect(Number(text.match(new RegExp(`tandem_rate_limit_store_errors_total\\{reason="${reason}"\\} (\\d+)`))?.[1])).toBeGreaterThanOrEqual(1)

          // Back (the same data after SIGCONT; empty after a restart): shared limiting resumes.
          if (failure === 'hung (SIGSTOP)') redis.resume()
          else await redis.restart()
          const back = performance.now()
          await waitFor(() => p.runtime.limiters.redis?.available === true, 5000, 5, 'store back')
          const resumedMs = performance.now() - back
          expect(resumedMs).toBeLessThan(1500)
          const shared = []
          for (let i = 0; i < 4; i++) shared.push((await get()).status)
          // Restarted empty, Redis holds the full 3. After SIGCONT it holds none: the requests that
          // timed out still reached Redis when it woke and counted there (errs on the safe side).
          expect(shared).toEqual(failure === 'hung (SIGSTOP)' ? [429, 429, 429, 429] : [200, 200, 200, 429])
          expect(states.at(-1)?.state).toBe('up')
        } finally {
          dc.unsubscribe('tandem:ratelimit:store-state', onState)
          metrics.close()
        }
      })
    }
  }
})
