/*
 * The local rate-limit decision (GCRA in the bucket table), as a request pays it: one hot key,
 * 100,000 keys visited in a scattered order, and a listener limit plus a route limit (peek, then
 * both committed). Keys are prebuilt, so this is the table's cost alone. Prints decisions/s.
 * Run after `tsc -p` of the bench config: node dist-bench/bench/micro/ratelimit.js
 */
import { pathToFileURL } from 'node:url'
import { systemClock } from '../../src/clock.js'
import { parseConfig } from '../../src/config/load.js'
import { RateLimiters } from '../../src/ratelimit/limiters.js'
import { measure } from './measure.js'

export interface MicroResult { name: string, opsPerSec: number }

export function run (ms = 1000): MicroResult[] {
  const config = parseConfig(`
upstreams: { u: { servers: [{ address: 127.0.0.1:1 }] } }
listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, routes: [{ match: { pathPrefix: / }, upstream: u }] }]
rateLimits:
  never: { key: client-ip, rate: 100000000/s, burst: 100000000, maxKeys: 200000 }
  route: { key: route, rate: 100000000/s, burst: 100000000 }
`, 'bench.yaml')
  const rl = new RateLimiters(config, systemClock)
  const never = rl.get('never')!
  const route = rl.get('route')!
  const keys = Array.from({ length: 100_000 }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`)
  return [
    { name: 'one hot key', opsPerSec: measure(() => { rl.decideLocal(never, '127.0.0.1', undefined, '') }, ms) },
    { name: '100k keys, scattered', opsPerSec: measure((i) => { rl.decideLocal(never, keys[(i * 7919) % keys.length]!, undefined, '') }, ms) },
    { name: 'listener peek + route + commit', opsPerSec: measure(() => { rl.peekLocal(never, '127.0.0.1'); rl.decideLocal(never, '127.0.0.1', route, 'api') }, ms) },
  ]
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of run()) process.stdout.write(`${r.name.padEnd(32)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)} decisions/s  (${(1e9 / r.opsPerSec).toFixed(0)} ns)\n`)
}
