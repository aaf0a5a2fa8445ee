// Two tandem processes (the built CLI) sharing one redis-server: one limit across both nodes.
// Heavy (two child processes, 400 concurrent requests): run under the shared lock.
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, writeConfig, type CliRun } from '../helpers/cli.js'
import { haveRedis, startRedis, type TestRedis } from '../helpers/redis.js'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

let redis: TestRedis
let upstream: TestUpstream
const nodes: Array<{ run: CliRun, url: string }> = []
const agent = new Agent({ connections: 256, headersTimeout: 15_000, bodyTimeout: 15_000 })

function config (port: number): string {
  return `
log: { level: warn, access: false }
upstreams:
  web:
    servers: [{ address: ${upstream.address} }]
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:${port}
    routes:
      - { match: { pathPrefix: /ten }, upstream: web, rateLimit: ten }
      - { match: { pathPrefix: /hundred }, upstream: web, rateLimit: hundred }
      - { match: { pathPrefix: /probe }, upstream: web, rateLimit: probe }
rateLimits:
  ten: { key: global, rate: 1/m, burst: 10 }
  hundred: { key: global, rate: 1/m, burst: 100 }
  probe: { key: client-ip, rate: 1000/s, burst: 100000 }
rateLimitStore:
  # deny: a 200 on /probe proves the node decided through Redis.
  redis: { url: "${redis.url}", prefix: "two:", timeout: 2s, onError: deny }
`
}

beforeAll(async () => {
  if (!haveRedis) return
  redis = await startRedis()
  upstream = await startUpstream({ name: 'u' })
  for (let i = 0; i < 2; i++) {
    const port = await closedPort()
    const run = runCli(['run', '-c', writeConfig(config(port))])
    nodes.push({ run, url: `http://127.0.0.1:${port}` })
  }
  for (const n of nodes) {
    await waitFor(async () => {
      if (n.run.child.exitCode !== null) throw new Error(`tandem exited: ${n.run.stderr}`)
      try {
        const res = await request(n.url + '/probe', { dispatcher: agent })
        await res.body.text()
        return res.statusCode === 200
      } catch { return false }
    }, 20_000, 50, `${n.url} deciding through Redis`)
  }
}, 40_000)

afterAll(async () => {
  if (!haveRedis) return
  for (const n of nodes) {
    n.run.child.kill('SIGTERM')
    await n.run.exited
  }
  await agent.close()
  await upstream.close()
  await redis.stop()
}, 20_000)

/** `total` requests at once, alternating between the two nodes; the number answered 200. */
async function burst (path: string, total: number): Promise<{ ok: number, limited: number, perNode: number[] }> {
  const perNode = [0, 0]
  const statuses = await Promise.all(Array.from({ length: total }, async (_, i) => {
    const res = await request(nodes[i % 2]!.url + path, { dispatcher: agent })
    await res.body.text()
    if (res.statusCode === 200) perNode[i % 2]!++
    return res.statusCode
  }))
  return { ok: statuses.filter((s) => s === 200).length, limited: statuses.filter((s) => s === 429).length, perNode }
}

describe.skipIf(!haveRedis)('one limit shared by two tandem processes through Redis', () => {
  it('40 concurrent over both nodes, burst 10: exactly 10 pass', async () => {
    const before = upstream.count
    const r = await burst('/ten', 40)
    expect(r.ok).toBe(10)
    expect(r.limited).toBe(30)
    expect(upstream.count - before).toBe(10)
  })

  it('400 concurrent over both nodes, burst 100: exactly 100 pass', async () => {
    const before = upstream.count
    const r = await burst('/hundred', 400)
    expect(r.ok).toBe(100)
    expect(r.limited).toBe(300)
    expect(upstream.count - before).toBe(100)
    // Both nodes served part of it: the limit really is shared, not per node.
    expect(r.perNode[0]).toBeGreaterThan(0)
    expect(r.perNode[1]).toBeGreaterThan(0)
  }, 30_000)
})
