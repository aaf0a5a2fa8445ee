// Pair failover figures (issue 8), on loopback, heartbeat 100 ms, deadAfter 3:
//  - takeover: SIGKILL the active, time until the standby's listener first answers (10 runs, p50/max;
//    target max ≤ (deadAfter + 1) × heartbeat + bind ≈ 700 ms)
//  - hand-over: POST /api/peer/step-down, longest stretch with no node answering (10 runs)
//  - resync: a full snapshot of 100,000 bucket-like entries plus all server state from one
//    PeerTransport to another, connect to applied, and the largest heartbeat gap meanwhile.
// Run: npm run bench:build && flock /tmp/tandem-heavy.lock node dist-bench/bench/failover.js
import { spawn, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StateSync } from '../src/peer/sync.js'
import { PeerTransport } from '../src/peer/transport.js'
import type { Replicated } from '../src/state/replicated.js'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const RUNS = Number(process.env.RUNS ?? 10)
const SECRET = 'bench-secret-0123456789'

async function freePort (): Promise<number> {
  for (;;) {
    const srv = net.createServer()
    const port = await new Promise<number>((resolve) => { srv.listen(0, '127.0.0.1', () => { resolve((srv.address() as net.AddressInfo).port) }) })
    await new Promise<void>((resolve) => { srv.close(() => { resolve() }) })
    const sock = dgram.createSocket('udp4')
    const ok = await new Promise<boolean>((resolve) => { sock.once('error', () => { resolve(false) }); sock.bind(port, '127.0.0.1', () => { resolve(true) }) })
    await new Promise<void>((resolve) => { try { sock.close(() => { resolve() }) } catch { resolve() } })
    if (ok) return port
  }
}

async function get (url: string, timeoutMs = 200): Promise<number> {
  return await new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => { res.resume(); res.on('end', () => { resolve(res.statusCode ?? 0) }) })
    req.on('timeout', () => { req.destroy() })
    req.on('error', () => { resolve(0) })
  })
}

async function until (f: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

interface Node { id: string, listen: number, peer: number, admin: number, child?: ChildProcess }

function config (n: Node, other: Node, upstream: number): string {
  return [
    `admin: { listen: 127.0.0.1:${n.admin} }`,
    'log: { level: warn, access: false }',
    `upstreams: { web: { servers: [{ address: 127.0.0.1:${upstream} }] } }`,
    `listeners: [{ name: web, protocol: http, listen: 127.0.0.1:${n.listen}, routes: [{ match: { pathPrefix: / }, upstream: web }] }]`,
    `peer: { id: ${n.id}, listen: 127.0.0.1:${n.peer}, peers: [127.0.0.1:${other.peer}], secret: ${SECRET}, priority: ${n.id === 'a' ? 150 : 100}, heartbeat: 100ms, deadAfter: 3 }`,
  ].join('\n')
}

async function start (n: Node, other: Node, upstream: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-'))
  const file = join(dir, `${n.id}.yaml`)
  writeFileSync(file, config(n, other, upstream))
  n.child = spawn(process.execPath, [CLI, 'run', '-c', file], { stdio: 'ignore' })
  await until(async () => (await get(`http://127.0.0.1:${n.admin}/healthz`)) === 200, 10_000, `${n.id} up`)
}

async function status (n: Node): Promise<{ role: string, peer: { inSync: boolean } }> {
  return await new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${n.admin}/api/status`, { agent: false }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { try { resolve(JSON.parse(body) as { role: string, peer: { inSync: boolean } }) } catch (err) { reject(err as Error) } })
    }).on('error', reject)
  })
}

async function stop (n: Node): Promise<void> {
  if (n.child === undefined || n.child.exitCode !== null || n.child.signalCode !== null) return
  const gone = new Promise((resolve) => { n.child?.once('exit', resolve) })
  n.child.kill('SIGKILL')
  await gone
}

/** Samples every node every 5 ms; returns [time, answered indexes][] until stopped. */
function sampler (nodes: Node[]): { samples: Array<[number, number[]]>, stop: () => Promise<void> } {
  const samples: Array<[number, number[]]> = []
  let running = true
  const loop = (async () => {
    for (let i = 0; running && i < 4000; i++) {
      const at = performance.now()
      const ok = await Promise.all(nodes.map(async (n) => (await get(`http://127.0.0.1:${n.listen}/`)) === 200))
      samples.push([at, ok.flatMap((x, j) => x ? [j] : [])])
      const wait = 5 - (performance.now() - at)
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  })()
  return { samples, stop: async () => { running = false; await loop } }
}

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number
}

