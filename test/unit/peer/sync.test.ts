import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import type { UpstreamConfig } from '../../../src/config/types.js'
import { parseConfig } from '../../../src/config/load.js'
import { CHUNK, StateSync } from '../../../src/peer/sync.js'
import { RateLimiters } from '../../../src/ratelimit/limiters.js'
import type { Replicated } from '../../../src/state/replicated.js'
import { ServerStates } from '../../../src/upstream/replication.js'
import { Upstream } from '../../../src/upstream/upstream.js'

/** A tiny Replicated: a key → number table, like a bucket table. */
class Counters implements Replicated<Record<string, number>> {
  values: Record<string, number> = {}
  private dirty = new Set<string>()
  set (k: string, v: number): void { this.values[k] = v; this.dirty.add(k) }
  snapshot (): Record<string, number> { this.dirty.clear(); return { ...this.values } }
  takeChanges (): Record<string, number> | undefined {
    if (this.dirty.size === 0) return undefined
    const out = Object.fromEntries([...this.dirty].map((k) => [k, this.values[k] as number]))
    this.dirty.clear()
    return out
  }
  apply (s: Record<string, number>): void {
    if (typeof s !== 'object' || s === null) throw new TypeError('not a table')
    Object.assign(this.values, s)
  }
}

const config: UpstreamConfig = {
  name: 'web', balance: 'round-robin', connectTimeout: 1000, retries: 0, slowStart: 0,
  servers: [{ text: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, backup: false, maxConnections: 0 }],
}

function node (): { sync: StateSync, counters: Counters, upstream: Upstream } {
  const clock = new ManualClock(0)
  const upstream = new Upstream(config, { clock, random: () => 0 })
  const counters = new Counters()
  const sources = new Map<string, Replicated<unknown>>([
    ['servers', new ServerStates(() => [upstream], () => clock.now()) as Replicated<unknown>],
    ['test', counters as Replicated<unknown>],
  ])
  return { sync: new StateSync(() => sources), counters, upstream }
}

/** What the wire does to a message. */
const wire = <T>(m: T): T => JSON.parse(JSON.stringify(m)) as T

describe('state sync', () => {
  it('a full snapshot then changes carry every source; in sync after the full one', () => {
    const a = node()
    const b = node()
    a.counters.set('k1', 5)
    a.upstream.setAdminState(a.upstream.servers[0]!, 'drain')
    expect(b.sync.inSync).toBe(false)
    for (const m of a.sync.full()) b.sync.apply(wire(m))
    expect(b.sync.inSync).toBe(true)
    expect(b.counters.values).toEqual({ k1: 5 })
    expect(b.upstream.servers[0]!.adminState).toBe('drain')
    expect(a.sync.changes()).toBeUndefined()
    a.counters.set('k2', 9)
    const c = a.sync.changes()
    expect(c).toEqual({ k: 'state', full: false, parts: { test: { k2: 9 } } })
    b.sync.apply(wire(c!))
    expect(b.counters.values).toEqual({ k1: 5, k2: 9 })
  })

  it('a large record snapshot goes in slices; in sync only after the last', () => {
    const a = node()
    const b = node()
    for (let i = 0; i < 12_000; i++) a.counters.set(`k${i}`, i)
    const messages = [...a.sync.full()]
    expect(messages.length).toBe(4)
    expect(messages.map((m) => m.full)).toEqual([false, false, false, true])
    for (const m of messages.slice(0, 3)) b.sync.apply(wire(m))
    expect(b.sync.inSync).toBe(false)
    b.sync.apply(wire(messages[3]!))
    expect(b.sync.inSync).toBe(true)
    expect(Object.keys(b.counters.values).length).toBe(12_000)
    expect(b.upstream.servers[0]!.adminState).toBe('enabled')
  })

  // Regressions: a rate-limit snapshot's top-level keys are the limits' names (a handful), so
  // it went as one message however many buckets it held (1.5 million exceeded the 64 MB frame
  // limit); and it was taken whole before the first slice, so 553,000 keys froze the active for
  // 0.8 s, past the dead time, and its own standby took over. Each slice is taken when sent now.
  it('rate-limit buckets go in slices of CHUNK keys too; the standby ends with every bucket', () => {
    const yaml = `
upstreams: { u: { servers: [{ address: 127.0.0.1:1 }] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, rateLimit: per-client, routes: [{ match: { pathPrefix: / }, upstream: u }] }]
rateLimits: { per-client: { key: client-ip, rate: 1/s, burst: 5, maxKeys: 100000 }, global: { key: global, rate: 1/s, burst: 5 } }
`
    const limiters = (): RateLimiters => new RateLimiters(parseConfig(yaml, 't.yaml'), new ManualClock(1000))
    const active = limiters()
    const standby = limiters()
    for (let i = 0; i < 12_001; i++) active.decideLocal(active.get('per-client'), `10.0.${i >> 8}.${i & 255}`, undefined, '')
    active.decideLocal(active.get('global'), '', undefined, '')
    const sources = (rl: RateLimiters): Map<string, Replicated<unknown>> => new Map([['ratelimits', rl as Replicated<unknown>]])
    const messages = [...new StateSync(() => sources(active)).full()]
    const sizes = messages.map((m) => (m.parts.ratelimits as Record<string, { keys: string[] }> | undefined))
      .map((p) => p === undefined ? 0 : Object.values(p).reduce((n, t) => n + t.keys.length, 0))
    expect(sizes).toEqual([CHUNK, CHUNK, 2001, 1, 0])
    expect(messages.map((m) => m.full)).toEqual([false, false, false, false, true])
    const b = new StateSync(() => sources(standby))
    for (const m of messages) b.apply(wire(m))
    expect(b.inSync).toBe(true)
    expect(standby.snapshot()['per-client']!.keys.length).toBe(12_001)
    expect(standby.decideLocal(standby.get('global'), '', undefined, '').result.remaining).toBe(3)
  })

  it('changes alone never make a node in sync; a lost connection or a refused part ends it', () => {
    const b = node()
    b.sync.apply({ k: 'state', full: false, parts: { test: { x: 1 } } })
    expect(b.sync.inSync).toBe(false)
    b.sync.apply({ k: 'state', full: true, parts: { test: {}, unknown: { y: 1 } } })
    expect(b.sync.inSync).toBe(true)
    b.sync.lost()
    expect(b.sync.inSync).toBe(false)
    b.sync.apply({ k: 'state', full: true, parts: { test: {} } })
    const r = b.sync.apply({ k: 'state', full: false, parts: { test: null } })
    expect(r.failed).toEqual([{ name: 'test', error: 'not a table' }])
    expect(b.sync.inSync).toBe(false)
  })
})
