/*
 * Server state as a Replicated source for the pair (key `servers`): health, passive ejection,
 * admin state and weight of every server, by upstream and address. Changes are found by
 * comparing with what was last taken, which needs no hook in every setter and cannot miss one;
 * a pool holds tens of servers, so the comparison costs nothing. Ejections travel as remaining
 * milliseconds (clock values mean nothing on the other node). Writes go through Upstream's
 * setters, so they publish the same events as local changes.
 */
import { channels } from '../observability/events.js'
import { stateChanged } from '../state/changes.js'
import type { Replicated } from '../state/replicated.js'
import type { Upstream } from './upstream.js'
import type { AdminState } from './server.js'

export interface ServerRecord {
  readonly healthy: boolean
  /** Remaining passive ejection, ms; 0 when not ejected. */
  readonly ejectedMs: number
  readonly admin: AdminState
  readonly weight: number
}

/** upstream name → server address → record. */
export type ServersState = Record<string, Record<string, ServerRecord>>

interface Seen { healthy: boolean, ejectedUntil: number, admin: AdminState, weight: number }

let signalling = false

/**
 * Server changes (Upstream's setters publish them) signal the pair's state stream, once per
 * process. A change that publishes nothing (an ejection lengthened) waits for the next heartbeat.
 */
function signalServerChanges (): void {
  if (signalling) return
  signalling = true
  channels.serverState.subscribe(stateChanged)
  channels.serverWeight.subscribe(stateChanged)
}

export class ServerStates implements Replicated<ServersState> {
  private last = new Map<string, Seen>()
  /** Servers the active last reported down (key()), kept out for a while after a takeover. */
  private readonly reportedDown = new Set<string>()

  /** `upstreams` is a getter: a reload swaps them. `now` reads the same clock as the upstreams. */
  constructor (private readonly upstreams: () => Iterable<Upstream>, private readonly now: () => number) {
    signalServerChanges()
  }

  snapshot (): ServersState {
    const out: ServersState = {}
    const now = this.now()
    this.last = new Map()
    for (const u of this.upstreams()) {
      const servers: Record<string, ServerRecord> = {}
      for (const s of u.servers) {
        this.last.set(key(u.name, s.address), seen(s))
        servers[s.address] = record(s, now)
      }
      out[u.name] = servers
    }
    return out
  }

  takeChanges (): ServersState | undefined {
    const now = this.now()
    let out: ServersState | undefined
    for (const u of this.upstreams()) {
      for (const s of u.servers) {
        const k = key(u.name, s.address)
        const was = this.last.get(k)
        const is = seen(s)
        // An ejection that ran out on its own needs no message: both sides see it end.
        if (was !== undefined && was.healthy === is.healthy && was.admin === is.admin && was.weight === is.weight &&
          (was.ejectedUntil === is.ejectedUntil || (is.ejectedUntil <= now && was.ejectedUntil <= now))) continue
        this.last.set(k, is)
        out ??= {}
        ;(out[u.name] ??= {})[s.address] = record(s, now)
      }
    }
    return out
  }

  wasReportedDown (upstream: string, address: string): boolean {
    return this.reportedDown.has(key(upstream, address))
  }

  apply (state: ServersState): void {
    const byName = new Map([...this.upstreams()].map((u) => [u.name, u]))
    for (const [name, servers] of Object.entries(state)) {
      const u = byName.get(name)
      if (u === undefined) continue
      for (const [address, r] of Object.entries(servers)) {
        const s = u.server(address)
        if (s === undefined || !valid(r)) continue
        if (r.healthy) this.reportedDown.delete(key(name, address))
        else this.reportedDown.add(key(name, address))
        u.setHealth(s, r.healthy, 'peer sync')
        u.setEjection(s, r.ejectedMs)
        u.setAdminState(s, r.admin)
        u.setWeight(s, r.weight)
        // What the peer told us is not a change of ours to send back.
        this.last.set(key(name, address), seen(s))
      }
    }
  }
}

/**
 * After a takeover: a server the old active last saw down gets no request for `ms`, even if this
 * node's own checks found it up meanwhile (they may reach it where the active's clients could
 * not). An ejection already running longer is kept.
 */
export function holdReportedDown (states: ServerStates, upstreams: Iterable<Upstream>, now: number, ms: number): number {
  let held = 0
  for (const u of upstreams) {
    for (const s of u.servers) {
      if (!states.wasReportedDown(u.name, s.address)) continue
      u.setEjection(s, Math.max(ms, s.ejectedUntil - now), 'held after takeover')
      held++
    }
  }
  return held
}

function key (upstream: string, address: string): string {
  return upstream + '\0' + address
}

function seen (s: { healthy: boolean, ejectedUntil: number, adminState: AdminState, weight: number }): Seen {
  return { healthy: s.healthy, ejectedUntil: s.ejectedUntil, admin: s.adminState, weight: s.weight }
}

function record (s: { healthy: boolean, ejectedUntil: number, adminState: AdminState, weight: number }, now: number): ServerRecord {
  return { healthy: s.healthy, ejectedMs: Math.max(0, Math.round(s.ejectedUntil - now)), admin: s.adminState, weight: s.weight }
}

const ADMIN = new Set(['enabled', 'drain', 'disabled'])

function valid (r: unknown): r is ServerRecord {
  const x = r as ServerRecord
  return typeof x === 'object' && x !== null && typeof x.healthy === 'boolean' && Number.isFinite(x.ejectedMs) && x.ejectedMs >= 0 &&
    ADMIN.has(x.admin) && Number.isInteger(x.weight) && x.weight >= 1 && x.weight <= 256
}
