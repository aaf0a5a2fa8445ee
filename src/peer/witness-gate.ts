/*
 * What the witness allows (pure): the TCP probe verdict or the arbiter lease, and the one test
 * every way into or out of the active role applies to it. The election (election.ts) owns the
 * roles and the peer's silence; this module owns only the witness's side of the decision.
 */

import type { WitnessKind } from './election-types.js'
import { ProbeVerdict } from './probe-verdict.js'

export class WitnessGate {
  private readonly probes = new ProbeVerdict()
  // Arbiter (redis): the lease is ours until this time (from when the request was sent).
  private leaseUntil = Number.NEGATIVE_INFINITY
  private reachable = false

  /** `leaseMs`: how long a held lease lasts from when its request was sent (the dead time). */
  constructor (private readonly kind: WitnessKind, private readonly heartbeat: number, private readonly leaseMs: number) {}

  /** One TCP witness probe result. */
  probe (now: number, ok: boolean): void {
    this.probes.record(now, ok)
  }

  /** One arbiter attempt (see Election.lease). */
  lease (result: { held: boolean, reachable: boolean, sentAt: number }): void {
    this.reachable = result.reachable
    if (result.held) this.leaseUntil = Math.max(this.leaseUntil, result.sentAt + this.leaseMs)
    else if (result.reachable) this.leaseUntil = Number.NEGATIVE_INFINITY
  }

  get verdict (): 'up' | 'down' | 'unknown' {
    if (this.kind === 'redis') return this.reachable ? 'up' : 'down'
    return this.probes.state
  }

  /** A redis arbiter answered the last attempt (so a lease we lack is someone else's). */
  get arbiterReachable (): boolean { return this.kind === 'redis' && this.reachable }

  leaseHeld (now: number): boolean { return this.leaseUntil > now }

  /**
   * May this node be active now? It hears its peer (`heardAge` within the fence) or has the
   * witness's blessing. The same bound as Election.fenced() for every way into the role: a node
   * fenced at the fence that counted its peer alive until `dead` was elected again at the next
   * tick, and flapped fault→active through the whole window, telling onChange `active` on a
   * fenced node each time.
   */
  mayServe (now: number, heardAge: number | undefined, fence: number): boolean {
    return (heardAge !== undefined && heardAge < fence) || this.blessed(now)
  }

  /**
   * May this node serve without hearing its peer? One test for the active and the candidate, so
   * that no instant exists where one would take the role and the other drop it at once.
   * TCP: the verdict is up and a probe succeeded within the last 1.5 heartbeats (a blackholed
   * witness never fails a probe quickly, so the verdict alone could lag behind the standby's
   * deadline). Probes start every half heartbeat and give up after one: a single timed-out probe
   * leaves the last success just over a heartbeat old, so a one-heartbeat window flipped the role
   * on a single result; two lost in a row end it. With deadAfter ≥ 3 (required with a TCP witness)
   * an isolated active still stops at least a heartbeat before the standby may start.
   * Redis: the lease stays ours for at least one more heartbeat.
   */
  blessed (now: number): boolean {
    switch (this.kind) {
      case 'none': return true
      case 'tcp': return this.probes.confirmed(now, this.heartbeat * 1.5)
      case 'redis': return this.leaseUntil - this.heartbeat > now
    }
  }
}
