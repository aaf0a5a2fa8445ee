import { describe, it, expect } from 'vitest'
import { ewma, ResponseTime, TAU_MS, STALE_MS, PROBE_SHARE } from '../../../src/balancer/response-time.js'
import { candidates } from '../../../src/balancer/candidates.js'
import { ManualClock } from '../../../src/clock.js'
import type { Server } from '../../../src/upstream/server.js'
import { makeServer, seededRandom } from './helpers.js'

const noProbe = (): number => 0.5
const ctx = (now: number, random: () => number = noProbe) => ({ now, random })
const three = (): [Server, Server, Server] => [makeServer('a:1'), makeServer('b:1'), makeServer('c:1')]
const sample = (s: Server, ms: number, at: number): void => {
  s.rttEwma = ewma(s.rttEwma, s.rttAt, ms, at)
  s.rttAt = at
}

describe('ewma()', () => {
  it('takes the first sample as is', () => {
    expect(ewma(0, 0, 42, 1000)).toBe(42)
  })

  it('weighs the old value by exp(-elapsed / tau)', () => {
    const w = Math.exp(-1)
    expect(ewma(10, 5000, 20, 5000 + TAU_MS)).toBe(10 * w + 20 * (1 - w))
    expect(ewma(10, 0, 20, 0)).toBe(10)
    expect(ewma(10, 0, 20, 100 * TAU_MS)).toBe(20)
  })

  it('does not let a clock step backwards amplify the old value', () => {
    expect(ewma(10, 1000, 20, 900)).toBe(10)
  })

  it('averages over time, not over request count: the same 2 s of samples give the same value', () => {
    let few = 100
    let many = 100
    for (let t = 100; t <= 2000; t += 100) few = ewma(few, t - 100, 10, t)
    for (let t = 1; t <= 2000; t += 1) many = ewma(many, t - 1, 10, t)
    expect(many).toBeCloseTo(few, 9)
  })
})

describe('response-time pick', () => {
  it('prefers the lowest rtt x (active + 1) / weight', () => {
    const b = new ResponseTime()
    const [x, y, z] = three()
    sample(x, 10, 0)
    sample(y, 5, 0)
    sample(z, 30, 0)
    expect(b.pick([x, y, z], ctx(0))).toBe(y)
    y.active = 2 // 15 > 10
    expect(b.pick([x, y, z], ctx(0))).toBe(x)
  })

  it('divides by the effective weight', () => {
    const b = new ResponseTime()
    const [x, y] = three()
    sample(x, 10, 0)
    sample(y, 15, 0)
    expect(b.pick([x, y], ctx(0))).toBe(x)
    y.effectiveWeight = 2 // 7.5
    expect(b.pick([x, y], ctx(0))).toBe(y)
  })

  it('tries a server without samples first, but does not send it everything before it answers', () => {
    const b = new ResponseTime()
    const [x, y, z] = three()
    sample(x, 10, 0)
    sample(y, 10, 0)
    const order: string[] = []
    for (let i = 0; i < 4; i++) {
      const s = b.pick([x, y, z], ctx(0))
      if (s === undefined) throw new Error('no pick')
      s.active++
      order.push(s.host)
    }
    expect(order[0]).toBe('c')
    expect(z.active).toBeLessThanOrEqual(2)
    expect(x.active + y.active).toBeGreaterThanOrEqual(2)
  })

  it('treats a sample older than STALE_MS as unknown, so the server is re-probed', () => {
    const b = new ResponseTime()
    const [x, y] = three()
    sample(x, 100, 0)
    sample(y, 10, 0)
    sample(y, 10, STALE_MS + 1)
    expect(b.pick([x, y], ctx(STALE_MS))).toBe(y)
    expect(b.pick([x, y], ctx(STALE_MS + 1))).toBe(x)
  })

  it('decays an ageing sample toward the fastest fresh one', () => {
    const b = new ResponseTime()
    const [x, y] = three()
    sample(x, 50, 0)
    sample(y, 10, 3000)
    y.active = 1 // score 20
    // x at age 0 would score 50; at age 3000 it scores 10 + 40 e^-1.5 = 18.9.
    expect(b.pick([x, y], ctx(3000))).toBe(x)
    sample(x, 50, 3000)
    expect(b.pick([x, y], ctx(3000))).toBe(y)
  })

  it('sends PROBE_SHARE of picks to a random non-best server, from the same random draw', () => {
    const b = new ResponseTime()
    const [x, y, z] = three()
    sample(x, 50, 0)
    sample(y, 5, 0)
    sample(z, 80, 0)
    const at = (r: number): Server | undefined => b.pick([x, y, z], ctx(0, () => r))
    expect(at(PROBE_SHARE)).toBe(y)
    expect(at(0.99)).toBe(y)
    expect(at(0)).toBe(x)
    expect(at(PROBE_SHARE * 0.49)).toBe(x)
    expect(at(PROBE_SHARE * 0.51)).toBe(z)
    expect(at(PROBE_SHARE * 0.999999)).toBe(z)
  })

  it('rotates exact ties by weight (all unknown, sequential requests)', () => {
    const b = new ResponseTime()
    const list = [makeServer('a:1', { weight: 3 }), makeServer('b:1'), makeServer('c:1')]
    const s = Array.from({ length: 10 }, () => b.pick(list, ctx(0))?.host).join('')
    expect(s).toBe('abacaabaca')
  })
})

