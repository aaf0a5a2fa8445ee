import type { Config, HostPort, ListenerConfig } from '../config/types.js'
import { systemClock, type Clock } from '../clock.js'
import { startHealthChecks } from '../health/active.js'
import { HttpListener } from '../listener/http-listener.js'
import { TcpListener } from '../listener/tcp-listener.js'
import type { Listener, ListenerDeps } from '../listener/types.js'
import { RateLimiters } from '../ratelimit/limiters.js'
import { HttpPools } from '../upstream/pools.js'
import { Upstream } from '../upstream/upstream.js'
import { afterAcceptPoll } from '../upstream/tcp-handle.js'
import { runShutdown } from './shutdown.js'

export interface RuntimeOptions {
  clock?: Clock
  random?: () => number
  /**
   * The running Runtime this one replaces (a reload): its servers, connection pools and bound
   * listeners at the same protocol and address are taken over by start().
   */
  previous?: Runtime
}

/**
 * Everything built from one validated Config: upstreams, listeners, health checks. A reload
 * builds a new Runtime beside the old one and hands traffic over; nothing here reads the file.
 */
export class Runtime {
  readonly upstreams = new Map<string, Upstream>()
  readonly listeners: Listener[] = []
  readonly pools: HttpPools
  /** Every rate limit's buckets; carried over a reload (unchanged limits keep their buckets). */
  readonly limiters: RateLimiters
  readonly clock: Clock
  readonly startedAt: number
  /** Role in an active/standby pair, set by the process owner (serve.ts); standalone: active. */
  role: 'active' | 'standby' | 'fault' = 'active'
  /** Listeners of the previous Runtime to take over in start(), with their new config. */
  private readonly adopted = new Map<Listener, ListenerConfig>()
  private readonly deps: ListenerDeps
  private previous: Runtime | undefined
  private health: { stop (): void } | undefined
  private stopping: Promise<boolean> | undefined

  constructor (readonly config: Config, options: RuntimeOptions = {}) {
    const previous = options.previous
    this.clock = options.clock ?? previous?.clock ?? systemClock
    this.startedAt = previous?.startedAt ?? Date.now()
    this.pools = previous?.pools ?? new HttpPools()
    const random = options.random ?? Math.random
    for (const [name, uc] of Object.entries(config.upstreams)) {
      this.upstreams.set(name, new Upstream(uc, { clock: this.clock, random }, previous?.upstreams.get(name)))
    }
    this.limiters = new RateLimiters(config, this.clock, previous?.limiters)
    this.deps = { upstreams: this.upstreams, clock: this.clock, random, limiters: this.limiters }
    this.previous = previous
    for (const lc of config.listeners) {
      const kept = previous?.listenerAt(lc.listen)
      // Adopted only under its own name: the name is every series' and log line's label, so a
      // renamed listener is a new one (the old one stops accepting and finishes its connections).
      if (kept !== undefined && kept.protocol === lc.protocol && kept.name === lc.name && kept.listening && !this.adopted.has(kept)) {
        this.adopted.set(kept, lc)
        this.listeners.push(kept)
      } else {
        this.listeners.push(this.createListener(lc))
      }
    }
  }

  private createListener (lc: ListenerConfig): Listener {
    return lc.protocol === 'http'
      ? new HttpListener(lc, { ...this.deps, pools: this.pools })
      : new TcpListener(lc, this.deps)
  }

  /** The listener configured on exactly this address (never a port-0 one). */
  listenerAt (address: HostPort): Listener | undefined {
    if (address.port === 0) return undefined
    const i = this.config.listeners.findIndex((lc) => lc.listen.port === address.port && lc.listen.host === address.host)
    return i === -1 ? undefined : this.listeners[i]
  }

  listener (name: string): Listener | undefined {
    return this.listeners.find((l) => l.name === name)
  }

  /**
   * Binds every new listener (unless `bind` is false: a pair's standby with `standby: closed`),
   * then takes over the adopted ones and starts health checks. On a bind failure it unbinds what
   * it bound, binds again what the previous Runtime released for it, and throws.
   */
  async start (options: { bind?: boolean } = {}): Promise<void> {
    const fresh = options.bind === false ? [] : this.listeners.filter((l) => !this.adopted.has(l))
    // An address that changes protocol is released by the old listener before the new one binds.
    const released: Listener[] = []
    for (const lc of this.config.listeners) {
      const old = this.previous?.listenerAt(lc.listen)
      if (old !== undefined && !this.adopted.has(old) && old.listening) {
        await old.stopAccepting()
        released.push(old)
      }
    }
    try {
      // A pair's standby with `standby: open` binds without serving (see Listener.serve).
      for (const l of fresh) {
        l.serve(this.role === 'active')
        await l.listen()
      }
    } catch (err) {
      await Promise.all(fresh.map(async (l) => { await l.stopAccepting(); l.destroy() }))
      // The running config keeps serving: what was released for this one binds again.
      for (const old of released) await old.listen().catch(() => {})
      this.limiters.stop(this.previous?.limiters.redis)
      throw err
    }
    this.limiters.start(this.previous?.limiters)
    for (const [listener, lc] of this.adopted) listener.update(lc, this.deps)
    for (const upstream of this.upstreams.values()) {
      upstream.commit()
      for (const server of upstream.servers) this.pools.reconfigure(server, upstream.config)
    }
    this.pools.use(new Set([...this.upstreams.values()].flatMap((u) => u.servers)))
    for (const [name, upstream] of this.previous?.upstreams ?? []) if (!this.upstreams.has(name)) upstream.stop()
    this.health = startHealthChecks(this.upstreams.values(), { clock: this.clock, random: Math.random })
    this.previous = undefined
  }

