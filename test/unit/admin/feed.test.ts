import dc from 'node:diagnostics_channel'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DashboardFeed } from '../../../src/admin/feed.js'
import type { DashboardEvent, Point } from '../../../src/admin/aggregator.js'
import { ManualClock } from '../../../src/clock.js'
import { channels } from '../../../src/observability/events.js'
import type { Runtime } from '../../../src/runtime/runtime.js'
import { Server } from '../../../src/upstream/server.js'
import { Upstream } from '../../../src/upstream/upstream.js'
import { upstreamConfig } from '../../helpers/upstream-config.js'

const T0 = 1_764_300_000_000

function fakeRuntime (clock: ManualClock, server: Server): Runtime {
  return {
    clock,
    listeners: [{ name: 'public', activeConnections: () => 2 }],
    upstreams: new Map([['web', { name: 'web', servers: [server] }]]),
  } as unknown as Runtime
}

let feed: DashboardFeed | undefined
afterEach(() => {
  feed?.stop()
  vi.useRealTimers()
})

describe('DashboardFeed', () => {
  it('turns the core\'s and the agreed pair / rate-limit channels into points and events', () => {
    const clock = new ManualClock(T0)
    const server = new Server({ text: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, backup: false, maxConnections: 0 })
    const ticks: Array<{ points: Point[], events: DashboardEvent[] }> = []
    feed = new DashboardFeed(() => fakeRuntime(clock, server), (t) => { ticks.push(t) }, clock)
    feed.start()
    channels.httpRequestEnd.publish({ listener: 'public', route: 'r', method: 'GET', host: 'h', path: '/', status: 200, client: 'c', upstream: 'web', server: '10.0.0.1:80', bytesIn: 0, bytesOut: 0, totalMs: 5, upstreamMs: 4, retries: 0 })
    dc.channel('tandem:ratelimit:denied').publish({ listener: 'public', limit: 'per-client' })
    server.healthy = false // what Upstream.setHealth() does before it publishes
    channels.serverState.publish({ upstream: 'web', server: '10.0.0.1:80', from: 'up', to: 'down', reason: 'health check' })
    dc.channel('tandem:peer:role').publish({ from: 'standby', to: 'active', term: 7, reason: 'peer-dead' })
    dc.channel('tandem:peer:sync').publish({ inSync: false })
    channels.configReload.publish({ result: 'failure' })
    clock.advance(1000)
    feed.tick()
    expect(ticks).toHaveLength(1)
    expect(ticks[0]!.points[0]!.listeners.public).toMatchObject({ codes: [0, 1, 0, 0, 0], limited: 1, active: 2, p50: 5 })
    expect(ticks[0]!.points[0]!.servers['web/10.0.0.1:80']).toEqual({ requests: 1, share: 1, responseMs: 4 })
    expect(ticks[0]!.events.map((e) => [e.kind, e.level, e.text])).toEqual([
      ['server', 'bad', 'web 10.0.0.1:80: up → down (health check)'],
      ['role', 'ok', 'role standby → active (peer-dead, term 7)'],
      ['sync', 'warn', 'pair out of sync'],
      ['reload', 'bad', 'config reload refused (invalid config)'],
      ['ratelimit', 'warn', 'listener public: 1 rate-limited in one second'],
    ])
  })

  // Was: the feed polled every server's state at each tick to notice an ejection's end, which no
  // event reported; the core publishes it now (as it does to the log and the SSE stream).
  it('lists the end of a passive ejection as the core publishes it', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const clock = new ManualClock(T0)
    const upstream = new Upstream(upstreamConfig(['10.0.0.1:80', '10.0.0.2:80'], { passive: { failures: 1, ejectFor: 2500 } }), { clock, random: () => 0 })
    const runtime = { clock, listeners: [], upstreams: new Map([['web', upstream]]) } as unknown as Runtime
    const events: DashboardEvent[] = []
    feed = new DashboardFeed(() => runtime, (t) => { events.push(...t.events) }, clock)
    feed.start()
    upstream.record(upstream.servers[0]!, { ok: false, reason: 'status' })
    feed.tick()
    clock.advance(2000)
    vi.advanceTimersByTime(2000)
    feed.tick()
    expect(events.map((e) => [e.level, e.text])).toEqual([['bad', 'web 10.0.0.1:80: up → down (passive ejection)']])
    clock.advance(1000)
    vi.advanceTimersByTime(1000)
    feed.tick()
    expect(events.map((e) => [e.level, e.text])).toEqual([
      ['bad', 'web 10.0.0.1:80: up → down (passive ejection)'],
      ['ok', 'web 10.0.0.1:80: down → up (ejection over)'],
    ])
  })

  it('unsubscribes on stop', () => {
    const clock = new ManualClock(T0)
    const server = new Server({ text: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, backup: false, maxConnections: 0 })
    feed = new DashboardFeed(() => fakeRuntime(clock, server), () => {}, clock)
    feed.start()
    expect(dc.channel('tandem:peer:role').hasSubscribers).toBe(true)
    feed.stop()
    expect(dc.channel('tandem:peer:role').hasSubscribers).toBe(false)
    expect(channels.serverState.hasSubscribers).toBe(false)
  })
})
