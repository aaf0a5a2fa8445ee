// The end of a passive ejection is a state change like any other: Upstream publishes it when the
// ejection runs out, as the state the server really goes to, once, and never for a server that a
// reload removed or whose ejection was replaced. Node's timers are faked; time is the ManualClock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import type { UpstreamConfig } from '../../../src/config/types.js'
import { channels, type ServerStateChange } from '../../../src/observability/events.js'
import { Upstream } from '../../../src/upstream/upstream.js'
import { upstreamConfig } from '../../helpers/upstream-config.js'
import type { Server } from '../../../src/upstream/server.js'

const EJECT_FOR = 1000

function configOf (addresses: string[], name = 'web'): UpstreamConfig {
  return upstreamConfig(addresses, { name, passive: { failures: 1, ejectFor: EJECT_FOR } })
}

const A = '10.0.0.1:80'
const B = '10.0.0.2:80'
const C = '10.0.0.3:80'

let events: ServerStateChange[] = []
const onState = (m: unknown): void => { events.push(m as ServerStateChange) }

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  events = []
  channels.serverState.subscribe(onState)
})
afterEach(() => {
  channels.serverState.unsubscribe(onState)
  vi.useRealTimers()
})

function eject (u: Upstream, s: Server): void {
  u.record(s, { ok: false, reason: 'status' })
}

/** Moves the clock and Node's timers on together. */
function advance (clock: ManualClock, ms: number): void {
  clock.advance(ms)
  vi.advanceTimersByTime(ms)
}

const ejected = (server: string): ServerStateChange => ({ upstream: 'web', server, from: 'up', to: 'down', reason: 'passive ejection' })
const over = (server: string, to = 'up'): ServerStateChange => ({ upstream: 'web', server, from: 'down', to, reason: 'ejection over' })

describe('the end of a passive ejection', () => {
  it('is published once, down → up (ejection over), when ejectFor has passed and not before', () => {
    const clock = new ManualClock(5000)
    const u = new Upstream(configOf([A, B]), { clock, random: () => 0 })
    eject(u, u.servers[0]!)
    expect(events).toEqual([ejected(A)])
    advance(clock, EJECT_FOR - 1)
    expect(events).toEqual([ejected(A)])
    advance(clock, 1)
    expect(events).toEqual([ejected(A), over(A)])
    advance(clock, 10 * EJECT_FOR)
    expect(events).toHaveLength(2)
  })

  it('goes by the clock: a timer that fires before the clock reaches the end waits for it', () => {
    const clock = new ManualClock(0)
    const u = new Upstream(configOf([A, B]), { clock, random: () => 0 })
    eject(u, u.servers[0]!)
    clock.advance(EJECT_FOR - 5)
    vi.advanceTimersByTime(EJECT_FOR)
    expect(events).toEqual([ejected(A)])
    advance(clock, 5)
    expect(events).toEqual([ejected(A), over(A)])
  })

  it('publishes the state the server goes to: drain; nothing for one disabled or down by health checks', () => {
    const clock = new ManualClock(0)
    const u = new Upstream(configOf([A, B, C, '10.0.0.4:80', '10.0.0.5:80', '10.0.0.6:80']), { clock, random: () => 0 })
    const [a, b, c] = u.servers as [Server, Server, Server]
    for (const s of [a, b, c]) eject(u, s)
    u.setAdminState(a, 'drain')
    u.setAdminState(b, 'disabled')
    u.setHealth(c, false)
    expect(events).toEqual([ejected(A), ejected(B), ejected(C), { upstream: 'web', server: B, from: 'down', to: 'disabled', reason: 'admin' }])
    events = []
    advance(clock, EJECT_FOR)
    expect(events).toEqual([over(A, 'drain')])
    u.setHealth(c, true)
    expect(events).toEqual([over(A, 'drain'), { upstream: 'web', server: C, from: 'down', to: 'up', reason: 'health check' }])
  })

  it('an ejection the peer extends ends once, at its new end; one the peer ends is not announced again', () => {
    const clock = new ManualClock(0)
    const u = new Upstream(configOf([A, B]), { clock, random: () => 0 })
    const [a, b] = u.servers as [Server, Server]
    eject(u, a)
    advance(clock, 500)
    u.setEjection(a, 2000)
    advance(clock, 1999)
    expect(events).toEqual([ejected(A)])
    advance(clock, 1)
    expect(events).toEqual([ejected(A), over(A)])

    events = []
    eject(u, b)
    u.setEjection(b, 0)
    advance(clock, 2 * EJECT_FOR)
    expect(events).toEqual([ejected(B), { upstream: 'web', server: B, from: 'down', to: 'up', reason: 'peer sync' }])
  })

  it('over a reload: a kept server\'s end is published once, by the new Upstream; a removed one\'s never', () => {
    const clock = new ManualClock(0)
    const old = new Upstream(configOf([A, B, C, '10.0.0.4:80']), { clock, random: () => 0 })
    const [a, b] = old.servers as [Server, Server]
    eject(old, a)
    eject(old, b)
    const next = new Upstream(configOf([A, C]), { clock, random: () => 0 }, old)
    next.commit()
    expect(next.server(A)).toBe(a)
    advance(clock, EJECT_FOR)
    expect(events).toEqual([ejected(A), ejected(B), over(A)])
  })

  it('a request still in flight on the replaced Upstream ejects: the end is published once; for a removed server, never', () => {
    const clock = new ManualClock(0)
    const old = new Upstream(configOf([A, B, C, '10.0.0.4:80']), { clock, random: () => 0 })
    const [a, b] = old.servers as [Server, Server]
    const next = new Upstream(configOf([A, C, '10.0.0.4:80']), { clock, random: () => 0 }, old)
    next.commit()
    eject(old, a)
    eject(old, b)
    advance(clock, EJECT_FOR)
    expect(events).toEqual([ejected(A), ejected(B), over(A)])
  })

  it('a reload that never commits (a listener failed to bind) leaves the running Upstream publishing', () => {
    const clock = new ManualClock(0)
    const old = new Upstream(configOf([A, B]), { clock, random: () => 0 })
    eject(old, old.servers[0]!)
    void new Upstream(configOf([B]), { clock, random: () => 0 }, old)
    advance(clock, EJECT_FOR)
    expect(events).toEqual([ejected(A), over(A)])
  })
})

describe('the ejection timer', () => {
  it('never keeps the process alive', () => {
    vi.useRealTimers()
    const timers = (): number => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length
    const before = timers()
    const clock = new ManualClock(0)
    const u = new Upstream({ ...configOf([A, B]), passive: { failures: 1, ejectFor: 60_000 } }, { clock, random: () => 0 })
    eject(u, u.servers[0]!)
    expect(u.servers[0]!.state(clock.now())).toBe('down')
    expect(timers()).toBe(before)
  })

  it('is not published by an upstream that was stopped (shutdown, or a reload without it)', () => {
    const clock = new ManualClock(5000)
    const u = new Upstream(configOf([A]), { clock, random: () => 0 })
    eject(u, u.servers[0]!)
    u.stop()
    advance(clock, EJECT_FOR + 10)
    expect(events).toEqual([ejected(A)])
  })
})
