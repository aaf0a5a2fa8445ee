// Rate-limit benchmark, loopback only, about 60 s with the defaults:
//  1. the cost of a listener limit that never triggers against the same listener without one,
//     in the same tandem process, rounds interleaved (target: under 5% of requests/s);
//  2. requests/s and p99 with the Redis store against the local one (same limit);
//  3. time to answer while Redis hangs (SIGSTOP) or is dead (SIGKILL), and how soon shared
//     limiting resumes once it is back.
// wrk -t1 (installed by .ci/run) loads; tandem runs on CPU 0, wrk, upstream and Redis on CPU 1
// where taskset exists. Env: BENCH_ROUNDS (6), BENCH_DURATION seconds (3), BENCH_CONNECTIONS (32).
// Run: npm run bench:ratelimit (under flock /tmp/tandem-heavy.lock on a shared machine).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePort, HAS_TASKSET, readHandshake, roundOrder, startChild, stopChild, waitReady } from './targets/child.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('.', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli.js')
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6)
const DURATION = Number(process.env.BENCH_DURATION ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const PIN = HAS_TASKSET && availableParallelism() >= 2
const PROXY_CPU = PIN ? 0 : undefined
const LOAD_CPU = PIN ? 1 : undefined
const REDIS_TIMEOUT_MS = 50

interface Sample { rps: number, p50: number, p99: number, bad: number, requests: number, cpuUs: number }

/** CPU time (user + system) a process used so far, µs; from /proc, so Linux only (NaN elsewhere). */
function cpuUs (pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 1e6 / 100
  } catch { return Number.NaN }
}

function wrkMs (text: string, label: string): number {
  const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(text)
  if (m === null) return Number.NaN
  const v = Number(m[1])
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
}

function wrk (url: string, seconds: number, pid?: number): Sample {
  const cpu0 = cpuUs(pid)
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url]
  const out = execFileSync(PIN ? 'taskset' : 'wrk', PIN ? ['-c', String(LOAD_CPU), 'wrk', ...args] : args, { encoding: 'utf8' })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
  const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN)
  return { rps, p50: wrkMs(out, '50%'), p99: wrkMs(out, '99%'), bad, requests, cpuUs: (cpuUs(pid) - cpu0) / requests }
}

const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })

function tandemConfig (ports: { plain: number, limited: number }, upstreams: number[], redis?: string, onError = 'local'): string {
  const servers = upstreams.map((p) => `      - address: 127.0.0.1:${p}`).join('\n')
  const route = '    routes:\n      - match: { pathPrefix: / }\n        upstream: app'
  return `log: { level: warn, access: false }
upstreams:
  app:
    servers:
${servers}
listeners:
  - name: plain
    protocol: http
    listen: 127.0.0.1:${ports.plain}
${route}
  - name: limited
    protocol: http
    listen: 127.0.0.1:${ports.limited}
    rateLimit: never
${route}
rateLimits:
  # Never triggers: every request is decided (and gets headers), none is refused.
  never: { key: client-ip, rate: 100000000/s, burst: 100000000 }
${redis === undefined ? '' : `rateLimitStore:\n  redis: { url: "${redis}", prefix: "bench:", timeout: ${REDIS_TIMEOUT_MS}ms, onError: ${onError} }\n`}`
}

async function startTandem (dir: string, name: string, upstreams: number[], redis?: string, onError?: string): Promise<{ child: ChildProcess, plain: string, limited: string }> {
  const ports = { plain: await freePort(), limited: await freePort() }
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, tandemConfig(ports, upstreams, redis, onError))
  const child = startChild(process.execPath, [CLI, 'run', '-c', file], PROXY_CPU)
  child.stdout?.resume()
  const plain = `http://127.0.0.1:${ports.plain}/`
  const limited = `http://127.0.0.1:${ports.limited}/`
  await waitReady(plain, 'bench', name, child)
  await waitReady(limited, 'bench', name, child)
  return { child, plain, limited }
}

async function startRedis (): Promise<{ child: ChildProcess, port: number, restart (): Promise<void> }> {
  const port = await freePort()
  const launch = (): ChildProcess => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    const c = spawn(PIN ? 'taskset' : 'redis-server', PIN ? ['-c', String(LOAD_CPU), 'redis-server', ...args] : args, { stdio: 'ignore' })
    return c
  }
  const r = { child: launch(), port, restart: async () => { r.child = launch() } }
  return r
}

async function status (url: string): Promise<{ status: number, ms: number }> {
  const t0 = performance.now()
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  await res.body.text()
  return { status: res.statusCode, ms: performance.now() - t0 }
}

