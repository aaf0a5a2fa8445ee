/*
 * Pair tests: tandem nodes as child processes (dist/cli.js), links through fault-injecting
 * relays, and a sampler that requests every node's listener every 10 ms and counts the samples
 * in which two nodes answered.
 */
import http from 'node:http'
import { runCli, writeConfig, type CliRun } from './cli.js'
import { freePort, startRelay, type Relay } from './relay.js'
import { waitFor } from './wait.js'

export const SECRET = 'pair-test-secret-0123456789'

export interface NodeSpec {
  id: string
  priority: number
  upstreamPort: number
  heartbeat?: string
  deadAfter?: number
  preempt?: boolean
  secret?: string
  witness?: string
  standby?: 'closed' | 'open'
  onChange?: string
  onChangeTimeout?: string
  /** More servers of `web` (host:port) after the upstream port. */
  moreServers?: string[]
  /** Extra YAML under `upstreams.web` (health, passive). */
  upstreamExtra?: string
  /** A global rate limit on the listener, e.g. `{ rate: '1/m', burst: 5 }`. */
  rateLimit?: { rate: string, burst: number }
  /** `shutdownDelay` (the node lives on this long after SIGTERM). */
  shutdownDelay?: string
}

export interface PairNode {
  readonly spec: NodeSpec
  readonly listenPort: number
  readonly peerPort: number
  readonly adminPort: number
  run: CliRun | undefined
  /** Starts (or restarts) the process with `peers` = the given relay ports. */
  start (): Promise<void>
  kill (signal: NodeJS.Signals): void
  exited (): Promise<number | null>
  status (): Promise<PairStatus>
  post (path: string): Promise<{ status: number, body: string }>
  metrics (): Promise<string>
}

export interface PairStatus {
  role: string
  peer: {
    term: number
    role: string
    inSync: boolean
    other: { id: string, role: string, up: boolean, lastHeartbeatAgeMs: number } | null
    configFault: string | null
    witness: { state: string, lease?: boolean } | null
    links: Array<{ up: boolean }>
  }
  upstreams: Array<{ name: string, servers: Array<{ address: string, state: string }> }>
}

function yamlFor (spec: NodeSpec, ports: { listen: number, peer: number, admin: number }, peers: number[]): string {
  const p = [
    `  id: ${spec.id}`,
    `  listen: 127.0.0.1:${ports.peer}`,
    `  peers: [${peers.map((x) => `127.0.0.1:${x}`).join(', ')}]`,
    `  secret: ${spec.secret ?? SECRET}`,
    `  priority: ${spec.priority}`,
    `  preempt: ${spec.preempt ?? false}`,
    // Generous by default (the test machine is loaded); tight numbers live in bench/failover.ts.
    `  heartbeat: ${spec.heartbeat ?? '200ms'}`,
    `  deadAfter: ${spec.deadAfter ?? 4}`,
    `  standby: ${spec.standby ?? 'closed'}`,
    ...(spec.witness === undefined ? [] : [`  witness: "${spec.witness}"`]),
    ...(spec.onChange === undefined ? [] : [`  onChange: "${spec.onChange}"`]),
    ...(spec.onChangeTimeout === undefined ? [] : [`  onChangeTimeout: ${spec.onChangeTimeout}`]),
  ]
  return [
    `admin: { listen: 127.0.0.1:${ports.admin} }`,
    'log: { level: info, access: false }',
    ...(spec.shutdownDelay === undefined ? [] : [`shutdownDelay: ${spec.shutdownDelay}`]),
    'upstreams:',
    '  web:',
    `    servers: [${[`127.0.0.1:${spec.upstreamPort}`, ...(spec.moreServers ?? [])].map((a) => `{ address: ${a} }`).join(', ')}]`,
    ...(spec.upstreamExtra === undefined ? [] : spec.upstreamExtra.split('\n').map((l) => '    ' + l)),
    ...(spec.rateLimit === undefined ? [] : [`rateLimits: { pair-limit: { key: global, rate: ${spec.rateLimit.rate}, burst: ${spec.rateLimit.burst} } }`]),
    'listeners:',
    `  - { name: web, protocol: http, listen: 127.0.0.1:${ports.listen}, routes: [{ match: { pathPrefix: / }, upstream: web }]${spec.rateLimit === undefined ? '' : ', rateLimit: pair-limit'} }`,
    'peer:',
    ...p,
  ].join('\n') + '\n'
}

export async function makeNode (spec: NodeSpec, peers: () => number[]): Promise<PairNode> {
  const listenPort = await freePort()
  const peerPort = await freePort()
  const adminPort = await freePort()
  const admin = `http://127.0.0.1:${adminPort}`
  const node: PairNode = {
    spec,
    listenPort,
    peerPort,
    adminPort,
    run: undefined,
    async start () {
      const file = writeConfig(yamlFor(spec, { listen: listenPort, peer: peerPort, admin: adminPort }, peers()), `${spec.id}.yaml`)
      const run = runCli(['run', '-c', file])
      node.run = run
      let exited: number | null | undefined
      void run.exited.then((code) => { exited = code })
      await waitFor(async () => {
        // A node that exits at start (a port taken meanwhile) fails the wait at once, saying why.
        if (exited !== undefined) throw new Error(`${spec.id} exited with ${String(exited)} before its admin was up: ${run.stderr.trim()}`)
        return (await get(`${admin}/healthz`).catch(() => undefined))?.status === 200
      }, 15_000, 20, `${spec.id} admin up`)
    },
    kill (signal) { node.run?.child.kill(signal) },
    async exited () { return await (node.run?.exited ?? Promise.resolve(null)) },
    async status () { return JSON.parse((await get(`${admin}/api/status`)).body) as PairStatus },
    async post (path) { return await request('POST', `${admin}${path}`) },
    async metrics () { return (await get(`${admin}/metrics`)).body },
  }
  return node
}

