/*
 * HttpRouter.match() over 1,000 routes: 400 exact hosts, 300 wildcards, 300 host-less, each with
 * a path condition; requests hit exact hosts, wildcard subdomains and unknown hosts. Prints ops/s.
 * Run after `tsc -p` of the bench config: node dist-bench/bench/micro/router.js
 */
import { pathToFileURL } from 'node:url'
import type { IncomingHttpHeaders } from 'node:http'
import type { HttpRouteConfig } from '../../src/config/types.js'
import { HttpRouter } from '../../src/router/http-router.js'
import { measure } from './measure.js'

export interface MicroResult { name: string, opsPerSec: number }

function routes (): HttpRouteConfig[] {
  const out: HttpRouteConfig[] = []
  for (let i = 0; i < 1000; i++) {
    const host = i < 400 ? `svc${i}.example.com` : i < 700 ? `*.tenant${i - 400}.example.net` : undefined
    out.push({
      name: `r${i}`,
      match: {
        ...(host !== undefined && { host }),
        pathPrefix: `/p${i % 50}/`,
        ...(i % 7 === 0 && { methods: ['GET', 'POST'] }),
        ...(i % 11 === 0 && { headers: { 'x-canary': '1' } }),
      },
      upstream: 'u',
      stripPrefix: false,
    })
  }
  out.push({ name: 'fallback', match: { pathPrefix: '/' }, upstream: 'u', stripPrefix: false })
  return out
}


export function run (ms = 1000): MicroResult[] {
  const router = new HttpRouter(routes())
  const headers: IncomingHttpHeaders = { 'user-agent': 'bench', accept: '*/*' }
  const cases: Array<[string, (i: number) => string]> = [
    ['exact host', (i) => `svc${i % 400}.example.com:8080`],
    ['wildcard host', (i) => `app.tenant${i % 300}.example.net`],
    ['unknown host (host-less routes)', (i) => `other${i % 100}.org`],
  ]
  const results: MicroResult[] = []
  for (const [label, hostFor] of cases) {
    const hosts = Array.from({ length: 1000 }, (_, i) => hostFor(i))
    const paths = Array.from({ length: 64 }, (_, i) => `/p${i % 60}/items/${i}?q=1`)
    let hits = 0
    const opsPerSec = measure((i) => {
      if (router.match('GET', hosts[i % 1000], paths[i & 63]!, headers) !== undefined) hits++
    }, ms)
    if (hits === 0) throw new Error('nothing matched')
    results.push({ name: `router match, 1,000 routes: ${label}`, opsPerSec })
  }
  return results
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of run()) console.log(`${r.name.padEnd(52)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)} ops/s`)
}
