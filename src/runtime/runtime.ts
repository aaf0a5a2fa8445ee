import type { Config, ListenerConfig } from '../config/types.js'
import { systemClock, type Clock } from '../clock.js'
import { startHealthChecks } from '../health/active.js'
import { HttpListener } from '../listener/http-listener.js'
import { TcpListener } from '../listener/tcp-listener.js'
import type { Listener, ListenerDeps } from '../listener/types.js'
import { HttpPools } from '../upstream/pools.js'
import { Upstream } from '../upstream/upstream.js'

export interface RuntimeOptions {
  clock?: Clock
  random?: () => number
}

/**
 * Everything built from one validated Config: upstreams, listeners, health checks. A reload
 * builds a new Runtime beside the old one and hands traffic over; nothing here reads the file.
 */
export class Runtime {
  readonly upstreams = new Map<string, Upstream>()
  readonly listeners: Listener[] = []
  readonly pools = new HttpPools()
  readonly clock: Clock
  readonly startedAt = Date.now()
  private health: { stop (): void } | undefined
  private stopping: Promise<void> | undefined

  constructor (readonly config: Config, options: RuntimeOptions = {}) {
    this.clock = options.clock ?? systemClock
    const random = options.random ?? Math.random
    for (const [name, uc] of Object.entries(config.upstreams)) {
      this.upstreams.set(name, new Upstream(uc, { clock: this.clock, random }))
    }
    const deps: ListenerDeps = { upstreams: this.upstreams, clock: this.clock, random }
    for (const lc of config.listeners) this.listeners.push(this.createListener(lc, deps))
  }

  private createListener (lc: ListenerConfig, deps: ListenerDeps): Listener {
    return lc.protocol === 'http'
      ? new HttpListener(lc, { ...deps, pools: this.pools })
      : new TcpListener(lc, deps)
  }

  listener (name: string): Listener | undefined {
    return this.listeners.find((l) => l.name === name)
  }

  /** Binds every listener and starts health checks; on a bind failure unbinds what was bound. */
  async start (): Promise<void> {
    try {
      for (const l of this.listeners) await l.listen()
    } catch (err) {
      await Promise.all(this.listeners.map(async (l) => { await l.stopAccepting(); l.destroy() }))
      throw err
    }
    this.health = startHealthChecks(this.upstreams.values(), { clock: this.clock, random: Math.random })
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests and streams finish for up to
   * `timeoutMs`, then close what is left. Resolves true when everything finished in time.
   */
  async stop (timeoutMs = this.config.shutdownTimeout): Promise<boolean> {
    let clean = true
    this.stopping ??= (async () => {
      this.health?.stop()
      await Promise.all(this.listeners.map(async (l) => { await l.stopAccepting() }))
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
      clean = await Promise.race([Promise.all(this.listeners.map(async (l) => { await l.drained() })).then(() => true), deadline])
      clearTimeout(timer)
      for (const l of this.listeners) l.destroy()
      await this.pools.close()
    })()
    await this.stopping
    return clean
  }
}
