// Feeds the dashboard Aggregator from the core's diagnostics_channel events (nothing new on the
// request path: the same events logs and metrics take) and closes a point every second. Runs
// while the admin server runs, whether or not a dashboard is open, so a new one gets 10 minutes.
import dc from 'node:diagnostics_channel'
import { wallClock, type Clock } from '../clock.js'
import { channels, type ConfigReload, type HttpRequestEnd, type ServerStateChange, type TcpConnectionEnd, type TcpConnectionStart } from '../observability/events.js'
import type { Runtime } from '../runtime/runtime.js'
import { Aggregator, type DashboardEvent, type Point, type Sample } from './aggregator.js'

// Channels other parts publish under names agreed in notes/shared-names.md. Taken by name so
// the dashboard works whether or not the module declaring them is in this build.
const peerRole = dc.channel('tandem:peer:role')
const peerSync = dc.channel('tandem:peer:sync')
const rateLimitDenied = dc.channel('tandem:ratelimit:denied')

interface PeerRole { from?: string, to?: string, term?: number, reason?: string }

export type TickListener = (tick: { points: Point[], events: DashboardEvent[] }) => void

export class DashboardFeed {
  readonly aggregator: Aggregator
  private timer: NodeJS.Timeout | undefined
  private readonly subscriptions: Array<[dc.Channel, (m: unknown) => void]>

  constructor (private readonly runtime: () => Runtime, private readonly onTick: TickListener, clock: Clock = wallClock) {
    const agg = new Aggregator({ clock })
    this.aggregator = agg
    this.subscriptions = [
      [channels.httpRequestEnd, (m) => { agg.httpEnd(m as HttpRequestEnd) }],
      [channels.tcpConnectionStart, (m) => { agg.tcpStart(m as TcpConnectionStart) }],
      [channels.tcpConnectionEnd, (m) => { agg.tcpEnd(m as TcpConnectionEnd) }],
      [channels.serverState, (m) => {
        const e = m as ServerStateChange
        const level = e.to === 'up' ? 'ok' : e.to === 'down' ? 'bad' : 'warn'
        agg.event('server', level, `${e.upstream} ${e.server}: ${e.from} → ${e.to} (${e.reason})`)
      }],
      [channels.configReload, (m) => {
        const ok = (m as ConfigReload).result === 'success'
        agg.event('reload', ok ? 'ok' : 'bad', ok ? 'config reloaded' : 'config reload refused (invalid config)')
      }],
      [peerRole, (m) => {
        const e = m as PeerRole
        const level = e.to === 'active' ? 'ok' : e.to === 'fault' ? 'bad' : 'warn'
        const term = e.term === undefined ? '' : `, term ${e.term}`
        agg.event('role', level, `role ${e.from ?? '?'} → ${e.to ?? '?'} (${e.reason ?? 'unknown'}${term})`)
      }],
      [peerSync, (m) => {
        const inSync = (m as { inSync?: boolean }).inSync === true
        agg.event('sync', inSync ? 'ok' : 'warn', inSync ? 'pair in sync' : 'pair out of sync')
      }],
      [rateLimitDenied, (m) => { agg.rateLimited(String((m as { listener?: unknown }).listener ?? '')) }],
    ]
  }

  start (): void {
    if (this.timer !== undefined) return
    for (const [ch, f] of this.subscriptions) ch.subscribe(f)
    this.schedule()
  }

  stop (): void {
    if (this.timer === undefined) return
    clearTimeout(this.timer)
    this.timer = undefined
    for (const [ch, f] of this.subscriptions) ch.unsubscribe(f)
  }

  /** Closes the seconds past and hands new points and events to the listener. */
  tick (): void {
    const tick = this.aggregator.tick(sampleOf(this.runtime()))
    if (tick.points.length > 0 || tick.events.length > 0) this.onTick(tick)
  }

  /** Closes the second just past; runs shortly after each wall-clock second turns. */
  private schedule (): void {
    this.timer = setTimeout(() => {
      try {
        this.tick()
      } finally {
        if (this.timer !== undefined) this.schedule()
      }
    }, 1020 - (Date.now() % 1000))
    this.timer.unref()
  }
}

function sampleOf (runtime: Runtime): Sample {
  const servers: Array<{ upstream: string, address: string }> = []
  for (const u of runtime.upstreams.values()) {
    for (const s of u.servers) servers.push({ upstream: u.name, address: s.address })
  }
  return {
    listeners: runtime.listeners.map((l) => ({ name: l.name, active: l.activeConnections() })),
    servers,
  }
}
