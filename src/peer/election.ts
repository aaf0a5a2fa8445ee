/*
 * The pair's election: a pure state machine (VRRP-like roles plus a term, as in Raft, to settle a
 * healed dual-active). Inputs: time, the peer's heartbeats, witness probe results or arbiter
 * lease results, local faults, step-down. Outputs: the role and what changed. No sockets, no
 * timers: the caller feeds `now` from a Clock and calls tick() a few times per heartbeat.
 *
 * Invariant (split brain): a node that hears no peer serves only with the witness's blessing, and
 * an active node that hears no peer for `dead - heartbeat` ms loses that blessing (TCP witness
 * not confirmed within 1.5 heartbeats, or arbiter lease not valid for one more heartbeat)
 * before a standby may act at `dead` ms (`dead + heartbeat` with a TCP witness, see patience()),
 * so an isolated active stops at least one heartbeat before the standby starts, in any phase.
 */

import type { ElectionConfig, Output, PeerHeartbeat, Reason, Role } from './election-types.js'
import { FaultBackoff } from './backoff.js'
import { WitnessGate } from './witness-gate.js'
export type { ElectionConfig, Output, PeerHeartbeat, Reason, Role, Transition, WitnessKind } from './election-types.js'

/** `id` wins over `other` by priority, then by the lower id. */
export function wins (a: { priority: number, id: string }, b: { priority: number, id: string }): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.id < b.id
}

export class Election {
  private current: Role | 'init' = 'init'
  private termValue = 0
  private graceUntil: number
  private lastHeard: number | undefined
  private peerValue: PeerHeartbeat | undefined
  private lastTick: number
  private readonly gate: WitnessGate
  private readonly backoff: FaultBackoff
  private faultUntil = Number.NEGATIVE_INFINITY
  private conflictUntil = Number.NEGATIVE_INFINITY
  /** After a pause: messages queued meanwhile are stale; only observe until this time. */
  private relistenUntil = Number.NEGATIVE_INFINITY
  private faultReason: string | undefined
  private handingOver = false
  private yielding = false
  private announced = false
  private sinceValue: number

  constructor (private readonly cfg: ElectionConfig, now: number) {
    this.graceUntil = now + this.dead
    this.lastTick = now
    this.sinceValue = now
    this.backoff = new FaultBackoff(this.faultHold, 30 * this.faultHold)
    this.gate = new WitnessGate(cfg.witness, cfg.heartbeat, this.dead)
  }

  /** How long a local fault keeps this node from serving. */
  private get faultHold (): number { return Math.max(2000, 10 * this.cfg.heartbeat) }

  /** `deadAfter × heartbeat`: silence after which the peer counts as dead. */
  get dead (): number { return this.cfg.deadAfter * this.cfg.heartbeat }
  /** Silence after which an active node needs the witness: one heartbeat before `dead`. */
  get fence (): number { return Math.max(this.dead - this.cfg.heartbeat, this.cfg.heartbeat / 2) }
  get role (): Role { return this.current === 'init' ? 'standby' : this.current }
  get starting (): boolean { return this.current === 'init' }
  get term (): number { return this.termValue }
  get peer (): PeerHeartbeat | undefined { return this.peerValue }
  get since (): number { return this.sinceValue }
  get localFault (): string | undefined { return this.faultReason }
  get handover (): boolean { return this.handingOver }
  /** Tell the peer for a dead time that this node lost a conflict. */
  lostConflict (now: number): boolean { return now < this.conflictUntil }
  /**
   * Tell the peer not to hand this node the role: it stepped down on request, or it failed
   * locally not long ago (FaultBackoff), so an active peer must not preempt in its favour.
   */
  yields (now: number): boolean { return this.yielding || this.backoff.holds(now) }
  get witnessVerdict (): 'up' | 'down' | 'unknown' { return this.gate.verdict }

  /** The arbiter should try to take or renew the lease now. */
  wantLease (now: number): boolean {
    if (this.cfg.witness !== 'redis' || this.current === 'init') return false
    // A local fault (listeners cannot bind, shutting down) cannot serve: holding the lease would
    // keep the other node, which can, from taking over.
    if (this.faultReason !== undefined && now < this.faultUntil) return false
    return this.current === 'active' || !this.peerAlive(now)
  }

  leaseHeld (now: number): boolean { return this.gate.leaseHeld(now) }

  /**
   * When the peer's silence next changes a decision (the standby's takeover, the active's fence),
   * so that a timer there makes it exact rather than a tick late.
   */
  silenceDeadline (): number | undefined {
    const peer = this.peerValue
    if (this.lastHeard === undefined || peer === undefined) return undefined
    return this.lastHeard + (this.current === 'active' ? this.fence : this.dead + this.patience(peer))
  }

