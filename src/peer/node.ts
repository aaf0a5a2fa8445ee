/*
 * One node of an active/standby pair: the I/O around the pure election. It owns the transport,
 * the witness, state sync and onChange, drives the election's timers, and tells its owner
 * (runtime/serve.ts) which role to apply. It lives for the whole process: reloads swap the
 * Runtime beneath it, never the peer.
 */
import type { Clock } from '../clock.js'
import type { PeerConfig } from '../config/types.js'
import { channels } from '../observability/events.js'
import { PeerAlarms } from './alarms.js'
import { Election, type Output, type Role } from './election.js'
import { Notifier, type NotifyLog } from './notify.js'
import { peerStatus, type PeerStatus } from './status.js'
import { StateStream } from './stream.js'
import { StateSync, type Sources } from './sync.js'
import { PeerTransport } from './transport.js'
import { RedisArbiter, TcpWitness, type Witness } from './witness.js'

export interface PeerLog extends NotifyLog {
  debug (obj: object, msg: string): void
}

export interface PeerHooks {
  /**
   * Apply `role` to the serving side. Going standby or fault must stop accepting before it
   * returns (synchronously); becoming active may bind listeners and rejects when it cannot.
   * `abrupt`: also cut connections in flight (a stale node that was frozen must not answer).
   */
  apply (role: Role, abrupt?: boolean): Promise<void>
}

/** A standby still out of sync this long after its state connection came up: the connection is dead. */
const STATE_STALL_MS = 5000

export class PeerNode {
  readonly election: Election
  private readonly transport: PeerTransport
  private readonly sync: StateSync
  private readonly stream: StateStream
  private readonly witness: Witness | undefined
  private readonly notifier: Notifier | undefined
  private readonly linkHeard: Array<number | undefined>
  private tickTimer: NodeJS.Timeout | undefined
  /** Fires at the election's silence deadline (the ticks alone would decide up to a quarter heartbeat late). */
  private deadlineTimer: NodeJS.Timeout | undefined
  private beatTimer: NodeJS.Timeout | undefined
  private applying: Promise<void> = Promise.resolve()
  private applied: Role | undefined
  private readonly alarms: PeerAlarms
  private lastInSync = false
  private beating = false
  /** When this node took the role by a hand-over: the old active's last frames may still be on the way. */
  private handedOverAt = Number.NEGATIVE_INFINITY
  /**
   * Set for a dead time after this node stepped down: it still streams its changes on the state
   * connection it had, for what it admits after the hand-over's flush (the accept queue's last
   * connections, see Runtime.standDown); the new active takes them that long (see `state`).
   */
  private tailTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor (
    private readonly cfg: PeerConfig,
    sources: () => Sources,
    private readonly hooks: PeerHooks,
    private readonly log: PeerLog,
    private readonly clock: Clock,
  ) {
    const now = clock.now()
    this.alarms = new PeerAlarms(cfg.id, clock, log)
    const witness = cfg.witness
    this.election = new Election({
      id: cfg.id, priority: cfg.priority, preempt: cfg.preempt, heartbeat: cfg.heartbeat, deadAfter: cfg.deadAfter,
      witness: witness?.kind ?? 'none',
    }, now)
    this.sync = new StateSync(sources)
    this.linkHeard = cfg.peers.map(() => undefined)
    this.transport = new PeerTransport({ id: cfg.id, secret: cfg.secret, listen: cfg.listen, peers: cfg.peers, heartbeat: cfg.heartbeat }, {
      heartbeat: (m, link) => {
        const t = this.clock.now()
        if (link < this.linkHeard.length) this.linkHeard[link] = t
        this.handle(this.election.heard(t, {
          id: m.id, term: m.term, priority: m.prio, preempt: m.preempt, role: m.role, starting: m.starting,
          handover: m.handover, yielding: m.yielding, inSync: m.inSync, conflict: m.conflict,
        }))
        this.armDeadline()
      },
      state: (m) => {
        // A frame that arrives after the hand-over heartbeat (UDP may overtake TCP) was sent
        // before it: it is the old active's last word, not a conflicting active's.
        // The old active streams for a dead time after its step-down (tailTimer); a heartbeat more
        // covers the frames of its last moment that are still on the way.
        if (this.election.role === 'active' && this.clock.now() - this.handedOverAt > this.election.dead + this.cfg.heartbeat) return
        const r = this.sync.apply(m)
        for (const f of r.failed) this.log.error({ source: f.name, error: f.error }, 'peer state refused by its source')
        this.checkSync()
      },
      stateLost: () => { this.sync.lost(); this.checkSync() },
      rejected: (reason, claimed) => { this.alarms.rejected(reason, claimed) },
      hint: (from) => { this.alarms.hint(from) },
      error: (err, where) => { this.alarms.transportError(err, where) },
    })
    this.stream = new StateStream(this.transport, this.sync)
    if (witness?.kind === 'tcp') {
      this.witness = new TcpWitness(witness.address, cfg.heartbeat, (ok) => { this.handle(this.election.witness(this.clock.now(), ok)) })
    } else if (witness?.kind === 'redis') {
      this.witness = new RedisArbiter(witness.url, cfg.secret, `${cfg.id}:${this.transport.signer.boot}`, this.election.dead, cfg.heartbeat,
        () => this.clock.now(), () => this.election.wantLease(this.clock.now()),
        (r) => { this.handle(this.election.lease(this.clock.now(), r)) })
    }
    if (cfg.onChange !== undefined) this.notifier = new Notifier(cfg.onChange, cfg.id, cfg.onChangeTimeout, log)
  }

