// HTTP macro benchmark (`npm run bench`): tandem in the config operators run and stripped to its
// core, a bare node:http + undici proxy (the floor of that stack), http-proxy and nginx (one
// worker), interleaved round by round so that noise hits every target alike; medians of the rounds.
// Two client modes: keep-alive, and `Connection: close` (a new client connection per request).
// Where taskset exists the proxy under test runs on CPU 0; wrk (or autocannon) and the upstream
// (nginx when installed, else a node:http server) on CPU 1. For each sample the proxy's own CPU
// time comes from /proc (so "µs per request" holds on a noisy machine), and both cores' busy
// shares from /proc/stat: a sample whose load core was saturated is flagged as not proxy-bound.
// Loopback only; about 5 minutes with the defaults.
// Env: BENCH_ROUNDS (3), BENCH_DURATION seconds (5), BENCH_CONNECTIONS (50), BENCH_MODES
// (keep-alive,close), BENCH_TARGETS (comma list to run a subset), BENCH_LOADGEN=autocannon.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HAS_TASKSET, cpuTimes, readHandshake, roundOrder, startChild, stopChild, treeCpuSeconds, waitReady, type RunningTarget } from './targets/child.js'
import { startNginx, startNginxUpstream } from './targets/nginx.js'
import { BENCH_HOST, BENCH_PATH, startTandem } from './targets/tandem.js'

interface AutocannonResult {
  requests: { average: number, total: number }
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
const MODES = (process.env.BENCH_MODES ?? 'keep-alive,close').split(',') as Mode[]
const ONLY = process.env.BENCH_TARGETS?.split(',')
const WARMUP = 1
const PIN = HAS_TASKSET && availableParallelism() >= 2
const PROXY_CPU = PIN ? 0 : undefined
const LOAD_CPU = PIN ? 1 : undefined
/** A load core busier than this means the load side, not the proxy, set the pace. */
const SATURATED = 0.95

type Mode = 'keep-alive' | 'close'
interface Sample { rps: number, p50: number, p99: number, bad: number, cpuUsPerReq?: number, proxyBusy?: number, loadBusy?: number }
interface Row { target: string, mode: Mode, rps: number, p50: number, p99: number, bad: number, cpuUsPerReq?: number, proxyBusy?: number, loadBusy?: number, rssMiB?: number, vsNginx?: number }
interface Target { name: string, url: string, pid?: number }

/** wrk (C, one thread) when installed: it needs far less CPU than autocannon. */
const WRK = process.env.BENCH_LOADGEN !== 'autocannon' && (() => {
  try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }); return true } catch (err) { return (err as { status?: number }).status === 1 }
})()

function wrkMs (text: string, label: string): number {
  const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(text)
  if (m === null) return Number.NaN
  const v = Number(m[1])
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
}

function runWrk (url: string, seconds: number, mode: Mode): { rps: number, total: number, p50: number, p99: number, bad: number } {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Host: ${BENCH_HOST}`]
  if (mode === 'close') args.push('-H', 'Connection: close')
  const argv = PIN ? ['taskset', '-c', String(LOAD_CPU), 'wrk', ...args, url] : ['wrk', ...args, url]
  const out = execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' })
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
  const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) +
    (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0)
  return { rps, total, p50: wrkMs(out, '50%'), p99: wrkMs(out, '99%'), bad }
}

async function load (url: string, seconds: number, mode: Mode): Promise<{ rps: number, total: number, p50: number, p99: number, bad: number }> {
  if (WRK) return runWrk(url, seconds, mode)
  const opts = { url, connections: CONNECTIONS, pipelining: 1, headers: mode === 'close' ? { host: BENCH_HOST, connection: 'close' } : { host: BENCH_HOST } }
  const r = await autocannon({ ...opts, duration: seconds })
  return { rps: r.requests.average, total: r.requests.total, p50: r.latency.p50, p99: r.latency.p99, bad: r.errors + r.timeouts + r.non2xx }
}

const share = (a: { busy: number, total: number } | undefined, b: { busy: number, total: number } | undefined): number | undefined =>
  a === undefined || b === undefined || b.total <= a.total ? undefined : (b.busy - a.busy) / (b.total - a.total)

async function measure (t: Target, mode: Mode): Promise<Sample> {
  await load(t.url, WARMUP, mode)
  const c0 = treeCpuSeconds(t.pid)
  const p0 = PIN ? cpuTimes(PROXY_CPU as number) : undefined
  const l0 = PIN ? cpuTimes(LOAD_CPU as number) : undefined
  const r = await load(t.url, DURATION, mode)
  const c1 = treeCpuSeconds(t.pid)
  const s: Sample = { rps: r.rps, p50: r.p50, p99: r.p99, bad: r.bad }
  if (c0 !== undefined && c1 !== undefined && r.total > 0) s.cpuUsPerReq = (c1 - c0) * 1e6 / r.total
  const proxyBusy = share(p0, PIN ? cpuTimes(PROXY_CPU as number) : undefined)
  const loadBusy = share(l0, PIN ? cpuTimes(LOAD_CPU as number) : undefined)
  if (proxyBusy !== undefined) s.proxyBusy = proxyBusy
  if (loadBusy !== undefined) s.loadBusy = loadBusy
  return s
}

function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
const medianOf = (ss: Sample[], pick: (s: Sample) => number | undefined): number | undefined => {
  const v = ss.map(pick).filter((x): x is number => x !== undefined)
  return v.length === 0 ? undefined : median(v)
}

function rssMiB (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
    return Number.isFinite(kb) ? kb / 1024 : undefined
  } catch { return undefined }
}

async function startNodeTarget (name: string, script: string, ports: readonly number[]): Promise<RunningTarget> {
  const child = startChild(process.execPath, [join(HERE, 'targets', script), ...ports.map(String)], PROXY_CPU)
  const hello = await readHandshake<{ port: number }>(child, name)
  const url = `http://127.0.0.1:${hello.port}${BENCH_PATH}`
  await waitReady(url, BENCH_HOST, name, child)
  return { name, url, pid: child.pid, stop: async () => { await stopChild(child) } }
}

