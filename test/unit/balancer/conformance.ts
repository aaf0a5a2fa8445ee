import { describe, it, expect } from 'vitest'
import type { Balancer, PickContext } from '../../../src/balancer/types.js'
import type { Server } from '../../../src/upstream/server.js'
import { candidates } from '../../../src/balancer/candidates.js'
import { ewma } from '../../../src/balancer/response-time.js'
import { makeServer, seededRandom, tally } from './helpers.js'

/**
 * The contract every strategy meets, whatever its ranking: it only ever returns one of the
 * candidates it was given, undefined for none, keeps working across update(), and gives a heavier
 * server more traffic than a lighter one under equal conditions.
 */
export function describeBalancer (name: string, create: () => Balancer): void {
  describe(`balancer conformance: ${name}`, () => {
    const ctx = (now = 0, random = seededRandom(1)): PickContext => ({ now, random })

    it('returns undefined for an empty candidate set', () => {
      const b = create()
      expect(b.pick([], ctx())).toBeUndefined()
      b.update?.([])
      expect(b.pick([], ctx())).toBeUndefined()
    })

    it('returns the only candidate', () => {
      const b = create()
      const s = makeServer('10.0.0.1:80')
      for (let i = 0; i < 20; i++) expect(b.pick([s], ctx(i))).toBe(s)
    })

    it('never picks a server outside the candidate set, as membership and load change', () => {
      const b = create()
      const random = seededRandom(42)
      const pool = Array.from({ length: 6 }, (_, i) => makeServer(`10.0.0.${i + 1}:80`, { weight: 1 + (i % 3) }))
      b.update?.(pool)
      for (let i = 0; i < 2000; i++) {
        for (const s of pool) {
          s.active = Math.floor(random() * 4)
          if (random() < 0.3) {
            s.rttEwma = 1 + random() * 50
            s.rttAt = i * 10
          }
        }
        const subset = pool.filter(() => random() < 0.6)
        const picked = b.pick(subset, ctx(i * 10, random))
        if (subset.length === 0) expect(picked).toBeUndefined()
        else expect(subset).toContain(picked)
        if (i % 100 === 0) b.update?.(pool)
      }
    })

    it('never picks a down, draining, disabled or full server, nor a backup while a primary is up', () => {
      const b = create()
      const up1 = makeServer('10.0.0.1:80')
      const up2 = makeServer('10.0.0.2:80', { weight: 2 })
      const down = makeServer('10.0.0.3:80')
      down.healthy = false
      const drain = makeServer('10.0.0.4:80')
      drain.adminState = 'drain'
      const disabled = makeServer('10.0.0.5:80')
      disabled.adminState = 'disabled'
      const full = makeServer('10.0.0.6:80', { maxConnections: 1 })
      full.active = 1
      const backup = makeServer('10.0.0.7:80', { backup: true })
      const all = [down, up1, drain, disabled, full, up2, backup]
      b.update?.(all)
      const picks = Array.from({ length: 300 }, (_, i) => b.pick(candidates(all, i), ctx(i)))
      expect(Object.keys(tally(picks)).sort()).toEqual(['10.0.0.1:80', '10.0.0.2:80'])

      up1.healthy = false
      up2.adminState = 'disabled'
      full.healthy = false // a full primary that is up still keeps backups out
      b.update?.(all)
      for (let i = 0; i < 20; i++) expect(b.pick(candidates(all, i), ctx(i))).toBe(backup)
    })

    it('keeps serving every candidate after update()', () => {
      const b = create()
      const pool = ['a', 'b', 'c'].map((h) => makeServer(`${h}:80`))
      b.update?.(pool)
      const random = seededRandom(7)
      for (let round = 0; round < 5; round++) {
        const picks = Array.from({ length: 30 }, (_, i) => b.pick(pool, ctx(round * 100 + i, random)))
        const counts = tally(picks)
        expect(Object.keys(counts).sort()).toEqual(['a:80', 'b:80', 'c:80'])
        b.update?.(pool)
      }
    })

    it('gives a heavier server more of the traffic (3:1, sequential requests with equal response times)', () => {
      const b = create()
      const heavy = makeServer('heavy:80', { weight: 3 })
      const light = makeServer('light:80', { weight: 1 })
      const pool = [light, heavy]
      b.update?.(pool)
      const random = seededRandom(3)
      const picks: Server[] = []
      for (let now = 1; now <= 400; now++) {
        const s = b.pick(pool, ctx(now, random))
        if (s === undefined) throw new Error('no pick')
        picks.push(s)
        // What Upstream.release() does with a 10 ms answer.
        s.rttEwma = ewma(s.rttEwma, s.rttAt, 10, now)
        s.rttAt = now
      }
      const counts = tally(picks)
      expect(counts['heavy:80']).toBeGreaterThanOrEqual(0.6 * 400)
      expect(counts['light:80']).toBeGreaterThan(0)
    })
  })
}
