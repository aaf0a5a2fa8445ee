// The operator examples stay true to the build: every PromQL expression in the Grafana dashboard
// and the Prometheus alerts names only metrics tandem exposes; docker-compose.yml, kubernetes/
// and the systemd unit parse, mount files that exist, and carry tandem configs that pass
// `tandem check`. Needs dist/ (npm test builds first). No Docker engine or cluster is involved.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'
import { parseDuration } from '../../src/config/units.js'
import { runCli, writeConfig, type CliRun } from '../helpers/cli.js'
import { closedPort } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url))
const ENV = { TANDEM_ADMIN_TOKEN: 'example-token-0123456789', TANDEM_PEER_SECRET: 'example-peer-secret-0123456789' }

// The spec's metric table ("Metrics" in spec.md). Metrics that only exist once a pair or a Redis
// rate-limit store runs may be missing from the /metrics of a build without those features; a
// name is accepted from this list only then, and the test prints which ones it took from here.
const SPEC_METRICS = [
  'tandem_http_requests_total', 'tandem_http_request_duration_seconds', 'tandem_tcp_connections_total',
  'tandem_tcp_bytes_total', 'tandem_active_connections', 'tandem_upstream_server_up',
  'tandem_upstream_server_active_connections', 'tandem_upstream_server_requests_total',
  'tandem_upstream_server_failures_total', 'tandem_upstream_server_response_time_seconds',
  'tandem_health_checks_total', 'tandem_rate_limited_total', 'tandem_peer_role', 'tandem_peer_transitions_total',
  'tandem_peer_messages_rejected_total', 'tandem_peer_up', 'tandem_peer_in_sync',
  'tandem_rate_limit_store_errors_total', 'tandem_config_reloads_total',
]
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count']

async function check (file: string): Promise<{ code: number | null, out: string }> {
  const run = runCli(['check', '-c', file], ENV)
  const code = await run.exited
  return { code, out: run.stdout + run.stderr }
}

async function checkExampleConfig (name: string, file: string): Promise<void> {
  const r = await check(file)
  expect(r.code, `tandem check ${name}:\n${r.out}`).toBe(0)
}

function promqlFromGrafana (node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const x of node) promqlFromGrafana(x, out)
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') out.push(v)
      else if (k === 'query' && typeof v === 'object' && v !== null && typeof (v as { query?: unknown }).query === 'string') out.push((v as { query: string }).query)
      else promqlFromGrafana(v, out)
    }
  }
  return out
}