async function pairRuns (upstream: number): Promise<void> {
  const say = (m: string): void => { if (process.env.BENCH_DEBUG !== undefined) console.error(m) }
  const takeover: number[] = []
  const handover: number[] = []
  let dual = 0
  for (let run = 0; run < RUNS; run++) {
    const a: Node = { id: 'a', listen: await freePort(), peer: await freePort(), admin: await freePort() }
    const b: Node = { id: 'b', listen: await freePort(), peer: await freePort(), admin: await freePort() }
    try {
      await start(a, b, upstream)
      say('await start(a, b, upstream)')
      await until(async () => (await status(a)).role === 'active', 5000, 'a active')
      await start(b, a, upstream)
      say('await start(b, a, upstream)')
      await until(async () => (await status(b)).peer.inSync && (await status(a)).peer.inSync, 5000, 'in sync')
      const s = sampler([a, b])
      say('const s = sampler([a, b])')
      await until(async () => s.samples.some(([, x]) => x.includes(0)), 5000, 'a answers')
      // Hand-over A → B, then SIGKILL B (the active) and time A's takeover.
      const t0 = performance.now()
      say('const t0 = performance.now()')
      await new Promise<void>((resolve) => { http.request(`http://127.0.0.1:${a.admin}/api/peer/step-down`, { method: 'POST', agent: false }, (res) => { res.resume(); resolve() }).end() })
      await until(async () => s.samples.some(([t, x]) => t > t0 && x.includes(1)), 5000, 'b answers')
      let last = t0
      let gap = 0
      for (const [t, x] of s.samples) {
        if (t < t0 || x.length === 0) continue
        gap = Math.max(gap, t - last)
        last = t
        if (x.includes(1)) break
      }
      handover.push(gap)
      say('handover.push(gap)')
      await until(async () => (await status(a)).peer.inSync, 5000, 'a in sync as standby')
      const t1 = performance.now()
      say('const t1 = performance.now()')
      b.child?.kill('SIGKILL')
      await until(async () => s.samples.some(([t, x]) => t > t1 && x.includes(0)), 5000, 'a takes over')
      takeover.push((s.samples.find(([t, x]) => t > t1 && x.includes(0)) as [number, number[]])[0] - t1)
      await s.stop()
      dual += s.samples.filter(([, x]) => x.length > 1).length
    } finally {
      await stop(a)
      await stop(b)
    }
  }
  const fmt = (xs: number[]): string => `p50 ${pct(xs, 0.5).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(' ')})`
  console.log(`takeover after SIGKILL (heartbeat 100ms, deadAfter 3): ${fmt(takeover)}`)
  console.log(`hand-over gap (step-down):                          ${fmt(handover)}`)
  console.log(`samples where two nodes answered:                   ${dual}`)
}

/** 100,000 bucket-like entries: key → remaining ms until the bucket is full again. */
class Buckets implements Replicated<Record<string, number>> {
  values: Record<string, number> = {}
  snapshot (): Record<string, number> { return this.values }
  takeChanges (): undefined { return undefined }
  apply (s: Record<string, number>): void { Object.assign(this.values, s) }
}

async function resync (): Promise<void> {
  const pa = await freePort()
  const pb = await freePort()
  const src = new Buckets()
  for (let i = 0; i < 100_000; i++) src.values[`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] = (i * 7919) % 60_000
  const servers: Record<string, Record<string, unknown>> = {}
  for (let u = 0; u < 20; u++) {
    servers[`up${u}`] = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`10.1.${u}.${i}:80`, { healthy: i % 3 !== 0, ejectedMs: i * 100, admin: 'enabled', weight: 1 }]))
  }
  const serversSource: Replicated<unknown> = { snapshot: () => servers, takeChanges: () => undefined, apply: () => {} }
  const dst = new Buckets()
  const sending = new StateSync(() => new Map<string, Replicated<unknown>>([['ratelimits', src as Replicated<unknown>], ['servers', serversSource]]))
  const receiving = new StateSync(() => new Map<string, Replicated<unknown>>([['ratelimits', dst as Replicated<unknown>], ['servers', { snapshot: () => ({}), takeChanges: () => undefined, apply: () => {} }]]))
  let done: (() => void) | undefined
  const applied = new Promise<void>((resolve) => { done = resolve })
  let lastBeat = 0
  let maxGap = 0
  const quiet = { state: () => {}, stateLost: () => {}, rejected: () => {}, hint: () => {}, error: () => {} }
  const b = new PeerTransport({ id: 'b', secret: SECRET, listen: { text: '', host: '127.0.0.1', port: pb }, peers: [{ text: '', host: '127.0.0.1', port: pa }], heartbeat: 100 }, {
    ...quiet,
    heartbeat: () => { const now = performance.now(); if (lastBeat > 0) maxGap = Math.max(maxGap, now - lastBeat); lastBeat = now },
    state: (m) => { receiving.apply(m); if (m.full) done?.() },
  })
  const a = new PeerTransport({ id: 'a', secret: SECRET, listen: { text: '', host: '127.0.0.1', port: pa }, peers: [{ text: '', host: '127.0.0.1', port: pb }], heartbeat: 100 }, { ...quiet, heartbeat: () => {} })
  await a.start()
  await b.start()
  const hb = { k: 'hb' as const, term: 1, prio: 150, preempt: false, role: 'active' as const, starting: false, handover: false, yielding: false, inSync: false, conflict: false }
  const beats = setInterval(() => { a.sendHeartbeat(hb) }, 100)
  await new Promise((resolve) => setTimeout(resolve, 350))
  const t0 = performance.now()
  a.maintainState(true, () => {
    void (async () => {
      for (const m of sending.full()) {
        a.sendState(m)
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
  })
  await applied
  const took = performance.now() - t0
  await new Promise((resolve) => setTimeout(resolve, 250))
  clearInterval(beats)
  const ok = Object.keys(dst.values).length === 100_000
  console.log(`full resync, 100,000 buckets + 1,000 servers:        ${took.toFixed(0)} ms (connect → applied; ${ok ? 'all entries arrived' : 'ENTRIES MISSING'}); largest heartbeat gap meanwhile ${maxGap.toFixed(0)} ms`)
  await a.close()
  await b.close()
}

const upstream = http.createServer((_req, res) => { res.end('ok') })
await new Promise<void>((resolve) => { upstream.listen(0, '127.0.0.1', () => { resolve() }) })
try {
  if (process.env.SKIP_RESYNC === undefined) await resync()
  await pairRuns((upstream.address() as net.AddressInfo).port)
} finally {
  upstream.close()
}