async function startNodeUpstream (): Promise<{ ports: number[], target: RunningTarget }> {
  const child = startChild(process.execPath, [join(HERE, 'targets', 'upstream.js'), '2'], LOAD_CPU)
  const hello = await readHandshake<{ ports: number[] }>(child, 'upstream')
  const url = `http://127.0.0.1:${hello.ports[0] as number}${BENCH_PATH}`
  await waitReady(url, BENCH_HOST, 'upstream', child)
  return { ports: hello.ports, target: { name: 'upstream', url, pid: child.pid, stop: async () => { await stopChild(child) } } }
}

const fmt = (n: number | undefined, digits = 0): string => n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const pct = (n: number | undefined): string => n === undefined ? '-' : `${Math.round(n * 100)}%`

function table (rows: Row[]): string {
  const head = ['target', 'mode', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'vs nginx', 'proxy core', 'load core', 'RSS MiB', 'errors']
  const body = rows.map((r) => [r.target, r.mode, fmt(r.rps), fmt(r.p50, 1), fmt(r.p99, 1), fmt(r.cpuUsPerReq, 1),
    r.vsNginx === undefined ? '-' : `${r.vsNginx.toFixed(2)}x`, pct(r.proxyBusy),
    pct(r.loadBusy) + (r.loadBusy !== undefined && r.loadBusy >= SATURATED ? ' (!)' : ''), fmt(r.rssMiB), fmt(r.bad)])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => '-'.repeat(w + 1) + (i < 2 ? '-' : ':')).join('|') + '|', ...body.map(line)].join('\n')
}

