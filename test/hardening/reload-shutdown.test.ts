// Reloads meeting each other and meeting a shutdown (audit of reload/shutdown, defects 2, 3, 7):
// a SIGTERM after a reload drains the retiring config's connections under the same deadline; a
// reload requested while one runs is followed by one more, which reads the file after it came;
// an `admin:` edit is reported as needing a restart. Each case runs serve() (the process's own
// reload and shutdown, with its log) in a child under vite-node, driven over IPC.
import { fork, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Answer { status: number, body: { hash?: string, warnings?: string[], errors?: string[] } }

interface Child {
  readonly ports: Promise<Record<string, number>>
  /** Sends a command; resolves with the child's reply to it. */
  call (cmd: string): Promise<unknown>
  /** Sends a command without waiting for its reply (which comes later, or never matters). */
  send (cmd: string): Promise<unknown>
  /** Resolves once the child has sent `event`. */
  event (name: string): Promise<void>
  out (): string
  readonly exited: Promise<void>
}

/**
 * serve() on `file` in a child. Commands: reload (replies with its answer), hash (the running
 * config's), gate (from now on a reload's Runtime.start waits, after the file was read, until
 * `open`; the child reports `held` when one waits), open, stop (shutdown, then exit 0).
 */
function serveChild (file: string): Child {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-reload-shutdown-'))
  cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const src = (p: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/${p}`, import.meta.url)))
  const entry = join(dir, 'child.ts')
  writeFileSync(entry, `
    import { loadConfigFile } from ${src('config/load.ts')}
    import { Runtime } from ${src('runtime/runtime.ts')}
    import { serve } from ${src('runtime/serve.ts')}
    let gate, open
    const start = Runtime.prototype.start
    Runtime.prototype.start = async function (options) {
      if (gate !== undefined) { process.send({ event: 'held' }); await gate }
      return await start.call(this, options)
    }
    const serving = await serve(await loadConfigFile(${JSON.stringify(file)}), 'test')
    process.send({ event: 'ports', ports: Object.fromEntries(serving.runtime.listeners.map((l) => [l.name, l.address().port])) })
    process.on('message', async ({ id, cmd }) => {
      const reply = (value) => { process.send({ id, value }) }
      if (cmd === 'reload') reply(await serving.reload())
      else if (cmd === 'hash') reply(serving.runtime.config.hash)
      else if (cmd === 'gate') { gate = new Promise((resolve) => { open = resolve }); reply(true) }
      else if (cmd === 'open') { gate = undefined; open(); reply(true) }
      else if (cmd === 'stop') { await serving.shutdown('SIGTERM'); reply(true); process.exit(0) }
    })
  `)
  const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url))
  const child: ChildProcess = fork(viteNode, [entry], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  cleanups.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<void>((resolve) => { child.once('close', () => { resolve() }) })
  const replies = new Map<number, (v: unknown) => void>()
  const events: string[] = []
  let ports: (p: Record<string, number>) => void = () => {}
  child.on('message', (m: { id?: number, value?: unknown, event?: string, ports?: Record<string, number> }) => {
    if (m.event === 'ports') ports(m.ports ?? {})
    if (m.event !== undefined) events.push(m.event)
    if (m.id !== undefined) replies.get(m.id)?.(m.value)
  })
  let next = 0
  const send = (cmd: string): Promise<unknown> => {
    const id = ++next
    const p = new Promise<unknown>((resolve) => { replies.set(id, resolve) })
    child.send({ id, cmd })
    return p
  }
  return {
    ports: new Promise((resolve, reject) => {
      ports = resolve
      child.once('exit', (code) => { reject(new Error(`child exited with ${code}: ${out}`)) })
    }),
    call: send,
    send,
    event: async (name) => { await waitFor(() => events.includes(name), 20_000, 5, `child event ${name}`) },
    out: () => out,
    exited,
  }
}

function tempFile (text: string): { path: string, write: (text: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-reload-cfg-'))
  cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'tandem.yaml')
  // Whole at once (rename): a reload never reads half a file.
  const write = (t: string): string => {
    writeFileSync(path + '.tmp', t)
    renameSync(path + '.tmp', path)
    return createHash('sha256').update(t).digest('hex')
  }
  write(text)
  return { path, write }
}

/** An upstream that answers /slow after 1 s, never answers /hang, and anything else at once. */
async function backend (): Promise<{ address: string, seen: () => number }> {
  let seen = 0
  const sockets = new Set<Socket>()
  const server = http.createServer((req, res) => {
    seen++
    if (req.url === '/hang') return
    setTimeout(() => { res.end('done') }, req.url === '/slow' ? 1000 : 0)
  })
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen: () => seen }
}

function get (port: number, path: string): Promise<{ status: number, body: string } | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      res.on('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? err.message) })
    })
    req.on('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? err.message) })
  })
}

function config (upstream: string, o: { old?: boolean, top?: string, version?: number } = {}): string {
  return `# version ${o.version ?? 0}
log: { level: info, access: true }
${o.top ?? ''}
upstreams:
  web: { servers: [{ address: ${upstream} }] }
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes: [{ match: { pathPrefix: / }, upstream: web }]
${o.old === true
? `  - name: old
    protocol: http
    listen: 127.0.0.1:0
    timeouts: { response: 60s }
    routes: [{ match: { pathPrefix: / }, upstream: web }]
`
: ''}`
}

function lines (out: string, msg: string): number {
  return out.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length
}

describe('a shutdown after a reload', () => {
  it('drains the retiring config\'s requests under the shutdown deadline: the one that ends in time is answered, the one that does not is cut at it, both logged (was: both reset at once, no lines)', async () => {
    const up = await backend()
    const cfg = tempFile(config(up.address, { old: true, top: 'shutdownTimeout: 3s' }))
    const child = serveChild(cfg.path)
    const ports = await child.ports
    const slow = get(ports.old ?? 0, '/slow')
    const hang = get(ports.old ?? 0, '/hang')
    await waitFor(() => up.seen() === 2, 10_000, 10, 'both requests at the upstream')
    cfg.write(config(up.address, { top: 'shutdownTimeout: 3s' }))
    // From before the reload: the retire's deadline runs from it, the shutdown's from the stop.
    const t0 = Date.now()
    expect((await child.call('reload') as Answer).status).toBe(200)
    await child.call('stop')
    const ms = Date.now() - t0
    await child.exited
    // The child's log goes with every assertion: a failure says what the process did.
    const log = child.out()
    expect(await slow, log).toEqual({ status: 200, body: 'done' })
    expect(await hang, log).toBe('ECONNRESET')
    // Cut at a deadline (the retire's or the shutdown's, both 3 s), not at once.
    expect(ms, log).toBeGreaterThanOrEqual(2500)
    const access = log.split('\n').filter((l) => l.includes('"component":"access"') && l.includes('"listener":"old"'))
    expect(access.map((l) => (JSON.parse(l) as { path: string }).path).sort(), log).toEqual(['/hang', '/slow'])
    // Clean or not depends on which deadline cut /hang first; either way the process said so.
    expect(log.split('\n').filter((l) => /"msg":"stopped/.test(l)), log).toHaveLength(1)
    // One retry: once in four full-suite runs on a loaded 2-core VM this failed, not reproduced
    // alone or under load since; the log above will say which step it was.
  }, { timeout: 30_000, retry: 1 })
})

describe('reloads that overlap', () => {
  it('requests that come while a reload runs share one more reload, which applies the file as it is after them (was: they got the running reload\'s answer, which read the file before)', async () => {
    const up = await backend()
    const cfg = tempFile(config(up.address, { version: 0 }))
    const child = serveChild(cfg.path)
    await child.ports
    await child.call('gate')
    const first = cfg.write(config(up.address, { version: 1 }))
    const running = child.send('reload') as Promise<Answer>
    // The first reload has read version 1 and waits in Runtime.start.
    await child.event('held')
    const latest = cfg.write(config(up.address, { version: 2 }))
    const later = [child.send('reload'), child.send('reload'), child.send('reload')] as Array<Promise<Answer>>
    await child.call('open')
    expect((await running)).toMatchObject({ status: 200, body: { hash: first } })
    for (const answer of await Promise.all(later)) expect(answer).toMatchObject({ status: 200, body: { hash: latest } })
    expect(await child.call('hash')).toBe(latest)
    await child.call('stop')
    await child.exited
    // Exactly one follow-up for the three requests (the log is complete once the child is gone).
    expect(lines(child.out(), 'config reloaded')).toBe(2)
  }, 30_000)
})

describe('a reload that changes admin:', () => {
  it('is applied, and its answer and the log say the admin edit takes effect at the next restart (was: silently ignored)', async () => {
    const up = await backend()
    const cfg = tempFile(config(up.address, { top: 'admin: { listen: 127.0.0.1:0 }' }))
    const child = serveChild(cfg.path)
    await child.ports
    cfg.write(config(up.address, { top: 'admin: { listen: 127.0.0.1:0 }', version: 1 }))
    const same = await child.call('reload') as Answer
    expect(same.status).toBe(200)
    expect(same.body.warnings).toBeUndefined()
    cfg.write(config(up.address, { top: 'admin: { listen: 127.0.0.1:0, token: secret-token-1234 }' }))
    const changed = await child.call('reload') as Answer
    expect(changed.status).toBe(200)
    expect(changed.body.warnings).toEqual(['admin: settings changed in the file take effect at the next restart (the admin server outlives reloads)'])
    await child.call('stop')
    await child.exited
    const warned = child.out().split('\n').filter((l) => l.includes('"level":"warn"') && l.includes('admin: settings changed'))
    expect(warned).toHaveLength(1)
    expect(child.out()).not.toContain('secret-token-1234')
  }, 30_000)
})
