// Instructions per request of tandem's own process (user space: JS, V8, Node, libc; not the
// kernel) under callgrind, for a fixed count of keep-alive requests after a warm-up: a figure a
// noisy VM cannot move (CPU time on a shared core swings ±20% between rounds), for comparing two
// configs or two commits. Node runs --single-threaded so that compilation and GC happen at the
// same points run after run. Under valgrind the process is ~50× slower, so work done once per
// millisecond or per timer tick (the access line's time, the event-loop lag monitor) is counted
// about once per request: the default config's overhead reads higher here than in bench/http.ts.
// Loopback only, bounded (N requests, 15 minutes per variant).
// Usage: npm run bench:build && node dist-bench/bench/instructions.js [variant …]
// Env: BENCH_REQUESTS (10000), BENCH_WARMUP (20000); BENCH_KEEP=1 keeps the callgrind files
// (for callgrind_annotate) and prints where.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NODE_ENV, NODE_FLAGS } from './targets/child.js'
import { startNginxUpstream } from './targets/nginx.js'
import { BENCH_HOST, BENCH_PATH, startTandem, type TandemVariant } from './targets/tandem.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 10_000)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20_000)
const CONNECTIONS = 50

/** `perConn` keep-alive requests on each of `conns` connections; resolves with the count answered. */
async function load (port: number, conns: number, perConn: number): Promise<number> {
  let done = 0
  const request = `GET ${BENCH_PATH} HTTP/1.1\r\nHost: ${BENCH_HOST}\r\n\r\n`
  await Promise.all(Array.from({ length: conns }, async () => await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request))
    s.setTimeout(60_000, () => { s.destroy(new Error('no answer in 60 s')) })
    let left = perConn
    let got = ''
    s.on('error', reject)
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      for (let i = got.indexOf('hello, world\n'); i !== -1; i = got.indexOf('hello, world\n')) {
        got = got.slice(i + 13)
        done++
        if (--left === 0) { s.destroy(); resolve(); return }
        s.write(request)
      }
    })
  })))
  return done
}

async function measure (variant: TandemVariant, dir: string, upstreamPorts: number[]): Promise<number> {
  // The config bench/http.ts runs, written by a normal start; then the same file under valgrind.
  const probe = await startTandem(ROOT, dir, upstreamPorts, undefined, variant)
  const port = Number(new URL(probe.url).port)
  await probe.stop()
  const out = join(dir, `callgrind-${variant}.out`)
  const drain = spawn('cat', [], { stdio: ['pipe', 'ignore', 'inherit'] })
  const child = spawn('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`,
    process.execPath, ...NODE_FLAGS, '--single-threaded', join(ROOT, 'dist', 'cli.js'), 'run', '-c', join(dir, `tandem-${variant}.yaml`)],
  { stdio: ['ignore', drain.stdin, 'ignore'], env: { ...process.env, ...NODE_ENV } })
  try {
    const deadline = Date.now() + 120_000
    for (;;) {
      try { await load(port, 1, 1); break } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
    await load(port, CONNECTIONS, WARMUP / CONNECTIONS)
    execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' })
    const answered = await load(port, CONNECTIONS, REQUESTS / CONNECTIONS)
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' })
    let counted = 0
    for (const f of await readdir(dir)) {
      if (!f.startsWith(`callgrind-${variant}.out.`)) continue
      counted = Math.max(counted, Number(/^(?:summary|totals): (\d+)/m.exec(await readFile(join(dir, f), 'utf8'))?.[1] ?? 0))
    }
    return counted / answered
  } finally {
    child.kill('SIGKILL')
    drain.kill()
  }
}

async function main (): Promise<void> {
  const variants = (process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['default', 'quiet']) as TandemVariant[]
  const dir = await mkdtemp(join(tmpdir(), 'tandem-instructions-'))
  const up = await startNginxUpstream(dir, 2)
  if (up === undefined) throw new Error('needs nginx for the upstream')
  try {
    const per: Array<[string, number]> = []
    for (const v of variants) {
      const n = await measure(v, dir, up.ports)
      per.push([v, n])
      process.stdout.write(`${v}: ${Math.round(n)} instructions per request (${REQUESTS} keep-alive requests after ${WARMUP})\n`)
    }
    const [base] = per.filter(([v]) => v === 'quiet')
    if (base !== undefined) for (const [v, n] of per) if (v !== 'quiet') process.stdout.write(`${v} vs quiet: ${(100 * n / base[1]).toFixed(0)}%\n`)
  } finally {
    await up.target.stop()
    if (process.env.BENCH_KEEP === '1') process.stdout.write(`callgrind files kept in ${dir}\n`)
    else await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/instructions: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
