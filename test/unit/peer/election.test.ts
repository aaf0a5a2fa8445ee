import { describe, expect, it } from 'vitest'
import { Election, wins, type ElectionConfig, type PeerHeartbeat, type Role } from '../../../src/peer/election.js'

const HB = 100
const base: ElectionConfig = { id: 'a', priority: 150, preempt: false, heartbeat: HB, deadAfter: 3, witness: 'none' }

function hb (over: Partial<PeerHeartbeat> = {}): PeerHeartbeat {
  return { id: 'b', term: 0, priority: 100, preempt: false, role: 'standby', starting: false, handover: false, yielding: false, inSync: true, conflict: false, ...over }
}

type Step =
  | { at: number, tick: true }
  | { at: number, heard: Partial<PeerHeartbeat> }
  | { at: number, witness: boolean }
  | { at: number, lease: { held: boolean, reachable: boolean } }
  | { at: number, fault: string }
  | { at: number, stepDown: boolean }
  | { at: number, retire: true }

interface Scenario {
  name: string
  config?: Partial<ElectionConfig>
  /** Steps run in order; between them the node ticks every HB / 4 as it does when running, except before a `frozen` step. */
  steps: Array<Step & { expect: Role, reason?: string, announce?: boolean, frozen?: true }>
}

/** Heartbeats from the peer every HB from `from` to `to` (exclusive), each expecting `expect`. */
function heartbeats (from: number, to: number, over: Partial<PeerHeartbeat>, expect: Role): Scenario['steps'] {
  const out: Scenario['steps'] = []
  for (let t = from; t < to; t += HB) out.push({ at: t, heard: over, expect })
  return out
}

