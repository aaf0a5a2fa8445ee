// The dashboard's time series: the core's events folded into one point per second, 10 minutes
// kept. Pure: time comes from an injected Clock (wall milliseconds, since points carry wall
// times for the chart axis) and sampling randomness from `random`; feed.ts does the subscribing.
//
// The event handlers run inside the core's publish calls, so they only count and push; sorting
// for percentiles and everything else happens once a second in tick().
import type { Clock } from '../clock.js'
import type { HttpRequestEnd, TcpConnectionEnd, TcpConnectionStart } from '../observability/events.js'

/** One listener's second. Rates are per second; latencies in ms, null when nothing was answered. */
export interface ListenerPoint {
  /** HTTP responses by status class: 1xx..5xx (a 4xx/5xx the proxy made itself counts too). */
  codes: [number, number, number, number, number]
  p50: number | null
  p95: number | null
  p99: number | null
  /** 5xx responses (HTTP) or failed connections (TCP) over all ended; null when none ended. */
  errorRate: number | null
  /** Open client connections when the second closed. */
  active: number
  /** TCP connections opened. */
  conns: number
  /** TCP bytes, client to upstream and back; counted when a connection closes, as the metric is. */
  bytesIn: number
  bytesOut: number
  /** Requests or connections refused by a rate limit. */
  limited: number
}

export interface ServerPoint {
  /** HTTP requests answered plus TCP connections opened. */
  requests: number
  /** This server's part of its upstream's requests in this second, 0..1; null when the upstream had none. */
  share: number | null
  /** Mean time to response headers (HTTP); null without samples. */
  responseMs: number | null
}

export interface Point {
  /** Unix seconds at the start of the second. */
  t: number
  listeners: Record<string, ListenerPoint>
  /** Keyed `upstream/address`. */
  servers: Record<string, ServerPoint>
}

export type EventKind = 'server' | 'role' | 'sync' | 'reload' | 'ratelimit'

export interface DashboardEvent {
  /** Unix milliseconds. */
  t: number
  kind: EventKind
  /** ok: back to normal; warn: needs a look; bad: lost capacity or redundancy. */
  level: 'ok' | 'warn' | 'bad'
  text: string
}

/** What tick() reads from the running proxy: every listener and server, so idle ones get points too. */
export interface Sample {
  listeners: ReadonlyArray<{ name: string, active: number }>
  servers: ReadonlyArray<{ upstream: string, address: string }>
}

export interface AggregatorOptions {
  clock: Clock
  /** Uniform in [0, 1); picks which latencies stay once a second holds more than `maxSamples`. */
  random?: () => number
  /** Points kept; 600 = 10 minutes. */
  points?: number
  events?: number
  maxSamples?: number
}

/** A listener's denials must follow this many quiet seconds to be reported as a new spike. */
const QUIET_SECONDS = 5
const TCP_ERRORS = new Set<TcpConnectionEnd['end']>(['connect-failed', 'no-server', 'upstream-reset', 'rejected'])

interface ListenerAcc {
  codes: [number, number, number, number, number]
  latencies: number[]
  seen: number
  ended: number
  errors: number
  conns: number
  bytesIn: number
  bytesOut: number
  limited: number
}

interface ServerAcc { requests: number, rtSum: number, rtCount: number }

interface Second { listeners: Map<string, ListenerAcc>, servers: Map<string, ServerAcc> }

export class Aggregator {
  private readonly clock: Clock
  private readonly random: () => number
  private readonly maxPoints: number
  private readonly maxEvents: number
  private readonly maxSamples: number
  private readonly points: Point[] = []
  private readonly recent: DashboardEvent[] = []
  /** Events not yet handed out by tick(). */
  private pending: DashboardEvent[] = []
  /** Next second (unix s) to close into a point. */
  private second: number
  /** Counts per second not yet closed: the current one, and the one just past until tick() runs. */
  private readonly open = new Map<number, Second>()
  /** Per listener, the last second that had denials. */
  private readonly lastLimited = new Map<string, number>()

