import { describe, expect, it } from 'vitest'
import { Aggregator, percentile, type Sample } from '../../../src/admin/aggregator.js'
import { ManualClock } from '../../../src/clock.js'
import type { HttpRequestEnd } from '../../../src/observability/events.js'

const T0 = 1_764_300_000_000 // a whole second, wall ms

const sample: Sample = {
  listeners: [{ name: 'public', active: 2 }, { name: 'redis', active: 0 }],
  servers: [{ upstream: 'web', address: 'a:1' }, { upstream: 'web', address: 'b:1' }, { upstream: 'cache', address: 'c:1' }],
}

function http (status: number, totalMs: number, server?: string, upstreamMs?: number): HttpRequestEnd {
  return {
    listener: 'public', route: 'r', method: 'GET', host: 'h', path: '/', status, client: '127.0.0.1',
    bytesIn: 0, bytesOut: 0, retries: 0, totalMs,
    ...(server === undefined ? {} : { upstream: 'web', server }),
    ...(upstreamMs === undefined ? {} : { upstreamMs }),
  }
}

function setup (): { clock: ManualClock, agg: Aggregator } {
  const clock = new ManualClock(T0)
  return { clock, agg: new Aggregator({ clock, points: 5, events: 3 }) }
}

describe('percentile (nearest rank)', () => {
  it('picks ranks exactly', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(xs, 0.5)).toBe(50)
    expect(percentile(xs, 0.95)).toBe(95)
    expect(percentile(xs, 0.99)).toBe(99)
    expect(percentile([7], 0.99)).toBe(7)
    expect(percentile([], 0.5)).toBeNull()
  })
})