  // --- pair (peer/): listeners follow the role -------------------------------------------------
  /** Binds every listener not bound yet and serves on all; on a failure unbinds them all and throws. */
  async bindListeners (): Promise<void> {
    try {
      for (const l of this.listeners) {
        if (!l.listening) await l.listen()
        l.serve(true)
      }
    } catch (err) {
      void this.standDown()
      throw err
    }
  }

  /**
   * Stops serving: unbinds (`standby: closed`), or with `keepBound` (`standby: open`) keeps the
   * sockets and refuses on them (Listener.serve); in both, idle keep-alive connections close now
   * and busy ones after their response. `how`:
   * - 'queued' (a hand-over): the connections the kernel completed while this node was active
   *   and still holds in its accept queue are accepted first, in one poll, and answered as those
   *   already open, since closing the socket would reset them; serving stops after that poll
   *   unless the node became active again meanwhile;
   * - 'now' (fault: an isolated node must take nothing more): serving stops before this returns;
   * - 'abrupt': as 'now', and the open connections are cut too (a frozen node must not answer).
   */
  async standDown (how: 'queued' | 'now' | 'abrupt' = 'now', keepBound = false): Promise<void> {
    if (how === 'queued') {
      await afterAcceptPoll()
      if (this.role === 'active') return
    }
    for (const l of this.listeners) {
      if (keepBound) l.serve(false)
      else if (l.listening) void l.stopAccepting(true)
      if (how === 'abrupt') l.destroy()
    }
  }
  // --- end pair ----------------------------------------------------------------------------------

  /**
   * After a reload: stops what `next` did not take over (health checks, listeners no longer
   * configured, idle pools of removed servers), letting in-flight work finish for up to
   * `timeoutMs`. Resolves true when everything finished in time.
   */
  async retire (next: Runtime, timeoutMs = next.config.shutdownTimeout): Promise<boolean> {
    this.health?.stop()
    const gone = this.listeners.filter((l) => !next.listeners.includes(l))
    const { clean } = await runShutdown({
      delayMs: 0,
      timeoutMs,
      clock: systemClock,
      notReady () {},
      stopAccepting: async () => { await Promise.all(gone.map(async (l) => { await l.stopAccepting() })) },
      drained: async () => { await Promise.all(gone.map(async (l) => { await l.drained() })) },
      closeRest: async () => { for (const l of gone) l.destroy() },
    })
    next.pools.retain()
    return clean
  }

  /** Stops health checks and unbinds every listener; established connections go on. */
  async stopAccepting (): Promise<void> {
    this.health?.stop()
    await Promise.all(this.listeners.map(async (l) => { await l.stopAccepting() }))
  }

  /** Resolves when no request, tunnel or TCP stream is in flight on any listener. */
  async drained (): Promise<void> {
    await Promise.all(this.listeners.map(async (l) => { await l.drained() }))
  }

  /** Closes every client connection and upstream pool still open, in-flight or not. */
  async closeAll (): Promise<void> {
    this.health?.stop()
    for (const upstream of this.upstreams.values()) upstream.stop()
    // Awaited: the ends of what was cut must be published before a shutdown detaches the log.
    const cut = Promise.all(this.listeners.map(async (l) => { await l.destroy() }))
    this.limiters.stop()
    await this.pools.close()
    await cut
  }

  /**
   * Graceful stop without a shutdownDelay (tests, embedding): stop accepting, let in-flight
   * requests and streams finish for up to `timeoutMs`, then close what is left. Resolves true
   * when everything finished in time. The process's own sequence is in serve.ts.
   */
  async stop (timeoutMs = this.config.shutdownTimeout): Promise<boolean> {
    this.stopping ??= runShutdown({
      delayMs: 0,
      timeoutMs,
      clock: systemClock,
      notReady () {},
      stopAccepting: async () => { await this.stopAccepting() },
      drained: async () => { await this.drained() },
      closeRest: async () => { await this.closeAll() },
    }).then((r) => r.clean)
    return await this.stopping
  }
}
