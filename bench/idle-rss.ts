// RSS of tandem (the default, operator config) holding 10,000 idle keep-alive client connections,
// each of which made one request: the figure that says whether a node can sit behind a large
// fleet of idle browsers. Prints RSS at start, with the connections open and idle, and after they
// close. Then the same clients against two references started the same way: a bare node:net
// server answering fixed bytes (the floor: what Node itself spends per connection) and a
// node:http hello server. Loopback only, bounded (one request per connection, 60 s per target).
// Env: BENCH_IDLE_CONNECTIONS (10000); BENCH_IDLE_SECONDS (2, at most 60), how long they stay idle
// before the reading; BENCH_HEAP_DETAIL=1 adds V8's committed heap by space; BENCH_IDLE_RUNS (1,
// at most 15) repeats the whole measurement and ends with each process's median and range.
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NODE_ENV, NODE_FLAGS, readHandshake, startChild, stopChild } from './targets/child.js'
import { BENCH_HOST, BENCH_PATH, startTandem } from './targets/tandem.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('.', import.meta.url))
const COUNT = Number(process.env.BENCH_IDLE_CONNECTIONS ?? 10_000)
const IDLE_S = Math.min(60, Number(process.env.BENCH_IDLE_SECONDS ?? 2))
const RUNS = Math.max(1, Math.min(15, Number(process.env.BENCH_IDLE_RUNS ?? 1)))

/** RSS in MiB, and its split: anonymous (heap, buffers, sockets' state) and file-backed (the node binary's touched pages). */
function rss (pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const mib = (field: string): string => (Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024).toFixed(0)
  return `${mib('VmRSS')} MiB (anon ${mib('RssAnon')}, file ${mib('RssFile')})`
}

/** V8's heap in use, from tandem's own /metrics (prom-client's default process metrics). */
async function heapMiB (admin: string | undefined): Promise<string> {
  if (admin === undefined) return '?'
  const text = await (await fetch(`${admin}/metrics`)).text()
  const used = (space: string): number => Number(new RegExp(`nodejs_heap_space_size_used_bytes\\{space="${space}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
  const mib = (re: RegExp): string => (Number(re.exec(text)?.[1] ?? 0) / 1048576).toFixed(1)
  const detail = process.env.BENCH_HEAP_DETAIL === undefined ? '' : ` (committed ${mib(/nodejs_heap_size_total_bytes (\d+)/)}, external ${mib(/nodejs_external_memory_bytes (\d+)/)}, ` +
    ['new', 'old', 'code', 'large_object'].map((sp) => `${sp} ${mib(new RegExp(`nodejs_heap_space_size_total_bytes\\{space="${sp}"\\} (\\d+)`))}`).join(' ') + ')'
  return `heap ${(Number(/nodejs_heap_size_used_bytes (\d+)/.exec(text)?.[1]) / 1048576).toFixed(1)} MiB, code ${(used('code') / 1048576).toFixed(1)}${detail}`
}

/** Opens one connection, sends one request, resolves once the whole answer arrived; keeps it open. */
async function openOne (port: number): Promise<net.Socket> {
  return await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(30_000, () => { s.destroy(new Error('timeout')) })
    let got = ''
    s.once('error', reject)
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (got.includes('\r\n\r\n') && got.endsWith('hello, world\n')) { s.setTimeout(0); s.removeAllListeners('data'); resolve(s) }
    })
    s.write(`GET ${BENCH_PATH} HTTP/1.1\r\nHost: ${BENCH_HOST}\r\n\r\n`)
  })
}

interface Probe { name: string, pid: number, port: number, admin?: string }

/** RSS of the process as counts, in MiB. */
function rssMiB (pid: number): { rss: number, anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1])
  return { rss: kib('VmRSS') / 1024, anon: kib('RssAnon') / 1024 }
}

/** Opens COUNT connections (one request each), holds them idle IDLE_S seconds, closes them; prints one row and returns the idle RSS in MiB. */
async function measure (p: Probe): Promise<number> {
  const sockets: net.Socket[] = []
  const deadline = Date.now() + 60_000
  try {
    const start = `${rss(p.pid)}${p.admin === undefined ? '' : `, ${await heapMiB(p.admin)}`}`
    const before = rssMiB(p.pid)
    for (let i = 0; i < COUNT && Date.now() < deadline; i += 200) {
      sockets.push(...await Promise.all(Array.from({ length: Math.min(200, COUNT - i) }, async () => await openOne(p.port))))
    }
    const loaded = rss(p.pid)
    await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000))
    const idle = `${rss(p.pid)}${p.admin === undefined ? '' : `, ${await heapMiB(p.admin)}`}`
    const held = rssMiB(p.pid)
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const perConn = (held.rss - before.rss) * 1024 / Math.max(1, sockets.length)
    process.stdout.write(`${p.name} RSS: ${start} at start; ${loaded} right after ${sockets.length} connections made one request each; ` +
      `${idle} with them idle ${IDLE_S} s later (${perConn.toFixed(1)} KiB per connection); ${rss(p.pid)} 2 s after they closed\n`)
    return held.rss
  } finally {
    for (const s of sockets) s.destroy()
  }
}

/** One measurement of every process: name → RSS with the clients idle, MiB. */
async function once (dir: string, ports: number[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const tandem = await startTandem(ROOT, dir, ports, undefined, 'default')
  try {
    out.set('tandem (default config)', await measure({ name: 'tandem (default config)', pid: tandem.pid as number, port: Number(new URL(tandem.url).port), admin: tandem.admin }))
  } finally { await tandem.stop() }
  // The same clients against Node alone, started as tandem is (same node, same flags).
  for (const [name, script, args] of [['floor: bare node:net server, fixed answer', 'idle-floor.js', []], ['node:http hello server', 'upstream.js', ['1']]] as const) {
    const child = startChild(process.execPath, [...NODE_FLAGS, join(HERE, 'targets', script), ...args])
    try {
      const hs = await readHandshake<{ port?: number, ports?: number[] }>(child, name)
      out.set(name, await measure({ name, pid: child.pid as number, port: hs.port ?? hs.ports?.[0] ?? 0 }))
    } finally { await stopChild(child) }
  }
  return out
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-idle-'))
  const up = startChild(process.execPath, [join(HERE, 'targets', 'upstream.js'), '2'])
  const { ports } = await readHandshake<{ ports: number[] }>(up, 'upstream')
  try {
    const runs: Array<Map<string, number>> = []
    for (let r = 0; r < RUNS; r++) runs.push(await once(dir, ports))
    if (RUNS > 1) {
      for (const name of runs[0]?.keys() ?? []) {
        const v = runs.map((m) => m.get(name) ?? Number.NaN).sort((a, b) => a - b)
        const median = v[Math.floor(v.length / 2)] as number
        process.stdout.write(`median of ${RUNS} runs, ${name}: ${median.toFixed(0)} MiB with the clients idle (${(v[0] as number).toFixed(0)}-${(v[v.length - 1] as number).toFixed(0)})\n`)
      }
    }
    process.stdout.write(`(node ${process.version}, ${NODE_FLAGS.join(' ')} and ${Object.entries(NODE_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} for all three)\n`)
  } finally {
    await stopChild(up)
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/idle-rss: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