/**
 * Closed-loop simulation: `clients` each send a request, wait for its answer and send the next.
 * Picks go through candidates() and the balancer; completions do what Upstream.release() does.
 */
function simulate (opts: {
  servers: Server[]
  latency: (s: Server, now: number) => number
  clients: number
  until: number
  clock: ManualClock
  random: () => number
  balancer: ResponseTime
  onPick: (s: Server, now: number) => void
}): void {
  const inflight: Array<{ server: Server, start: number, done: number }> = []
  const start = (now: number): void => {
    const s = opts.balancer.pick(candidates(opts.servers, now), { now, random: opts.random })
    if (s === undefined) throw new Error('no server')
    s.active++
    s.requests++
    opts.onPick(s, now)
    inflight.push({ server: s, start: now, done: now + opts.latency(s, now) })
  }
  while (inflight.length < opts.clients) start(opts.clock.now())
  for (let guard = 0; guard < 10_000_000; guard++) {
    let next = 0
    for (let i = 1; i < inflight.length; i++) if (inflight[i]!.done < inflight[next]!.done) next = i
    const req = inflight[next]!
    if (req.done > opts.until) return
    inflight.splice(next, 1)
    opts.clock.set(req.done)
    req.server.active--
    sample(req.server, req.done - req.start, req.done)
    start(req.done)
  }
  throw new Error('simulation did not finish')
}

describe('response-time convergence (8 clients, three servers, fake clock)', () => {
  it('starves a server 40 ms slower below 15%, then gives it back over 25% within 10 s of it becoming fast', () => {
    const clock = new ManualClock(0)
    const random = seededRandom(2024)
    const balancer = new ResponseTime()
    const servers = three()
    const slow = servers[2]
    let slowUntil = Number.POSITIVE_INFINITY
    // Fast servers answer in 2-3 ms; the slow one 40 ms later until slowUntil.
    const latency = (s: Server, now: number): number => 2 + random() + (s === slow && now < slowUntil ? 40 : 0)
    const windows = new Map<number, { total: number, slow: number }>()
    const onPick = (s: Server, now: number): void => {
      const sec = Math.floor(now / 1000)
      const w = windows.get(sec) ?? { total: 0, slow: 0 }
      w.total++
      if (s === slow) w.slow++
      windows.set(sec, w)
    }
    const share = (from: number, to: number): number => {
      let total = 0
      let hits = 0
      for (let sec = from; sec < to; sec++) {
        total += windows.get(sec)?.total ?? 0
        hits += windows.get(sec)?.slow ?? 0
      }
      return hits / total
    }

    simulate({ servers, latency, clients: 8, until: 20_000, clock, random, balancer, onPick })
    // Once samples exist (after the first second) the slow server gets little beyond its probes.
    expect(share(1, 20)).toBeLessThan(0.15)
    expect(share(1, 20)).toBeGreaterThan(0.005)
    for (let sec = 1; sec < 20; sec++) expect(share(sec, sec + 1)).toBeLessThan(0.15)

    slowUntil = 20_000
    simulate({ servers, latency, clients: 8, until: 40_000, clock, random, balancer, onPick })
    expect(share(29, 30)).toBeGreaterThan(0.25)
    // And it keeps a fair share from then on.
    for (let sec = 30; sec < 40; sec++) expect(share(sec, sec + 1)).toBeGreaterThan(0.25)
  })
})
