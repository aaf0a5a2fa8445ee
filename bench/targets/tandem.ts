// tandem under test: `node dist/cli.js run` as a child with a config that switches on every HTTP
// feature of the proxy (active and passive health, retries, X-Forwarded-* with trusted proxies,
// host and path routing among several routes, the admin server and its metrics) except the
// access log.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, startChild, stopChild, waitReady, type RunningTarget } from './child.js'

export const BENCH_HOST = 'www.example.com'
export const BENCH_PATH = '/app/hello'

function config (port: number, adminPort: number, upstreamPorts: readonly number[]): string {
  const servers = upstreamPorts.map((p) => `      - address: 127.0.0.1:${p}\n        maxConnections: 1000`).join('\n')
  return `# Written by bench/targets/tandem.ts
admin:
  listen: 127.0.0.1:${adminPort}
log:
  level: warn
  access: false
shutdownTimeout: 2s
upstreams:
  app:
    balance: round-robin
    servers:
${servers}
    connectTimeout: 1s
    retries: 1
    health: { type: http, path: /healthz, expectStatus: 200-399, interval: 1s, timeout: 500ms, rise: 1, fall: 3 }
    passive: { failures: 5, ejectFor: 10s }
  api:
    balance: least-connections
    servers:
${servers}
    health: { type: tcp, interval: 2s, timeout: 1s }
listeners:
  - name: bench
    protocol: http
    listen: 127.0.0.1:${port}
    trustedProxies: [127.0.0.1/32, 10.0.0.0/8]
    timeouts: { header: 10s, idle: 60s, response: 30s }
    routes:
      - name: api-v1
        match: { host: api.example.com, pathPrefix: /v1/ }
        upstream: api
        stripPrefix: true
      - name: canary
        match: { host: ${BENCH_HOST}, headers: { x-canary: "1" } }
        upstream: api
      - name: tenants
        match: { host: "*.example.com", pathPrefix: /static/ }
        upstream: api
      - name: app
        match: { host: ${BENCH_HOST}, pathPrefix: /app/, methods: [GET, HEAD, POST] }
        upstream: app
      - name: fallback
        match: { pathPrefix: / }
        upstream: app
`
}

/** Starts tandem from the repo's `dist/` (built by `npm run bench`) pinned to `cpu`. */
export async function startTandem (root: string, dir: string, upstreamPorts: readonly number[], cpu?: number): Promise<RunningTarget> {
  const port = await freePort()
  const file = join(dir, 'tandem.yaml')
  const adminPort = await freePort()
  await writeFile(file, config(port, adminPort, upstreamPorts))
  const child = startChild(process.execPath, [join(root, 'dist', 'cli.js'), 'run', '-c', file], cpu)
  child.stdout?.resume() // pino lines at warn level; readiness is the first 200 below
  const url = `http://127.0.0.1:${port}${BENCH_PATH}`
  try {
    await waitReady(url, BENCH_HOST, 'tandem', child)
    // The admin server builds its metrics on the first scrape; scrape once so the run pays for
    // per-request metrics the way a Prometheus-scraped deployment does.
    await waitReady(`http://127.0.0.1:${adminPort}/metrics`, '127.0.0.1', 'tandem admin', child)
  } catch (err) {
    await stopChild(child, 'SIGKILL')
    throw err
  }
  return { name: 'tandem', url, pid: child.pid, stop: async () => { await stopChild(child) } }
}
