import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import { emptyResult, gcra } from '../../../src/ratelimit/gcra.js'
import { BucketTable } from '../../../src/ratelimit/table.js'

const out = emptyResult()
function table (maxKeys: number, clock = new ManualClock(1000), burst = 2, intervalMs = 100): { t: BucketTable, clock: ManualClock, hit (k: string): boolean } {
  const t = new BucketTable({ intervalMs, burst, maxKeys }, clock)
  return { t, clock, hit: (k) => t.decide(k, clock.now(), out).allowed }
}

/** The table's buckets as key → ms ahead, whatever the slots' order. */
function buckets (t: BucketTable): Record<string, number> {
  const s = t.snapshot()
  return Object.fromEntries(s.keys.map((k, i) => [k, s.ahead[i]]))
}

describe('BucketTable', () => {
  it('slices: the snapshot in parts taken one at a time; every bucket arrives though the table grows (renumbers) between parts', () => {
    const { t, hit } = table(100_000)
    for (let i = 0; i < 3000; i++) hit(`k${i}`)
    const it = t.slices(1000)
    const got = new Set<string>()
    const first = it.next().value!
    expect(first.keys.length).toBe(1000)
    for (const k of first.keys) got.add(k)
    for (let i = 3000; i < 20_000; i++) hit(`k${i}`) // grows the arrays: slots renumbered
    for (const part of it) {
      expect(part.keys.length).toBeLessThanOrEqual(1000)
      for (const k of part.keys) got.add(k)
    }
    for (let i = 0; i < 20_000; i++) expect(got.has(`k${i}`), `k${i}`).toBe(true)
    expect(t.snapshot().keys.length).toBe(20_000)
  })

  it('keeps keys apart', () => {
    const { hit } = table(10)
    expect([hit('a'), hit('a'), hit('a'), hit('b'), hit('b'), hit('b')]).toEqual([true, true, false, true, true, false])
  })

  it('evicts the least recently used key at maxKeys; it starts again full', () => {
    const { t, hit } = table(3)
    hit('a'); hit('a'); hit('b'); hit('b'); hit('c'); hit('c')
    expect(hit('a')).toBe(false) // touches a: b is now the least recently used
    hit('d') // evicts b
    expect(t.size).toBe(3)
    expect(hit('b')).toBe(true) // b came back full (and evicted c)
    expect(hit('a')).toBe(false) // a stayed
    expect(hit('c')).toBe(true) // c was evicted
  })

  it('a peek (commit false) changes nothing and inserts nothing', () => {
    const { t, clock } = table(10)
    expect(t.decide('x', clock.now(), out, false).allowed).toBe(true)
    expect(t.size).toBe(0)
  })

  it('expire drops full buckets only, and gives storage back', () => {
    const { t, clock, hit } = table(100_000)
    for (let i = 0; i < 5000; i++) hit(`k${i}`)
    expect(t.size).toBe(5000)
    clock.advance(50)
    hit('late') // TAT now+100: not full for 100 ms
    clock.advance(60) // the 5000 (TAT +100 from t0) are full now
    expect(t.expire(clock.now())).toBe(5000)
    expect(t.size).toBe(1)
    expect(hit('late')).toBe(true)
    expect(hit('late')).toBe(false)
    clock.advance(1000)
    t.expire(clock.now())
    expect(t.size).toBe(0)
    expect(hit('k1')).toBe(true)
  })

  it('matches a Map model under random inserts, hits, evictions and expiry', () => {
    const clock = new ManualClock(0)
    const t = new BucketTable({ intervalMs: 10, burst: 3, maxKeys: 700 }, clock)
    const model = new Map<string, number>() // key → tat, insertion order = LRU order
    let seed = 42
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
    for (let step = 0; step < 30_000; step++) {
      clock.advance(rnd() < 0.1 ? 7 : 0)
      const now = clock.now()
      if (step % 5000 === 4999) {
        t.expire(now)
        for (const [k, tat] of model) { if (tat <= now) model.delete(k); else break }
        continue
      }
      const key = `key-${Math.floor(rnd() * 1500)}`
      const had = model.get(key)
      const expected = gcra(had ?? 0, now, 10, 3)
      const got = t.decide(key, now, out)
      expect(got.allowed).toBe(expected.allowed)
      if (had !== undefined) {
        model.delete(key)
        model.set(key, expected.tat)
      } else if (expected.allowed) {
        if (model.size >= 700) model.delete(model.keys().next().value!)
        model.set(key, expected.tat)
      }
      expect(t.size).toBe(model.size)
    }
  })

  it('snapshot → apply carries buckets as remaining durations (no process-local times)', () => {
    const a = table(10, new ManualClock(5_000))
    a.hit('x'); a.hit('x')
    const snap = a.t.snapshot()
    expect(snap).toEqual({ keys: ['x'], ahead: [200] })
    const b = table(10, new ManualClock(987_654)) // another process, another clock origin
    b.t.apply(snap)
    expect(b.hit('x')).toBe(false)
    b.clock.advance(100)
    expect(b.hit('x')).toBe(true)
    expect(b.hit('x')).toBe(false)
  })

  it('takeChanges returns each changed key once, then nothing', () => {
    const { t, hit, clock } = table(10)
    hit('a'); hit('a'); hit('b')
    expect(t.takeChanges()).toEqual({ keys: ['a', 'b'], ahead: [200, 100] })
    expect(t.takeChanges()).toBeUndefined()
    clock.advance(100)
    hit('b')
    expect(t.takeChanges()).toEqual({ keys: ['b'], ahead: [100] })
    // ahead 0 (a full bucket on the sender) takes nothing from what this table admitted
    t.apply({ keys: ['b'], ahead: [0] })
    expect(t.size).toBe(2)
    expect(buckets(t)).toEqual({ a: 100, b: 100 })
  })

  it('apply keeps the later TAT of the two: a late frame from the old active never rewinds the new active\'s bucket', () => {
    const { t, hit } = table(10, new ManualClock(1000), 5)
    hit('mine'); hit('mine'); hit('mine') // admitted here: 300 ms ahead
    t.apply({ keys: ['mine', 'theirs', 'more'], ahead: [100, 200, 0] })
    expect(buckets(t)).toEqual({ mine: 300, theirs: 200 })
    t.apply({ keys: ['mine'], ahead: [350] }) // the peer admitted more: theirs is later
    expect(buckets(t)).toEqual({ mine: 350, theirs: 200 })
    expect([hit('mine'), hit('mine')]).toEqual([true, false]) // burst 5 × 100 ms: room for one more
  })
})

