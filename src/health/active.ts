/*
 * Active health checks: per server, probe every `interval` (±10% jitter), feed rise/fall, and
 * write changes through Upstream.setHealth(), the one setter (Traefik StatusSetter, HAProxy
 * check_notify_*). The next probe is scheduled when the previous one settles, as HAProxy and
 * Envoy do, so at most one probe per server is ever in flight and a slow server is not piled on.
 */
import type { Clock } from '../clock.js'
import type { HealthConfig } from '../config/types.js'
import type { Server } from '../upstream/server.js'
import type { Upstream } from '../upstream/upstream.js'
import { channels } from '../observability/events.js'
import { httpProbe, tcpProbe, type ProbeResult } from './probes.js'
import { DOWN, UP, riseFall, type RiseFallState } from './rise-fall.js'

/** Runs one probe against a server; must settle (not reject) within about `cfg.timeout`. */
export type Probe = (server: Server, cfg: HealthConfig, signal: AbortSignal) => Promise<ProbeResult>

export interface HealthCheckerDeps {
  clock: Clock
  /** Uniform in [0, 1); spreads the schedule. */
  random: () => number
  /** Replaces the network probe (unit tests). */
  probe?: Probe
}

/** The part of Upstream the checker uses; Upstream satisfies it. */
export type HealthTarget = Pick<Upstream, 'name' | 'config' | 'servers' | 'setHealth'>

/** Jitter as a fraction of the interval: spreads checks of many servers apart. */
const JITTER = 0.1

interface Slot {
  readonly server: Server
  state: RiseFallState
  timer?: ReturnType<typeof setTimeout>
}

export const networkProbe: Probe = (server, cfg, signal) =>
  cfg.type === 'http'
    ? httpProbe(server.host, server.port, cfg, cfg.timeout, { signal })
    : tcpProbe(server.host, server.port, cfg.timeout, { signal })

export class HealthChecker {
  private slots: Slot[] = []
  private abort: AbortController | undefined

  constructor (private readonly upstream: HealthTarget, private readonly deps: HealthCheckerDeps) {}

  /**
   * Starts checking every server when the upstream has `health`; otherwise does nothing (servers
   * stay up). The first probe runs within interval/10. A server already unhealthy (state carried
   * over a reload) starts down and needs `rise` passes; one already checked healthy starts up
   * with `fall` failures to go; a new one starts up but one failure from down.
   */
  start (): void {
    const cfg = this.upstream.config.health
    if (cfg === undefined || this.abort !== undefined) return
    const abort = new AbortController()
    this.abort = abort
    this.slots = this.upstream.servers.map((server) => {
      // A server checked before (carried over a reload) keeps its verdict with a fresh streak,
      // and the status shows that streak, not the previous checker's.
      server.checkStreak = 0
      return { server, state: server.healthy ? UP : DOWN }
    })
    for (const slot of this.slots) {
      this.schedule(slot, cfg, abort.signal, this.deps.random() * cfg.interval * JITTER)
    }
  }

  /** Clears every timer and aborts probes in flight; their results are ignored. */
  stop (): void {
    this.abort?.abort()
    this.abort = undefined
    for (const slot of this.slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      slot.timer = undefined
    }
    this.slots = []
  }

  private schedule (slot: Slot, cfg: HealthConfig, signal: AbortSignal, delay: number): void {
    slot.timer = setTimeout(() => {
      slot.timer = undefined
      void this.check(slot, cfg, signal)
    }, delay)
    // Health checks alone must not keep the process alive.
    slot.timer.unref()
  }

  private async check (slot: Slot, cfg: HealthConfig, signal: AbortSignal): Promise<void> {
    const probe = this.deps.probe ?? networkProbe
    let result: ProbeResult
    try {
      result = await probe(slot.server, cfg, signal)
    } catch (err) {
      result = { ok: false, detail: err instanceof Error ? err.message : String(err), ms: 0 }
    }
    if (signal.aborted) return
    this.apply(slot, cfg, result)
    const delay = cfg.interval * (1 + JITTER * (2 * this.deps.random() - 1))
    this.schedule(slot, cfg, signal, delay)
  }

  private apply (slot: Slot, cfg: HealthConfig, result: ProbeResult): void {
    const { server } = slot
    const upstream = this.upstream.name
    server.lastCheck = result.detail === undefined
      ? { at: this.deps.clock.now(), ok: result.ok }
      : { at: this.deps.clock.now(), ok: result.ok, detail: result.detail }
    channels.healthCheck.publish(result.detail === undefined
      ? { upstream, server: server.address, ok: result.ok }
      : { upstream, server: server.address, ok: result.ok, detail: result.detail })
    // Someone else (peer sync) may have set health; restart the streak from what the server shows.
    if (slot.state.up !== server.healthy) slot.state = { up: server.healthy, count: 0 }
    const next = riseFall(slot.state, result.ok, cfg)
    slot.state = next.state
    server.checkStreak = next.state.count
    if (next.changed) this.upstream.setHealth(server, next.state.up)
  }
}

/** Starts a HealthChecker for every upstream that has `health`; stop() stops them all. */
export function startHealthChecks (
  upstreams: Iterable<HealthTarget>,
  deps: HealthCheckerDeps,
): { stop (): void } {
  const checkers: HealthChecker[] = []
  for (const upstream of upstreams) {
    if (upstream.config.health === undefined) continue
    const checker = new HealthChecker(upstream, deps)
    checker.start()
    checkers.push(checker)
  }
  return {
    stop () {
      for (const checker of checkers) checker.stop()
    },
  }
}
