// HTTP macro benchmark: autocannon (in this process) against the upstream directly, tandem,
// http-proxy with a keep-alive agent, and nginx (when installed), interleaved round by round so
// that load from anything else on the machine hits every target alike; medians of the rounds.
// Where taskset exists the proxy under test runs on CPU 0, autocannon and the upstream on CPU 1,
// so each proxy's figure is what one core gives. Loopback only; about 80 s with the defaults.
// Env: BENCH_ROUNDS (3), BENCH_DURATION seconds (5), BENCH_CONNECTIONS (50).
import { execFileSync, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HAS_TASKSET, readHandshake, startChild, stopChild, waitReady, type RunningTarget } from './targets/child.js'
import { startNginx } from './targets/nginx.js'
import { BENCH_HOST, BENCH_PATH, startTandem } from './targets/tandem.js'

interface AutocannonResult {
  requests: { average: number }
  latency: { p50: number, p99: number }
  errors: number
  timeouts: number
  non2xx: number
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>
// autocannon ships no types; this is the part of its programmatic API used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const DURATION = Number(process.env.BENCH_DURATION ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const WARMUP = 1
const PIN = HAS_TASKSET && availableParallelism() >= 2
const PROXY_CPU = PIN ? 0 : undefined
const LOAD_CPU = PIN ? 1 : undefined

interface Sample { rps: number, p50: number, p99: number, bad: number }
interface Row extends Sample { target: string, samples: Sample[], vsNginx?: number, vsHttpProxy?: number }

/** wrk (C, one thread) when installed: it needs far less CPU than autocannon, so the load generator's core is not what limits the fastest targets. BENCH_LOADGEN=autocannon forces autocannon. */
const WRK = process.env.BENCH_LOADGEN !== 'autocannon' && (() => {
  try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }); return true } catch (err) { return (err as { status?: number }).status === 1 }
})()

function wrkMs (text: string, label: string): number {
  const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(text)
  if (m === null) return Number.NaN
  const v = Number(m[1])
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
}

function runWrk (url: string, seconds: number): Sample {
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Host: ${BENCH_HOST}`, url], { encoding: 'utf8' })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
  const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) +
    (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0)
  return { rps, p50: wrkMs(out, '50%'), p99: wrkMs(out, '99%'), bad }
}

async function measure (url: string): Promise<Sample> {
  if (WRK) {
    runWrk(url, WARMUP)
    return runWrk(url, DURATION)
  }
  const opts = { url, connections: CONNECTIONS, pipelining: 1, headers: { host: BENCH_HOST } }
  await autocannon({ ...opts, duration: WARMUP })
  const r = await autocannon({ ...opts, duration: DURATION })
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, bad: r.errors + r.timeouts + r.non2xx }
}

function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

async function startNodeTarget (script: string, args: string[], what: string, cpu?: number): Promise<{ child: ChildProcess, hello: Record<string, unknown> }> {
  const child = startChild(process.execPath, [join(HERE, 'targets', script), ...args], cpu)
  const hello = await readHandshake<Record<string, unknown>>(child, what)
  return { child, hello }
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const ratio = (n: number | undefined): string => n === undefined ? '-' : `${n.toFixed(2)}x`

function table (rows: Row[]): string {
  const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'vs nginx', 'vs http-proxy', 'non-2xx/errors']
  const body = rows.map((r) => [r.target, fmt(r.rps), fmt(r.p50, 1), fmt(r.p99, 1), ratio(r.vsNginx), ratio(r.vsHttpProxy), fmt(r.bad)])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 1) + '-' : '-'.repeat(w + 1) + ':').join('|') + '|', ...body.map(line)].join('\n')
}

async function main (): Promise<void> {
  // autocannon runs on this process's threads: move all of them to the load generator's CPU.
  if (PIN) execFileSync('taskset', ['-a', '-cp', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' })
  const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-'))
  const running: RunningTarget[] = []
  try {
    const upstream = await startNodeTarget('upstream.js', ['2'], 'upstream', LOAD_CPU)
    running.push({ name: 'upstream', url: '', stop: async () => { await stopChild(upstream.child) } })
    const ports = upstream.hello.ports as number[]
    const direct = `http://127.0.0.1:${ports[0] as number}${BENCH_PATH}`
    await waitReady(direct, BENCH_HOST, 'upstream')

    const targets: Array<{ name: string, url: string }> = [{ name: 'direct', url: direct }]
    const tandem = await startTandem(ROOT, dir, ports, PROXY_CPU)
    running.push(tandem)
    targets.push(tandem)
    const hp = await startNodeTarget('http-proxy.js', ports.map(String), 'http-proxy', PROXY_CPU)
    running.push({ name: 'http-proxy', url: '', stop: async () => { await stopChild(hp.child) } })
    const hpUrl = `http://127.0.0.1:${hp.hello.port as number}${BENCH_PATH}`
    await waitReady(hpUrl, BENCH_HOST, 'http-proxy', hp.child)
    targets.push({ name: 'http-proxy', url: hpUrl })
    const nginx = await startNginx(dir, ports, BENCH_HOST, BENCH_PATH, PROXY_CPU)
    if (nginx !== undefined) { running.push(nginx); targets.push(nginx) } else process.stderr.write('nginx not installed: skipped\n')

    process.stderr.write(`bench: ${ROUNDS} rounds x ${targets.length} targets, ${WARMUP} s warm-up + ${DURATION} s each, ` +
      `${CONNECTIONS} connections, GET ${BENCH_PATH} Host ${BENCH_HOST}, ` +
      (PIN ? `proxy on CPU ${PROXY_CPU}, ${WRK ? 'wrk' : 'autocannon'} + upstream on CPU ${LOAD_CPU}\n` : 'not pinned (no taskset or one CPU)\n'))
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        const s = await measure(t.url)
        samples.get(t.name)?.push(s)
        process.stderr.write(`  round ${round}/${ROUNDS} ${t.name.padEnd(10)} ${fmt(s.rps).padStart(8)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms${s.bad > 0 ? `  ${s.bad} non-2xx/errors` : ''}\n`)
      }
    }

    const rows: Row[] = targets.map((t) => {
      const ss = samples.get(t.name) ?? []
      return { target: t.name, samples: ss, rps: median(ss.map((s) => s.rps)), p50: median(ss.map((s) => s.p50)), p99: median(ss.map((s) => s.p99)), bad: ss.reduce((n, s) => n + s.bad, 0) }
    })
    const base = (name: string): number | undefined => rows.find((r) => r.target === name)?.rps
    for (const r of rows) {
      const n = base('nginx')
      const h = base('http-proxy')
      if (n !== undefined && n > 0) r.vsNginx = r.rps / n
      if (h !== undefined && h > 0) r.vsHttpProxy = r.rps / h
    }
    process.stdout.write(`\nHTTP, small GET, ${CONNECTIONS} keep-alive connections, median of ${ROUNDS} interleaved rounds of ${DURATION} s` +
      `${PIN ? ', proxy pinned to one CPU' : ''} (node ${process.version})\n\n${table(rows)}\n`)

    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      pinned: PIN,
      connections: CONNECTIONS,
      durationSeconds: DURATION,
      warmupSeconds: WARMUP,
      rounds: ROUNDS,
      request: { method: 'GET', path: BENCH_PATH, host: BENCH_HOST },
      results: rows,
    }
    await writeFile(join(ROOT, 'bench', 'results', 'http-latest.json'), JSON.stringify(result, null, 2) + '\n')
    process.stdout.write('\nwritten to bench/results/http-latest.json\n')
  } finally {
    for (const t of running.reverse()) await t.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/http: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
