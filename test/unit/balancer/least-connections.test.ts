import { describe, it, expect } from 'vitest'
import { LeastConnections } from '../../../src/balancer/least-connections.js'
import type { Server } from '../../../src/upstream/server.js'
import { makeServer, seededRandom, tally } from './helpers.js'

const ctx = { now: 0, random: seededRandom(1) }
const three = (w: [number, number, number] = [1, 1, 1]): [Server, Server, Server] =>
  [makeServer('a:1', { weight: w[0] }), makeServer('b:1', { weight: w[1] }), makeServer('c:1', { weight: w[2] })]

describe('least-connections', () => {
  it('picks the server with the fewest active connections', () => {
    const b = new LeastConnections()
    const [x, y, z] = three()
    x.active = 2
    y.active = 1
    z.active = 3
    expect(b.pick([x, y, z], ctx)).toBe(y)
  })

  it('divides active connections by weight', () => {
    const b = new LeastConnections()
    const [x, y] = three([3, 1, 1])
    x.active = 3 // 1 per weight
    y.active = 2 // 2 per weight
    expect(b.pick([x, y], ctx)).toBe(x)
    const [p, q] = three([2, 1, 1])
    p.active = 5 // 2.5
    q.active = 2 // 2
    expect(b.pick([p, q], ctx)).toBe(q)
  })

  it('uses the effective (slow-start) weight', () => {
    const b = new LeastConnections()
    const [x, y] = three([4, 4, 1])
    x.effectiveWeight = 0.5
    x.active = 1 // 2
    y.active = 4 // 1
    expect(b.pick([x, y], ctx)).toBe(y)
  })

  it('rotates among tied servers instead of always taking the first', () => {
    const b = new LeastConnections()
    const list = three()
    const s = Array.from({ length: 9 }, () => b.pick(list, ctx)?.host).join('')
    expect(s).toBe('abcabcabc')
  })

  it('rotates only among the tied minimum', () => {
    const b = new LeastConnections()
    const [x, y, z] = three()
    x.active = 1
    const s = Array.from({ length: 6 }, () => b.pick([x, y, z], ctx)?.host).join('')
    expect(s).toBe('bcbcbc')
  })

  it('counts ties by load per weight: 2 of weight 2 ties with 1 of weight 1', () => {
    const b = new LeastConnections()
    const [x, y, z] = three([2, 1, 1])
    x.active = 2
    y.active = 1
    z.active = 5
    const s = Array.from({ length: 6 }, () => b.pick([x, y, z], ctx)?.host).join('')
    // Smooth WRR among the tied a (weight 2) and b (weight 1).
    expect(s).toBe('abaaba')
  })

  it('spreads sequential traffic (all idle at each pick) by weight: 3:1:1 gives 300/100/100', () => {
    const b = new LeastConnections()
    const list = three([3, 1, 1])
    const picks = Array.from({ length: 500 }, () => b.pick(list, ctx))
    expect(tally(picks)).toEqual({ 'a:1': 300, 'b:1': 100, 'c:1': 100 })
  })

  it('fills servers evenly when connections stay open', () => {
    const b = new LeastConnections()
    const list = three([2, 1, 1])
    for (let i = 0; i < 40; i++) {
      const s = b.pick(list, ctx)
      if (s === undefined) throw new Error('no pick')
      s.active++
    }
    expect(list.map((s) => s.active)).toEqual([20, 10, 10])
  })

  it('sends new connections to a server that just joined with none', () => {
    const b = new LeastConnections()
    const [x, y, z] = three()
    x.active = 5
    y.active = 5
    const order: string[] = []
    for (let i = 0; i < 7; i++) {
      const s = b.pick([x, y, z], ctx)
      if (s === undefined) throw new Error('no pick')
      s.active++
      order.push(s.host)
    }
    expect(order.join('')).toBe('cccccab')
  })
})
