import { describe, expect, it } from 'vitest'
import { Election, type ElectionConfig, type PeerHeartbeat } from '../../../src/peer/election.js'

// Two elections side by side, fed the way two running nodes would be: heartbeats every HB out of
// phase, a TCP witness both reach, then a cut that isolates the active from the peer and the
// witness. Whatever the phase between the two nodes' heartbeats, the active must stop at least one
// heartbeat before the standby starts (spec: "at least one heartbeat before").
const HB = 100
const cfg = (id: string, priority: number): ElectionConfig => ({ id, priority, preempt: false, heartbeat: HB, deadAfter: 3, witness: 'tcp' })
const beat = (id: string, role: 'active' | 'standby', term: number): PeerHeartbeat =>
  ({ id, term, priority: id === 'a' ? 150 : 100, preempt: false, role, starting: false, handover: false, yielding: false, inSync: true, conflict: false })

function run (phase: number): { aStops: number, bStarts: number, aAfterCut: string[] } {
  const a = new Election(cfg('a', 150), 0)
  const b = new Election(cfg('b', 100), 0)
  let aStops = Number.NaN
  let bStarts = Number.NaN
  const aAfterCut: string[] = []
  const cut = 1000
  for (let t = 0; t <= 3000; t += 5) {
    // The witness answers both every 25 ms until the cut; then only B.
    if (t % 25 === 0) {
      const w = a.witness(t, t < cut).transition
      if (w !== undefined && t >= cut) aAfterCut.push(`${w.from}->${w.to}`)
      b.witness(t, true)
    }
    // A beats at multiples of HB, B `phase` ms later; nothing crosses after the cut.
    if (t < cut && t % HB === 0) b.heard(t, beat('a', a.role === 'active' ? 'active' : 'standby', a.term))
    if (t < cut && (t - phase) % HB === 0 && t >= phase) a.heard(t, beat('b', b.role === 'active' ? 'active' : 'standby', b.term))
    const oa = a.tick(t)
    const ra = oa.role
    if (oa.transition !== undefined && t >= cut) aAfterCut.push(`${oa.transition.from}->${oa.transition.to}`)
    const rb = b.tick(t).role
    if (t >= cut && Number.isNaN(aStops) && ra !== 'active') aStops = t
    if (t >= cut && Number.isNaN(bStarts) && rb === 'active') bStarts = t
  }
  return { aStops, bStarts, aAfterCut }
}

describe('fencing an isolated active (TCP witness)', () => {
  for (const phase of [0, 5, 50, 95]) {
    it(`the active stops at least one heartbeat before the standby starts, B beating ${phase} ms after A`, () => {
      const { aStops, bStarts, aAfterCut } = run(phase)
      expect(Number.isFinite(aStops)).toBe(true)
      expect(Number.isFinite(bStarts)).toBe(true)
      expect(bStarts - aStops).toBeGreaterThanOrEqual(HB)
      // ... and the takeover still ends within (deadAfter + 1) × heartbeat of the last beat B heard.
      expect(bStarts - 900).toBeLessThanOrEqual(4 * HB + HB / 4)
      // ... and it is fenced exactly once (it once flapped fault→active through [fence, dead)).
      expect(aAfterCut).toEqual(['active->fault'])
    })
  }
})
