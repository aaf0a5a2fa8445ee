import { describe, expect, it } from 'vitest'
import { Election, type ElectionConfig, type PeerHeartbeat, type Transition, type WitnessKind } from '../../../src/peer/election.js'

// Audit defect 1: an active cut from its peer and its witness at once was fenced at `dead -
// heartbeat`, then elected again at the next tick (the fault branch still counted the peer alive
// until `dead`, and activate() asked only whether the peer was alive), about seven times within
// the window, the term climbing with each. Two elections run side by side as two nodes would: A
// (priority 150) active, B standby, heartbeats every HB, then a cut of both pair links and of A's
// witness. Each node's whole transition list after the cut is pinned.
const HB = 100
const CUT = 1000
const END = 3000

const cfg = (id: string, priority: number, witness: WitnessKind): ElectionConfig =>
  ({ id, priority, preempt: false, heartbeat: HB, deadAfter: 3, witness })
const beat = (e: Election, id: string, priority: number, now: number): PeerHeartbeat => ({
  id, term: e.term, priority, preempt: false, role: e.role, starting: e.starting, handover: e.handover,
  yielding: e.yields(now), inSync: true, conflict: false,
})

interface Run { a: Transition[], b: Transition[] }

/** A Redis lease both nodes share: one owner at a time, `dead` ms from each successful attempt. */
class Lease {
  owner: string | undefined
  until = Number.NEGATIVE_INFINITY
  attempt (id: string, now: number, ttl: number): boolean {
    if (this.owner !== id && this.until > now) return false
    this.owner = id
    this.until = now + ttl
    return true
  }
}

function run (witness: 'tcp' | 'redis', phase: number): Run {
  const a = new Election(cfg('a', 150, witness), 0)
  const b = new Election(cfg('b', 100, witness), 0)
  const seen: Run = { a: [], b: [] }
  const lease = new Lease()
  const record = (list: Transition[], t: number, out: { transition?: Transition }): void => {
    if (out.transition !== undefined && t >= CUT) list.push(out.transition)
  }
  for (let t = 0; t <= END; t += 5) {
    // The witness answers every 25 ms; after the cut A gets only failures (TCP) or no answer (Redis).
    if (t % 25 === 0) {
      const aReaches = t < CUT
      if (witness === 'tcp') {
        record(seen.a, t, a.witness(t, aReaches))
        record(seen.b, t, b.witness(t, true))
      } else {
        if (a.wantLease(t)) record(seen.a, t, a.lease(t, aReaches ? { held: lease.attempt('a', t, a.dead), reachable: true, sentAt: t } : { held: false, reachable: false, sentAt: t }))
        if (b.wantLease(t)) record(seen.b, t, b.lease(t, { held: lease.attempt('b', t, b.dead), reachable: true, sentAt: t }))
      }
    }
    if (t < CUT && t % HB === 0) record(seen.b, t, b.heard(t, beat(a, 'a', 150, t)))
    if (t < CUT && t >= phase && (t - phase) % HB === 0) record(seen.a, t, a.heard(t, beat(b, 'b', 100, t)))
    record(seen.a, t, a.tick(t))
    record(seen.b, t, b.tick(t))
  }
  return seen
}

const brief = (ts: Transition[]): string[] => ts.map((t) => `${t.from}->${t.to} t${t.term} ${t.reason}`)

describe('an active isolated from its peer and its witness goes to fault once and stays there', () => {
  for (const phase of [0, 5, 50, 95]) {
    it(`TCP witness, B beating ${phase} ms after A: exactly one transition on each node`, () => {
      const r = run('tcp', phase)
      expect(brief(r.a)).toEqual(['active->fault t1 witness-lost'])
      expect(brief(r.b)).toEqual(['standby->active t2 peer-dead'])
    })
    it(`Redis arbiter, B beating ${phase} ms after A: exactly one transition on each node`, () => {
      const r = run('redis', phase)
      expect(brief(r.a)).toEqual(['active->fault t1 witness-lost'])
      expect(brief(r.b)).toEqual(['standby->active t2 peer-dead'])
    })
  }

  it('a fenced node whose witness comes back (peer still silent) may be active again, once', () => {
    const e = new Election(cfg('a', 150, 'tcp'), 0)
    const peer: PeerHeartbeat = { id: 'b', term: 0, priority: 100, preempt: false, role: 'standby', starting: false, handover: false, yielding: false, inSync: true, conflict: false }
    const roles: string[] = []
    const note = (out: { transition?: Transition }): void => {
      if (out.transition !== undefined) roles.push(`${out.transition.from}->${out.transition.to} ${out.transition.reason}`)
    }
    for (let t = 0; t <= 2000; t += 5) {
      if (t % 25 === 0) note(e.witness(t, t < 1000 || t >= 1300))
      if (t < 1000 && t % HB === 0) note(e.heard(t, peer))
      note(e.tick(t))
    }
    expect(roles).toEqual(['init->active start', 'active->fault witness-lost', 'fault->active witness-back'])
  })
})