const scenarios: Scenario[] = [
  {
    name: 'alone at start: waits deadAfter × heartbeat, then active',
    steps: [
      { at: 0, tick: true, expect: 'standby' },
      { at: 299, tick: true, expect: 'standby' },
      { at: 300, tick: true, expect: 'active', reason: 'start' },
    ],
  },
  {
    name: 'hears an active peer at start: standby, never active',
    steps: [
      { at: 50, heard: { role: 'active', term: 4 }, expect: 'standby', reason: 'start' },
      ...heartbeats(150, 1000, { role: 'active', term: 4 }, 'standby'),
    ],
  },
  {
    // The spec: a starting node listens for deadAfter × heartbeat before it may become active,
    // its peer heard or not (it once took the role at the first heartbeat of a starting peer).
    name: 'both starting: the higher priority wins once it has listened for the dead time',
    steps: [
      { at: 10, heard: { starting: true }, expect: 'standby' },
      { at: 210, heard: { starting: true }, expect: 'standby' },
      { at: 299, tick: true, expect: 'standby' },
      { at: 300, tick: true, expect: 'active', reason: 'start' },
    ],
  },
  {
    name: 'both starting: the lower priority waits',
    config: { priority: 50 },
    steps: [
      { at: 10, heard: { starting: true }, expect: 'standby', reason: 'start' },
      { at: 400, heard: { role: 'active', term: 1 }, expect: 'standby' },
    ],
  },
  {
    name: 'priority tie: the lower id wins',
    config: { priority: 100, id: 'c' },
    steps: [{ at: 10, heard: { starting: true }, expect: 'standby' }],
  },
  {
    name: 'active dies: standby takes over after dead time (no witness)',
    config: { priority: 50 },
    steps: [
      ...heartbeats(0, 500, { role: 'active', term: 1 }, 'standby'),
      { at: 699, tick: true, expect: 'standby' },
      { at: 700, tick: true, expect: 'active', reason: 'peer-dead' },
    ],
  },
  {
    name: 'a 150 ms pause of the active: no transition',
    config: { priority: 50 },
    steps: [
      ...heartbeats(0, 500, { role: 'active', term: 1 }, 'standby'),
      { at: 600, tick: true, expect: 'standby' },
      { at: 650, heard: { role: 'active', term: 1 }, expect: 'standby' },
    ],
  },
  {
    name: 'handover: the standby takes the role at once',
    config: { priority: 50 },
    steps: [
      ...heartbeats(0, 300, { role: 'active', term: 2 }, 'standby'),
      { at: 320, heard: { role: 'standby', term: 2, handover: true, yielding: true }, expect: 'active', reason: 'handover' },
      { at: 400, heard: { role: 'standby', term: 2, yielding: true }, expect: 'active' },
    ],
  },
  {
    name: 'handover flag lost: the yielding peer still lets the standby take over',
    config: { priority: 50 },
    steps: [
      { at: 0, heard: { role: 'active', term: 2 }, expect: 'standby' },
      { at: 100, heard: { role: 'standby', term: 2, yielding: true }, expect: 'active' },
    ],
  },
  {
    name: 'healed dual-active, preempt false: the older term steps down',
    steps: [
      { at: 0, tick: true, expect: 'standby' },
      { at: 300, tick: true, expect: 'active' },
      { at: 400, heard: { role: 'active', term: 5 }, expect: 'standby', reason: 'conflict' },
    ],
  },
  {
    name: 'healed dual-active, preempt false: the newer term stays and announces again',
    config: { priority: 50 },
    steps: [
      { at: 0, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 500, tick: true, expect: 'active', reason: 'peer-dead' },
      { at: 600, heard: { role: 'active', term: 1 }, expect: 'active', announce: true },
      { at: 700, heard: { role: 'active', term: 1 }, expect: 'active', announce: false },
      { at: 800, heard: { role: 'standby', term: 2 }, expect: 'active' },
    ],
  },
  {
    name: 'healed dual-active: the survivor announces even when it never saw the loser active',
    config: { priority: 50 },
    steps: [
      { at: 0, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 500, tick: true, expect: 'active', reason: 'peer-dead' },
      { at: 600, heard: { role: 'standby', term: 1, conflict: true }, expect: 'active', announce: true },
      { at: 700, heard: { role: 'standby', term: 2, conflict: true }, expect: 'active', announce: false },
    ],
  },
  {
    name: 'healed dual-active, both preempt: the election loser steps down',
    config: { priority: 50, preempt: true },
    steps: [
      { at: 0, tick: true, expect: 'standby' },
      { at: 300, tick: true, expect: 'active' },
      { at: 400, heard: { role: 'active', term: 0, preempt: true }, expect: 'standby', reason: 'conflict' },
    ],
  },
  {
    name: 'preempt: the active hands back to a higher-priority peer only once it is in sync',
    config: { priority: 50 },
    steps: [
      { at: 0, tick: true, expect: 'standby' },
      { at: 300, tick: true, expect: 'active' },
      { at: 400, heard: { priority: 200, preempt: true, inSync: false }, expect: 'active' },
      { at: 500, heard: { priority: 200, preempt: true, inSync: true }, expect: 'standby', reason: 'preempt' },
    ],
  },
  {
    name: 'preempt false: a recovered higher-priority node does not take the role back',
    steps: heartbeats(0, 1000, { role: 'active', term: 3, priority: 10 }, 'standby'),
  },
  {
    name: 'tcp witness: the standby takes over only with the witness up',
    config: { priority: 50, witness: 'tcp' },
    steps: [
      { at: 0, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 50, witness: false, expect: 'standby' },
      { at: 100, witness: false, expect: 'standby' },
      { at: 400, tick: true, expect: 'fault', reason: 'witness-lost' },
      { at: 450, witness: true, expect: 'fault' },
      { at: 500, witness: true, expect: 'active', reason: 'witness-back' },
    ],
  },
  {
    name: 'tcp witness down while the peer is heard: no transition',
    config: { witness: 'tcp' },
    steps: [
      { at: 0, witness: true, expect: 'standby' },
      { at: 50, witness: true, expect: 'standby' },
      { at: 300, witness: true, expect: 'active' },
      ...heartbeats(350, 2000, { role: 'standby', term: 1 }, 'active').map((s, i) => i % 2 === 0 ? s : { at: s.at, witness: false, expect: 'active' as Role }),
    ],
  },
  {
    name: 'tcp witness: an isolated active stops one heartbeat before the standby may start',
    config: { witness: 'tcp' },
    steps: [
      { at: 0, witness: true, expect: 'standby' },
      { at: 50, witness: true, expect: 'standby' },
      { at: 300, witness: true, expect: 'active' },
      { at: 350, witness: true, expect: 'active' },
      { at: 400, heard: { role: 'standby', term: 1 }, expect: 'active' },
      // cut from peer and witness: probes hang, no result arrives
      { at: 575, tick: true, expect: 'active' },
      { at: 600, tick: true, expect: 'fault', reason: 'witness-lost' }, // 200 ms after the last heartbeat; the standby waits until 700 at least (800 with its patience)
    ],
  },
  {
    name: 'tcp witness: an active cut only from the peer keeps serving while the witness answers',
    config: { witness: 'tcp' },
    steps: [
      { at: 0, witness: true, expect: 'standby' },
      { at: 50, witness: true, expect: 'standby' },
      { at: 300, witness: true, expect: 'active' },
      { at: 400, heard: { role: 'standby', term: 1 }, expect: 'active' },
      ...[450, 500, 550, 600, 650, 700, 750, 800].map((at) => ({ at, witness: true, expect: 'active' as Role })),
    ],
  },
  {
    name: 'tcp witness: a verdict without a recent success blesses nobody (no take-then-drop)',
    config: { priority: 50, witness: 'tcp' },
    steps: [
      { at: 0, witness: true, expect: 'standby' },
      { at: 50, witness: true, expect: 'standby' },
      { at: 60, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 400, tick: true, expect: 'standby' }, // dead time passed; a TCP witness adds a heartbeat of patience
      { at: 460, tick: true, expect: 'fault', reason: 'witness-lost' },
      { at: 485, tick: true, expect: 'fault' },
      { at: 510, witness: true, expect: 'active', reason: 'witness-back' },
      { at: 535, tick: true, expect: 'active' },
    ],
  },
  {
    name: 'one failed witness probe does not flip the verdict',
    config: { priority: 50, witness: 'tcp' },
    steps: [
      { at: 0, witness: true, expect: 'standby' },
      { at: 50, witness: true, expect: 'standby' },
      { at: 60, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 300, witness: false, expect: 'standby' },
      { at: 350, witness: true, expect: 'standby' },
      { at: 400, tick: true, expect: 'standby' }, // dead time passed; a TCP witness adds a heartbeat of patience
      { at: 420, witness: true, expect: 'standby' },
      { at: 460, tick: true, expect: 'active', reason: 'peer-dead' },
    ],
  },
  {
    // Regression: probes start every half heartbeat and give up after half a heartbeat, so one
    // timed-out probe left the last success just over a heartbeat old, and a lone active went to
    // fault until the next probe answered (listeners unbound and bound again, onChange twice).
    name: 'tcp witness: a lone active rides out one timed-out probe; two in a row end it',
    config: { witness: 'tcp' },
    steps: [
      { at: 0, witness: true, expect: 'standby' },
      { at: 50, witness: true, expect: 'standby' },
      { at: 300, witness: true, expect: 'active', reason: 'start' },
      ...[350, 401, 451, 501].map((at) => ({ at, witness: true, expect: 'active' as Role })),
      { at: 600, witness: false, expect: 'active' }, // the probe started at 550 timed out
      { at: 610, tick: true, expect: 'active' }, // the next one, started at 600, has not answered yet
      { at: 615, witness: true, expect: 'active' },
      { at: 715, witness: false, expect: 'active' }, // the one started at 665 timed out
      { at: 765, tick: true, expect: 'active' },
      { at: 770, tick: true, expect: 'fault', reason: 'witness-lost' }, // and the one started at 715
    ],
  },
  {
    // The standby took the hand-over but could not bind, and its active heartbeat was lost: the
    // node that handed over waited for it as standby for ever while nobody served.
    name: 'handed over to a peer that faulted before it was heard active: takes the role back',
    steps: [
      { at: 0, tick: true, expect: 'standby' },
      { at: 300, tick: true, expect: 'active', reason: 'start' },
      { at: 350, heard: { role: 'standby', term: 1 }, expect: 'active' },
      { at: 400, stepDown: false, expect: 'standby', reason: 'step-down' },
      { at: 420, heard: { role: 'fault', term: 2 }, expect: 'active', reason: 'elected' },
    ],
  },
  {
    name: 'a starting node takes a handover only after listening out its dead time',
    steps: [
      { at: 10, heard: { role: 'standby', term: 4, handover: true, yielding: true }, expect: 'standby' },
      { at: 110, heard: { role: 'standby', term: 4, handover: true, yielding: true }, expect: 'standby' },
      { at: 210, heard: { role: 'standby', term: 4, handover: true, yielding: true }, expect: 'standby' },
      { at: 310, heard: { role: 'standby', term: 4, handover: true, yielding: true }, expect: 'active', reason: 'handover' },
    ],
  },
  {
    // Regression: a standby told to shut down (SIGTERM, draining) still took the role when the
    // active died meanwhile, rebinding listeners it had stopped and moving the address to itself.
    name: 'a standby shutting down never becomes active; an active one keeps its role',
    steps: [
      ...heartbeats(0, 400, { role: 'active', term: 1, priority: 200 }, 'standby'),
      { at: 400, retire: true, expect: 'fault', reason: 'local-fault' },
      { at: 2000, tick: true, expect: 'fault' },
      { at: 60_000, tick: true, expect: 'fault' },
    ],
  },
  {
    name: 'an active node shutting down without a standby keeps serving',
    steps: [
      { at: 300, tick: true, expect: 'active', reason: 'start' },
      { at: 400, retire: true, expect: 'active' },
      { at: 3000, tick: true, expect: 'active' },
    ],
  },
  {
    name: 'redis arbiter: the standby becomes active only by taking the lease',
    config: { priority: 50, witness: 'redis' },
    steps: [
      { at: 0, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 400, lease: { held: false, reachable: true }, expect: 'standby' },
      { at: 500, lease: { held: true, reachable: true }, expect: 'active', reason: 'peer-dead' },
    ],
  },
  {
    name: 'redis arbiter: both lost → fault',
    config: { priority: 50, witness: 'redis' },
    steps: [
      { at: 0, heard: { role: 'active', term: 1 }, expect: 'standby' },
      { at: 400, lease: { held: false, reachable: false }, expect: 'fault', reason: 'witness-lost' },
    ],
  },
  {
    name: 'redis arbiter: an active that cannot renew steps down a heartbeat before the lease ends',
    config: { witness: 'redis' },
    steps: [
      { at: 300, lease: { held: true, reachable: true }, expect: 'active' },
      { at: 350, heard: { role: 'standby', term: 1 }, expect: 'active' },
      { at: 400, lease: { held: true, reachable: true }, expect: 'active' }, // lease until 700
      { at: 500, lease: { held: false, reachable: false }, expect: 'active' },
      { at: 599, tick: true, expect: 'active' },
      { at: 600, tick: true, expect: 'fault', reason: 'witness-lost' }, // silent 250 ms ≥ fence 200, and the lease (to 700) has one heartbeat left
    ],
  },
  {
    name: 'redis down while the peer is heard: nothing changes',
    config: { witness: 'redis' },
    steps: [
      { at: 300, lease: { held: true, reachable: true }, expect: 'active' },
      ...heartbeats(350, 2000, { role: 'standby', term: 1 }, 'active').map((s, i) => i % 2 === 0 ? s : { at: s.at, lease: { held: false, reachable: false }, expect: 'active' as Role }),
    ],
  },
  {
    name: 'local fault (bind failure): fault, the peer takes over; retried later',
    steps: [
      { at: 300, tick: true, expect: 'active' },
      { at: 310, fault: 'bind', expect: 'fault', reason: 'local-fault' },
      ...heartbeats(400, 2300, { role: 'active', term: 2 }, 'fault'),
      { at: 2400, heard: { role: 'active', term: 2 }, expect: 'standby' },
    ],
  },
  {
    name: 'frozen past the dead time: a stale active stops, then defers to the newer term',
    steps: [
      { at: 300, tick: true, expect: 'active' },
      { at: 2300, tick: true, frozen: true, expect: 'standby', reason: 'stale' },
      // Heartbeats queued during the pause arrive first, older ones saying standby: not a reason to take over.
      { at: 2301, heard: { role: 'standby', term: 1 }, expect: 'standby' },
      { at: 2302, heard: { role: 'standby', term: 1 }, expect: 'standby' },
      { at: 2305, heard: { role: 'active', term: 2 }, expect: 'standby' },
      ...heartbeats(2400, 3000, { role: 'active', term: 2 }, 'standby'),
    ],
  },
  {
    // Regression: a pause a little under the dead time (420 ms of 600) went unnoticed, though the
    // peer, counting from our heartbeat before the pause, had taken over: the node answered the
    // requests queued meanwhile beside the new active.
    name: 'frozen past the fence (dead - heartbeat), under the dead time: stale too',
    steps: [
      { at: 300, tick: true, expect: 'active' },
      { at: 300 + 199, tick: true, frozen: true, expect: 'active' },
      { at: 300 + 199 + 201, tick: true, frozen: true, expect: 'standby', reason: 'stale' },
    ],
  },
  {
    name: 'step-down: refused without an in-sync standby, then done',
    steps: [
      { at: 300, tick: true, expect: 'active' },
      { at: 310, stepDown: false, expect: 'active' },
      { at: 320, heard: { inSync: false }, expect: 'active' },
      { at: 330, stepDown: false, expect: 'active' },
      { at: 340, heard: { inSync: true }, expect: 'active' },
      { at: 350, stepDown: false, expect: 'standby', reason: 'step-down' },
      { at: 450, heard: { inSync: true }, expect: 'standby' },
      { at: 550, heard: { role: 'active', term: 2 }, expect: 'standby' },
    ],
  },
]

