import { describe, expect, it } from 'vitest'
import { BurstGate } from '../../../src/observability/burst.js'

describe('BurstGate: errors logged once per burst', () => {
  it('passes the first of a kind, counts repeats within the window, reports them with the next line', () => {
    let now = 0
    const gate = new BurstGate({ now: () => now }, 10_000)
    expect(gate.pass('listener\0EMFILE')).toEqual({ suppressed: 0 })
    for (let i = 0; i < 999; i++) expect(gate.pass('listener\0EMFILE')).toBeUndefined()
    expect(gate.pass('redis\0ECONNREFUSED')).toEqual({ suppressed: 0 }) // another kind is not held back
    now = 9_999
    expect(gate.pass('listener\0EMFILE')).toBeUndefined()
    now = 10_000
    expect(gate.pass('listener\0EMFILE')).toEqual({ suppressed: 1000 })
    now = 30_000
    expect(gate.pass('listener\0EMFILE')).toEqual({ suppressed: 0 })
  })

  it('keeps at most maxKeys kinds, dropping the oldest', () => {
    const gate = new BurstGate({ now: () => 0 }, 10_000, 2)
    expect(gate.pass('a')).toEqual({ suppressed: 0 })
    expect(gate.pass('b')).toEqual({ suppressed: 0 })
    expect(gate.pass('c')).toEqual({ suppressed: 0 })
    expect(gate.pass('b')).toBeUndefined()
    expect(gate.pass('a')).toEqual({ suppressed: 0 }) // forgotten, so it passes again
  })
})
