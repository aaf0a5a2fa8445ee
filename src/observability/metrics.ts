// Every tandem_* metric is declared here, once, with its labels (spec "Metrics"). Counters fed by
// events accumulate in plain Maps keyed by the label tuple and are copied into prom-client at
// scrape time, so the hot path is one string join, one Map lookup and one addition. Gauges and the
// per-server request counter are read from Runtime / Server state in collect(), never pushed.
import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'
import type { Runtime } from '../runtime/runtime.js'
import type { Server } from '../upstream/server.js'
import { FastHistogram } from './histogram.js'
import { HttpStats } from './http-stats.js'
import { processMetrics } from './process-metrics.js'
import { registerPeerGauges, type PeerGauges } from './peer-gauges.js'
import {
  channels, type ConfigReload, type HealthCheckResult, type HttpRequestEnd, type PeerRejected, type PeerRoleChange, type ProcessError,
  type RateLimitDenied, type RateLimitStoreError, type ServerFailure, type TcpConnectionEnd,
} from './events.js'

// prom-client's parts, not its index: the index also loads the Pushgateway (https, zlib, tls) and
// the cluster aggregator, about 3 MiB of RSS at start that tandem never uses (bench/idle-rss).
const load = createRequire(import.meta.url)
const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter
const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge
const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry
type Counter<T extends string> = PromClient.Counter<T>
type Gauge<T extends string> = PromClient.Gauge<T>
type Registry = PromClient.Registry

export type NodeRole = 'active' | 'standby' | 'fault'

/** The node's role. A standalone node (no `peer:`) is always active. */
export function roleOf (runtime: Runtime): NodeRole {
  const r = (runtime as { role?: unknown }).role
  return r === 'standby' || r === 'fault' ? r : 'active'
}

/** What createMetrics returns; the counters without an event source yet are exposed for wiring. */
export interface Metrics {
  readonly registry: Registry
  readonly rateLimited: Counter<'listener' | 'limit'>
  readonly peerTransitions: Counter<'from' | 'to'>
  readonly peerMessagesRejected: Counter<'reason'>
  readonly configReloads: Counter<'result'>
  /** Unsubscribes from the core's channels. */
  close (): void
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** Counts per label tuple; `flush` writes them into a prom-client Counter of the same labels. */
class Tally {
  private readonly values = new Map<string, { labels: string[], n: number }>()

  /** Two or three label values, in the counter's label order; the array is built on first sight only. */
  add (n: number, a: string, b: string, c?: string): void {
    const key = c === undefined ? a + '\0' + b : a + '\0' + b + '\0' + c
    const v = this.values.get(key)
    if (v !== undefined) {
      v.n += n
      return
    }
    const labels = [a, b]
    if (c !== undefined) labels.push(c)
    this.values.set(key, { labels, n })
  }

  /** Forgets the tuples `keep` refuses (servers a reload removed). */
  prune (keep: (labels: readonly string[]) => boolean): void {
    for (const [key, v] of this.values) if (!keep(v.labels)) this.values.delete(key)
  }

