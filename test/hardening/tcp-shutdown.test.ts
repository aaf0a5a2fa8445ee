// TCP streams still open at the shutdown deadline (audit): a stream cut with bytes undelivered
// must reach the client as a reset, not a clean FIN (README: "both sides are reset rather than
// closed, so neither takes the shortened stream for a whole one"); and every cut stream gets its
// access line (end "shutdown") before the process detaches and flushes its log.
import { fork } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { startProxy, tcpConfig } from '../helpers/tandem.js'
import { closeKind, connect, startTcpServer } from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const BULK = 32 * 1024 * 1024

/** An upstream that writes 32 MiB to each stream at once. */
async function bulkUpstream (): Promise<{ address: string, streams: number }> {
  let streams = 0
  const server = await startTcpServer((s) => {
    streams++
    s.write(Buffer.alloc(BULK, 0x61))
  })
  cleanups.push(() => server.close())
  return { address: server.address, get streams () { return streams } }
}

/**
 * Runs serve() (the process's own shutdown sequence, with its log) in a child under vite-node;
 * the child prints its log to stdout, sends { port }, and shuts down on any message.
 */
function serveChild (yaml: string): { port: Promise<number>, stop: () => Promise<string> } {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-tcp-shutdown-'))
  cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const src = (p: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/${p}`, import.meta.url)))
  const entry = join(dir, 'child.ts')
  writeFileSync(entry, `
    import { parseConfig } from ${src('config/load.ts')}
    import { serve } from ${src('runtime/serve.ts')}
    const serving = await serve(parseConfig(${JSON.stringify(yaml)}, 'test.yaml'), 'test')
    process.send?.({ port: serving.runtime.listeners[0]?.address().port })
    process.once('message', () => { void serving.shutdown('SIGTERM').then(() => { process.exit(0) }) })
  `)
  const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url))
  const child = fork(viteNode, [entry], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  cleanups.push(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<void>((resolve) => { child.once('close', () => { resolve() }) })
  return {
    port: new Promise((resolve, reject) => {
      child.once('message', (m: { port: number }) => { resolve(m.port) })
      child.once('exit', (code) => { reject(new Error(`child exited with ${code}: ${out}`)) })
    }),
    stop: async () => {
      child.send('stop')
      await exited
      return out
    },
  }
}

describe('tcp streams at the shutdown deadline', () => {
  it('a stream with bytes still undelivered to the client is reset, not ended cleanly', async () => {
    const up = await bulkUpstream()
    const proxy = await startProxy(tcpConfig(up.address))
    const c = await connect(proxy.port())
    c.pause() // never reads: the proxy's write to it stays pending
    cleanups.push(() => { c.destroy() })
    await waitFor(() => up.streams === 1 && proxy.runtime.listeners[0]?.activeConnections() === 1, 5000, 5, 'stream open')
    expect(await proxy.stop(200)).toBe(false)
    // What the kernel already holds is read first; then the reset, where a FIN would be a clean end.
    expect(await closeKind(c)).toEqual({ kind: 'reset', code: 'ECONNRESET' })
  })

  it('every stream cut at the deadline has its access line (end "shutdown") before the log is flushed', async () => {
    const up = await bulkUpstream()
    const child = serveChild(`
log: { level: info, access: true }
shutdownTimeout: 200ms
upstreams:
  bulk: { servers: [{ address: ${up.address} }] }
listeners:
  - name: l4
    protocol: tcp
    listen: 127.0.0.1:0
    upstream: bulk
`)
    const c = await connect(await child.port)
    c.pause()
    c.on('error', () => {})
    cleanups.push(() => { c.destroy() })
    await waitFor(() => up.streams === 1, 5000, 5, 'stream at the upstream')
    const out = await child.stop()
    const lines = out.split('\n').filter((l) => l.includes('"type":"tcp"')).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.map((l) => [l.listener, l.upstream, l.server, l.end])).toEqual([['l4', 'bulk', up.address, 'shutdown']])
    expect(out).toContain('"msg":"stopped; work still open at the deadline was closed"')
  })
})