describe('Aggregator', () => {
  it('folds one second of HTTP traffic into one point', () => {
    const { clock, agg } = setup()
    clock.advance(200)
    for (let i = 1; i <= 20; i++) agg.httpEnd(http(i <= 17 ? 200 : i === 18 ? 404 : 502, i, i % 4 === 0 ? 'b:1' : 'a:1', i * 2))
    agg.httpEnd(http(301, 0.5))
    expect(agg.tick(sample).points).toEqual([]) // the second is not over yet
    clock.advance(800)
    const { points } = agg.tick(sample)
    expect(points).toHaveLength(1)
    const p = points[0]!
    expect(p.t).toBe(T0 / 1000)
    expect(p.listeners.public).toEqual({
      codes: [0, 17, 1, 1, 2], p50: 10, p95: 19, p99: 20, errorRate: round4(2 / 21),
      active: 2, conns: 0, bytesIn: 0, bytesOut: 0, limited: 0,
    })
    expect(p.listeners.redis).toEqual({
      codes: [0, 0, 0, 0, 0], p50: null, p95: null, p99: null, errorRate: null,
      active: 0, conns: 0, bytesIn: 0, bytesOut: 0, limited: 0,
    })
    // a:1 served 15 of 20 (i not divisible by 4), b:1 served 5 (4, 8, 12, 16, 20).
    expect(p.servers['web/a:1']).toEqual({ requests: 15, share: 0.75, responseMs: round2((2 * (210 - 60)) / 15) })
    expect(p.servers['web/b:1']).toEqual({ requests: 5, share: 0.25, responseMs: 24 })
    expect(p.servers['cache/c:1']).toEqual({ requests: 0, share: null, responseMs: null })
  })

  it('counts TCP connections, bytes at close and failed connections', () => {
    const { clock, agg } = setup()
    agg.tcpStart({ listener: 'redis', upstream: 'cache', server: 'c:1' })
    agg.tcpStart({ listener: 'redis', upstream: 'cache', server: 'c:1' })
    agg.tcpEnd({ listener: 'redis', client: 'x', upstream: 'cache', server: 'c:1', bytesIn: 100, bytesOut: 5000, durationMs: 3, end: 'closed' })
    agg.tcpEnd({ listener: 'redis', client: 'x', bytesIn: 0, bytesOut: 0, durationMs: 3, end: 'connect-failed' })
    agg.tcpEnd({ listener: 'redis', client: 'x', bytesIn: 7, bytesOut: 0, durationMs: 3, end: 'client-reset' })
    clock.advance(1000)
    const p = agg.tick(sample).points[0]!
    expect(p.listeners.redis).toMatchObject({ conns: 2, bytesIn: 107, bytesOut: 5000, errorRate: round4(1 / 3) })
    expect(p.servers['cache/c:1']).toEqual({ requests: 2, share: 1, responseMs: null })
  })

  it('fills idle seconds, keeps only the newest points and sends all on connect', () => {
    const { clock, agg } = setup()
    clock.advance(3000)
    expect(agg.tick(sample).points.map((p) => p.t - T0 / 1000)).toEqual([0, 1, 2])
    clock.advance(4500)
    expect(agg.tick(sample).points.map((p) => p.t - T0 / 1000)).toEqual([3, 4, 5, 6])
    expect(agg.history().points.map((p) => p.t - T0 / 1000)).toEqual([2, 3, 4, 5, 6])
    // A stall longer than the window yields exactly the window.
    clock.advance(60_000)
    const late = agg.tick(sample).points
    expect(late).toHaveLength(5)
    expect(late.at(-1)!.t - T0 / 1000).toBe(66)
  })

  it('credits events that arrive before the tick closed the previous second to their own second', () => {
    const { clock, agg } = setup()
    agg.httpEnd(http(200, 1))
    clock.advance(1010) // the timer is late: second 1 has begun
    agg.httpEnd(http(500, 1))
    agg.httpEnd(http(500, 1))
    expect(agg.tick(sample).points.map((p) => p.listeners.public!.codes)).toEqual([[0, 1, 0, 0, 0]])
    clock.advance(1000)
    expect(agg.tick(sample).points.map((p) => p.listeners.public!.codes)).toEqual([[0, 0, 0, 0, 2]])
  })

  it('counts a server\'s requests in the second they ended in, the same server second after second', () => {
    const { clock, agg } = setup()
    agg.httpEnd(http(200, 1, 'a:1', 1))
    agg.httpEnd(http(200, 1, 'a:1', 1))
    clock.advance(1000)
    agg.httpEnd(http(200, 1, 'a:1', 3))
    agg.httpEnd(http(200, 1, 'b:1', 3))
    agg.httpEnd(http(200, 1, 'a:1', 3))
    clock.advance(1000)
    const points = agg.tick(sample).points
    expect(points.map((p) => [p.servers['web/a:1']?.requests, p.servers['web/b:1']?.requests])).toEqual([[2, 0], [2, 1]])
    expect(points.map((p) => p.listeners.public!.codes[1])).toEqual([2, 3])
  })

  it('after a stalled timer drops the oldest unclosed second rather than crediting it elsewhere', () => {
    const { clock, agg } = setup()
    agg.httpEnd(http(200, 1))
    clock.advance(1000)
    agg.httpEnd(http(404, 1))
    clock.advance(1500)
    agg.httpEnd(http(500, 1))
    clock.advance(600)
    const points = agg.tick(sample).points
    expect(points.map((p) => p.listeners.public!.codes)).toEqual([[0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
  })

  it('reports a rate-limit spike once per burst, and hands each event out once', () => {
    const { clock, agg } = setup()
    agg.event('server', 'bad', 'web a:1 up → down (health check)')
    for (let i = 0; i < 12; i++) agg.rateLimited('public')
    clock.advance(1000)
    let r = agg.tick(sample)
    expect(r.points[0]!.listeners.public!.limited).toBe(12)
    expect(r.events.map((e) => [e.kind, e.level, e.text, e.t])).toEqual([
      ['server', 'bad', 'web a:1 up → down (health check)', T0],
      ['ratelimit', 'warn', 'listener public: 12 rate-limited in one second', T0 + 1000],
    ])
    expect(agg.tick(sample).events).toEqual([])
    // Denials every second stay one burst; after 6 quiet seconds a new one is reported.
    for (let s = 0; s < 3; s++) {
      agg.rateLimited('public')
      clock.advance(1000)
      expect(agg.tick(sample).events).toEqual([])
    }
    clock.advance(6000)
    agg.tick(sample)
    agg.rateLimited('public')
    clock.advance(1000)
    r = agg.tick(sample)
    expect(r.events.map((e) => e.text)).toEqual(['listener public: 1 rate-limited in one second'])
    // Only the newest `events` are kept for new clients.
    expect(agg.history().events.map((e) => e.kind)).toEqual(['server', 'ratelimit', 'ratelimit'])
    agg.event('reload', 'ok', 'config reloaded')
    expect(agg.history().events.map((e) => e.kind)).toEqual(['ratelimit', 'ratelimit', 'reload'])
  })

  it('keeps a uniform reservoir of latencies beyond maxSamples', () => {
    const clock = new ManualClock(T0)
    const randoms = [0.1, 0.99]
    const agg = new Aggregator({ clock, maxSamples: 4, random: () => randoms.shift() ?? 0.99 })
    for (const ms of [10, 20, 30, 40]) agg.httpEnd(http(200, ms))
    agg.httpEnd(http(200, 50)) // j = floor(0.1 * 5) = 0 → replaces 10
    agg.httpEnd(http(200, 60)) // j = floor(0.99 * 6) = 5 → dropped
    clock.advance(1000)
    const p = agg.tick(sample).points[0]!.listeners.public!
    expect([p.p50, p.p99]).toEqual([30, 50])
    expect(p.codes[1]).toBe(6)
  })
})

function round4 (x: number): number { return Math.round(x * 1e4) / 1e4 }
function round2 (x: number): number { return Math.round(x * 100) / 100 }
