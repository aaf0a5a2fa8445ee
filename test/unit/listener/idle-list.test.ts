import { describe, expect, it } from 'vitest'
import { IdleList, type IdleEntry } from '../../../src/listener/idle-list.js'

class Entry implements IdleEntry {
  idleAt = 0
  idlePrev: IdleEntry | undefined = undefined
  idleNext: IdleEntry | undefined = undefined
  expiredAt: number[] = []
  constructor (readonly name: string, private readonly onExpire: (e: Entry) => void = () => {}) {}
  idleExpired (): void { this.onExpire(this) }
}

/** A list on a clock the test moves; fire() is called by hand as its timer would. */
function fixture (ms: number): { list: IdleList, clock: { t: number }, expired: string[], entry: (name: string, onExpire?: (e: Entry) => void) => Entry } {
  const clock = { t: 1000 }
  const list = new IdleList(ms, () => clock.t)
  const expired: string[] = []
  const entry = (name: string, onExpire?: (e: Entry) => void): Entry => new Entry(name, (e) => { expired.push(e.name); onExpire?.(e) })
  return { list, clock, expired, entry }
}

describe('IdleList', () => {
  it('expires entries in the order of their last activity, each after exactly the duration', () => {
    const { list, clock, expired, entry } = fixture(100)
    const a = entry('a'); const b = entry('b'); const c = entry('c')
    list.touch(a); clock.t += 10; list.touch(b); clock.t += 10; list.touch(c)
    clock.t += 5; list.touch(a) // a is now the most recent
    clock.t = 1000 + 109; list.fire()
    expect(expired).toEqual([])
    clock.t = 1000 + 110; list.fire()
    expect(expired).toEqual(['b'])
    clock.t = 1000 + 125; list.fire()
    expect(expired).toEqual(['b', 'c', 'a'])
    for (const e of [a, b, c]) list.remove(e) // no longer members: no-ops
    list.fire()
    expect(expired).toEqual(['b', 'c', 'a'])
  })

  it('a removed entry never expires, and the others keep their order', () => {
    const { list, clock, expired, entry } = fixture(50)
    const a = entry('a'); const b = entry('b'); const c = entry('c')
    list.touch(a); list.touch(b); list.touch(c)
    list.remove(b)
    list.remove(b)
    clock.t += 50; list.fire()
    expect(expired).toEqual(['a', 'c'])
  })

  it('an entry that touches itself back in on expiry waits a whole duration again', () => {
    const { list, clock, expired, entry } = fixture(100)
    const keep = entry('keep', (e) => { list.touch(e) })
    list.touch(keep)
    clock.t += 100; list.fire()
    clock.t += 99; list.fire()
    expect(expired).toEqual(['keep'])
    clock.t += 1; list.fire()
    expect(expired).toEqual(['keep', 'keep'])
    list.remove(keep)
  })

  it('on its own timer: an idle entry expires after the duration, a touched one later', async () => {
    const list = new IdleList(60)
    const got: Array<[string, number]> = []
    const start = performance.now()
    const a = new Entry('a', () => { got.push(['a', performance.now() - start]) })
    const b = new Entry('b', () => { got.push(['b', performance.now() - start]) })
    list.touch(a)
    list.touch(b)
    // b stays active for a while; a does not.
    let lastTouch = 0
    const busy = setInterval(() => { list.touch(b); lastTouch = performance.now() - start }, 20)
    const deadline = Date.now() + 5000
    while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    clearInterval(busy)
    while (got.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(got.map(([name]) => name)).toEqual(['a', 'b'])
    expect(got[0]?.[1]).toBeGreaterThanOrEqual(59)
    expect(lastTouch).toBeGreaterThanOrEqual(20)
    expect(got[1]?.[1]).toBeGreaterThanOrEqual(lastTouch + 59)
  })
})