  constructor (options: AggregatorOptions) {
    this.clock = options.clock
    this.random = options.random ?? Math.random
    this.maxPoints = options.points ?? 600
    this.maxEvents = options.events ?? 50
    this.maxSamples = options.maxSamples ?? 4096
    this.second = Math.floor(this.clock.now() / 1000)
  }

  httpEnd (e: HttpRequestEnd): void {
    // One clock read per event: the second both counts go to.
    const sec = this.current()
    const l = this.listener(e.listener, sec)
    const cls = Math.floor(e.status / 100) - 1
    if (cls >= 0 && cls <= 4) l.codes[cls as 0 | 1 | 2 | 3 | 4]++
    l.ended++
    if (e.status >= 500) l.errors++
    this.sampleLatency(l, e.totalMs)
    if (e.upstream !== undefined && e.server !== undefined) {
      const s = this.server(e.upstream, e.server, sec)
      s.requests++
      if (e.upstreamMs !== undefined) {
        s.rtSum += e.upstreamMs
        s.rtCount++
      }
    }
  }

  tcpStart (e: TcpConnectionStart): void {
    const sec = this.current()
    this.listener(e.listener, sec).conns++
    this.server(e.upstream, e.server, sec).requests++
  }

  tcpEnd (e: TcpConnectionEnd): void {
    const l = this.listener(e.listener)
    l.ended++
    if (TCP_ERRORS.has(e.end)) l.errors++
    l.bytesIn += e.bytesIn
    l.bytesOut += e.bytesOut
  }

  rateLimited (listener: string): void {
    this.listener(listener).limited++
  }

  /** Records an event for the list (and, for roles, the charts' time axis). */
  event (kind: EventKind, level: DashboardEvent['level'], text: string): DashboardEvent {
    const e = { t: this.clock.now(), kind, level, text }
    this.recent.push(e)
    if (this.recent.length > this.maxEvents) this.recent.shift()
    this.pending.push(e)
    if (this.pending.length > this.maxEvents) this.pending.shift()
    return e
  }

  /**
   * Closes every second that has fully passed and returns the new points (none when called
   * again within the same second; empty seconds in between get idle points) with the events
   * recorded since the last tick. `sample` gives the listeners and servers to report and each
   * listener's open connections now.
   */
  tick (sample: Sample): { points: Point[], events: DashboardEvent[] } {
    const now = Math.floor(this.clock.now() / 1000)
    const fresh: Point[] = []
    // After a long stall only the newest maxPoints seconds can be kept anyway.
    if (now - this.second > this.maxPoints) this.second = now - this.maxPoints
    while (this.second < now) {
      fresh.push(this.close(sample))
      this.second++
    }
    for (const key of this.open.keys()) if (key < this.second) this.open.delete(key)
    const events = this.pending
    this.pending = []
    return { points: fresh.slice(-this.maxPoints), events }
  }

  /** Everything kept, oldest first: what a new dashboard gets on connect. */
  history (): { points: Point[], events: DashboardEvent[] } {
    return { points: [...this.points], events: [...this.recent] }
  }

  private close (sample: Sample): Point {
    const acc = this.open.get(this.second)
    this.open.delete(this.second)
    const accListeners = acc?.listeners ?? new Map<string, ListenerAcc>()
    const accServers = acc?.servers ?? new Map<string, ServerAcc>()
    const listeners: Record<string, ListenerPoint> = {}
    for (const { name, active } of sample.listeners) {
      const acc = accListeners.get(name)
      listeners[name] = acc === undefined ? idleListener(active) : listenerPoint(acc, active)
      const limited = acc?.limited ?? 0
      if (limited > 0) {
        const last = this.lastLimited.get(name)
        if (last === undefined || this.second - last > QUIET_SECONDS) {
          this.event('ratelimit', 'warn', `listener ${name}: ${limited} rate-limited in one second`)
        }
        this.lastLimited.set(name, this.second)
      }
    }
    const perUpstream = new Map<string, number>()
    for (const { upstream, address } of sample.servers) {
      perUpstream.set(upstream, (perUpstream.get(upstream) ?? 0) + (accServers.get(upstream + '/' + address)?.requests ?? 0))
    }
    const servers: Record<string, ServerPoint> = {}
    for (const { upstream, address } of sample.servers) {
      const key = upstream + '/' + address
      const acc = accServers.get(key)
      const total = perUpstream.get(upstream) ?? 0
      const requests = acc?.requests ?? 0
      servers[key] = {
        requests,
        share: total === 0 ? null : round(requests / total, 4),
        responseMs: acc === undefined || acc.rtCount === 0 ? null : round(acc.rtSum / acc.rtCount, 2),
      }
    }
    const point = { t: this.second, listeners, servers }
    this.points.push(point)
    if (this.points.length > this.maxPoints) this.points.shift()
    return point
  }