  peerAlive (now: number): boolean {
    return this.lastHeard !== undefined && now - this.lastHeard < this.dead
  }

  lastHeardAge (now: number): number | undefined {
    return this.lastHeard === undefined ? undefined : now - this.lastHeard
  }

  /** A valid heartbeat from the peer (authenticated and fresh; messages.ts checked). */
  heard (now: number, hb: PeerHeartbeat): Output {
    const stale = this.stale(now)
    this.lastHeard = now
    this.peerValue = hb
    if (this.current !== 'active' && hb.term > this.termValue) this.termValue = hb.term
    // A peer in fault will not take the role we handed it (its bind failed): take it back.
    if (hb.role === 'active' || hb.role === 'fault') this.handingOver = false
    if (hb.role !== 'active' && !hb.conflict) this.announced = false
    return stale ?? this.evaluate(now)
  }

  /** One TCP witness probe result. */
  witness (now: number, ok: boolean): Output {
    const stale = this.stale(now)
    this.gate.probe(now, ok)
    return stale ?? this.evaluate(now)
  }

  /**
   * One arbiter attempt, sent at `sentAt`: `held` when the lease is ours (taken or renewed) for
   * `dead` ms from then; `reachable` false when Redis did not answer.
   */
  lease (now: number, result: { held: boolean, reachable: boolean, sentAt: number }): Output {
    const stale = this.stale(now)
    this.gate.lease(result)
    return stale ?? this.evaluate(now)
  }

  /** Something local prevents serving (a listener cannot bind): fault for a while, the peer takes over. */
  fault (now: number, reason: string): Output {
    this.faultReason = reason
    this.faultUntil = now + this.faultHold
    this.backoff.fault(now, this.faultUntil)
    return this.evaluate(now, 'local-fault')
  }

  /**
   * Shutting down: a node that is not active never becomes active again (fault, for good), so a
   * peer dying meanwhile does not hand the role to a process that has stopped accepting. An
   * active node keeps its role (it had no standby to hand over to) until it exits.
   */
  retire (now: number): Output {
    if (this.current === 'active') return this.same()
    this.faultReason = 'shutting down'
    this.faultUntil = Number.POSITIVE_INFINITY
    return this.evaluate(now, 'local-fault')
  }

  /**
   * Hand the active role to the standby (admin step-down, SIGTERM). Refused unless active and
   * the standby is heard; unless `force`, also unless it holds the full state.
   */
  stepDown (now: number, force: boolean): { ok: true, output: Output } | { ok: false, why: string } {
    if (this.current !== 'active') return { ok: false, why: `this node is ${this.role}, not active` }
    const peer = this.peerValue
    if (!this.peerAlive(now) || peer === undefined || peer.role === 'fault') return { ok: false, why: 'no standby is heard' }
    if (!force && !peer.inSync) return { ok: false, why: 'the standby does not hold the full state yet' }
    this.handingOver = true
    this.yielding = true
    return { ok: true, output: this.become(now, 'standby', 'step-down', true) }
  }

  /** Timers: call at least every heartbeat / 4. */
  tick (now: number): Output {
    return this.stale(now) ?? this.evaluate(now)
  }

  /**
   * Frozen (SIGSTOP, a long pause) past the fence: the peer may have taken over meanwhile.
   * Stop serving and listen again for a dead time before deciding, as at start. Every input
   * checks this first, whichever arrives first after the pause.
   */
  private stale (now: number): Output | undefined {
    const gap = now - this.lastTick
    this.lastTick = now
    // The fence, not the dead time: the peer counts silence from our last heartbeat, up to one
    // heartbeat before the pause began, so a pause just under the dead time may already have
    // let it take over.
    if (gap <= this.fence) return undefined
    this.graceUntil = now + this.dead
    this.relistenUntil = now + this.dead
    if (this.current !== 'active') return undefined
    return this.become(now, 'standby', 'stale', true)
  }

