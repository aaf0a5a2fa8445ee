/*
 * The pair's full state snapshot as the active node pays it when its standby (re)connects: N
 * rate-limit buckets (BENCH_KEYS, default 100,000 and 1,000,000) taken slice by slice and signed
 * one by one, as the active sends them (a setImmediate between slices). What matters is the
 * longest step, which holds the event loop: prints the first and the longest, and the total.
 * Run after `tsc -p` of the bench config: node dist-bench/bench/micro/snapshot.js
 */
import { ManualClock } from '../../src/clock.js'
import { parseConfig } from '../../src/config/load.js'
import { Signer } from '../../src/peer/messages.js'
import { StateSync } from '../../src/peer/sync.js'
import { RateLimiters } from '../../src/ratelimit/limiters.js'
import type { Replicated } from '../../src/state/replicated.js'

function once (keys: number): void {
  const config = parseConfig(`
upstreams: { u: { servers: [{ address: 127.0.0.1:1 }] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, rateLimit: pc, routes: [{ match: { pathPrefix: / }, upstream: u }] }]
rateLimits: { pc: { key: client-ip, rate: 1/s, burst: 5, maxKeys: ${keys} } }
`, 'bench.yaml')
  const limiters = new RateLimiters(config, new ManualClock(1000))
  for (let i = 0; i < keys; i++) limiters.decideLocal(limiters.get('pc'), `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, undefined, '')
  const sync = new StateSync(() => new Map([['ratelimits', limiters as Replicated<unknown>]]))
  const signer = new Signer('bench', 'a-secret-of-16-bytes!')
  const started = performance.now()
  let first = 0
  let slowest = 0
  let slices = 0
  let bytes = 0
  const it = sync.full()
  for (;;) {
    const t = performance.now()
    const r = it.next()
    if (r.done === true) break
    bytes += signer.encode(r.value).length
    const ms = performance.now() - t
    if (slices === 0) first = ms
    else slowest = Math.max(slowest, ms)
    slices++
  }
  const total = performance.now() - started
  process.stdout.write(`${keys.toLocaleString('en')} buckets: first step ${first.toFixed(1)} ms (${(first * 1000 / keys).toFixed(2)} µs per bucket), ` +
    `then ${slices - 1} slices of at most ${slowest.toFixed(1)} ms; ${total.toFixed(0)} ms and ${(bytes / 1e6).toFixed(1)} MB in all\n`)
}

for (const keys of (process.env.BENCH_KEYS ?? '100000,1000000').split(',').map(Number)) once(keys)
