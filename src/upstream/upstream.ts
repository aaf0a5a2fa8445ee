import type { UpstreamConfig } from '../config/types.js'
import type { Clock } from '../clock.js'
import type { Balancer } from '../balancer/types.js'
import { createBalancer } from '../balancer/index.js'
import { backupsAfter, candidates } from '../balancer/candidates.js'
import { ewma } from '../balancer/response-time.js'
import { channels } from '../observability/events.js'
import { Server, type AdminState } from './server.js'

export interface UpstreamDeps {
  clock: Clock
  random: () => number
}

export type Outcome =
  | { ok: true, ms?: number }
  | { ok: false, reason: 'connect' | 'timeout' | 'reset' | 'status', ms?: number }

/**
 * A pool of servers with its balancer. Pool mechanics live here once for every strategy:
 * eligibility, acquire/release accounting, passive ejection and the slow-start ramp.
 */
export class Upstream {
  readonly name: string
  readonly servers: Server[]
  private readonly balancer: Balancer
  private readonly byAddress = new Map<string, Server>()
  /** One timer per ejected server: an ejection ends by time alone, and its end is a state change too. */
  private readonly ejectionEnds = new Map<Server, ReturnType<typeof setTimeout>>()
  /** Until commit() (a reload): the Upstream this one replaces, whose ejection timers it takes over. */
  private previous: Upstream | undefined
  /** After a reload: the Upstream that replaced this one. Requests still in flight here may eject. */
  private successor: Upstream | undefined

  /**
   * `previous` (a reload): servers it has at the same address are taken over, so they keep
   * their health, admin state, counters and connection pool; `commit()` applies the new config.
   */
  constructor (readonly config: UpstreamConfig, private readonly deps: UpstreamDeps, previous?: Upstream) {
    this.name = config.name
    this.servers = config.servers.map((sc) => {
      const kept = previous?.server(sc.text)
      if (kept !== undefined) return kept
      const fresh = new Server(sc)
      fresh.upSince = Number.NEGATIVE_INFINITY
      return fresh
    })
    for (const s of this.servers) this.byAddress.set(s.address, s)
    this.balancer = createBalancer(config.balance)
    this.balancer.update?.(this.servers)
    this.previous = previous
  }

  /** Applies this config's weights and limits to servers taken over from a previous Upstream. */
  commit (): void {
    for (const [i, sc] of this.config.servers.entries()) this.servers[i]?.apply(sc)
    // Without active checks every server counts as up: nothing else would lift a verdict the
    // checks of the previous config left.
    if (this.config.health === undefined) {
      for (const server of this.servers) {
        this.setHealth(server, true, 'health checks removed')
        // The previous config's results would otherwise show in the status for ever.
        server.lastCheck = undefined
        server.checkStreak = 0
      }
    }
    this.balancer.update?.(this.servers)
    this.takeOverEjections()
  }

  /** The upstream is gone (shutdown, or a reload without it): the ends of its ejections are no news. */
  stop (): void {
    for (const timer of this.ejectionEnds.values()) clearTimeout(timer)
    this.ejectionEnds.clear()
  }

  /** Watches the ejections of the servers kept over a reload; a removed server's end is no news. */
  private takeOverEjections (): void {
    const previous = this.previous
    if (previous === undefined) return
    this.previous = undefined
    previous.successor = this
    for (const timer of previous.ejectionEnds.values()) clearTimeout(timer)
    previous.ejectionEnds.clear()
    const now = this.deps.clock.now()
    for (const server of this.servers) this.watchEjection(server, now)
  }

  server (address: string): Server | undefined {
    return this.byAddress.get(address)
  }

  /**
   * The server for the next request or connection, or undefined when none is eligible.
   * `exclude` holds servers already tried for this request.
   */
  pick (exclude?: ReadonlySet<Server>): Server | undefined {
    const now = this.deps.clock.now()
    let eligible = candidates(this.servers, now)
    if (exclude !== undefined && exclude.size > 0) {
      eligible = eligible.filter((s) => !exclude.has(s))
      if (eligible.length === 0) eligible = backupsAfter(this.servers, exclude, now)
      if (eligible.length === 0) return undefined
    }
    if (this.config.slowStart > 0) this.rampWeights(eligible, now)
    return this.balancer.pick(eligible, { now, random: this.deps.random })
  }

  acquire (server: Server): void {
    server.active++
    server.requests++
  }

  /**
   * Ends what acquire() started; feeds response time and passive ejection. Without an outcome
   * (the client left, or sent what no server should have to judge) the server is not judged.
   */
  release (server: Server, outcome?: Outcome): void {
    server.active--
    if (outcome !== undefined) this.record(server, outcome)
  }

