import { describe, it, expect } from 'vitest'
import { DOWN, UP, riseFall, type RiseFallConfig, type RiseFallState } from '../../../src/health/rise-fall.js'

/** Feeds a string of results ('P' pass, 'F' fail); returns the up/down trace and the steps that changed. */
function run (cfg: RiseFallConfig, results: string, start: RiseFallState = UP): { trace: string, changes: number[], state: RiseFallState } {
  let state = start
  let trace = ''
  const changes: number[] = []
  for (let i = 0; i < results.length; i++) {
    const next = riseFall(state, results[i] === 'P', cfg)
    if (next.changed) changes.push(i)
    state = next.state
    trace += state.up ? 'U' : 'D'
  }
  return { trace, changes, state }
}

describe('riseFall', () => {
  const cfg = { rise: 2, fall: 3 }

  // Was: a new server started one failure from down (HAProxy's start), so `fall: 3` took a
  // server dead from the start down after one check; the spec counts `fall` failures.
  it('starts up with no failure counted: a server dead from the start takes `fall` failures too', () => {
    expect(run(cfg, 'FFF')).toEqual({ trace: 'UUD', changes: [2], state: { up: false, count: 0 } })
    expect(run(cfg, 'PFFF')).toEqual({ trace: 'UUUD', changes: [3], state: { up: false, count: 0 } })
    expect(run({ rise: 5, fall: 1 }, 'F')).toEqual({ trace: 'D', changes: [0], state: { up: false, count: 0 } })
  })

  it('goes down after exactly `fall` consecutive failures, comes back after exactly `rise` passes', () => {
    expect(run(cfg, 'PFFFPP')).toEqual({ trace: 'UUUDDU', changes: [3, 5], state: { up: true, count: 0 } })
  })

  it('a result agreeing with the state resets the streak', () => {
    // Up: two failures, a pass, two failures: never three in a row.
    expect(run(cfg, 'PFFPFFP').trace).toBe('UUUUUUU')
    // Down: one pass, a failure, one pass: never two passes in a row.
    expect(run(cfg, 'FPFPFP', DOWN)).toEqual({ trace: 'DDDDDD', changes: [], state: { up: false, count: 1 } })
    expect(run(cfg, 'FPFPP', DOWN)).toEqual({ trace: 'DDDDU', changes: [4], state: { up: true, count: 0 } })
  })

  it('tracks the partial streak in count', () => {
    expect(run(cfg, 'PF').state).toEqual({ up: true, count: 1 })
    expect(run(cfg, 'PFF').state).toEqual({ up: true, count: 2 })
    expect(run(cfg, 'F').state).toEqual({ up: true, count: 1 })
    expect(run(cfg, 'F', DOWN).state).toEqual({ up: false, count: 0 })
    expect(run(cfg, 'FP', DOWN).state).toEqual({ up: false, count: 1 })
    expect(run(cfg, 'FPF', DOWN).state).toEqual({ up: false, count: 0 })
  })

  it('rise 1 / fall 1 flips on every change of result', () => {
    const one = { rise: 1, fall: 1 }
    expect(run(one, 'PFPPFFP')).toEqual({ trace: 'UDUUDDU', changes: [1, 2, 4, 6], state: { up: true, count: 0 } })
  })

  it('starting from DOWN needs `rise` passes', () => {
    expect(run({ rise: 3, fall: 2 }, 'PPFPPP', DOWN)).toEqual({ trace: 'DDDDDU', changes: [5], state: { up: true, count: 0 } })
  })

  it('a long flapping sequence', () => {
    const c = { rise: 2, fall: 2 }
    //            F P: still up; P F F down; P F P P up; F P F F down
    expect(run(c, 'FPPFFPFPPFPFF')).toEqual({
      trace: 'UUUUDDDDUUUUD',
      changes: [4, 8, 12],
      state: { up: false, count: 0 },
    })
  })

  it('does not mutate the state it is given', () => {
    const s = Object.freeze({ up: true, count: 1 })
    expect(() => riseFall(s, false, cfg)).not.toThrow()
    expect(s).toEqual({ up: true, count: 1 })
    const same = { up: true, count: 0 }
    expect(riseFall(same, true, cfg).state).toBe(same)
  })
})
