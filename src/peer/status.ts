// The `peer` object of /api/status, read off the election and the node's links (pure): the
// caller gives `now`, so a status is one consistent moment.
import type { PeerConfig } from '../config/types.js'
import type { Election, Role } from './election.js'
import type { Witness } from './witness.js'

/** The `peer` object of /api/status (names agreed in shared-names.md). */
export interface PeerStatus {
  id: string
  term: number
  priority: number
  preempt: boolean
  role: Role
  since: number
  other: { id: string, role: Role, priority: number, lastHeartbeatAgeMs: number, up: boolean } | null
  links: Array<{ address: string, up: boolean, lastHeardAgeMs: number | null }>
  witness: { kind: 'tcp' | 'redis', address: string, state: 'up' | 'down' | 'unknown', lease?: boolean } | null
  inSync: boolean
  configFault: string | null
}

/** What a node's status is read from. */
export interface StatusSources {
  readonly cfg: PeerConfig
  readonly election: Election
  /** When each of cfg.peers last carried a heartbeat (clock time), undefined until one did. */
  readonly linkHeard: ReadonlyArray<number | undefined>
  readonly witness: Witness | undefined
  readonly inSync: boolean
  readonly configFault: string | null
}

export function peerStatus (now: number, { cfg, election, linkHeard, witness: w, inSync, configFault }: StatusSources): PeerStatus {
  const peer = election.peer
  const age = election.lastHeardAge(now)
  return {
    id: cfg.id,
    term: election.term,
    priority: cfg.priority,
    preempt: cfg.preempt,
    role: election.role,
    since: Math.round((now - election.since) / 100) / 10,
    other: peer === undefined || age === undefined
      ? null
      : { id: peer.id, role: peer.role, priority: peer.priority, lastHeartbeatAgeMs: Math.round(age), up: election.peerAlive(now) },
    links: cfg.peers.map((p, i) => {
      const heard = linkHeard[i]
      return { address: p.text, up: heard !== undefined && now - heard < election.dead, lastHeardAgeMs: heard === undefined ? null : Math.round(now - heard) }
    }),
    witness: w === undefined
      ? null
      : { kind: w.kind, address: w.address, state: election.witnessVerdict, ...(w.kind === 'redis' ? { lease: election.leaseHeld(now) } : {}) },
    inSync,
    configFault,
  }
}
