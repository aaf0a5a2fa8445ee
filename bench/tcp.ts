// TCP macro benchmark: one long stream's bytes/s and new connections/s, against the upstream
// directly, tandem's TcpListener (bare, and `observed`: with the access log and metrics that
// `tandem run` has by default), a bare node:net pipe (orientation) and HAProxy `mode tcp`
// (when installed), interleaved round by round so that load from anything else on the machine
// hits every target alike; medians of the rounds. Where taskset exists the proxy under test runs
// on CPU 0, the load generator and the upstream on CPU 1. The proxy's own CPU time is read from
// /proc (with its child processes: nginx forks its worker), so "Gbit per CPU-second" and "CPU µs
// per connection" stay meaningful on a noisy machine.
// New connections: redis-benchmark -k 0 (connect, PING, PONG, close; a C client, so the load
// side outruns the proxies) against a redis-server when both are installed, else a node:net
// loop against a server that writes one byte and closes. About 60 s.
// Env: BENCH_ROUNDS (3), BENCH_SECONDS per measurement (2), BENCH_CONCURRENCY for new
// connections (32).
import { execFile, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HAS_TASKSET, freePort, treeCpuSeconds as cpuSeconds, readHandshake, roundOrder, startChild, stopChild } from './targets/child.js'
import { startHaproxy, type RunningTcpTarget } from './targets/haproxy.js'
import { startNginxStream } from './targets/nginx-stream.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = fileURLToPath(new URL(existsSync(join(HERE, 'targets', 'tcp-proxy.js')) ? '../../' : '../', import.meta.url))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32)
const WARMUP_MS = 300
const PIN = HAS_TASKSET && availableParallelism() >= 2
const PROXY_CPU = PIN ? 0 : undefined
const LOAD_CPU = PIN ? 1 : undefined
const REDIS_SERVER = '/usr/bin/redis-server'
const REDIS_BENCHMARK = '/usr/bin/redis-benchmark'
const USE_REDIS = existsSync(REDIS_SERVER) && existsSync(REDIS_BENCHMARK)

interface Sample { gbps: number, gbitPerCpuS?: number, connsPerS: number, cpuUsPerConn?: number, errors: number }
interface Row {
  target: string
  gbps: number
  gbitPerCpuS?: number
  connsPerS: number
  cpuUsPerConn?: number
  errors: number
  vsHaproxy?: { stream: number, conns: number }
  vsNginx?: { stream: number, conns: number }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Compiled targets sit next to this file as .js; from source (vite-node) they are .ts. */
function nodeTarget (name: string, args: readonly string[], cpu?: number): ChildProcess {
  const js = join(HERE, 'targets', `${name}.js`)
  if (existsSync(js)) return startChild(process.execPath, [js, ...args], cpu)
  const viteNode = join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs')
  return startChild(process.execPath, [viteNode, join(HERE, 'targets', `${name}.ts`), ...args], cpu)
}

async function startNodeProxy (name: string, script: string, ports: { source: number, greet: number }, extra: readonly string[] = []): Promise<RunningTcpTarget> {
  const child = nodeTarget(script, [String(ports.source), String(ports.greet), ...extra], PROXY_CPU)
  const hello = await readHandshake<{ stream: number, conns: number }>(child, name, 30_000)
  return { name, ...hello, pid: child.pid, stop: async () => { await stopChild(child) } }
}

/** One download through `port` for SECONDS after a warm-up; reads into one reused buffer. */
async function measureStream (port: number, pid?: number): Promise<{ gbps: number, gbitPerCpuS?: number }> {
  let bytes = 0
  const socket = net.connect({
    port, host: '127.0.0.1', noDelay: true,
    onread: { buffer: Buffer.allocUnsafe(256 * 1024), callback: (n) => { bytes += n; return true } },
  })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  await sleep(WARMUP_MS)
  const b0 = bytes
  const c0 = cpuSeconds(pid)
  const t0 = performance.now()
  await sleep(SECONDS * 1000)
  const bits = (bytes - b0) * 8
  const s = (performance.now() - t0) / 1000
  const c1 = cpuSeconds(pid)
  socket.destroy()
  const gbps = bits / s / 1e9
  return c0 === undefined || c1 === undefined || c1 <= c0 ? { gbps } : { gbps, gbitPerCpuS: bits / 1e9 / (c1 - c0) }
}

interface ConnsRun { conns: number, seconds: number, errors: number, cpu?: number }

/** CONCURRENCY loops of connect → one byte and FIN from the upstream → close, for SECONDS. */
async function nodeConns (port: number, pid?: number): Promise<ConnsRun> {
  let counting = false
  let stop = false
  let done = 0
  let errors = 0
  let open = 0
  const one = (): void => {
    open++
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => { errors++ })
    s.on('close', () => {
      open--
      if (counting) done++
      if (!stop) one()
    })
    s.resume()
  }
  for (let i = 0; i < CONCURRENCY; i++) one()
  await sleep(WARMUP_MS)
  counting = true
  const c0 = cpuSeconds(pid)
  const t0 = performance.now()
  await sleep(SECONDS * 1000)
  counting = false
  const seconds = (performance.now() - t0) / 1000
  const c1 = cpuSeconds(pid)
  stop = true
  const deadline = Date.now() + 5000
  while (open > 0 && Date.now() < deadline) await sleep(10)
  return { conns: done, seconds, errors, ...(c0 === undefined || c1 === undefined ? {} : { cpu: c1 - c0 }) }
}

