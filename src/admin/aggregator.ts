// The dashboard's time series: the core's events folded into one point per second, 10 minutes
// kept. Pure: time comes from an injected Clock (wall milliseconds, since points carry wall
// times for the chart axis) and sampling randomness from `random`; feed.ts does the subscribing.
//
// The event handlers run inside the core's publish calls, so they only count and push; sorting
// for percentiles and everything else happens once a second in tick().
import type { Clock } from '../clock.js'
import type { HttpRequestEnd, TcpConnectionEnd, TcpConnectionStart } from '../observability/events.js'
import { idleListener, listenerPoint, round, type DashboardEvent, type EventKind, type ListenerAcc, type ListenerPoint, type Point, type Sample, type ServerPoint } from './points.js'

export { percentile } from './points.js'
export type { DashboardEvent, EventKind, ListenerPoint, Point, Sample, ServerPoint } from './points.js'

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

interface ServerAcc { requests: number, rtSum: number, rtCount: number }

/** One second's counts; servers by upstream, then address (names the config's own strings, hashed once by V8). */
interface Second { listeners: Map<string, ListenerAcc>, servers: Map<string, Map<string, ServerAcc>> }

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
  /** current()'s last answer, and the second (unix s) it is for: most events fall in the same second. */
  private cur: Second | undefined
  private curAt = Number.NaN
  /** httpEnd's last accumulators: requests in a row mostly share a listener and a server. */
  private lastSec: Second | undefined
  private lastListenerName: string | undefined
  private lastListener: ListenerAcc | undefined
  private lastUpstream: string | undefined
  private lastAddress: string | undefined
  private lastServer: ServerAcc | undefined

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
    if (sec !== this.lastSec) {
      this.lastSec = sec
      this.lastListenerName = this.lastUpstream = this.lastAddress = undefined
    }
    if (e.listener !== this.lastListenerName) {
      this.lastListener = this.listener(e.listener, sec)
      this.lastListenerName = e.listener
    }
    const l = this.lastListener as ListenerAcc
    const cls = Math.floor(e.status / 100) - 1
    if (cls >= 0 && cls <= 4) l.codes[cls as 0 | 1 | 2 | 3 | 4]++
    l.ended++
    if (e.status >= 500) l.errors++
    this.sampleLatency(l, e.totalMs)
    if (e.upstream !== undefined && e.server !== undefined) {
      if (e.upstream !== this.lastUpstream || e.server !== this.lastAddress) {
        this.lastServer = this.server(e.upstream, e.server, sec)
        this.lastUpstream = e.upstream
        this.lastAddress = e.server
      }
      const s = this.lastServer as ServerAcc
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
    // Seconds are closed and dropped below: current() looks its second up afresh.
    this.curAt = Number.NaN
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
    const accServers = acc?.servers ?? new Map<string, Map<string, ServerAcc>>()
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
      perUpstream.set(upstream, (perUpstream.get(upstream) ?? 0) + (accServers.get(upstream)?.get(address)?.requests ?? 0))
    }
    const servers: Record<string, ServerPoint> = {}
    for (const { upstream, address } of sample.servers) {
      const key = upstream + '/' + address
      const acc = accServers.get(upstream)?.get(address)
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
    let byAddress = sec.servers.get(upstream)
    if (byAddress === undefined) sec.servers.set(upstream, byAddress = new Map())
    let s = byAddress.get(address)
    if (s === undefined) {
      s = { requests: 0, rtSum: 0, rtCount: 0 }
      byAddress.set(address, s)
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
    if (now === this.curAt) return this.cur as Second
    let sec = this.open.get(now)
    if (sec === undefined) {
      sec = { listeners: new Map(), servers: new Map() }
      this.open.set(now, sec)
      for (const key of this.open.keys()) {
        if (this.open.size <= 2) break
        this.open.delete(key)
      }
    }
    this.cur = sec
    this.curAt = now
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