  flush (counter: Counter<string>): void {
    counter.reset()
    const names = (counter as unknown as { labelNames: string[] }).labelNames
    for (const { labels, n } of this.values.values()) {
      const obj: Record<string, string> = {}
      names.forEach((name, i) => { obj[name] = labels[i] ?? '' })
      counter.inc(obj, n)
    }
  }
}

/**
 * A registry of its own (several runtimes may live in one process) holding every spec metric.
 * `getRuntime` is read at each scrape, so a reload that swaps the Runtime needs nothing here;
 * `getPeer` only with `peer:` configured (the pair outlives reloads; see peer-gauges.ts).
 */
export function createMetrics (getRuntime: () => Runtime, getPeer?: () => PeerGauges | undefined): Metrics {
  const own = new Registry()
  const registers = [own]
  const tallies = {
    tcp: new Tally(),
    tcpBytes: new Tally(),
    failures: new Tally(),
    checks: new Tally(),
    errors: new Tally(),
    limited: new Tally(),
    storeErrors: new Tally(),
  }
  const fromTally = <L extends string>(name: string, help: string, labelNames: L[], tally: Tally, perServer = false): Counter<L> => {
    const c: Counter<L> = new Counter({
      name,
      help,
      labelNames,
      registers,
      collect () {
        // A server a reload removed goes from these as from the gauges (labels: upstream, server, ...).
        if (perServer) {
          const servers = serverKeys(getRuntime())
          tally.prune((l) => servers.has(l[0] + '\0' + l[1]))
        }
        tally.flush(c as Counter<string>)
      },
    })
    return c
  }

  const duration = new FastHistogram('tandem_http_request_duration_seconds', 'Time from request start to the end of the response, seconds.',
    ['listener', 'route', 'upstream'], DURATION_BUCKETS)
  duration.register(own)
  const http = new HttpStats(duration)
  const httpRequests: Counter<'listener' | 'route' | 'upstream' | 'code'> = new Counter({
    name: 'tandem_http_requests_total',
    help: 'HTTP requests answered, by listener, route, upstream and status code.',
    labelNames: ['listener', 'route', 'upstream', 'code'],
    registers,
    collect () { http.flush(httpRequests) },
  })
  fromTally('tandem_tcp_connections_total', 'TCP connections closed, by listener and upstream.', ['listener', 'upstream'], tallies.tcp)
  fromTally('tandem_tcp_bytes_total', 'TCP bytes relayed; direction in is client to upstream, out is back.', ['listener', 'direction'], tallies.tcpBytes)

  const active: Gauge<'listener'> = new Gauge({
    name: 'tandem_active_connections',
    help: 'Client connections open now, by listener.',
    labelNames: ['listener'],
    registers,
    collect () {
      active.reset()
      for (const l of getRuntime().listeners) active.set({ listener: l.name }, l.activeConnections())
    },
  })
  const serverGauge = (name: string, help: string, read: (s: Server, now: number) => number): void => {
    const g: Gauge<'upstream' | 'server'> = new Gauge({
      name,
      help,
      labelNames: ['upstream', 'server'],
      registers,
      collect () { eachServer(getRuntime(), (u, s, now) => { g.set({ upstream: u, server: s.address }, read(s, now)) }, g) },
    })
  }
  serverGauge('tandem_upstream_server_up', '1 when the server takes new traffic (state up), else 0.', (s, now) => s.state(now) === 'up' ? 1 : 0)
  serverGauge('tandem_upstream_server_active_connections', 'Requests and connections in flight to the server.', (s) => s.active)
  serverGauge('tandem_upstream_server_response_time_seconds', 'Decayed average response (HTTP) or connect (TCP) time, seconds.', (s) => s.rttEwma / 1000)
  const requests: Counter<'upstream' | 'server'> = new Counter({
    name: 'tandem_upstream_server_requests_total',
    help: 'Requests and connections sent to the server.',
    labelNames: ['upstream', 'server'],
    registers,
    collect () { eachServer(getRuntime(), (u, s) => { requests.inc({ upstream: u, server: s.address }, s.requests) }, requests) },
  })
  fromTally('tandem_upstream_server_failures_total', 'Failed attempts against the server, by reason (connect, timeout, reset, status).',
    ['upstream', 'server', 'reason'], tallies.failures, true)
  fromTally('tandem_health_checks_total', 'Active health checks run, by result (pass, fail).', ['upstream', 'server', 'result'], tallies.checks, true)

  fromTally('tandem_errors_total', 'Errors with no request to fail (accept EMFILE, Redis connection, ...), by component and code.',
    ['component', 'code'], tallies.errors)

  const rateLimited = fromTally('tandem_rate_limited_total', 'Requests or connections refused by a rate limit, by listener and limit.', ['listener', 'limit'], tallies.limited)
  fromTally('tandem_rate_limit_store_errors_total', 'Failed Redis rate-limit calls, by reason (timeout, unavailable, error).', ['reason'], tallies.storeErrors)
  // Every reason is exported from the start (at 0), so alerts can use rate() at once.
  for (const reason of ['timeout', 'unavailable', 'error']) tallies.storeErrors.add(0, reason, '')
  const role: Gauge<'role'> = new Gauge({
    name: 'tandem_peer_role',
    help: '1 for the role this node holds now (active, standby, fault), 0 for the others.',
    labelNames: ['role'],
    registers,
    collect () {
      const now = roleOf(getRuntime())
      for (const r of ['active', 'standby', 'fault'] as const) role.set({ role: r }, r === now ? 1 : 0)
    },
  })
  const peerTransitions = new Counter({ name: 'tandem_peer_transitions_total', help: 'Role changes of this node.', labelNames: ['from', 'to'] as const, registers })
  const peerMessagesRejected = new Counter({ name: 'tandem_peer_messages_rejected_total', help: 'Peer messages dropped (bad signature, replayed, too large, ...).', labelNames: ['reason'] as const, registers })
  // --- pair ------------------------------------------------------------------------------------
  registerPeerGauges(own, getPeer)
  for (const reason of ['oversize', 'malformed', 'unauthenticated', 'replayed', 'unknown-sender']) peerMessagesRejected.inc({ reason }, 0)
  // --- end pair ----------------------------------------------------------------------------------
  const configReloads = new Counter({ name: 'tandem_config_reloads_total', help: 'Config reloads, by result (success, failure).', labelNames: ['result'] as const, registers })
  configReloads.inc({ result: 'success' }, 0)
  configReloads.inc({ result: 'failure' }, 0)

  const onHttp = (m: unknown): void => {
    const e = m as HttpRequestEnd
    http.record(e.listener, e.route, e.upstream ?? '', e.status, e.totalMs / 1000)
  }
  const onTcp = (m: unknown): void => {
    const e = m as TcpConnectionEnd
    tallies.tcp.add(1, e.listener, e.upstream ?? '')
    if (e.bytesIn > 0) tallies.tcpBytes.add(e.bytesIn, e.listener, 'in')
    if (e.bytesOut > 0) tallies.tcpBytes.add(e.bytesOut, e.listener, 'out')
  }
  const onFailure = (m: unknown): void => {
    const e = m as ServerFailure
    tallies.failures.add(1, e.upstream, e.server, e.reason)
  }
  const onCheck = (m: unknown): void => {
    const e = m as HealthCheckResult
    tallies.checks.add(1, e.upstream, e.server, e.ok ? 'pass' : 'fail')
  }
  const onError = (m: unknown): void => {
    const e = m as ProcessError
    tallies.errors.add(1, e.component, e.code)
  }
  const onDenied = (m: unknown): void => {
    const e = m as RateLimitDenied
    tallies.limited.add(1, e.listener, e.limit)
  }
  const onStoreError = (m: unknown): void => {
    tallies.storeErrors.add(1, (m as RateLimitStoreError).reason, '')
  }
  const onReload = (m: unknown): void => {
    configReloads.inc({ result: (m as ConfigReload).result })
  }
  const onPeerRole = (m: unknown): void => {
    const e = m as PeerRoleChange
    peerTransitions.inc({ from: e.from, to: e.to })
  }
  const onPeerRejected = (m: unknown): void => {
    peerMessagesRejected.inc({ reason: (m as PeerRejected).reason })
  }
  const subscriptions: Array<[{ subscribe (f: (m: unknown) => void): void, unsubscribe (f: (m: unknown) => void): unknown }, (m: unknown) => void]> = [
    [channels.httpRequestEnd, onHttp],
    [channels.tcpConnectionEnd, onTcp],
    [channels.serverFailure, onFailure],
    [channels.healthCheck, onCheck],
    [channels.configReload, onReload],
    [channels.error, onError],
    [channels.rateLimitDenied, onDenied],
    [channels.rateLimitStoreError, onStoreError],
    [channels.peerRole, onPeerRole],
    [channels.peerRejected, onPeerRejected],
  ]
  for (const [ch, f] of subscriptions) ch.subscribe(f)

  let closed = false
  return {
    registry: Registry.merge([own, processMetrics()]),
    rateLimited,
    peerTransitions,
    peerMessagesRejected,
    configReloads,
    close () {
      if (closed) return
      closed = true
      for (const [ch, f] of subscriptions) ch.unsubscribe(f)
    },
  }
}

/** `upstream\0server` of every server the runtime has now. */
function serverKeys (runtime: Runtime): Set<string> {
  const out = new Set<string>()
  for (const u of runtime.upstreams.values()) for (const s of u.servers) out.add(u.name + '\0' + s.address)
  return out
}

/** Resets `metric` (servers removed by a reload must vanish) and visits every server. */
function eachServer (
  runtime: Runtime,
  visit: (upstream: string, server: Server, now: number) => void,
  metric: { reset (): void },
): void {
  metric.reset()
  const now = runtime.clock.now()
  for (const u of runtime.upstreams.values()) {
    for (const s of u.servers) visit(u.name, s, now)
  }
}
