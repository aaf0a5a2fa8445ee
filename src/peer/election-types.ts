// The election's vocabulary: roles, reasons, its config, what a heartbeat says, what a decision
// returns. Types only; the state machine is election.ts.

export type Role = 'active' | 'standby' | 'fault'
export type Reason = 'start' | 'peer-dead' | 'handover' | 'step-down' | 'conflict' | 'witness-lost' |
  'witness-back' | 'preempt' | 'local-fault' | 'elected' | 'stale'
export type WitnessKind = 'none' | 'tcp' | 'redis'

export interface ElectionConfig {
  readonly id: string
  readonly priority: number
  readonly preempt: boolean
  /** ms */
  readonly heartbeat: number
  readonly deadAfter: number
  readonly witness: WitnessKind
}

/** What a heartbeat says about its sender (see messages.ts). */
export interface PeerHeartbeat {
  readonly id: string
  readonly term: number
  readonly priority: number
  readonly preempt: boolean
  readonly role: Role
  /** The sender still starts up (has not decided its first role). */
  readonly starting: boolean
  /** The sender stepped down and asks us to take the active role now. */
  readonly handover: boolean
  /** The sender stepped down on request and must not be handed the role back by preemption. */
  readonly yielding: boolean
  /** Standby: holds the active's full state. Active: its standby does. */
  readonly inSync: boolean
  /** The sender just lost a dual-active conflict (so the survivor announces itself again). */
  readonly conflict: boolean
}

export interface Transition {
  readonly from: Role | 'init'
  readonly to: Role
  readonly term: number
  readonly reason: Reason
}

export interface Output {
  readonly role: Role
  /** At most one per input. */
  readonly transition?: Transition
  /** Survivor of a dual-active conflict: run onChange again to announce the address. */
  readonly announce: boolean
  /** Send a heartbeat now rather than at the next interval (a handover, a new role). */
  readonly sendNow: boolean
}