  get role (): Role { return this.election.role }

  /** True while this node's view says the pair is in sync (standby: holds the full state; active: its standby does). */
  get inSync (): boolean {
    const now = this.clock.now()
    if (this.election.role === 'active') return this.election.peerAlive(now) && this.election.peer?.inSync === true
    return this.election.peerAlive(now) && this.sync.inSync
  }

  get peerUp (): boolean { return this.election.peerAlive(this.clock.now()) }

  get configFault (): string | null {
    return this.alarms.configFault
  }

  /** Binds the peer's sockets and starts the timers. Rejects when the peer address cannot bind. */
  async start (): Promise<void> {
    await this.transport.start()
    this.witness?.start()
    const quarter = Math.max(5, Math.floor(this.cfg.heartbeat / 4))
    this.tickTimer = setInterval(() => { this.handle(this.election.tick(this.clock.now())) }, quarter)
    this.beatTimer = setInterval(() => { this.beat() }, this.cfg.heartbeat)
    this.beat()
    this.log.info({ id: this.cfg.id, listen: this.transport.address(), peers: this.cfg.peers.map((p) => p.text), witness: this.witness?.address ?? null }, 'peer started; listening for the other node')
  }

  /**
   * Hands the active role to the standby (POST /api/peer/step-down; SIGTERM with `force`).
   * Resolves once the listeners are closed and the handover is on the wire.
   */
  stepDown (force: boolean): { ok: true } | { ok: false, why: string } {
    // The changes still in the batch go first, on the ordered state connection, which then closes
    // gracefully (transport.release); the standby takes the role only after they were sent.
    if (this.election.role === 'active') this.stream.flush()
    const r = this.election.stepDown(this.clock.now(), force)
    if (!r.ok) return r
    this.handle(r.output)
    if (this.witness instanceof RedisArbiter) void this.witness.release()
    return { ok: true }
  }

  /** Shutting down: never take the active role from here on (Election.retire). */
  retire (): void {
    this.handle(this.election.retire(this.clock.now()))
  }

