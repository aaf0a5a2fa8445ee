import { describeBalancer } from './conformance.js'
import { balanceNames, createBalancer } from '../../../src/balancer/index.js'
import { describe, it, expect } from 'vitest'

for (const name of balanceNames) describeBalancer(name, () => createBalancer(name))

describe('createBalancer', () => {
  it('knows exactly the spec\'s three strategies and builds independent instances', () => {
    expect(balanceNames).toEqual(['round-robin', 'least-connections', 'response-time'])
    expect(createBalancer('round-robin')).not.toBe(createBalancer('round-robin'))
  })

  it('throws on an unknown name (validation keeps these out of the runtime)', () => {
    expect(() => createBalancer('random' as never)).toThrow(/unknown balance strategy: random/)
  })
})