function metricNames (expr: string): string[] {
  // Quoted label values are not metric names.
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  return [...new Set([...bare.matchAll(/\b(?:tandem|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]))]
}

describe('Prometheus and Grafana examples', () => {
  let run: CliRun | undefined
  let exposed = new Set<string>()
  let how = ''

  beforeAll(async () => {
    // A node with rate limits and, where this build takes it, a peer section: metrics that only
    // exist with those configured are then declared too.
    const admin = await closedPort()
    const base = `admin: { listen: 127.0.0.1:${admin} }\nlog: { level: silent, access: false }\nupstreams: { web: { servers: [{ address: 127.0.0.1:9 }] } }\n` +
      'listeners: [{ name: l, protocol: http, listen: 127.0.0.1:0, rateLimit: rl, routes: [{ upstream: web }] }]\n' +
      'rateLimits: { rl: { key: client-ip, rate: 10/s, burst: 5 } }\n'
    const peer = `peer: { id: solo, listen: 127.0.0.1:${await closedPort()}, peers: [127.0.0.1:${await closedPort()}], secret: ${ENV.TANDEM_PEER_SECRET}, heartbeat: 100ms, deadAfter: 2 }\n`
    how = 'a node with rateLimits and peer configured'
    run = runCli(['run', '-c', writeConfig(base + peer)], ENV)
    let text = ''
    await waitFor(async () => {
      try {
        const res = await request(`http://127.0.0.1:${admin}/metrics`, { headersTimeout: 2000, bodyTimeout: 2000 })
        text = await res.body.text()
        return res.statusCode === 200
      } catch { return false }
    }, 20_000, 100, `/metrics of ${how}\n${run.stderr}`)
    for (const line of text.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)/.exec(line)
      if (type !== null) {
        exposed.add(type[1]!)
        if (type[2] === 'histogram' || type[2] === 'summary') for (const s of HISTOGRAM_SUFFIXES) exposed.add(type[1]! + s)
      } else if (/^[a-zA-Z_]/.test(line)) {
        exposed.add(line.split(/[{ ]/, 1)[0]!)
      }
    }
    exposed = new Set(exposed)
  }, 40_000)

  afterAll(() => { if (run !== undefined && run.child.exitCode === null) run.child.kill('SIGKILL') })

  it('every PromQL expression names only metrics /metrics exposes (or the spec declares)', () => {
    const dashboard = JSON.parse(readFileSync(join(EXAMPLES, 'grafana/tandem.json'), 'utf8')) as unknown
    const alerts = parse(readFileSync(join(EXAMPLES, 'prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string, expr: string }> }> }
    const exprs = [...promqlFromGrafana(dashboard), ...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr))]
    expect(exprs.length).toBeGreaterThan(30)
    const fromSpec = new Set(SPEC_METRICS.flatMap((m) => [m, ...HISTOGRAM_SUFFIXES.map((s) => m + s)]))
    const unknown: string[] = []
    const specOnly = new Set<string>()
    for (const expr of exprs) {
      for (const name of metricNames(expr)) {
        if (exposed.has(name)) continue
        if (fromSpec.has(name)) specOnly.add(name)
        else unknown.push(`${name} in: ${expr}`)
      }
    }
    expect(unknown).toEqual([])
    console.log(`examples: metric names checked against /metrics of ${how}` +
      (specOnly.size === 0 ? '' : `; taken from the spec's list as this build does not expose them: ${[...specOnly].sort().join(', ')}`))
    // The panels and alerts are all there.
    const all = exprs.join('\n')
    for (const m of ['tandem_http_requests_total', 'tandem_http_request_duration_seconds_bucket', 'tandem_upstream_server_up', 'tandem_rate_limited_total', 'tandem_peer_role', 'tandem_peer_in_sync', 'tandem_peer_transitions_total', 'tandem_rate_limit_store_errors_total']) {
      expect(all).toContain(m)
    }
    expect(alerts.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort()).toEqual([
      'TandemConfigReloadFailed', 'TandemDown', 'TandemHigh5xxRatio', 'TandemPairBothActive', 'TandemPairNoActiveNode',
      'TandemPeerDown', 'TandemPeerNotInSync', 'TandemRateLimitStoreErrors', 'TandemRoleFlapping', 'TandemServerDown',
    ])
  })

  it('promtool accepts the alert rules (when promtool is installed)', (ctx) => {
    let promtool: string | undefined
    try { promtool = execFileSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).trim() } catch { promtool = undefined }
    if (promtool === undefined || promtool === '') ctx.skip('promtool is not installed (apt-get install prometheus)')
    const out = execFileSync(promtool!, ['check', 'rules', join(EXAMPLES, 'prometheus/alerts.yml')], { encoding: 'utf8' })
    expect(out).toMatch(/SUCCESS: 10 rules found/)
  })
})

describe('deployment examples', () => {
  it('docker-compose.yml: every mounted file exists, every tandem config passes check, Prometheus finds its rules', async () => {
    const compose = parse(readFileSync(join(EXAMPLES, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { volumes?: string[], build?: { context: string, dockerfile: string }, environment?: Record<string, string> }>
    }
    expect(Object.keys(compose.services).sort()).toEqual(['backend-1', 'backend-2', 'backend-3', 'grafana', 'prometheus', 'redis', 'tandem-a', 'tandem-b'])
    const mounts = new Map<string, string>() // container path → source
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const v of svc.volumes ?? []) {
        const [src, dst] = v.split(':') as [string, string]
        expect(existsSync(join(EXAMPLES, src)), `${name} mounts ${src}, which does not exist`).toBe(true)
        mounts.set(`${name}:${dst}`, src)
      }
      if (svc.build !== undefined) expect(existsSync(join(EXAMPLES, svc.build.context, svc.build.dockerfile))).toBe(true)
    }
    for (const node of ['tandem-a', 'tandem-b']) {
      const src = mounts.get(`${node}:/etc/tandem/tandem.yaml`)
      expect(src, `${node} mounts its config`).toMatch(/^\.\/compose\/tandem-[ab]\.yaml$/)
      expect(Object.keys(compose.services[node]!.environment ?? {})).toEqual(expect.arrayContaining(['TANDEM_ADMIN_TOKEN', 'TANDEM_PEER_SECRET']))
      await checkExampleConfig(src!.replace(/^\.\//, ''), join(EXAMPLES, src!))
    }
    const prom = parse(readFileSync(join(EXAMPLES, 'prometheus/prometheus.yml'), 'utf8')) as { rule_files: string[], scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> }
    for (const f of prom.rule_files) expect(mounts.has(`prometheus:${f}`), `prometheus rule file ${f} is mounted`).toBe(true)
    expect(prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets)).sort()).toEqual(['tandem-a:9090', 'tandem-b:9090'])
    expect(mounts.get('grafana:/var/lib/grafana/dashboards/tandem.json')).toBe('./grafana/tandem.json')
  }, 60_000)

  it('kubernetes/: probes on /readyz and /healthz, shutdownDelay and the grace period fit, the config passes check', async () => {
    const docs = readdirSync(join(EXAMPLES, 'kubernetes')).filter((f) => f.endsWith('.yaml')).sort()
      .flatMap((f) => parseAllDocuments(readFileSync(join(EXAMPLES, 'kubernetes', f), 'utf8')).map((d) => d.toJS() as Record<string, any>))
    const byKind = (kind: string): Record<string, any> => { const d = docs.find((x) => x.kind === kind); expect(d, kind).toBeDefined(); return d! }
    const deployment = byKind('Deployment')
    const service = byKind('Service')
    const configMap = byKind('ConfigMap')
    const pod = deployment.spec.template.spec
    const container = pod.containers[0]
    // The config the pod mounts is this ConfigMap's key.
    const volume = pod.volumes.find((v: any) => v.configMap !== undefined)
    expect(volume.configMap.name).toBe(configMap.metadata.name)
    const mount = container.volumeMounts.find((m: any) => m.name === volume.name)
    const key = volume.configMap.items[0].key as string
    expect(container.args).toEqual(['run', '-c', `${mount.mountPath}/${volume.configMap.items[0].path as string}`])
    const text = configMap.data[key] as string
    const config = parse(text) as { admin: { listen: string }, shutdownDelay: string, shutdownTimeout: string, listeners: Array<{ listen: string }> }
    // Probes go to the admin port the config listens on.
    const adminPort = Number(config.admin.listen.split(':').at(-1))
    const portOf = (name: string): number => container.ports.find((p: any) => p.name === name).containerPort
    expect(container.readinessProbe.httpGet.path).toBe('/readyz')
    expect(container.livenessProbe.httpGet.path).toBe('/healthz')
    expect(portOf(container.readinessProbe.httpGet.port)).toBe(adminPort)
    expect(portOf(container.livenessProbe.httpGet.port)).toBe(adminPort)
    expect(portOf('http')).toBe(Number(config.listeners[0]!.listen.split(':').at(-1)))
    // Readiness notices the 503 within shutdownDelay; the kubelet waits longer than delay + drain.
    const delay = parseDuration(config.shutdownDelay) / 1000
    const drain = parseDuration(config.shutdownTimeout) / 1000
    const notice = container.readinessProbe.periodSeconds * container.readinessProbe.failureThreshold
    expect(notice).toBeLessThanOrEqual(delay)
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(delay + drain)
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels)
    expect(container.env.map((e: any) => e.name)).toContain('TANDEM_ADMIN_TOKEN')
    await checkExampleConfig(`kubernetes/configmap.yaml#${key}`, writeConfig(text, key))
  }, 60_000)

  it('systemd unit: runs the config, reloads with SIGHUP, waits out the drain before SIGKILL', () => {
    const unit = readFileSync(join(EXAMPLES, 'systemd/tandem.service'), 'utf8')
    const keys = new Map<string, string>()
    let section = ''
    for (const line of unit.split('\n')) {
      const s = /^\[(\w+)\]$/.exec(line)
      if (s !== null) { section = s[1]!; continue }
      const kv = /^(\w+)=(.*)$/.exec(line)
      if (kv !== null) keys.set(`${section}.${kv[1]!}`, kv[2]!)
    }
    expect(keys.get('Service.ExecStart')).toMatch(/tandem run -c \/etc\/tandem\/tandem\.yaml$/)
    expect(keys.get('Service.ExecReload')).toBe('/bin/kill -HUP $MAINPID')
    expect(keys.get('Service.KillSignal')).toBe('SIGTERM')
    expect(parseDuration(keys.get('Service.TimeoutStopSec')!)).toBeGreaterThan(30_000)
    expect(keys.get('Install.WantedBy')).toBe('multi-user.target')
  })
})
