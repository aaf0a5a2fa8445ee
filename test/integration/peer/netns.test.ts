// A real network (issue 8): three network namespaces joined by a bridge, a tandem node in two
// of them moving a virtual IP with examples/pair/notify.sh (ip addr + arping), a client in the
// third requesting the virtual IP in a bounded loop while the active node dies (process killed
// and its link down, as a machine that fails). The gap without answers must stay under 2 s, and
// no answer may come from the standby. Needs root for `ip netns`; skipped (saying why) otherwise.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../../helpers/wait.js'

const CLI = fileURLToPath(new URL('../../../dist/cli.js', import.meta.url))
const NOTIFY = fileURLToPath(new URL('../../../examples/pair/notify.sh', import.meta.url))
const tag = `t8${process.pid % 100000}`
const NS = { a: `${tag}a`, b: `${tag}b`, c: `${tag}c`, br: `${tag}br` }
const NET = '10.208.0'
const VIP = `${NET}.100`

function ip (...args: string[]): { ok: boolean, err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 })
  return { ok: r.status === 0, err: (r.stderr ?? '') + (r.error?.message ?? '') }
}

/** Why namespaces cannot be used here, or undefined when they can. */
function refused (): string | undefined {
  if (spawnSync('ip', ['-V']).status !== 0) return 'iproute2 (`ip`) is not installed'
  const probe = ip('netns', 'add', `${tag}probe`)
  if (!probe.ok) return `\`ip netns add\` refused: ${probe.err.trim()}`
  ip('netns', 'del', `${tag}probe`)
  return undefined
}

const why = refused()
if (why !== undefined) process.stderr.write(`netns test skipped: ${why}\n`)

const children: ChildProcess[] = []

function cleanup (): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const ns of Object.values(NS)) ip('netns', 'del', ns)
}

function sh (ns: string, ...args: string[]): void {
  const r = ip('-n', ns, ...args)
  if (!r.ok) throw new Error(`ip -n ${ns} ${args.join(' ')}: ${r.err}`)
}