  private evaluate (now: number, why?: Reason): Output {
    if (this.faultReason !== undefined && now >= this.faultUntil) this.faultReason = undefined
    if (this.current === 'active' && now - this.sinceValue >= this.faultHold) this.backoff.served()
    if (this.faultReason !== undefined) {
      return this.current === 'fault' ? this.same() : this.become(now, 'fault', why ?? 'local-fault', true)
    }
    const peer = this.peerValue
    const alive = peer !== undefined && this.lastHeard !== undefined && now - this.lastHeard < this.dead + this.patience(peer)
    if (!alive) this.yielding = false

    if (alive && peer.role === 'active') {
      if (this.current !== 'active') return this.settle(now, 'standby', this.starting ? 'start' : 'elected')
      if (this.losesConflict(peer)) return this.become(now, 'standby', 'conflict', true)
      if (this.announced) return this.same()
      this.announced = true
      return { role: 'active', announce: true, sendNow: true }
    }
    if (alive) {
      if (this.current === 'active' && peer.conflict && !this.announced) {
        // The peer stepped down from a dual-active conflict before we saw it active.
        this.announced = true
        return { role: 'active', announce: true, sendNow: true }
      }
      if (this.current === 'active') {
        if (peer.preempt && !peer.yielding && !peer.starting && peer.role === 'standby' && peer.inSync && wins(peer, this.cfg)) {
          this.handingOver = true
          return this.become(now, 'standby', 'preempt', true)
        }
        return this.fenced(now)
      }
      if (this.handingOver) return this.settle(now, 'standby', 'step-down')
      if (now < this.relistenUntil) return this.same()
      // A starting node still listens out its dead time: a handover heartbeat recorded earlier
      // and replayed to a node that just started must not make it active beside the real one.
      if (peer.handover && peer.role === 'standby' && !(this.starting && now < this.graceUntil)) return this.activate(now, 'handover')
      // Neither serves: the election winner takes the role unless it just yielded it.
      const leads = peer.role === 'fault' || (!this.yields(now) && (wins(this.cfg, peer) || peer.yielding))
      if (!leads) return this.settle(now, 'standby', this.starting ? 'start' : 'elected')
      // A starting node listens for the whole dead time before it may become active, even with its
      // peer heard: an active peer's heartbeat may still be on the way.
      if (this.starting && now < this.graceUntil) return this.same()
      return this.activate(now, this.starting ? 'start' : 'elected')
    }
    // The peer is silent.
    if (this.current === 'active') return this.fenced(now)
    if (now < this.graceUntil) return this.same()
    return this.activate(now, this.starting ? 'start' : this.current === 'fault' ? 'witness-back' : 'peer-dead')
  }

  /**
   * With a TCP witness a standby waits one heartbeat past the dead time before it counts an active
   * peer as gone. It counts from the last heartbeat it got, which may be up to a heartbeat older
   * than the last one the active got from it (they send out of phase); the active fences itself
   * `dead - heartbeat` after *its* last, so without this the margin could shrink to nothing. The
   * takeover still ends within `(deadAfter + 1) × heartbeat` of the active's death. The Redis
   * lease needs no such margin: it expires in Redis, whatever the phases.
   */
  private patience (peer: PeerHeartbeat): number {
    return this.cfg.witness === 'tcp' && this.current !== 'active' && peer.role === 'active' ? this.cfg.heartbeat : 0
  }

  /** Active: keep the role unless the peer has been silent past the fence without the witness. */
  private fenced (now: number): Output {
    if (this.mayServe(now)) return this.same()
    return this.become(now, 'fault', 'witness-lost', true)
  }

  /** Becomes active when the witness allows a node that may not hear its peer; otherwise fault. */
  private activate (now: number, reason: Reason): Output {
    if (!this.mayServe(now)) {
      // Arbiter reachable and the lease someone else's: the other node lives; wait as standby.
      if (this.gate.arbiterReachable) return this.settle(now, 'standby', this.starting ? 'start' : 'peer-dead')
      return this.settle(now, 'fault', 'witness-lost')
    }
    return this.current === 'active' ? this.same() : this.become(now, 'active', reason, true)
  }

  /** May this node be active now (see WitnessGate.mayServe)? */
  private mayServe (now: number): boolean {
    return this.gate.mayServe(now, this.lastHeardAge(now), this.fence)
  }

  private losesConflict (peer: PeerHeartbeat): boolean {
    if (this.cfg.preempt && peer.preempt) return wins(peer, this.cfg)
    if (peer.term !== this.termValue) return peer.term > this.termValue
    return wins(peer, this.cfg)
  }

  private settle (now: number, role: Role, reason: Reason): Output {
    return this.current === role ? this.same() : this.become(now, role, reason, false)
  }

  private become (now: number, to: Role, reason: Reason, sendNow: boolean): Output {
    const from = this.current
    if (to === 'active') {
      this.termValue = Math.max(this.termValue, this.peerValue?.term ?? 0) + 1
      this.handingOver = false
      this.yielding = false
      this.announced = false
    }
    if (reason === 'conflict') this.conflictUntil = now + this.dead
    this.current = to
    this.sinceValue = now
    return { role: to, transition: { from, to, term: this.termValue, reason }, announce: false, sendNow: sendNow || from === 'init' }
  }

  private same (): Output {
    return { role: this.role, announce: false, sendNow: false }
  }
}