/** Polls `url` until it answers 200 (the Redis decision is back: onError is deny); ms taken. */
async function untilOk (url: string, limitMs = 10_000): Promise<number> {
  const t0 = performance.now()
  while (performance.now() - t0 < limitMs) {
    if ((await status(url)).status === 200) return performance.now() - t0
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return Number.NaN
}

async function outage (url: string, redis: Awaited<ReturnType<typeof startRedis>>, kind: 'SIGSTOP' | 'SIGKILL'): Promise<string> {
  await untilOk(url)
  if (kind === 'SIGSTOP') redis.child.kill('SIGSTOP')
  else { redis.child.kill('SIGKILL'); await new Promise((resolve) => redis.child.once('exit', resolve)) }
  const first = await status(url)
  const later: number[] = []
  for (let i = 0; i < 200; i++) later.push((await status(url)).ms)
  later.sort((a, b) => a - b)
  if (kind === 'SIGSTOP') redis.child.kill('SIGCONT')
  else await redis.restart()
  const resumed = await untilOk(url)
  return `| Redis ${kind === 'SIGSTOP' ? 'hung (SIGSTOP)' : 'dead (SIGKILL), restarted empty'} | ${first.status} in ${fmt(first.ms, 1)} ms | ${fmt(later[100]!, 2)} / ${fmt(later[198]!, 2)} / ${fmt(later[199]!, 2)} ms | ${fmt(resumed, 0)} ms |`
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-rl-'))
  const children: ChildProcess[] = []
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined
  try {
    const upstream = startChild(process.execPath, [join(HERE, 'targets', 'upstream.js'), '2'], LOAD_CPU)
    children.push(upstream)
    const { ports } = await readHandshake<{ ports: number[] }>(upstream, 'upstream')
    redis = await startRedis()
    const local = await startTandem(dir, 'local', ports)
    children.push(local.child)
    const shared = await startTandem(dir, 'redis', ports, `redis://127.0.0.1:${redis.port}`)
    children.push(shared.child)
    // For the outage: onError deny, so a 200 means Redis decided it.
    const strict = await startTandem(dir, 'redis-deny', ports, `redis://127.0.0.1:${redis.port}`, 'deny')
    children.push(strict.child)

    const targets = [
      { name: 'no limit', url: local.plain, pid: local.child.pid },
      { name: 'limit (local)', url: local.limited, pid: local.child.pid },
      { name: 'limit (Redis)', url: shared.limited, pid: shared.child.pid },
    ]
    process.stderr.write(`bench:ratelimit ${ROUNDS} rounds x ${targets.length}, ${DURATION} s each, ${CONNECTIONS} connections, ` +
      (PIN ? `tandem on CPU ${PROXY_CPU}, wrk + upstream + redis on CPU ${LOAD_CPU}\n` : 'not pinned\n'))
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of roundOrder(targets, round)) {
        wrk(t.url, 1)
        const s = wrk(t.url, DURATION, t.pid)
        samples.get(t.name)!.push(s)
        process.stderr.write(`  round ${round} ${t.name.padEnd(14)} ${fmt(s.rps).padStart(8)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  ${fmt(s.cpuUs, 1)} CPU µs/req${s.bad > 0 ? `  ${s.bad} non-2xx` : ''}\n`)
      }
    }
    // On a shared machine req/s swings with the neighbours' load; the proxy's own CPU time per
    // request does not, and while the proxy is CPU-bound req/s is its inverse: the cost is read there.
    // Compared round by round (each round's targets ran back to back), then the median ratio.
    const base = samples.get('no limit')!
    const lines = ['| target | req/s | p50 ms | p99 ms | vs no limit (req/s) | proxy CPU µs/request | vs no limit (CPU) | non-2xx |', '|---|---:|---:|---:|---:|---:|---:|---:|']
    for (const t of targets) {
      const s = samples.get(t.name)!
      const ratio = (pick: (x: Sample) => number): string => {
        if (t.name === 'no limit') return '-'
        const r = median(s.map((x, i) => pick(x) / pick(base[i]!))) - 1
        return `${r > 0 ? '+' : ''}${(r * 100).toFixed(1)}%`
      }
      lines.push(`| ${t.name} | ${fmt(median(s.map((x) => x.rps)))} | ${fmt(median(s.map((x) => x.p50)), 2)} | ${fmt(median(s.map((x) => x.p99)), 2)} | ${ratio((x) => x.rps)} | ${fmt(median(s.map((x) => x.cpuUs)), 1)} | ${ratio((x) => x.cpuUs)} | ${s.reduce((a, x) => a + x.bad, 0)} |`)
    }
    lines.push('', `Redis outage (timeout ${REDIS_TIMEOUT_MS}ms, onError deny), sequential requests:`,
      '| outage | first request | next 200: p50 / p99 / max | back to Redis decisions after its return |', '|---|---:|---:|---:|')
    lines.push(await outage(strict.limited, redis, 'SIGSTOP'))
    lines.push(await outage(strict.limited, redis, 'SIGKILL'))
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    for (const c of children.reverse()) await stopChild(c, 'SIGKILL')
    if (redis !== undefined) await stopChild(redis.child, 'SIGKILL')
  }
}

await main()