describe('BucketTable keys', () => {
  it('long and non-Latin-1 keys are stored hashed and still keep their own buckets', () => {
    const { hit, t } = table(10)
    const long = 'k'.repeat(5000)
    expect([hit(long), hit(long), hit(long)]).toEqual([true, true, false])
    expect([hit(long + 'x'), hit('ключ'), hit('ключ'), hit('ключ')]).toEqual([true, true, true, false])
    expect(t.snapshot().keys.every((k) => k.length <= 128)).toBe(true)
  })
})

describe('BucketTable IPv4 keys', () => {
  it('are packed into 5 bytes yet come back as text, distinct from look-alikes', () => {
    const { hit, t } = table(20)
    const keys = ['1.2.3.4', '01.2.3.4', '255.255.255.255', '256.1.1.1', '1.2.3', '\x01\x01\x02\x03\x04', '::ffff:1.2.3.4']
    for (const k of keys) expect(hit(k)).toBe(true)
    for (const k of keys) expect(hit(k)).toBe(true)
    for (const k of keys) expect(hit(k)).toBe(false)
    expect(t.size).toBe(keys.length)
    const snap = t.snapshot().keys
    expect(snap).toContain('1.2.3.4')
    expect(snap).toContain('255.255.255.255')
    expect(snap).toContain('01.2.3.4')
    expect(snap.filter((k) => k.startsWith('#'))).toHaveLength(1) // the \x01 look-alike was hashed
  })
})