/** redis-benchmark -k 0: every PING on a new connection; `n` sized from the last rate seen. */
async function redisConns (port: number, n: number, pid?: number): Promise<ConnsRun> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-c', String(CONCURRENCY), '-n', String(n), '-k', '0', '-t', 'ping_inline', '--csv']
  const c0 = cpuSeconds(pid)
  const out = await new Promise<string>((resolve, reject) => {
    execFile(REDIS_BENCHMARK, args, { timeout: 60_000 }, (err, stdout) => { if (err !== null) reject(err); else resolve(stdout) })
  })
  const c1 = cpuSeconds(pid)
  const rps = Number(/"PING_INLINE","([\d.]+)"/.exec(out)?.[1])
  if (!Number.isFinite(rps) || rps <= 0) throw new Error(`redis-benchmark: no result in ${JSON.stringify(out)}`)
  return { conns: n, seconds: n / rps, errors: 0, ...(c0 === undefined || c1 === undefined ? {} : { cpu: c1 - c0 }) }
}

const lastRate = new Map<string, number>()

async function measureConns (name: string, port: number, pid?: number): Promise<{ connsPerS: number, cpuUsPerConn?: number, errors: number }> {
  if (USE_REDIS && !lastRate.has(name)) {
    const probe = await redisConns(port, 1000)
    lastRate.set(name, probe.conns / probe.seconds)
  }
  const r = USE_REDIS
    ? await redisConns(port, Math.round(Math.min(200_000, Math.max(2000, (lastRate.get(name) ?? 2000) * SECONDS))), pid)
    : await nodeConns(port, pid)
  const connsPerS = r.conns / r.seconds
  lastRate.set(name, connsPerS)
  return { connsPerS, ...(r.cpu === undefined || r.conns === 0 ? {} : { cpuUsPerConn: r.cpu * 1e6 / r.conns }), errors: r.errors }
}

function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const fmt = (n: number | undefined, digits = 0): string => n === undefined ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const pct = (n: number | undefined): string => n === undefined ? '-' : `${Math.round(n * 100)}%`

function table (rows: Row[]): string {
  const head = ['target', 'stream Gbit/s', 'Gbit per CPU-s', 'new conns/s', 'CPU µs per conn', 'stream vs haproxy', 'conns vs haproxy', 'stream vs nginx', 'conns vs nginx', 'errors']
  const body = rows.map((r) => [
    r.target, fmt(r.gbps, 2), fmt(r.gbitPerCpuS, 2), fmt(r.connsPerS), fmt(r.cpuUsPerConn), pct(r.vsHaproxy?.stream), pct(r.vsHaproxy?.conns), pct(r.vsNginx?.stream), pct(r.vsNginx?.conns), fmt(r.errors),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|') + '|', ...body.map(line)].join('\n')
}

/** A throwaway redis-server on CPU LOAD_CPU, the upstream of the new-connections test. */
async function startRedis (running: Array<{ stop: () => Promise<void> }>): Promise<number> {
  const port = await freePort()
  const child = startChild(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--maxclients', '10000', '--loglevel', 'warning'], LOAD_CPU)
  child.stdout?.resume()
  running.push({ stop: async () => { await stopChild(child) } })
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => { resolve(false) })
    })
    if (up) return port
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('redis-server did not start within 10 s')
    await sleep(50)
  }
}

