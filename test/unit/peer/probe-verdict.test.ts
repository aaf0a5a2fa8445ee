import { describe, expect, it } from 'vitest'
import { ProbeVerdict, WITNESS_FALL, WITNESS_RISE } from '../../../src/peer/probe-verdict.js'

describe('TCP witness verdict', () => {
  it('is unknown only until the first probe ends: a witness refused since start reads down', () => {
    const v = new ProbeVerdict()
    expect(v.state).toBe('unknown')
    for (let i = 0; i < 5; i++) v.record(i * 100, false)
    // Regression: it stayed `unknown` forever (status showed no reason for the node's fault).
    expect(v.state).toBe('down')
    expect(v.confirmed(500, 1000)).toBe(false)
  })

  it(`goes up after ${WITNESS_RISE} successes in a row and down after ${WITNESS_FALL} failures, never on one result`, () => {
    const v = new ProbeVerdict()
    v.record(0, true)
    expect(v.state).toBe('down')
    v.record(100, true)
    expect([v.state, v.confirmed(100, 50)]).toEqual(['up', true])
    v.record(200, false)
    expect(v.state).toBe('up')
    v.record(300, true)
    v.record(400, false)
    expect(v.state).toBe('up')
    v.record(500, false)
    expect(v.state).toBe('down')
  })
})