/** Two nodes A (priority 150) and B (100), each link direction through its own relay. */
export interface Pair {
  a: PairNode
  b: PairNode
  /** Carries A → B (heartbeats and A's state connection). */
  ab: Relay
  /** Carries B → A. */
  ba: Relay
  /** Every link, in `peers` order (links > 1): A → B and B → A relays. */
  abs: Relay[]
  bas: Relay[]
  close (): Promise<void>
}

export async function makePair (upstreamPort: number, a: Partial<NodeSpec> = {}, b: Partial<NodeSpec> = {}, links = 1): Promise<Pair> {
  const abs: Relay[] = []
  const bas: Relay[] = []
  const na = await makeNode({ id: 'lb-a', priority: 150, upstreamPort, ...a }, () => abs.map((r) => r.port))
  const nb = await makeNode({ id: 'lb-b', priority: 100, upstreamPort, ...b }, () => bas.map((r) => r.port))
  for (let i = 0; i < links; i++) {
    abs.push(await startRelay({ port: nb.peerPort }))
    bas.push(await startRelay({ port: na.peerPort }))
  }
  const relays = [...abs, ...bas]
  return {
    a: na,
    b: nb,
    ab: abs[0] as Relay,
    ba: bas[0] as Relay,
    abs,
    bas,
    async close () {
      if (process.env.PAIR_DEBUG !== undefined) for (const n of [na, nb]) console.log(n.spec.id, n.run?.stderr, n.run?.stdout.slice(-3000))
      for (const n of [na, nb]) n.kill('SIGKILL')
      await Promise.all([na.exited(), nb.exited()])
      await Promise.all(relays.map(async (r) => { await r.close() }))
    },
  }
}

/**
 * Starts A, waits until it is active, then B, and waits until B holds A's full state. (Started
 * together, whichever process comes up a dead time earlier would take the role: preempt false.)
 */
export async function startSettled (p: Pair): Promise<void> {
  await p.a.start()
  await waitFor(async () => (await roleOf(p.a)) === 'active', 10_000, 20, 'A active')
  await p.b.start()
  await settled(p)
}

/** Waits until A is active and B a standby in sync, as both see it. */
export async function settled (p: Pair): Promise<void> {
  await waitFor(async () => {
    const a = await p.a.status().catch(() => undefined)
    const b = await p.b.status().catch(() => undefined)
    return a?.role === 'active' && a.peer.inSync && b?.peer.inSync === true
  }, 15_000, 25, 'A active, B in-sync standby')
}

export async function roleOf (node: PairNode): Promise<string | undefined> {
  try { return (await node.status()).role } catch { return undefined }
}

export async function get (url: string, timeoutMs = 2000): Promise<{ status: number, body: string }> {
  return await request('GET', url, timeoutMs)
}

export async function request (method: string, url: string, timeoutMs = 2000): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error('timeout')) })
    req.on('error', reject)
    req.end()
  })
}

export interface Sample {
  at: number
  /** Indexes of the nodes that answered 200 in this sample. */
  answered: number[]
}

export interface Sampler {
  readonly samples: Sample[]
  /** Samples in which two or more nodes answered. */
  dual (from?: number, to?: number): number
  /** First time at or after `from` that node `i` answered. */
  firstAnswer (i: number, from: number): number | undefined
  /** Longest stretch (ms) between answered samples within [from, to]. */
  longestGap (from: number, to: number): number
  stop (): Promise<void>
}

/**
 * Requests every node's listener (fresh connection, no keep-alive) every `everyMs`, in
 * parallel, bounded by `maxMs`. A request counts as answered on a 200 within `timeoutMs`.
 */
export function startSampler (ports: number[], opts: { everyMs?: number, timeoutMs?: number, maxMs?: number } = {}): Sampler {
  const every = opts.everyMs ?? 10
  const timeout = opts.timeoutMs ?? 250
  const started = Date.now()
  const samples: Sample[] = []
  let running = true
  const loop = (async () => {
    while (running && Date.now() - started < (opts.maxMs ?? 120_000)) {
      const at = Date.now()
      const results = await Promise.all(ports.map(async (port) => {
        try { return (await get(`http://127.0.0.1:${port}/`, timeout)).status === 200 } catch { return false }
      }))
      samples.push({ at, answered: results.flatMap((ok, i) => ok ? [i] : []) })
      const wait = every - (Date.now() - at)
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  })()
  return {
    samples,
    dual (from = 0, to = Number.POSITIVE_INFINITY) { return samples.filter((s) => s.at >= from && s.at <= to && s.answered.length >= 2).length },
    firstAnswer (i, from) { return samples.find((s) => s.at >= from && s.answered.includes(i))?.at },
    longestGap (from, to) {
      let last = from
      let gap = 0
      for (const s of samples) {
        if (s.at < from || s.at > to || s.answered.length === 0) continue
        gap = Math.max(gap, s.at - last)
        last = s.at
      }
      return Math.max(gap, to - last)
    },
    async stop () { running = false; await loop },
  }
}