async function main (): Promise<void> {
  // autocannon runs on this process's threads: move all of them to the load generator's CPU.
  if (PIN) execFileSync('taskset', ['-a', '-cp', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' })
  const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-'))
  const running: RunningTarget[] = []
  try {
    const up = await startNginxUpstream(dir, 2, LOAD_CPU) ?? await startNodeUpstream()
    running.push(up.target)
    const upstreamKind = up.target.pid !== undefined && /nginx/.test(readFileSync(`/proc/${up.target.pid}/cmdline`, 'utf8')) ? 'nginx' : 'node:http'
    const ports = up.ports
    const wanted = (name: string): boolean => ONLY === undefined || ONLY.includes(name)
    const targets: Target[] = []
    const add = (t: RunningTarget): void => { running.push(t); targets.push(t) }
    if (wanted('direct')) targets.push({ name: 'direct', url: `http://127.0.0.1:${ports[0] as number}${BENCH_PATH}` })
    if (wanted('tandem')) add(await startTandem(ROOT, dir, ports, PROXY_CPU, 'default', LOAD_CPU))
    if (wanted('tandem-quiet')) add(await startTandem(ROOT, dir, ports, PROXY_CPU, 'quiet', LOAD_CPU))
    if (wanted('tandem-stripped')) add(await startTandem(ROOT, dir, ports, PROXY_CPU, 'stripped', LOAD_CPU))
    // Attribution only, not in the default run: the default config's overhead split in two.
    for (const v of ['no-access', 'no-admin'] as const) if (ONLY?.includes(`tandem-${v}`) === true) add(await startTandem(ROOT, dir, ports, PROXY_CPU, v, LOAD_CPU))
    if (wanted('node+undici')) add(await startNodeTarget('node+undici', 'undici-proxy.js', ports))
    if (wanted('http-proxy')) add(await startNodeTarget('http-proxy', 'http-proxy.js', ports))
    if (wanted('nginx')) {
      const nginx = await startNginx(dir, ports, BENCH_HOST, BENCH_PATH, PROXY_CPU)
      if (nginx !== undefined) add(nginx); else process.stderr.write('nginx not installed: skipped\n')
    }
    const idleRss = new Map(targets.map((t) => [t.name, rssMiB(t.pid)]))

    process.stderr.write(`bench: ${ROUNDS} rounds x ${targets.length} targets x ${MODES.join('/')}, ${WARMUP} s warm-up + ${DURATION} s each, ` +
      `${CONNECTIONS} connections, GET ${BENCH_PATH}, upstream ${upstreamKind}, ` +
      (PIN ? `proxy on CPU ${PROXY_CPU}, ${WRK ? 'wrk' : 'autocannon'} + upstream on CPU ${LOAD_CPU}\n` : 'not pinned (no taskset or one CPU)\n'))
    const samples = new Map<string, Sample[]>()
    const peakRss = new Map<string, number>()
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of MODES) {
        for (const t of roundOrder(targets, round)) {
          const s = await measure(t, mode)
          const key = `${t.name}\0${mode}`
          samples.set(key, [...(samples.get(key) ?? []), s])
          const rss = rssMiB(t.pid)
          if (rss !== undefined) peakRss.set(t.name, Math.max(peakRss.get(t.name) ?? 0, rss))
          process.stderr.write(`  round ${round}/${ROUNDS} ${mode.padEnd(10)} ${t.name.padEnd(16)} ${fmt(s.rps).padStart(8)} req/s  p99 ${s.p99} ms` +
            `  ${fmt(s.cpuUsPerReq, 1)} µs/req  proxy core ${pct(s.proxyBusy)}  load core ${pct(s.loadBusy)}${s.bad > 0 ? `  ${s.bad} errors` : ''}\n`)
        }
      }
    }

    const rows: Row[] = []
    for (const mode of MODES) {
      for (const t of targets) {
        const ss = samples.get(`${t.name}\0${mode}`) ?? []
        const row: Row = { target: t.name, mode, rps: median(ss.map((s) => s.rps)), p50: median(ss.map((s) => s.p50)), p99: median(ss.map((s) => s.p99)), bad: ss.reduce((n, s) => n + s.bad, 0) }
        const cpu = medianOf(ss, (s) => s.cpuUsPerReq)
        const pb = medianOf(ss, (s) => s.proxyBusy)
        const lb = medianOf(ss, (s) => s.loadBusy)
        const rss = peakRss.get(t.name)
        if (t.name !== 'direct' && cpu !== undefined) row.cpuUsPerReq = cpu
        if (pb !== undefined) row.proxyBusy = pb
        if (lb !== undefined) row.loadBusy = lb
        if (t.name !== 'direct' && rss !== undefined) row.rssMiB = rss
        rows.push(row)
      }
      const nginx = rows.find((r) => r.mode === mode && r.target === 'nginx')?.rps
      if (nginx !== undefined && nginx > 0) for (const r of rows) if (r.mode === mode) r.vsNginx = r.rps / nginx
    }
    const notBound = rows.filter((r) => r.target !== 'direct' && r.loadBusy !== undefined && r.loadBusy >= SATURATED)
    process.stdout.write(`\nHTTP, small GET, ${CONNECTIONS} connections, median of ${ROUNDS} interleaved rounds of ${DURATION} s` +
      `${PIN ? ', proxy pinned to one CPU' : ''}, upstream ${upstreamKind} (node ${process.version})\n\n${table(rows)}\n`)
    if (notBound.length > 0) process.stdout.write(`\n(!) not proxy-bound (load core >= ${SATURATED * 100}% busy): ${notBound.map((r) => `${r.target}/${r.mode}`).join(', ')}\n`)
    // Also per round: tandem and its variants run one after the other, so a round's ratio sees
    // the same machine; on a VM whose speed drifts between rounds this median is the steadier figure.
    const t = rows.find((r) => r.mode === 'keep-alive' && r.target === 'tandem')
    const tSamples = samples.get('tandem\0keep-alive') ?? []
    for (const other of ['tandem-quiet', 'tandem-stripped', 'tandem-no-access', 'tandem-no-admin']) {
      const o = rows.find((r) => r.mode === 'keep-alive' && r.target === other)
      if (t === undefined || o === undefined) continue
      const cpu = t.cpuUsPerReq !== undefined && o.cpuUsPerReq !== undefined ? `, ${(t.cpuUsPerReq / o.cpuUsPerReq * 100).toFixed(0)}% of the CPU per request` : ''
      const oSamples = samples.get(`${other}\0keep-alive`) ?? []
      const paired = tSamples.flatMap((s, i) => {
        const os = oSamples[i]
        return os === undefined || s.cpuUsPerReq === undefined || os.cpuUsPerReq === undefined ? [] : [s.cpuUsPerReq / os.cpuUsPerReq]
      })
      const perRound = paired.length === 0 ? '' : `; per round ${paired.map((r) => `${(r * 100).toFixed(0)}%`).join(' ')}, median ${(median(paired) * 100).toFixed(0)}% of the CPU`
      process.stdout.write(`default config vs ${other.slice(7)}: ${(t.rps / o.rps * 100).toFixed(0)}% of the requests/s${cpu}${perRound}\n`)
    }


    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
    const result = {
      date: new Date().toISOString(), node: process.version, pinned: PIN, upstream: upstreamKind, connections: CONNECTIONS,
      durationSeconds: DURATION, warmupSeconds: WARMUP, rounds: ROUNDS, request: { method: 'GET', path: BENCH_PATH, host: BENCH_HOST },
      idleRssMiB: Object.fromEntries(idleRss), results: rows, samples: Object.fromEntries(samples),
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
