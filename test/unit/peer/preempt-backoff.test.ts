import { describe, expect, it } from 'vitest'
import { Election, type ElectionConfig, type PeerHeartbeat } from '../../../src/peer/election.js'

// Audit defect 3: B (priority 150, preempt: true) cannot bind its listeners, so every activation
// ends in a local fault at once. Its fault lasted max(2 s, 10 × heartbeat); after it B advertised
// itself in sync again and A, active, handed it the role: every ~2 s for ever, two failovers per
// cycle. Now each fault in a row doubles the time B keeps from preempting (2 s, 4 s, 8 s, …).
const HB = 100
const cfg = (id: string, priority: number, preempt: boolean): ElectionConfig =>
  ({ id, priority, preempt, heartbeat: HB, deadAfter: 3, witness: 'none' })
const beat = (e: Election, id: string, c: ElectionConfig, now: number): PeerHeartbeat => ({
  id, term: e.term, priority: c.priority, preempt: c.preempt, role: e.role, starting: e.starting, handover: e.handover,
  yielding: e.yields(now), inSync: true, conflict: false,
})

/** Runs the pair for `ms`; B fails each activation while `unbindable(t)`. Returns when A handed the role to B. */
function run (ms: number, unbindable: (t: number) => boolean): number[] {
  const ca = cfg('a', 100, false)
  const cb = cfg('b', 150, true)
  const a = new Election(ca, 0)
  // B starts once A is active, as in the audit's repro.
  let b: Election | undefined
  const preempts: number[] = []
  for (let t = 0; t <= ms; t += 5) {
    if (b === undefined && t >= 1000) b = new Election(cb, t)
    const outs = [a.tick(t)]
    if (b !== undefined) {
      if (t % HB === 0) outs.push(a.heard(t, beat(b, 'b', cb, t)))
      const bOuts = t % HB === 50 ? [b.heard(t, beat(a, 'a', ca, t)), b.tick(t)] : [b.tick(t)]
      for (const ob of bOuts) {
        if (ob.transition?.to !== 'active') continue
        // As PeerNode does: the new role's heartbeat goes out at once, then the bind fails.
        outs.push(a.heard(t, beat(b, 'b', cb, t)))
        if (!unbindable(t)) continue
        b.fault(t, 'cannot serve: EADDRINUSE')
        outs.push(a.heard(t, beat(b, 'b', cb, t)))
      }
    }
    for (const o of outs) if (o.transition?.reason === 'preempt') preempts.push(t)
  }
  return preempts
}

describe('preempt backs off after a local fault', () => {
  it('a node that cannot bind is handed the role less and less often: holds of 2, 4, 8, 16 s after each 2 s fault', () => {
    const at = run(60_000, () => true)
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number))
    // Each cycle: the fault (2 s), the hold, then the heartbeat that tells A. The old code: ~2 s every time.
    expect(at.length).toBe(5)
    expect(gaps).toEqual([4100, 6100, 10_100, 18_100])
  })

  it('once the node can bind again it takes the role back after its hold, and keeps it', () => {
    // Binds from 6 s on: the third hand-over (after the 4 s hold) sticks; failing, it would come
    // back at 21 s and 39 s.
    const at = run(40_000, (t) => t < 6000)
    expect(at.map((t) => Math.floor(t / 1000))).toEqual([1, 5, 11])
  })
})