async function main (): Promise<void> {
  if (PIN) execFileSync('taskset', ['-a', '-cp', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' })
  const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-tcp-'))
  const running: Array<{ stop: () => Promise<void> }> = []
  try {
    const upstream = nodeTarget('tcp-upstream', [], LOAD_CPU)
    running.push({ stop: async () => { await stopChild(upstream) } })
    const hello = await readHandshake<{ source: number, greet: number }>(upstream, 'tcp upstream', 30_000)
    const ports = { source: hello.source, greet: USE_REDIS ? await startRedis(running) : hello.greet }

    const targets: RunningTcpTarget[] = [{ name: 'direct', stream: ports.source, conns: ports.greet, stop: async () => {} }]
    for (const [name, script, extra] of [['tandem', 'tcp-proxy', []], ['tandem+log', 'tcp-proxy', ['observed']], ['node pipe', 'tcp-pipe', []]] as const) {
      const t = await startNodeProxy(name, script, ports, extra)
      running.push(t)
      targets.push(t)
    }
    const haproxy = await startHaproxy(dir, ports.source, ports.greet, PROXY_CPU)
    if (haproxy !== undefined) { running.push(haproxy); targets.push(haproxy) } else process.stderr.write('haproxy not installed: skipped\n')
    const nginx = await startNginxStream(dir, ports.source, ports.greet, PROXY_CPU)
    if (nginx !== undefined) { running.push(nginx); targets.push(nginx) } else process.stderr.write('nginx with the stream module not installed: skipped\n')

    process.stderr.write(`bench tcp: ${ROUNDS} rounds x ${targets.length} targets, ${SECONDS} s stream + ~${SECONDS} s new connections ` +
      `(${CONCURRENCY} at a time, ${USE_REDIS ? 'redis-benchmark -k 0 PING' : 'node:net, one byte'}) each, ` +
      `${PIN ? `proxy on CPU ${PROXY_CPU}, load + upstream on CPU ${LOAD_CPU}` : 'not pinned'}\n`)
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of roundOrder(targets, round)) {
        const st = await measureStream(t.stream, t.pid)
        const cn = await measureConns(t.name, t.conns, t.pid)
        samples.get(t.name)?.push({ ...st, ...cn })
        process.stderr.write(`  round ${round}/${ROUNDS} ${t.name.padEnd(10)} ${fmt(st.gbps, 2).padStart(6)} Gbit/s` +
          `${st.gbitPerCpuS === undefined ? '' : ` (${fmt(st.gbitPerCpuS, 2)} per CPU-s)`}  ${fmt(cn.connsPerS).padStart(7)} conns/s` +
          `${cn.cpuUsPerConn === undefined ? '' : ` (${fmt(cn.cpuUsPerConn)} CPU µs each)`}${cn.errors > 0 ? `  ${cn.errors} errors` : ''}\n`)
      }
    }

    const rows: Row[] = targets.map((t) => {
      const ss = samples.get(t.name) ?? []
      const eff = ss.map((s) => s.gbitPerCpuS).filter((x): x is number => x !== undefined)
      const perConn = ss.map((s) => s.cpuUsPerConn).filter((x): x is number => x !== undefined)
      return {
        target: t.name,
        gbps: median(ss.map((s) => s.gbps)),
        ...(eff.length > 0 ? { gbitPerCpuS: median(eff) } : {}),
        connsPerS: median(ss.map((s) => s.connsPerS)),
        ...(perConn.length > 0 ? { cpuUsPerConn: median(perConn) } : {}),
        errors: ss.reduce((n, s) => n + s.errors, 0),
      }
    })
    const ref = rows.find((r) => r.target === 'haproxy')
    if (ref !== undefined) for (const r of rows) r.vsHaproxy = { stream: r.gbps / ref.gbps, conns: r.connsPerS / ref.connsPerS }
    const ngx = rows.find((r) => r.target === 'nginx stream')
    if (ngx !== undefined) for (const r of rows) r.vsNginx = { stream: r.gbps / ngx.gbps, conns: r.connsPerS / ngx.connsPerS }
    process.stdout.write(`\nTCP pass-through, median of ${ROUNDS} interleaved rounds of ${SECONDS} s${PIN ? ', proxy pinned to one CPU' : ''} ` +
      `(node ${process.version})\n\n${table(rows)}\n`)

    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
    const result = { date: new Date().toISOString(), node: process.version, pinned: PIN, rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, results: rows }
    await writeFile(join(ROOT, 'bench', 'results', 'tcp-latest.json'), JSON.stringify(result, null, 2) + '\n')
    process.stdout.write('\nwritten to bench/results/tcp-latest.json\n')
  } finally {
    for (const t of running.reverse()) await t.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/tcp: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
