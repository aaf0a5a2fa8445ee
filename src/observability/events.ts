import dc from 'node:diagnostics_channel'

/**
 * Typed events the core publishes. Logs, metrics and the admin SSE stream subscribe; core
 * modules never import pino or prom-client. Publishing costs almost nothing without subscribers.
 */
export interface HttpRequestEnd {
  listener: string
  route: string
  method: string
  host: string
  path: string
  status: number
  client: string
  upstream?: string
  server?: string
  bytesIn: number
  bytesOut: number
  /** Time to upstream response headers. */
  upstreamMs?: number
  totalMs: number
  /** Stable error code when the proxy, not the upstream, decided the status. */
  error?: string
  /** The rate limit that denied the request (error RATE_LIMITED). */
  limit?: string
  retries: number
}

export type TcpEnd =
  | 'closed' // both sides ended normally
  | 'client-reset'
  | 'upstream-reset'
  | 'idle-timeout'
  | 'connect-failed'
  | 'no-server'
  | 'rejected' // over a connection limit
  | 'rate-limited' // over the listener's rateLimit
  | 'preread-failed'
  | 'shutdown'
  | 'not-active' // a pair's standby or fault node (`standby: open`) takes no stream

export interface TcpConnectionEnd {
  listener: string
  client: string
  upstream?: string
  server?: string
  bytesIn: number
  bytesOut: number
  durationMs: number
  end: TcpEnd
  sni?: string
  /** The rate limit that refused the connection (end rate-limited). */
  limit?: string
}

export interface TcpConnectionStart {
  listener: string
  upstream: string
  server: string
}

export interface ServerStateChange {
  upstream: string
  server: string
  from: string
  to: string
  reason: string
}

export interface ServerWeightChange {
  upstream: string
  server: string
  weight: number
}

// --- Active/standby pair (peer/) -------------------------------------------------------------
export type PeerRoleName = 'active' | 'standby' | 'fault'

/** Every role change of this node; `from` is `init` for the first role after start. */
export interface PeerRoleChange {
  from: PeerRoleName | 'init'
  to: PeerRoleName
  term: number
  /** start, peer-dead, handover, step-down, conflict, witness-lost, witness-back, preempt, local-fault, elected, stale */
  reason: string
}

export interface PeerSync {
  inSync: boolean
}

/** A peer message dropped; `reason`: oversize, malformed, unauthenticated, replayed, unknown-sender. */
export interface PeerRejected {
  reason: string
}
// --- end pair ---------------------------------------------------------------------------------

export interface ServerFailure {
  upstream: string
  server: string
  /** connect | timeout | reset | status */
  reason: string
}

export interface HealthCheckResult {
  upstream: string
  server: string
  ok: boolean
  detail?: string
}

/**
 * An error with no request to fail, that would otherwise vanish: an accept() failure (EMFILE,
 * ENFILE), a Redis connection error, a socket error on an admin connection. Counted
 * (`tandem_errors_total`) and logged once per burst.
 */
export interface ProcessError {
  /** Where: `listener:NAME`-free, low cardinality: listener, admin, redis, ... */
  component: string
  /** The system or library code (EMFILE, ECONNREFUSED), or `unknown`. */
  code: string
  message: string
}

/** Publishes an error that has no request to fail; cheap when nobody listens. */
export function reportError (component: string, err: unknown): void {
  if (!channels.error.hasSubscribers) return
  const e = err as { code?: unknown, message?: unknown } | undefined
  const code = typeof e?.code === 'string' && /^[A-Z0-9_]{1,40}$/.test(e.code) ? e.code : 'unknown'
  channels.error.publish({ component, code, message: typeof e?.message === 'string' ? e.message : String(err) })
}

/** A request or connection refused by a rate limit; `key` is the bucket (not for metrics labels). */
export interface RateLimitDenied {
  listener: string
  limit: string
  key?: string
}

/** One failed Redis rate-limit call (timeout, unavailable, error). */
export interface RateLimitStoreError {
  reason: 'timeout' | 'unavailable' | 'error'
  message: string
}

/** The Redis store's breaker: `down` once per outage (with the first error), `up` when Redis answers again. */
export interface RateLimitStoreState {
  state: 'up' | 'down'
  reason?: string
  message?: string
}

export interface ConfigReload {
  result: 'success' | 'failure'
}

/** Publishes an HTTP request's end, if anyone listens; fields left out default to none/zero. */
/**
 * Publishes one request's end. The event is built here in one fixed shape and field order, so
 * every subscriber (and the access line, which keeps this order) sees one monomorphic object.
 */
export function publishHttpEnd (e: Omit<HttpRequestEnd, 'bytesIn' | 'bytesOut' | 'retries'> & Partial<Pick<HttpRequestEnd, 'bytesIn' | 'bytesOut' | 'retries'>>): void {
  channels.httpRequestEnd.publish({
    listener: e.listener,
    route: e.route,
    method: e.method,
    host: e.host,
    path: e.path,
    status: e.status,
    client: e.client,
    upstream: e.upstream,
    server: e.server,
    bytesIn: e.bytesIn ?? 0,
    bytesOut: e.bytesOut ?? 0,
    upstreamMs: e.upstreamMs,
    totalMs: e.totalMs,
    error: e.error,
    limit: e.limit,
    retries: e.retries ?? 0,
  })
}

function channel<T> (name: string): dc.Channel & { publish (msg: T): void } {
  return dc.channel(name) as dc.Channel & { publish (msg: T): void }
}

export const channels = {
  httpRequestEnd: channel<HttpRequestEnd>('tandem:http:request-end'),
  tcpConnectionStart: channel<TcpConnectionStart>('tandem:tcp:connection-start'),
  tcpConnectionEnd: channel<TcpConnectionEnd>('tandem:tcp:connection-end'),
  serverState: channel<ServerStateChange>('tandem:server:state'),
  serverFailure: channel<ServerFailure>('tandem:server:failure'),
  healthCheck: channel<HealthCheckResult>('tandem:health:check'),
  configReload: channel<ConfigReload>('tandem:config:reload'),
  error: channel<ProcessError>('tandem:error'),
  rateLimitDenied: channel<RateLimitDenied>('tandem:ratelimit:denied'),
  rateLimitStoreError: channel<RateLimitStoreError>('tandem:ratelimit:store-error'),
  rateLimitStoreState: channel<RateLimitStoreState>('tandem:ratelimit:store-state'),
  serverWeight: channel<ServerWeightChange>('tandem:server:weight'),
  peerRole: channel<PeerRoleChange>('tandem:peer:role'),
  peerSync: channel<PeerSync>('tandem:peer:sync'),
  peerRejected: channel<PeerRejected>('tandem:peer:rejected'),
}
