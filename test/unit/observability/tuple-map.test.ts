import { describe, expect, it } from 'vitest'
import { TupleMap } from '../../../src/observability/tuple-map.js'

describe('TupleMap', () => {
  it('makes each tuple once, finds it again after another tuple, and starts over past max', () => {
    const made: string[] = []
    const m = new TupleMap((a, b, c) => { made.push(`${a}/${b}/${c}`); return { a, b, c } }, 3)
    const first = m.get('l', 'r', 'GET')
    expect(m.get('l', 'r', 'GET')).toBe(first)
    m.get('l', 'r', 'POST')
    // A method string built afresh (as a client's is) finds the same value.
    expect(m.get('l', 'r', ['G', 'E', 'T'].join(''))).toBe(first)
    expect(made).toEqual(['l/r/GET', 'l/r/POST'])
    expect([...m.values()].map((v) => v.c)).toEqual(['GET', 'POST'])
    m.get('l', 'x', 'GET')
    m.get('l', 'y', 'GET') // the fourth: the map starts over with it
    expect([...m.values()].map((v) => `${v.b}/${v.c}`)).toEqual(['y/GET'])
    expect(made).toHaveLength(4)
  })
})
