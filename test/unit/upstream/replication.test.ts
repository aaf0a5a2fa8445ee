import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import type { UpstreamConfig } from '../../../src/config/types.js'
import { ServerStates, holdReportedDown } from '../../../src/upstream/replication.js'
import { Upstream } from '../../../src/upstream/upstream.js'
import { upstreamConfig } from '../../helpers/upstream-config.js'

const config: UpstreamConfig = upstreamConfig(['10.0.0.1:80', '10.0.0.2:80'], { passive: { failures: 1, ejectFor: 30_000 } })

function node (clock: ManualClock): { upstream: Upstream, states: ServerStates } {
  const upstream = new Upstream(config, { clock, random: () => 0 })
  return { upstream, states: new ServerStates(() => [upstream], () => clock.now()) }
}

describe('server state replication', () => {
  it('snapshot then apply reproduces health, drain, weight and the remaining ejection on another clock', () => {
    const ca = new ManualClock(1_000_000)
    const cb = new ManualClock(5)
    const a = node(ca)
    const b = node(cb)
    const [s1, s2] = a.upstream.servers as [typeof a.upstream.servers[0], typeof a.upstream.servers[0]]
    a.upstream.setHealth(s1, false)
    a.upstream.setAdminState(s2, 'drain')
    a.upstream.setWeight(s2, 7)
    a.upstream.record(s2, { ok: false, reason: 'connect' })
    ca.advance(10_000)
    b.states.apply(a.states.snapshot())
    const [b1, b2] = b.upstream.servers as [typeof b.upstream.servers[0], typeof b.upstream.servers[0]]
    expect(b1.healthy).toBe(false)
    expect(b2.adminState).toBe('drain')
    expect(b2.weight).toBe(7)
    expect(b2.ejectedUntil).toBe(5 + 20_000)
    expect(b1.state(cb.now())).toBe('down')
    expect(b2.state(cb.now())).toBe('down')
    cb.advance(20_000)
    expect(b2.state(cb.now())).toBe('drain')
  })

  it('takeChanges sends only what changed, once', () => {
    const clock = new ManualClock(0)
    const a = node(clock)
    a.states.snapshot()
    expect(a.states.takeChanges()).toBeUndefined()
    const s1 = a.upstream.servers[0]!
    a.upstream.setAdminState(s1, 'disabled')
    expect(a.states.takeChanges()).toEqual({ web: { '10.0.0.1:80': { healthy: true, ejectedMs: 0, admin: 'disabled', weight: 1 } } })
    expect(a.states.takeChanges()).toBeUndefined()
  })

  it('an ejection ending on its own is no change; ending early is', () => {
    const clock = new ManualClock(0)
    const a = node(clock)
    const s2 = a.upstream.servers[1]!
    a.upstream.record(s2, { ok: false, reason: 'reset' })
    a.states.snapshot()
    clock.advance(30_001)
    expect(a.states.takeChanges()).toBeUndefined()
    a.upstream.record(s2, { ok: false, reason: 'reset' })
    expect(a.states.takeChanges()?.web?.['10.0.0.2:80']?.ejectedMs).toBe(30_000)
    a.upstream.setEjection(s2, 0)
    expect(a.states.takeChanges()?.web?.['10.0.0.2:80']?.ejectedMs).toBe(0)
  })

  it('applied state is not echoed back as a change, and unknown or invalid entries are ignored', () => {
    const clock = new ManualClock(0)
    const b = node(clock)
    b.states.snapshot()
    b.states.apply({
      web: { '10.0.0.1:80': { healthy: false, ejectedMs: 0, admin: 'enabled', weight: 1 }, '10.9.9.9:80': { healthy: false, ejectedMs: 0, admin: 'enabled', weight: 1 } },
      other: { 'x:1': { healthy: false, ejectedMs: 0, admin: 'enabled', weight: 1 } },
    })
    b.states.apply({ web: { '10.0.0.2:80': { healthy: 'no', ejectedMs: -1, admin: 'x', weight: 0 } as never } })
    expect(b.upstream.servers[0]!.healthy).toBe(false)
    expect(b.upstream.servers[1]!.healthy).toBe(true)
    expect(b.states.takeChanges()).toBeUndefined()
  })

  it('after a takeover a server the old active saw down is held out for 5 s, even if this node found it up', () => {
    const ca = new ManualClock(1_000)
    const cb = new ManualClock(50_000)
    const a = node(ca)
    const b = node(cb)
    const [a1] = a.upstream.servers as [typeof a.upstream.servers[0]]
    a.upstream.setHealth(a1, false)
    b.states.apply(a.states.snapshot())
    const [b1, b2] = b.upstream.servers as [typeof b.upstream.servers[0], typeof b.upstream.servers[0]]
    // The standby's own checks find it up meanwhile.
    b.upstream.setHealth(b1, true)
    expect(b1.state(cb.now())).toBe('up')
    expect(holdReportedDown(b.states, [b.upstream], cb.now(), 5000)).toBe(1)
    expect(b1.state(cb.now())).toBe('down')
    expect(b2.state(cb.now())).toBe('up')
    cb.advance(4999)
    expect(b1.state(cb.now())).toBe('down')
    cb.advance(1)
    expect(b1.state(cb.now())).not.toBe('down')
    // A server the active reported up again is not held.
    a.upstream.setHealth(a1, true)
    b.states.apply(a.states.takeChanges() ?? {})
    expect(holdReportedDown(b.states, [b.upstream], cb.now(), 5000)).toBe(0)
  })
})
