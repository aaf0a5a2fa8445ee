import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import { gcra, resetSeconds, retryAfterSeconds } from '../../../src/ratelimit/gcra.js'
import { BucketTable } from '../../../src/ratelimit/table.js'
import { emptyResult } from '../../../src/ratelimit/gcra.js'

/** One bucket on a fake clock; returns whether each request passed. */
function bucket (rate: number, burst: number): { clock: ManualClock, hit (): boolean } {
  const clock = new ManualClock(1_000_000)
  const table = new BucketTable({ intervalMs: 1000 / rate, burst, maxKeys: 10 }, clock)
  const out = emptyResult()
  return { clock, hit: () => table.decide('k', clock.now(), out).allowed }
}

describe('GCRA', () => {
  it('20 instant requests at burst 5: exactly 5 pass', () => {
    const b = bucket(10, 5)
    const passed = Array.from({ length: 20 }, () => b.hit())
    expect(passed.filter(Boolean)).toHaveLength(5)
    expect(passed.slice(0, 5).every(Boolean)).toBe(true)
  })

  it('after the burst, 1 s at 10/s: exactly 10 more (offered at 20/s, or at exactly 10/s)', () => {
    const b = bucket(10, 5)
    for (let i = 0; i < 20; i++) b.hit()
    let passed = 0
    for (let i = 0; i < 20; i++) { b.clock.advance(50); if (b.hit()) passed++ }
    expect(passed).toBe(10)
    const c = bucket(10, 5)
    for (let i = 0; i < 5; i++) c.hit()
    const paced = Array.from({ length: 10 }, () => { c.clock.advance(100); return c.hit() })
    expect(paced).toEqual(Array(10).fill(true))
    expect(c.hit()).toBe(false)
  })

  it('a full bucket after idling holds burst, not more', () => {
    const b = bucket(10, 5)
    for (let i = 0; i < 5; i++) b.hit()
    b.clock.advance(60_000)
    expect(Array.from({ length: 10 }, () => b.hit()).filter(Boolean)).toHaveLength(5)
  })

  it('10 s at twice the rate (100/s, burst 50): exactly 1,050 admitted', () => {
    const b = bucket(100, 50)
    let admitted = 0
    // 200/s from t = 0 to t = 10 s inclusive: 2,001 requests, 5 ms apart.
    for (let i = 0; i <= 2000; i++) {
      if (b.hit()) admitted++
      b.clock.advance(5)
    }
    expect(admitted).toBe(1050)
  })

  it('a denied request changes nothing', () => {
    const full = gcra(1500, 1000, 100, 5) // TAT 500 ms ahead = burst × interval: full use
    expect(full.allowed).toBe(false)
    expect(full.tat).toBe(1500)
    expect(full.remaining).toBe(0)
  })

  it('Retry-After and RateLimit-Reset at chosen instants (rate 10/s, burst 5)', () => {
    const now = 10_000
    // Fresh bucket: one request leaves 4, the bucket is full again in 100 ms → Reset 1 s.
    const first = gcra(0, now, 100, 5)
    expect(first).toEqual({ allowed: true, tat: now + 100, remaining: 4, retryAfterMs: 0, resetMs: 100 })
    expect(resetSeconds(first.resetMs)).toBe(1)
    // Emptied: the next passes in 100 ms → Retry-After 1 (at least 1); Reset = 500 ms → 1.
    const denied = gcra(now + 500, now, 100, 5)
    expect(denied.allowed).toBe(false)
    expect(denied.retryAfterMs).toBeCloseTo(100, 9)
    expect(retryAfterSeconds(denied.retryAfterMs)).toBe(1)
    expect(resetSeconds(denied.resetMs)).toBe(1)
    // Slow limit, 6/m (10 s apart), burst 3, emptied: Retry-After 10, Reset 30.
    const slow = gcra(now + 30_000, now, 10_000, 3)
    expect(retryAfterSeconds(slow.retryAfterMs)).toBe(10)
    expect(resetSeconds(slow.resetMs)).toBe(30)
    // 2.5 s after that the wait is 7.5 s → Retry-After 8; the reset 27.5 s → 28.
    const later = gcra(now + 30_000, now + 2500, 10_000, 3)
    expect(retryAfterSeconds(later.retryAfterMs)).toBe(8)
    expect(resetSeconds(later.resetMs)).toBe(28)
    // Exactly at the instant it passes: allowed, remaining 0, Reset 30 s again.
    const on = gcra(now + 30_000, now + 10_000, 10_000, 3)
    expect(on.allowed).toBe(true)
    expect(on.remaining).toBe(0)
    expect(resetSeconds(on.resetMs)).toBe(30)
    // A full bucket reports Reset 0.
    expect(resetSeconds(0)).toBe(0)
  })

  it('non-integer intervals (3/s) still give exactly burst, then one per interval', () => {
    const b = bucket(3, 4)
    expect(Array.from({ length: 10 }, () => b.hit()).filter(Boolean)).toHaveLength(4)
    let passed = 0
    for (let i = 0; i < 30; i++) { b.clock.advance(1000 / 3); if (b.hit()) passed++ }
    expect(passed).toBe(30)
  })
})
