import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import { parseConfig } from '../../../src/config/load.js'
import { RateLimiters } from '../../../src/ratelimit/limiters.js'

function config (limits: string): ReturnType<typeof parseConfig> {
  return parseConfig(`
upstreams: { u: { servers: [{ address: 127.0.0.1:1 }] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, routes: [{ match: { pathPrefix: / }, upstream: u }] }]
rateLimits:
${limits}
`, 't.yaml')
}

const A = '  a: { key: client-ip, rate: 10/s, burst: 2 }'
const B = '  b: { key: global, rate: 1/s, burst: 1 }'

describe('RateLimiters', () => {
  it('two limits are all or nothing: a refusal by one moves neither bucket', () => {
    const clock = new ManualClock(0)
    const rl = new RateLimiters(config(`${A}\n${B}`), clock)
    const a = rl.get('a')!
    const b = rl.get('b')!
    expect(rl.decideLocal(a, 'x', b, '').allowed).toBe(true) // a: 1 left, b: 0 left
    const v = rl.decideLocal(a, 'x', b, '')
    expect(v.allowed).toBe(false)
    expect(v.limit).toBe(b) // the one that refused is reported
    expect(rl.decideLocal(a, 'x', undefined, '').result.remaining).toBe(0) // a still had 1: now used
    expect(rl.decideLocal(a, 'x', undefined, '').allowed).toBe(false)
  })

  it('reports the tighter of two allowing limits', () => {
    const rl = new RateLimiters(config(`${A}\n  c: { key: global, rate: 1/s, burst: 5 }`), new ManualClock(0))
    const v = rl.decideLocal(rl.get('c'), '', rl.get('a'), 'x')
    expect([v.allowed, v.limit?.name, v.result.remaining]).toEqual([true, 'a', 1])
  })

  it('a reload keeps the buckets of unchanged limits and starts changed ones afresh', () => {
    const clock = new ManualClock(0)
    const before = new RateLimiters(config(`${A}\n${B}`), clock)
    before.decideLocal(before.get('a'), 'x', undefined, '')
    before.decideLocal(before.get('a'), 'x', undefined, '')
    before.decideLocal(before.get('b'), '', undefined, '')
    const after = new RateLimiters(config(`${A}\n  b: { key: global, rate: 1/s, burst: 3 }`), clock, before)
    expect(after.decideLocal(after.get('a'), 'x', undefined, '').allowed).toBe(false)
    expect(after.decideLocal(after.get('b'), '', undefined, '').result.remaining).toBe(2)
  })

  it('Replicated: snapshot and changes move buckets to a peer with another clock; other definitions are skipped', () => {
    const active = new RateLimiters(config(`${A}\n${B}`), new ManualClock(50_000))
    const standby = new RateLimiters(config(`${A}\n  b: { key: global, rate: 2/s, burst: 1 }`), new ManualClock(3))
    active.decideLocal(active.get('a'), 'x', undefined, '')
    active.decideLocal(active.get('b'), '', undefined, '')
    const snap = active.snapshot()
    expect(snap.a).toEqual({ sig: active.get('a')!.signature, keys: ['x'], ahead: [100] })
    standby.apply(JSON.parse(JSON.stringify(snap)))
    expect(standby.decideLocal(standby.get('a'), 'x', undefined, '').result.remaining).toBe(0)
    expect(standby.decideLocal(standby.get('b'), '', undefined, '').allowed).toBe(true) // b differs: not applied
    expect(active.takeChanges()).toEqual({ a: { sig: active.get('a')!.signature, keys: ['x'], ahead: [100] }, b: { sig: active.get('b')!.signature, keys: [''], ahead: [1000] } })
    expect(active.takeChanges()).toBeUndefined()
    active.decideLocal(active.get('a'), 'y', undefined, '')
    expect(Object.keys(active.takeChanges() ?? {})).toEqual(['a'])
  })

  it('key: route names the listener too; such a key replicates to the peer like any other', () => {
    const R = '  r: { key: route, rate: 1/s, burst: 1 }'
    const active = new RateLimiters(config(R), new ManualClock(0))
    const standby = new RateLimiters(config(R), new ManualClock(0))
    const r = active.get('r')!
    const onA = r.keyOf('1.2.3.4', {}, 'route-1', 'a')
    expect([onA, r.keyOf('5.6.7.8', {}, 'route-1', 'b')]).toEqual(['a\0route-1', 'b\0route-1'])
    active.decideLocal(r, onA, undefined, '')
    standby.apply(JSON.parse(JSON.stringify(active.snapshot())))
    const s = standby.get('r')!
    expect(standby.decideLocal(s, 'a\0route-1', undefined, '').allowed).toBe(false)
    expect(standby.decideLocal(s, 'b\0route-1', undefined, '').allowed).toBe(true)
  })
})