function run (ns: string, args: string[]): ChildProcess & { out: string } {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { out: string }
  child.out = ''
  child.stdout?.on('data', (c: Buffer) => { child.out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { child.out += c.toString() })
  children.push(child)
  return child
}

describe.skipIf(why !== undefined)('pair on a real network (network namespaces, virtual IP)', () => {
  beforeAll(() => {
    cleanup()
    process.on('exit', cleanup)
    for (const ns of Object.values(NS)) if (!ip('netns', 'add', ns).ok) throw new Error(`cannot add namespace ${ns}`)
    sh(NS.br, 'link', 'add', 'br0', 'type', 'bridge')
    sh(NS.br, 'link', 'set', 'br0', 'up')
    for (const [i, name] of (['a', 'b', 'c'] as const).entries()) {
      const ns = NS[name]
      // veth pair created in the node's namespace; its peer end moves to the bridge namespace.
      sh(ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${name}`, 'netns', NS.br)
      sh(ns, 'addr', 'add', `${NET}.${i + 1}/24`, 'dev', 'eth0')
      sh(ns, 'link', 'set', 'eth0', 'up')
      sh(ns, 'link', 'set', 'lo', 'up')
      sh(NS.br, 'link', 'set', `p${name}`, 'master', 'br0')
      sh(NS.br, 'link', 'set', `p${name}`, 'up')
    }
  })

  afterAll(() => {
    cleanup()
    process.off('exit', cleanup)
  })

  it('the active dies: the virtual IP moves, the gap is under 2 s, the standby never answered before', async () => {
    // The upstream runs beside the client and answers with the proxy's address: who forwarded.
    const upstream = run(NS.c, [process.execPath, '-e',
      `require('http').createServer((q, s) => s.end(q.socket.remoteAddress)).listen(8080, '${NET}.3', () => console.log('up'))`])
    await waitFor(() => upstream.out.includes('up'), 10_000, 20, 'upstream')
    const dir = mkdtempSync(join(tmpdir(), 'tandem-netns-'))
    const nodes = (['a', 'b'] as const).map((name, i) => {
      const file = join(dir, `${name}.yaml`)
      writeFileSync(file, [
        'log: { level: info, access: false }',
        `upstreams: { web: { servers: [{ address: ${NET}.3:8080 }] } }`,
        'listeners: [{ name: web, protocol: http, listen: 0.0.0.0:8000, routes: [{ match: { pathPrefix: / }, upstream: web }] }]',
        `peer: { id: lb-${name}, listen: ${NET}.${i + 1}:7946, peers: [${NET}.${2 - i}:7946], secret: netns-secret-0123456789,`,
        `        priority: ${i === 0 ? 150 : 100}, heartbeat: 200ms, deadAfter: 3, standby: open,`,
        `        onChange: "${NOTIFY} eth0 ${VIP}/24", onChangeTimeout: 5s }`,
      ].join('\n'))
      return file
    })
    const a = run(NS.a, [process.execPath, CLI, 'run', '-c', nodes[0] as string])
    await waitFor(() => /"to":"active"/.test(a.out) && ip('-n', NS.a, 'addr', 'show', 'dev', 'eth0').ok &&
      spawnSync('ip', ['-n', NS.a, 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).stdout.includes(VIP), 15_000, 50, 'A active with the VIP')
    const b = run(NS.b, [process.execPath, CLI, 'run', '-c', nodes[1] as string])
    await waitFor(() => /"to":"standby"/.test(b.out) && /pair in sync/.test(b.out), 15_000, 50, 'B standby in sync')

    // The client: a bounded loop, one request every 20 ms with a 300 ms timeout, one JSON line each.
    const client = run(NS.c, [process.execPath, '-e', `
      const http = require('http'); const end = Date.now() + 12000
      const once = () => new Promise((res) => {
        const t = Date.now()
        const r = http.get({ host: '${VIP}', port: 8000, path: '/', agent: false, timeout: 300 }, (s) => {
          let b = ''; s.on('data', (c) => b += c); s.on('end', () => res({ t, ok: s.statusCode === 200, by: b }))
        })
        r.on('timeout', () => r.destroy()); r.on('error', () => res({ t, ok: false }))
      })
      ;(async () => { while (Date.now() < end) { const x = await once(); console.log(JSON.stringify(x)); await new Promise((r) => setTimeout(r, 20)) } })()
    `])
    await waitFor(() => client.out.includes(`"by":"${NET}.1"`), 5000, 20, 'client answered through A')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const killedAt = Date.now()
    a.kill('SIGKILL')
    sh(NS.a, 'link', 'set', 'eth0', 'down')
    await waitFor(() => client.exitCode !== null, 20_000, 50, 'client loop ends')
    const samples = client.out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { t: number, ok: boolean, by?: string })
    const answered = samples.filter((s) => s.ok)
    // No answer from the standby while A was active.
    expect(answered.filter((s) => s.t < killedAt - 50 && s.by !== `${NET}.1`)).toEqual([])
    const firstB = answered.find((s) => s.t >= killedAt && s.by === `${NET}.2`)
    if (process.env.PAIR_DEBUG !== undefined) writeFileSync('/tmp/h8-netns-debug.txt', `killedAt ${killedAt}\nB:\n${b.out}\nclient:\n${client.out}`)
    expect(firstB?.by, b.out.slice(-2000)).toBe(`${NET}.2`) // B answered after the kill
    const lastA = [...answered].reverse().find((s) => s.t < killedAt) as { t: number }
    const gap = (firstB as { t: number }).t - lastA.t
    process.stderr.write(`netns: gap without answers ${gap} ms\n`)
    expect(gap).toBeLessThan(2000)
    expect(answered.filter((s) => s.t > (firstB as { t: number }).t && s.by !== `${NET}.2`)).toEqual([])
  }, 60_000)
})