  private listener (name: string, sec = this.current()): ListenerAcc {
    const listeners = sec.listeners
    let l = listeners.get(name)
    if (l === undefined) {
      l = { codes: [0, 0, 0, 0, 0], latencies: [], seen: 0, ended: 0, errors: 0, conns: 0, bytesIn: 0, bytesOut: 0, limited: 0 }
      listeners.set(name, l)
    }
    return l
  }

  private server (upstream: string, address: string, sec = this.current()): ServerAcc {
    const key = serverKey(upstream, address)
    const servers = sec.servers
    let s = servers.get(key)
    if (s === undefined) {
      s = { requests: 0, rtSum: 0, rtCount: 0 }
      servers.set(key, s)
    }
    return s
  }

  /**
   * The counts of the second now. Events of a second are counted even when they arrive before
   * tick() closed the second before it. Seconds no tick closed in time (a stalled timer) are
   * dropped, oldest first, rather than credited to another second: their points show idle.
   */
  private current (): Second {
    const now = Math.floor(this.clock.now() / 1000)
    let sec = this.open.get(now)
    if (sec === undefined) {
      sec = { listeners: new Map(), servers: new Map() }
      this.open.set(now, sec)
      for (const key of this.open.keys()) {
        if (this.open.size <= 2) break
        this.open.delete(key)
      }
    }
    return sec
  }

  /** Keeps at most maxSamples latencies per second: a uniform reservoir (Vitter's algorithm R). */
  private sampleLatency (l: ListenerAcc, ms: number): void {
    l.seen++
    if (l.latencies.length < this.maxSamples) {
      l.latencies.push(ms)
      return
    }
    const j = Math.floor(this.random() * l.seen)
    if (j < this.maxSamples) l.latencies[j] = ms
  }
}

function idleListener (active: number): ListenerPoint {
  return { codes: [0, 0, 0, 0, 0], p50: null, p95: null, p99: null, errorRate: null, active, conns: 0, bytesIn: 0, bytesOut: 0, limited: 0 }
}

function listenerPoint (acc: ListenerAcc, active: number): ListenerPoint {
  const sorted = acc.latencies.sort((a, b) => a - b)
  return {
    codes: acc.codes,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    errorRate: acc.ended === 0 ? null : round(acc.errors / acc.ended, 4),
    active,
    conns: acc.conns,
    bytesIn: acc.bytesIn,
    bytesOut: acc.bytesOut,
    limited: acc.limited,
  }
}

/** Nearest-rank percentile of ascending `sorted`; null when empty. */
export function percentile (sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.max(1, Math.ceil(p * sorted.length))
  return round(sorted[rank - 1] ?? 0, 2)
}

function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/**
 * `upstream/address`, made once per pair: the names are the config's own strings, found by the
 * hashes V8 keeps in them, and the key is then the same string (hash kept too) request after
 * request instead of a new one to build and hash each time.
 */
const serverKeys = new Map<string, Map<string, string>>()

function serverKey (upstream: string, address: string): string {
  let byAddress = serverKeys.get(upstream)
  if (byAddress === undefined) {
    // Bounded: a reload may bring new names.
    if (serverKeys.size >= 1024) serverKeys.clear()
    serverKeys.set(upstream, byAddress = new Map())
  }
  let key = byAddress.get(address)
  if (key === undefined) {
    if (byAddress.size >= 1024) byAddress.clear()
    byAddress.set(address, key = upstream + '/' + address)
  }
  return key
}
