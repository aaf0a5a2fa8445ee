import { describe, it, expect } from 'vitest'
import { ewma, ResponseTime, TAU_MS, STALE_MS, PROBE_SHARE, TOLERANCE } from '../../../src/balancer/response-time.js'
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
    sample(y, 10, 3000)
    // Age 3000: x is expected at 10 + 90 e^-3 = 14.5, outside the band around y's 10.
    expect(b.pick([x, y], ctx(3000))).toBe(y)
    sample(y, 10, STALE_MS + 1)
    expect(b.pick([x, y], ctx(STALE_MS + 1))).toBe(x)
  })

  it('decays an ageing sample toward the fastest fresh one', () => {
    const b = new ResponseTime()
    const [x, y] = three()
    sample(x, 50, 0)
    sample(y, 10, 3000)
    y.active = 1 // score 20
    // x at age 0 would score 50; at age 3000 it scores 10 + 40 e^-3 = 12.
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

  it('shares picks by weight among servers within TOLERANCE of the best score', () => {
    const b = new ResponseTime()
    const [x, y, z] = three()
    sample(x, 10, 0)
    sample(y, 10 * TOLERANCE, 0)
    sample(z, 10 * TOLERANCE * 1.01, 0)
    const s = Array.from({ length: 6 }, () => b.pick([x, y, z], ctx(0))?.host).join('')
    expect(s).toBe('ababab')
  })

  it('rotates exact ties by weight (all unknown, sequential requests)', () => {
    const b = new ResponseTime()
    const list = [makeServer('a:1', { weight: 3 }), makeServer('b:1'), makeServer('c:1')]
    const s = Array.from({ length: 10 }, () => b.pick(list, ctx(0))?.host).join('')
    expect(s).toBe('abacaabaca')
  })
})

/**
 * Closed-loop load: `clients` each send a request, wait for its answer and send the next. Picks
 * go through candidates() and the balancer; answers do what Upstream.acquire()/release() do.
 */
class Simulation {
  private readonly inflight: Array<{ server: Server, start: number, done: number }> = []
  /** Per whole second of fake time: picks in total and per server host. */
  readonly perSecond = new Map<number, Map<string, number>>()

  constructor (
    private readonly servers: Server[],
    private readonly latency: (s: Server, now: number) => number,
    private readonly clients: number,
    private readonly clock: ManualClock,
    private readonly random: () => number,
    private readonly balancer: ResponseTime,
  ) {}

  runUntil (until: number): void {
    while (this.inflight.length < this.clients) this.send(this.clock.now())
    for (let guard = 0; guard < 10_000_000; guard++) {
      let next = 0
      for (let i = 1; i < this.inflight.length; i++) if (this.inflight[i]!.done < this.inflight[next]!.done) next = i
      const req = this.inflight[next]!
      if (req.done > until) {
        this.clock.set(until)
        return
      }
      this.inflight.splice(next, 1)
      this.clock.set(req.done)
      req.server.active--
      sample(req.server, req.done - req.start, req.done)
      this.send(req.done)
    }
    throw new Error('simulation did not finish')
  }

  /** Share of picks that went to `host` during seconds [from, to). */
  share (host: string, from: number, to: number): number {
    let total = 0
    let hits = 0
    for (let sec = from; sec < to; sec++) {
      for (const [h, n] of this.perSecond.get(sec) ?? []) {
        total += n
        if (h === host) hits += n
      }
    }
    return hits / total
  }

  private send (now: number): void {
    const s = this.balancer.pick(candidates(this.servers, now), { now, random: this.random })
    if (s === undefined) throw new Error('no server')
    s.active++
    s.requests++
    const sec = Math.floor(now / 1000)
    const counts = this.perSecond.get(sec) ?? new Map<string, number>()
    counts.set(s.host, (counts.get(s.host) ?? 0) + 1)
    this.perSecond.set(sec, counts)
    this.inflight.push({ server: s, start: now, done: now + this.latency(s, now) })
  }
}

describe('response-time convergence (8 clients, three servers, fake clock)', () => {
  for (const [fastMs, jitterMs, seed] of [[2, 1, 2024], [1, 0.2, 7], [0.5, 2, 99], [5, 5, 1]] as const) {
    it(`starves a server 40 ms slower below 15%, then gives it over 25% within 10 s of recovering (peers ${fastMs}+${jitterMs} ms)`, () => {
      const clock = new ManualClock(0)
      const random = seededRandom(seed)
      const servers = three()
      let slowUntil = 20_000
      // c answers 40 ms later than its peers until slowUntil.
      const latency = (s: Server, now: number): number =>
        fastMs + random() * jitterMs + (s.host === 'c' && now < slowUntil ? 40 : 0)
      const sim = new Simulation(servers, latency, 8, clock, random, new ResponseTime())

      sim.runUntil(20_000)
      // From the second second on (samples exist), every second stays under 15%.
      for (let sec = 1; sec < 20; sec++) expect(sim.share('c', sec, sec + 1)).toBeLessThan(0.15)
      // It is still probed, so it is never forgotten.
      expect(sim.share('c', 1, 20)).toBeGreaterThan(0.01)
      expect(servers[2].rttEwma).toBeGreaterThan(40)

      slowUntil = 0
      sim.runUntil(40_000)
      // Back above 25% well before the 10 s deadline (within 7 s), and it keeps a fair share.
      for (let sec = 26; sec < 40; sec++) expect(sim.share('c', sec, sec + 1)).toBeGreaterThan(0.25)
    })
  }
})
