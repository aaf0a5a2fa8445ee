/*
 * pick() per strategy over a realistic pool: 10 servers with mixed weights and in-flight counts,
 * candidates() included, as Upstream.pick() runs it for every request. Prints ops/s.
 * Run after `tsc -p` of the bench config: node dist-bench/bench/micro/balancers.js
 */
import { pathToFileURL } from 'node:url'
import { candidates } from '../../src/balancer/candidates.js'
import { balanceNames, createBalancer } from '../../src/balancer/index.js'
import { ewma } from '../../src/balancer/response-time.js'
import { Server } from '../../src/upstream/server.js'
import { measure } from './measure.js'

export interface MicroResult { name: string, opsPerSec: number }

function pool (size: number): Server[] {
  return Array.from({ length: size }, (_, i) => new Server({
    text: `10.0.0.${i + 1}:8080`,
    host: `10.0.0.${i + 1}`,
    port: 8080,
    weight: 1 + (i % 4),
    backup: i === size - 1,
    maxConnections: 0,
  }))
}


export function run (ms = 1000): MicroResult[] {
  const results: MicroResult[] = []
  for (const size of [3, 10]) {
    for (const name of balanceNames) {
      const servers = pool(size)
      const balancer = createBalancer(name)
      balancer.update?.(servers)
      let seed = 1
      const random = (): number => {
        seed = (seed * 16807) % 2147483647
        return seed / 2147483647
      }
      let now = 0
      const opsPerSec = measure((i) => {
        now += 0.05
        const eligible = candidates(servers, now)
        const s = balancer.pick(eligible, { now, random })
        if (s === undefined) throw new Error('no pick')
        // Keep load and samples moving as real traffic would, at a fixed small cost per pick.
        s.active = (s.active + 1) % 8
        if ((i & 7) === 0) {
          s.rttEwma = ewma(s.rttEwma, s.rttAt, 1 + (i % 13), now)
          s.rttAt = now
        }
      }, ms)
      results.push({ name: `pick ${name} (${size} servers)`, opsPerSec })
    }
  }
  return results
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of run()) console.log(`${r.name.padEnd(40)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)} ops/s`)
}
