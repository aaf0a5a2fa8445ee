// tandem under test: `node dist/cli.js run` as a child, in two configs.
// - `default`: what an operator runs: access log on (JSON lines to stdout, drained by a pipe as a
//   container runtime would), log level info, the admin server with its metrics scraped, active and
//   passive health, retries, X-Forwarded-* with trusted proxies, host and path routing over
//   several routes.
// - `quiet`: the default config with the access log and the admin server (metrics, dashboard)
//   off: the issue's yardstick for what observability costs.
// - `stripped`: one route, no access log, no admin or metrics, no health checks: the proxy's core.
// - `no-access` (admin, metrics and dashboard on, access log off) and `no-admin` (access log on,
//   no admin server): the default config's overhead split between its two parts.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { HAS_TASKSET, NODE_FLAGS, freePort, startChild, stopChild, waitReady, type RunningTarget } from './child.js'

export const BENCH_HOST = 'www.example.com'
export const BENCH_PATH = '/app/hello'
export type TandemVariant = 'default' | 'quiet' | 'stripped' | 'no-access' | 'no-admin'

function servers (upstreamPorts: readonly number[]): string {
  return upstreamPorts.map((p) => `      - address: 127.0.0.1:${p}\n        maxConnections: 1000`).join('\n')
}

/** `adminPort` 0: no admin server. */
function defaultConfig (port: number, adminPort: number, access: boolean, upstreamPorts: readonly number[]): string {
  return `# Written by bench/targets/tandem.ts (access log ${access ? 'on' : 'off'}, admin ${adminPort === 0 ? 'off' : 'on'})
${adminPort === 0 ? '' : `admin:\n  listen: 127.0.0.1:${adminPort}`}
log:
  level: info
  access: ${access}
shutdownTimeout: 2s
upstreams:
  app:
    balance: round-robin
    servers:
${servers(upstreamPorts)}
    connectTimeout: 1s
    retries: 1
    health: { type: http, path: /healthz, expectStatus: 200-399, interval: 1s, timeout: 500ms, rise: 1, fall: 3 }
    passive: { failures: 5, ejectFor: 10s }
  api:
    balance: least-connections
    servers:
${servers(upstreamPorts)}
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

function strippedConfig (port: number, upstreamPorts: readonly number[]): string {
  return `# Written by bench/targets/tandem.ts (stripped: the proxy's core only)
log:
  level: warn
  access: false
shutdownTimeout: 2s
upstreams:
  app:
    balance: round-robin
    servers:
${servers(upstreamPorts)}
listeners:
  - name: bench
    protocol: http
    listen: 127.0.0.1:${port}
    timeouts: { header: 10s, idle: 60s, response: 30s }
    routes:
      - match: { pathPrefix: / }
        upstream: app
`
}

/** Starts tandem from the repo's `dist/` (built by `npm run bench`) pinned to `cpu`. */
export async function startTandem (root: string, dir: string, upstreamPorts: readonly number[], cpu?: number, variant: TandemVariant = 'default', drainCpu?: number): Promise<RunningTarget> {
  const port = await freePort()
  const file = join(dir, `tandem-${variant}.yaml`)
  const admin = variant === 'default' || variant === 'no-access'
  const adminPort = admin ? await freePort() : 0
  const access = variant === 'default' || variant === 'no-admin'
  await writeFile(file, variant === 'stripped' ? strippedConfig(port, upstreamPorts) : defaultConfig(port, adminPort, access, upstreamPorts))
  // Access lines go down a pipe to a reader of their own, as to a container runtime's log driver,
  // on `drainCpu` (the load generator's), so that neither the proxy's core nor this process reads them.
  const drainArgv = HAS_TASKSET && drainCpu !== undefined ? ['taskset', '-c', String(drainCpu), 'cat'] : ['cat']
  const drain = spawn(drainArgv[0] as string, drainArgv.slice(1), { stdio: ['pipe', 'ignore', 'inherit'] })
  // As the image and the `tandem` command start it (Dockerfile, src/cli.ts's first line).
  const child = startChild(process.execPath, [...NODE_FLAGS, join(root, 'dist', 'cli.js'), 'run', '-c', file], cpu, drain.stdin)
  child.once('exit', () => { drain.kill() })
  const url = `http://127.0.0.1:${port}${BENCH_PATH}`
  const name = variant === 'default' ? 'tandem' : `tandem-${variant}`
  try {
    await waitReady(url, BENCH_HOST, name, child)
    // The admin server builds its metrics on the first scrape; scrape once so the run pays for
    // per-request metrics the way a Prometheus-scraped deployment does.
    if (admin) await waitReady(`http://127.0.0.1:${adminPort}/metrics`, '127.0.0.1', 'tandem admin', child)
  } catch (err) {
    await stopChild(child, 'SIGKILL')
    throw err
  }
  return { name, url, pid: child.pid, admin: adminPort === 0 ? undefined : `http://127.0.0.1:${adminPort}`, stop: async () => { await stopChild(child) } }
}
