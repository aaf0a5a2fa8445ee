// Memory of the local rate-limit buckets: one million distinct client keys in one limit
// (maxKeys 1000000), decided through RateLimiters like requests are, then left idle until every
// bucket is full and expired. Prints RSS and heap before, full and after, and bytes per key.
// Run with --expose-gc (npm run bench:ratelimit does): node --expose-gc dist-bench/bench/ratelimit-memory.js
import { ManualClock } from '../src/clock.js'
import { parseConfig } from '../src/config/load.js'
import { RateLimiters } from '../src/ratelimit/limiters.js'

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')

function settle (): { rss: number, heap: number, external: number } {
  for (let i = 0; i < 4; i++) gc!()
  const m = process.memoryUsage()
  // `external` already includes the array buffers (the table's typed arrays).
  return { rss: m.rss, heap: m.heapUsed, external: m.external }
}
const mb = (n: number): string => (n / 1048576).toFixed(1) + ' MB'

const config = parseConfig(`
log: { level: silent, access: false }
upstreams: { u: { servers: [{ address: 127.0.0.1:1 }] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, rateLimit: per-client, routes: [{ match: { pathPrefix: / }, upstream: u }] }]
rateLimits:
  per-client: { key: client-ip, rate: 100/s, burst: 50, maxKeys: ${KEYS} }
`, 'bench.yaml')
const clock = new ManualClock(0)
const limiters = new RateLimiters(config, clock)
const limit = limiters.get('per-client')!

const before = settle()
const t0 = performance.now()
for (let i = 0; i < KEYS; i++) {
  // Distinct addresses as a socket would give them: fresh strings, 10.a.b.c.
  const key = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
  limiters.decideLocal(limit, key, undefined, '')
  if ((i & 1023) === 0) clock.advance(0.001)
}
const insertMs = performance.now() - t0
const full = settle()
const size = limit.table.size

// A decision for a key already there, keys visited in a scattered order (cache misses included).
const t1 = performance.now()
const HITS = 2_000_000
for (let n = 0; n < HITS; n++) {
  const i = (n * 7919) % KEYS
  limiters.decideLocal(limit, `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`, undefined, '')
}
const hitNs = (performance.now() - t1) * 1e6 / HITS

// Idle: every bucket refills (burst / rate = 0.5 s), the sweep drops them and gives storage back.
clock.advance(10_000)
let swept = 0
for (let i = 0; i < 100 && limit.table.size > 0; i++) swept += limiters.expire()
await new Promise((resolve) => setTimeout(resolve, 200))
const idle = settle()

const perKey = (full.rss - before.rss) / size
process.stdout.write([
  `rate-limit memory: ${size.toLocaleString('en-US')} distinct client keys (maxKeys ${KEYS.toLocaleString('en-US')}), node ${process.version}`,
  `  inserted in ${insertMs.toFixed(0)} ms (${(insertMs * 1e6 / KEYS).toFixed(0)} ns per new key, growth included); a decision on one of them: ${hitNs.toFixed(0)} ns (key string built per call included)`,
  '| state | RSS | heap used | external (typed arrays) |',
  '|---|---:|---:|---:|',
  `| before | ${mb(before.rss)} | ${mb(before.heap)} | ${mb(before.external)} |`,
  `| ${size.toLocaleString('en-US')} keys | ${mb(full.rss)} | ${mb(full.heap)} | ${mb(full.external)} |`,
  `| idle, ${swept.toLocaleString('en-US')} expired | ${mb(idle.rss)} | ${mb(idle.heap)} | ${mb(idle.external)} |`,
  `bytes per key: ${perKey.toFixed(1)} (RSS growth / keys); ${((full.heap + full.external - before.heap - before.external) / size).toFixed(1)} (heap + external growth / keys)`,
  `RSS with ${size.toLocaleString('en-US')} keys: ${mb(full.rss)} (limit 150 MB: ${full.rss <= 150 * 1048576 ? 'ok' : 'OVER'}); given back after idle: ${mb(full.rss - idle.rss)}`,
].join('\n') + '\n')