  /** Waits until the other node reports active, up to `timeoutMs`; true when it does. */
  async handedOver (timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.election.peer?.role === 'active' && this.peerUp) return true
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return false
  }

  status (): PeerStatus {
    const now = this.clock.now()
    return peerStatus(now, {
      cfg: this.cfg, election: this.election, linkHeard: this.linkHeard, witness: this.witness, inSync: this.inSync, configFault: this.configFault,
    })
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.tickTimer)
    clearInterval(this.beatTimer)
    clearTimeout(this.deadlineTimer)
    // What a node shutting down after its hand-over admitted since the last batch goes first.
    if (this.tailTimer !== undefined) this.stream.flush()
    this.endTail()
    this.stream.stop()
    await this.witness?.stop()
    await this.transport.close()
    await this.notifier?.idle()
  }

  /** Keeps streaming changes for a dead time after a step-down (see tailTimer), then lets the state connection go. */
  private startTail (): void {
    this.endTail()
    this.tailTimer = setTimeout(() => {
      this.stream.flush()
      this.tailTimer = undefined
      this.stream.batching(this.election.role === 'active')
      this.beat()
    }, this.election.dead)
  }

  private endTail (): void {
    clearTimeout(this.tailTimer)
    this.tailTimer = undefined
  }

  private armDeadline (): void {
    clearTimeout(this.deadlineTimer)
    const at = this.election.silenceDeadline()
    if (at === undefined || this.closed) return
    this.deadlineTimer = setTimeout(() => { this.handle(this.election.tick(this.clock.now())) }, Math.max(0, at - this.clock.now()) + 1)
  }

  private beat (): void {
    if (this.closed || this.beating) return
    this.beating = true
    try {
      this.beatOnce()
    } finally {
      this.beating = false
    }
  }

  private beatOnce (): void {
    // After a pause the election must see the gap before this node claims anything.
    this.handle(this.election.tick(this.clock.now()))
    const e = this.election
    this.transport.sendHeartbeat({
      k: 'hb', term: e.term, prio: this.cfg.priority, preempt: this.cfg.preempt, role: e.role, starting: e.starting,
      handover: e.handover, yielding: e.yields(this.clock.now()), inSync: this.inSync, conflict: e.lostConflict(this.clock.now()),
    })
    const active = e.role === 'active'
    // Only the active node streams state; it keeps a connection while the peer is heard.
    // A state connection whose link blackholes stays "up" here for ever (the standby only listens
    // on it), while the standby, hearing our heartbeats over another link, says it is not in
    // sync: after a while that is a dead connection, and the next dial takes the next link.
    if (active && this.transport.stateConnected && !this.stream.sendingFull && e.peerAlive(this.clock.now()) && e.peer?.inSync === false &&
      Date.now() - this.transport.stateConnectedAt > Math.max(STATE_STALL_MS, 20 * this.cfg.heartbeat)) this.transport.dropState()
    // Stepping down, the state connection stays as it is (no new dial: that would send a snapshot).
    if (this.tailTimer === undefined) this.transport.maintainState(active && e.peerAlive(this.clock.now()), () => { void this.stream.sendFull() })
    if (active || this.tailTimer !== undefined) this.stream.beat()
    this.checkSync()
  }

  private handle (out: Output): void {
    if (this.closed) return
    const t = out.transition
    if (t !== undefined) {
      const level = t.to === 'fault' ? 'error' : 'warn'
      this.log[level]({ from: t.from, to: t.to, term: t.term, reason: t.reason }, `peer role: ${t.to}`)
      channels.peerRole.publish({ from: t.from, to: t.to, term: t.term, reason: t.reason })
      if (t.to !== 'standby') this.sync.lost()
      if (t.to === 'active' && t.reason === 'handover') this.handedOverAt = this.clock.now()
      if (t.to === 'active') this.endTail()
      else if (t.from === 'active' && t.reason === 'step-down') this.startTail()
      this.stream.batching(t.to === 'active' || this.tailTimer !== undefined)
      if (t.to === 'fault' && this.election.localFault !== undefined && this.witness instanceof RedisArbiter) void this.witness.release()
      this.applyRole(t.reason === 'stale')
      void this.notifier?.run(t.to, t.from)
    }
    if (out.announce) {
      this.log.warn({ term: this.election.term }, 'dual-active conflict resolved in our favour; running onChange again')
      void this.notifier?.run('active', 'active')
    }
    if (out.sendNow) this.beat()
  }

  /**
   * Applies the election's role. Standby/fault close listeners synchronously inside hooks.apply;
   * activation may take a moment to bind, one application at a time, the latest role winning.
   */
  private applyRole (abrupt = false): void {
    const role = this.election.role
    if (role !== 'active') {
      this.applied = role
      void this.hooks.apply(role, abrupt).catch((err: unknown) => { this.log.error({ err: String(err) }, 'cannot apply role') })
      return
    }
    this.applying = this.applying.then(async () => {
      if (this.election.role !== 'active' || this.applied === 'active' || this.closed) return
      try {
        await this.hooks.apply('active')
        this.applied = 'active'
        if (this.election.role !== 'active') void this.hooks.apply(this.election.role)
      } catch (err) {
        const reason = `cannot serve: ${err instanceof Error ? err.message : String(err)}`
        this.log.error({ err: reason }, 'local fault; the peer takes over')
        this.handle(this.election.fault(this.clock.now(), reason))
      }
    })
  }

  private checkSync (): void {
    const now = this.inSync
    if (now === this.lastInSync) return
    this.lastInSync = now
    channels.peerSync.publish({ inSync: now })
    this.log.info({ inSync: now }, now ? 'pair in sync' : 'pair not in sync')
  }
}