describe('election', () => {
  for (const sc of scenarios) {
    it(sc.name, () => {
      const e = new Election({ ...base, ...sc.config }, 0)
      let last = 0
      for (const [i, step] of sc.steps.entries()) {
        let transition = undefined as { reason: string } | undefined
        if (step.frozen !== true) {
          for (let t = Math.floor(last / (HB / 4)) * (HB / 4) + HB / 4; t < step.at; t += HB / 4) transition = e.tick(t).transition ?? transition
        }
        last = step.at
        let out
        if ('tick' in step) out = e.tick(step.at)
        else if ('heard' in step) out = e.heard(step.at, hb(step.heard))
        else if ('witness' in step) out = e.witness(step.at, step.witness)
        else if ('lease' in step) out = e.lease(step.at, { ...step.lease, sentAt: step.at })
        else if ('fault' in step) out = e.fault(step.at, step.fault)
        else if ('retire' in step) out = e.retire(step.at)
        else {
          const r = e.stepDown(step.at, step.stepDown)
          out = r.ok ? r.output : { role: e.role, announce: false, sendNow: false }
        }
        transition = out.transition ?? transition
        const where = `step ${i} at ${step.at}`
        expect(out.role, where).toBe(step.expect)
        expect(e.role, where).toBe(step.expect)
        if (step.reason !== undefined) expect(transition?.reason, where).toBe(step.reason)
        if (step.announce !== undefined) expect(out.announce, where).toBe(step.announce)
      }
    })
  }

  it('terms grow with each takeover', () => {
    const e = new Election({ ...base, priority: 50 }, 0)
    e.heard(0, hb({ role: 'active', term: 7 }))
    expect(e.term).toBe(7)
    for (let t = 25; t < 300; t += 25) e.tick(t)
    const out = e.tick(300)
    expect(out.transition).toEqual({ from: 'standby', to: 'active', term: 8, reason: 'peer-dead' })
  })

  it('the first decision is a transition from init', () => {
    const e = new Election(base, 0)
    for (const t of [100, 200]) expect(e.tick(t).transition).toBeUndefined()
    expect(e.tick(300).transition).toEqual({ from: 'init', to: 'active', term: 1, reason: 'start' })
  })

  it('the silence deadline is the exact instant of the takeover (standby) and of the fence (active)', () => {
    // The node arms a timer there: with ticks alone a TCP-witness takeover could land up to a
    // quarter heartbeat past (deadAfter + 1) × heartbeat.
    const e = new Election({ ...base, priority: 50, witness: 'tcp' }, 0)
    e.witness(0, true)
    e.witness(1, true)
    expect(e.silenceDeadline()).toBeUndefined()
    e.heard(10, hb({ role: 'active', term: 1 }))
    expect(e.silenceDeadline()).toBe(10 + 3 * HB + HB)
    for (let t = 25; t < 400; t += 25) e.witness(t, true)
    expect(e.tick(409).role).toBe('standby')
    expect(e.tick(410).role).toBe('active')
    e.heard(500, hb({ role: 'standby', term: 1 }))
    expect(e.silenceDeadline()).toBe(500 + 2 * HB)
  })

  it('wins: priority, then the lower id', () => {
    expect(wins({ priority: 2, id: 'z' }, { priority: 1, id: 'a' })).toBe(true)
    expect(wins({ priority: 1, id: 'a' }, { priority: 1, id: 'b' })).toBe(true)
    expect(wins({ priority: 1, id: 'b' }, { priority: 1, id: 'a' })).toBe(false)
  })

  it('wants the arbiter lease while active or while the peer is silent', () => {
    const e = new Election({ ...base, priority: 50, witness: 'redis' }, 0)
    e.heard(0, hb({ role: 'active', term: 1 }))
    expect(e.wantLease(100)).toBe(false)
    expect(e.wantLease(300)).toBe(true)
    // Regression: a node in local fault (its listeners could not bind) kept renewing the lease,
    // so the other node, able to serve, could never take it.
    e.fault(300, 'cannot serve: EADDRINUSE')
    expect(e.role).toBe('fault')
    expect(e.wantLease(301)).toBe(false)
    expect(e.wantLease(300 + 2000)).toBe(true) // the fault lasts max(2 s, 10 heartbeats); then it may try again
  })
})
