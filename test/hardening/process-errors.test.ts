// Errors with no request to fail (issue 6): they are counted in tandem_errors_total and logged
// once per burst; running out of file descriptors does not take the proxy down; an uncaught
// exception is logged (the async log flushed) and the process exits 1.
//
// Note: Node never reports EMFILE/ENFILE on accept() to JavaScript. libuv keeps a spare
// descriptor, and when accept() fails for lack of descriptors it frees it, accepts the pending
// connections and closes them at once (uv__emfile_trick). The server's 'error' handler, now
// counting and logging, sees the accept errors that do reach it (ENOBUFS, ENOMEM, EPERM).
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { attachLogs, createLogger } from '../../src/observability/log.js'
import { createMetrics } from '../../src/observability/metrics.js'
import { connectRedis } from '../../src/redis/connect.js'
import { CLI, writeConfig } from '../helpers/cli.js'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const children: ChildProcess[] = []
const upstreams: TestUpstream[] = []
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const u of upstreams.splice(0)) await u.close()
})

interface Proc { child: ChildProcess, out: () => string, exited: Promise<number | null> }

function start (argv: string[]): Proc {
  let out = ''
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  return { child, out: () => out, exited: new Promise((resolve) => { child.on('exit', (code) => { resolve(code) }) }) }
}

function config (upstream: string): string {
  return writeConfig(`
log: { level: info, access: false }
admin: { listen: 127.0.0.1:0 }
upstreams: { web: { servers: [{ address: ${upstream} }] } }
listeners: [{ name: public, protocol: http, listen: 127.0.0.1:0, routes: [{ upstream: web }] }]
`)
}

async function ports (p: Proc): Promise<{ http: number, admin: number }> {
  await waitFor(() => p.out().includes('"tandem started"'), 10_000, 20, 'tandem started')
  const line = p.out().split('\n').find((l) => l.includes('"tandem started"')) as string
  const o = JSON.parse(line) as { listeners: Array<{ port: number }>, admin: { port: number } }
  return { http: o.listeners[0]?.port ?? 0, admin: o.admin.port }
}

function get (port: number, path: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject)
  })
}

describe('errors that used to vanish', () => {
  it('out of file descriptors: the proxy survives, drops the excess at once, and serves again', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams.push(u)
    // 64 descriptors: Node and the listeners take about 30, so 100 clients exhaust the rest.
    const p = start(['prlimit', '--nofile=64:64', '--', process.execPath, CLI, 'run', '-c', config(u.address)])
    const { http: port, admin } = await ports(p)
    expect((await get(port, '/')).status).toBe(200)
    let dropped = 0
    for (let i = 0; i < 100; i++) {
      const s = net.connect(port, '127.0.0.1')
      s.on('error', () => {})
      s.on('close', () => { dropped++ })
      sockets.push(s)
    }
    // The ones beyond the limit are closed by the proxy without any request: no hang.
    await waitFor(() => dropped >= 30, 10_000, 20, 'excess connections closed')
    for (const s of sockets.splice(0)) s.destroy()
    await waitFor(async () => await get(port, '/').then((r) => r.status === 200, () => false), 10_000, 50, 'serving again')
    expect((await get(admin, '/healthz')).status).toBe(200)
    p.child.kill('SIGTERM')
    expect(await p.exited).toBe(0)
  })

  it('Redis connection errors are counted by code and logged once per burst', async () => {
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => { resolve() }))
    const lines: string[] = []
    const log = createLogger({ level: 'info', access: false }, { write: (l: string) => { lines.push(l) } })
    const detach = attachLogs(log, { level: 'info', access: false })
    const metrics = createMetrics(() => { throw new Error('no runtime in this test') })
    const redis = connectRedis(`redis://127.0.0.1:${port}`, { commandTimeout: 50 })
    try {
      // ioredis retries every 50..500 ms: several refusals within the 10 s burst window.
      const count = async (): Promise<number> => {
        const text = await metrics.registry.getSingleMetricAsString('tandem_errors_total')
        return Number(/tandem_errors_total\{component="redis",code="ECONNREFUSED"\} (\d+)/.exec(text)?.[1] ?? 0)
      }
      await waitFor(async () => await count() >= 3, 10_000, 50, 'three refusals counted')
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'ECONNREFUSED')
      expect(logged).toHaveLength(1)
      expect(logged[0]).toMatchObject({ level: 'error', component: 'errors', where: 'redis', code: 'ECONNREFUSED' })
    } finally {
      redis.disconnect()
      metrics.close()
      detach()
    }
  })

  it('an uncaught exception is logged with its stack, the log flushed, and the process exits 1', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams.push(u)
    // A preloaded handler throws outside any other handler when the test asks, once the proxy runs.
    const boom = 'data:text/javascript,process.on("SIGUSR2",()=>{throw new Error("boom-from-test")})'
    const p = start([process.execPath, '--import', boom, CLI, 'run', '-c', config(u.address)])
    await ports(p)
    p.child.kill('SIGUSR2')
    expect(await p.exited).toBe(1)
    const fatal = p.out().split('\n').find((l) => l.includes('"uncaught exception"'))
    expect(fatal).toMatch(/^\{.*"uncaught exception"/)
    const o = JSON.parse(fatal as string) as { level: string, err: { message: string, stack: string } }
    expect(o.level).toBe('fatal')
    expect(o.err.message).toBe('boom-from-test')
    expect(o.err.stack).toContain('Error: boom-from-test')
  })
})