  /** Outcome of an attempt that never held the server (e.g. a failed connect before acquire). */
  record (server: Server, outcome: Outcome): void {
    const now = this.deps.clock.now()
    if (outcome.ms !== undefined && outcome.ok) {
      server.rttEwma = ewma(server.rttEwma, server.rttAt, outcome.ms, now)
      server.rttAt = now
    }
    if (outcome.ok) {
      server.consecutiveFailures = 0
      return
    }
    server.failures++
    server.consecutiveFailures++
    channels.serverFailure.publish({ upstream: this.name, server: server.address, reason: outcome.reason })
    const passive = this.config.passive
    if (passive !== undefined && server.consecutiveFailures >= passive.failures && server.ejectedUntil <= now &&
      this.ejectedCount(now) < maxEjected(this.servers.length)) {
      const from = server.state(now)
      server.ejectedUntil = now + passive.ejectFor
      server.upSince = server.ejectedUntil
      server.consecutiveFailures = 0
      this.changed(server, from, now, 'passive ejection')
      this.watchEjection(server, now)
    }
  }

  private ejectedCount (now: number): number {
    let n = 0
    for (const s of this.servers) if (s.ejectedUntil > now) n++
    return n
  }

  /** The one setter health checks use. */
  setHealth (server: Server, healthy: boolean, reason = 'health check'): void {
    if (server.healthy === healthy) return
    const now = this.deps.clock.now()
    const from = server.state(now)
    server.healthy = healthy
    if (healthy) server.upSince = now
    this.changed(server, from, now, reason)
  }

  setAdminState (server: Server, state: AdminState): void {
    if (server.adminState === state) return
    const now = this.deps.clock.now()
    const from = server.state(now)
    server.adminState = state
    if (state === 'enabled') server.upSince = now
    this.changed(server, from, now, 'admin')
  }

  setWeight (server: Server, weight: number): void {
    if (server.weight === weight) return
    server.weight = weight
    server.effectiveWeight = weight
    this.balancer.update?.(this.servers)
    channels.serverWeight.publish({ upstream: this.name, server: server.address, weight })
  }

  /**
   * Passive ejection set from outside (the peer's state): out for `ms` from now; 0 ends it.
   * Remaining times, not clock values, cross processes.
   */
  setEjection (server: Server, ms: number, reason = 'peer sync'): void {
    const now = this.deps.clock.now()
    const until = ms > 0 ? now + ms : 0
    if ((until === 0 && server.ejectedUntil <= now) || Math.abs(until - server.ejectedUntil) < 1) return
    const from = server.state(now)
    server.ejectedUntil = until
    if (until > 0) server.upSince = until
    this.changed(server, from, now, reason)
    this.watchEjection(server, now)
  }

  /**
   * (Re)arms the timer that publishes the end of `server`'s ejection, replacing any earlier one;
   * none when it is not ejected. Runs on the Upstream now serving `server`, never a retired one.
   */
  private watchEjection (server: Server, now: number): void {
    let owner: Upstream = this
    while (owner.successor !== undefined) owner = owner.successor
    const armed = owner.ejectionEnds.get(server)
    if (armed !== undefined) clearTimeout(armed)
    owner.ejectionEnds.delete(server)
    if (server.ejectedUntil <= now || owner.server(server.address) !== server) return
    const until = server.ejectedUntil
    const timer = setTimeout(() => { owner.ejectionOver(server, until) }, Math.ceil(until - now))
    // Like health checks, this alone must not keep the process alive.
    timer.unref()
    owner.ejectionEnds.set(server, timer)
  }

  private ejectionOver (server: Server, until: number): void {
    this.ejectionEnds.delete(server)
    // Replaced or ended meanwhile: whoever changed it armed or published what follows.
    if (server.ejectedUntil !== until) return
    const now = this.deps.clock.now()
    // Node's timers run off a loop time that may lag the clock: early by a few ms at most.
    if (now < until) { this.watchEjection(server, now); return }
    // Its state while ejected; the state it goes to may be drain, or still down (health, admin).
    const from = server.state(until - 1)
    const to = server.state(now)
    // Not through changed(): candidates() admits the server again by time, so the balancer needs
    // no update (which would restart round-robin's cycle where an ejection's end never did).
    if (from !== to) channels.serverState.publish({ upstream: this.name, server: server.address, from, to, reason: 'ejection over' })
  }

  private changed (server: Server, from: string, now: number, reason: string): void {
    this.balancer.update?.(this.servers)
    const to = server.state(now)
    if (from !== to) channels.serverState.publish({ upstream: this.name, server: server.address, from, to, reason })
  }

  private rampWeights (eligible: readonly Server[], now: number): void {
    const span = this.config.slowStart
    for (const s of eligible) {
      const age = now - s.upSince
      s.effectiveWeight = age >= span ? s.weight : s.weight * Math.max(0.05, age / span)
    }
  }
}

/**
 * At most half of a pool (rounded down, but always one) is passively ejected at once, as
 * Envoy's max_ejection_percent bounds outlier detection: failures that hit every server alike
 * (a bad deploy, a client's poison request) must not empty the pool; active health checks
 * still take down servers that are really down.
 */
export function maxEjected (servers: number): number {
  return Math.max(1, Math.floor(servers / 2))
}
