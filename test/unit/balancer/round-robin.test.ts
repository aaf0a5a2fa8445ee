import { describe, it, expect } from 'vitest'
import { RoundRobin } from '../../../src/balancer/round-robin.js'
import type { Server } from '../../../src/upstream/server.js'
import { makeServer, seededRandom, tally } from './helpers.js'

const ctx = { now: 0, random: seededRandom(1) }
const seq = (b: RoundRobin, list: readonly Server[], n: number): string =>
  Array.from({ length: n }, () => b.pick(list, ctx)?.host ?? '-').join('')

describe('round-robin', () => {
  it('gives 3:1:1 exactly 300/100/100 over 500 picks', () => {
    const b = new RoundRobin()
    const list = [makeServer('a:1', { weight: 3 }), makeServer('b:1'), makeServer('c:1')]
    b.update(list)
    const picks = Array.from({ length: 500 }, () => b.pick(list, ctx))
    expect(tally(picks)).toEqual({ 'a:1': 300, 'b:1': 100, 'c:1': 100 })
  })

  it('interleaves: a b a c a, never a run of one server\'s whole share', () => {
    const b = new RoundRobin()
    const list = [makeServer('a:1', { weight: 3 }), makeServer('b:1'), makeServer('c:1')]
    b.update(list)
    const s = seq(b, list, 500)
    expect(s).toBe('abaca'.repeat(100))
    expect(s).not.toMatch(/aaa/)
  })

  it('spaces a light server evenly: 5:1 puts b once in every 6 picks', () => {
    const b = new RoundRobin()
    const list = [makeServer('a:1', { weight: 5 }), makeServer('b:1')]
    expect(seq(b, list, 12)).toBe('aaabaa'.repeat(2))
  })

  it('rotates equal weights in input order', () => {
    const b = new RoundRobin()
    const list = ['a:1', 'b:1', 'c:1', 'd:1'].map((x) => makeServer(x))
    expect(seq(b, list, 8)).toBe('abcdabcd')
  })

  it('follows the candidate set as servers leave and rejoin between picks', () => {
    const b = new RoundRobin()
    const [x, y, z] = ['a:1', 'b:1', 'c:1'].map((v) => makeServer(v)) as [Server, Server, Server]
    expect(seq(b, [x, y, z], 3)).toBe('abc')
    // b leaves (down, full or excluded by a retry): its current weight stays frozen.
    expect(seq(b, [x, z], 3)).toBe('aca')
    expect(seq(b, [x, y, z], 4)).toBe('cbac')
    // Once the set is stable again the shares are exact per cycle.
    const counts = tally(Array.from({ length: 300 }, () => b.pick([x, y, z], ctx)))
    expect(counts).toEqual({ 'a:1': 100, 'b:1': 100, 'c:1': 100 })
  })

  it('stays proportional over a changed set of different weights', () => {
    const b = new RoundRobin()
    const [x, y, z] = [makeServer('a:1', { weight: 2 }), makeServer('b:1', { weight: 3 }), makeServer('c:1')] as [Server, Server, Server]
    seq(b, [x, y, z], 7)
    const counts = tally(Array.from({ length: 300 }, () => b.pick([x, z], ctx)))
    // Leftover current weights shift the phase by at most one pick.
    expect(Math.abs((counts['a:1'] ?? 0) - 200)).toBeLessThanOrEqual(1)
    expect((counts['a:1'] ?? 0) + (counts['c:1'] ?? 0)).toBe(300)
  })

  it('restarts the cycle after update()', () => {
    const b = new RoundRobin()
    const list = [makeServer('a:1', { weight: 3 }), makeServer('b:1'), makeServer('c:1')]
    expect(seq(b, list, 2)).toBe('ab')
    b.update(list)
    expect(seq(b, list, 5)).toBe('abaca')
  })

  it('uses fractional effective weights (slow start) exactly', () => {
    const b = new RoundRobin()
    const x = makeServer('a:1', { weight: 4 })
    const y = makeServer('b:1', { weight: 4 })
    x.effectiveWeight = 1.5
    y.effectiveWeight = 0.5
    const picks = Array.from({ length: 400 }, () => b.pick([x, y], ctx))
    expect(tally(picks)).toEqual({ 'a:1': 300, 'b:1': 100 })
  })

  it('returns undefined for no candidates', () => {
    expect(new RoundRobin().pick([], ctx)).toBeUndefined()
  })
})
