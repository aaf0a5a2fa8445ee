import type { ServerConfig } from '../config/types.js'

export type ServerState = 'up' | 'down' | 'drain' | 'disabled'
export type AdminState = 'enabled' | 'drain' | 'disabled'

/**
 * One upstream server and the counters every part of the proxy shares. Forwarding code updates
 * the counters; health code writes `healthy` through Upstream.setHealth(); balancers only read.
 */
export class Server {
  readonly address: string
  readonly host: string
  readonly port: number
  backup: boolean
  maxConnections: number
  /** Configured or admin-set weight, 1..256. */
  weight: number
  /** Weight after slow start; what balancers read. */
  effectiveWeight: number
  /** Result of active health checks; true when none are configured. */
  healthy = true
  /** Passive ejection: not a candidate until this time (clock ms). */
  ejectedUntil = 0
  adminState: AdminState = 'enabled'
  /** Clock ms when the server last became eligible; drives slow start. */
  upSince = 0

  active = 0
  requests = 0
  failures = 0
  /** Consecutive real failures, for passive ejection. */
  consecutiveFailures = 0
  /** Time-decayed average response (or connect) time in ms; 0 before the first sample. */
  rttEwma = 0
  /** Clock ms of the last rtt sample. */
  rttAt = 0
  lastCheck?: { at: number, ok: boolean, detail?: string }
  /** Consecutive check results against the current verdict (fall or rise progress); shown by the admin API. */
  checkStreak = 0

  constructor (config: ServerConfig) {
    this.address = config.text
    this.host = config.host
    this.port = config.port
    this.backup = config.backup
    this.maxConnections = config.maxConnections
    this.weight = config.weight
    this.effectiveWeight = config.weight
  }

  /** Takes a reloaded config for the same address; health, admin state and counters stay. */
  apply (config: ServerConfig): void {
    this.backup = config.backup
    this.maxConnections = config.maxConnections
    this.weight = config.weight
    this.effectiveWeight = config.weight
  }

  /** The spec's four states, as the admin API shows them. */
  state (now: number): ServerState {
    if (this.adminState === 'disabled') return 'disabled'
    if (!this.healthy || this.ejectedUntil > now) return 'down'
    if (this.adminState === 'drain') return 'drain'
    return 'up'
  }

  hasRoom (): boolean {
    return this.maxConnections === 0 || this.active < this.maxConnections
  }
}
