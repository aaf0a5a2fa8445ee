// The admin API's handlers over a Runtime, free of HTTP plumbing: the status snapshot and the
// server actions. Each answer is { status, body } so server.ts owns every byte on the wire.
import { hostname } from 'node:os'
import { roleOf, type NodeRole } from '../observability/metrics.js'
import type { PeerNode } from '../peer/node.js'
import type { PeerStatus } from '../peer/status.js'
import type { Runtime } from '../runtime/runtime.js'
import type { AdminState, Server, ServerState } from '../upstream/server.js'
import type { Upstream } from '../upstream/upstream.js'

export interface Answer {
  status: number
  body: unknown
}

/** The JSON of `GET /api/status` (and of each SSE `status` event). */
export interface StatusSnapshot {
  id: string
  role: NodeRole
  version: string
  /** Seconds since the runtime started. */
  uptime: number
  startedAt: string
  config: { file: string, hash: string }
  listeners: Array<{ name: string, protocol: 'http' | 'tcp', listen: string, activeConnections: number }>
  upstreams: Array<{ name: string, balance: string, servers: ServerStatus[] }>
  /** With `peer:` configured (names in shared-names.md). */
  peer?: PeerStatus
}

export interface ServerStatus {
  address: string
  state: ServerState
  weight: number
  backup: boolean
  active: number
  requests: number
  failures: number
  /** Decayed average response (HTTP) or connect (TCP) time; 0 before the first sample. */
  responseTimeMs: number
  lastCheck: { at: string, ok: boolean, detail?: string } | null
  /** Beyond the spec, for the dashboard: what an operator set (drain / disabled / enabled). */
  adminState: AdminState
  /** Active-check hysteresis: `streak` consecutive results against the verdict, of `of` needed to flip it. Null without health checks. */
  checks: { toward: 'down' | 'up', streak: number, of: number } | null
  /** Milliseconds until a passive ejection ends; 0 when not ejected. */
  ejectedForMs: number
  /** Slow-start ramp, 0.05..1 of the weight, while it runs; null otherwise. */
  slowStart: number | null
}

export function statusSnapshot (runtime: Runtime, version: string, peer?: PeerNode): StatusSnapshot {
  const now = runtime.clock.now()
  const wall = Date.now()
  // Clock times are monotonic ms; shown as wall time by their distance from now.
  const toIso = (at: number): string => new Date(wall - (now - at)).toISOString()
  const config = runtime.config
  return {
    id: config.peer?.id ?? hostname(),
    role: roleOf(runtime),
    version,
    uptime: Math.max(0, Math.floor((wall - runtime.startedAt) / 1000)),
    startedAt: new Date(runtime.startedAt).toISOString(),
    config: { file: config.file, hash: config.hash },
    listeners: runtime.listeners.map((l) => {
      let listen: string
      try {
        const a = l.address()
        listen = a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
      } catch {
        listen = config.listeners.find((c) => c.name === l.name)?.listen.text ?? ''
      }
      return { name: l.name, protocol: l.protocol, listen, activeConnections: l.activeConnections() }
    }),
    upstreams: [...runtime.upstreams.values()].map((u) => ({
      name: u.name,
      balance: u.config.balance,
      servers: u.servers.map((s) => serverStatus(s, u, now, toIso)),
    })),
    ...(peer === undefined ? {} : { peer: peer.status() }),
  }
}

/**
 * POST /api/peer/step-down: the active hands over to an in-sync standby. 409 when this node is
 * not active or no standby holds the full state, a standalone node (no `peer:`) included: it has
 * no standby at all.
 */
export function stepDown (peer: PeerNode | undefined): Answer {
  if (peer === undefined) return { status: 409, body: { error: 'cannot step down: this node has no peer configured' } }
  const r = peer.stepDown(false)
  if (!r.ok) return { status: 409, body: { error: `cannot step down: ${r.why}` } }
  return { status: 200, body: { steppedDown: true, role: peer.role, term: peer.election.term } }
}

function serverStatus (s: Server, u: Upstream, now: number, toIso: (at: number) => string): ServerStatus {
  const check = s.lastCheck
  const health = u.config.health
  const span = u.config.slowStart
  const age = now - s.upSince
  return {
    address: s.address,
    state: s.state(now),
    weight: s.weight,
    backup: s.backup,
    active: s.active,
    requests: s.requests,
    failures: s.failures,
    responseTimeMs: Math.round(s.rttEwma * 100) / 100,
    lastCheck: check === undefined
      ? null
      : { at: toIso(check.at), ok: check.ok, ...(check.detail === undefined ? {} : { detail: check.detail }) },
    adminState: s.adminState,
    checks: health === undefined
      ? null
      : s.healthy ? { toward: 'down', streak: s.checkStreak, of: health.fall } : { toward: 'up', streak: s.checkStreak, of: health.rise },
    ejectedForMs: Math.max(0, Math.ceil(s.ejectedUntil - now)),
    // Upstream.rampWeights() uses the same formula when it picks.
    slowStart: span > 0 && age >= 0 && age < span && s.state(now) === 'up' ? Math.round(Math.max(0.05, age / span) * 100) / 100 : null,
  }
}

export type ServerAction = 'drain' | 'disable' | 'enable' | 'weight'

const ADMIN_STATE: Record<Exclude<ServerAction, 'weight'>, AdminState> = {
  drain: 'drain',
  disable: 'disabled',
  enable: 'enabled',
}

/** `address` as written in the config, or any spelling of the same host and port. */
export function findServer (upstream: Upstream, address: string): Server | undefined {
  const exact = upstream.server(address)
  if (exact !== undefined) return exact
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(address)
  if (m === null) return undefined
  const host = (m[1] ?? m[2] ?? '').toLowerCase()
  const port = Number(m[3])
  return upstream.servers.find((s) => s.host.toLowerCase() === host && s.port === port)
}

/**
 * drain / disable / enable / weight on one server. `body` is the parsed JSON body (weight only).
 * Preconditions: the caller has authenticated the request.
 */
export function serverAction (runtime: Runtime, upstreamName: string, address: string, action: ServerAction, body: unknown): Answer {
  const upstream = runtime.upstreams.get(upstreamName)
  if (upstream === undefined) return { status: 404, body: { error: `unknown upstream "${upstreamName}"` } }
  const server = findServer(upstream, address)
  if (server === undefined) return { status: 404, body: { error: `upstream "${upstreamName}" has no server "${address}"` } }
  if (action === 'weight') {
    const weight = (body as { weight?: unknown } | null)?.weight
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !Number.isInteger(weight) || (weight as number) < 1 || (weight as number) > 256) {
      return { status: 400, body: { error: 'body must be {"weight": N} with N an integer 1..256' } }
    }
    upstream.setWeight(server, weight as number)
  } else {
    upstream.setAdminState(server, ADMIN_STATE[action])
  }
  const now = runtime.clock.now()
  return { status: 200, body: { upstream: upstream.name, server: server.address, state: server.state(now), adminState: server.adminState, weight: server.weight } }
}
