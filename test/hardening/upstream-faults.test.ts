// Upstreams that misbehave on purpose (issue 6, "a fault and abuse suite that stays"): each fault
// ends in a clear answer to the client (502 or 504, or a response cut short and closed), within a
// bounded time, and leaves no socket open on either side of the proxy.
import net, { type AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { waitFor } from '../helpers/wait.js'

interface FaultServer { port: number, open: () => number, close: () => Promise<void> }

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { while (cleanups.length > 0) await cleanups.pop()!() })

/** A raw upstream: `act` runs once the request head has arrived (or at once with `onConnect`). */
async function fault (act: (s: net.Socket) => void, onConnect = false): Promise<FaultServer> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    // Always read on, so a FIN from the proxy is seen and 'close' reports what the proxy closed.
    if (onConnect) { act(s); s.resume(); return }
    let head = ''
    const onData = (c: Buffer): void => {
      head += c.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      s.off('data', onData)
      act(s)
      s.resume()
    }
    s.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const f: FaultServer = {
    port: (server.address() as AddressInfo).port,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    },
  }
  cleanups.push(f.close)
  return f
}

async function proxyTo (f: FaultServer): Promise<RunningTandem> {
  const p = await startProxy(httpConfig({
    servers: [`127.0.0.1:${f.port}`],
    upstream: '    retries: 0\n    connectTimeout: 500ms',
    listener: '    timeouts: { header: 2s, idle: 5s, response: 700ms }',
  }))
  cleanups.push(async () => { await p.stop(500) })
  return p
}

interface Answer { status: number, head: string, body: string, ms: number, closed: 'end' | 'reset' }

/** One request over a raw socket; resolves when the proxy closes the connection (it must). */
async function ask (port: number, limitMs = 5000): Promise<Answer> {
  const t0 = Date.now()
  return await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connection still open after ${limitMs} ms; got ${JSON.stringify(data.slice(0, 200))}`)) }, limitMs)
    s.on('data', (c: Buffer) => { data += c.toString('latin1') })
    const done = (closed: 'end' | 'reset'): void => {
      clearTimeout(timer)
      const i = data.indexOf('\r\n\r\n')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), head: i < 0 ? data : data.slice(0, i), body: i < 0 ? '' : data.slice(i + 4), ms: Date.now() - t0, closed })
    }
    s.on('error', () => { done('reset') })
    s.on('close', () => { done('end') })
    s.write('GET /x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n')
  })
}

const RESPONSE_MS = 700
/** undici arms its headers timeout on a coarse clock, which may fire up to ~100 ms early. */
const EARLY_MS = 150

const cases: Array<{ name: string, act: (s: net.Socket) => void, onConnect?: boolean, status: number, minMs?: number }> = [
  { name: 'hang: reads the request, never answers → 504 at the response timeout', act: () => {}, status: 504, minMs: RESPONSE_MS - EARLY_MS },
  { name: 'accepts and resets before reading anything → 502', act: (s) => { s.resetAndDestroy() }, onConnect: true, status: 502 },
  { name: 'accepts and closes (FIN) before reading → 502', act: (s) => { s.end() }, onConnect: true, status: 502 },
  { name: 'resets after the request, before any response byte → 502', act: (s) => { s.resetAndDestroy() }, status: 502 },
  { name: 'resets in the middle of the status line → 502', act: (s) => { s.write('HTTP/1.1 20', () => { s.resetAndDestroy() }) }, status: 502 },
  { name: 'resets in the middle of the headers → 502', act: (s) => { s.write('HTTP/1.1 200 OK\r\nContent-Le', () => { s.resetAndDestroy() }) }, status: 502 },
  { name: 'answers garbage → 502', act: (s) => { s.end('SSH-2.0-OpenSSH_9.6\r\n\r\n') }, status: 502 },
  { name: 'answers with a 100 KiB header block → 502', act: (s) => { s.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(100 * 1024)}\r\ncontent-length: 2\r\n\r\nok`) }, status: 502 },
  { name: 'answers with a malformed content-length → 502', act: (s) => { s.end('HTTP/1.1 200 OK\r\ncontent-length: 12abc\r\n\r\nhello') }, status: 502 },
  { name: 'answers with two different content-lengths → 502', act: (s) => { s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!') }, status: 502 },
  { name: 'drips the status line one byte every 100 ms → 504 at the response timeout', act: (s) => { drip(s, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok', 100) }, status: 504, minMs: RESPONSE_MS - EARLY_MS },
]

function drip (s: net.Socket, text: string, everyMs: number): void {
  let i = 0
  const timer = setInterval(() => {
    if (s.destroyed || i >= text.length) { clearInterval(timer); return }
    s.write(text[i++] as string)
  }, everyMs)
  s.on('close', () => { clearInterval(timer) })
}

describe('upstream faults end in a clear answer and leave no socket open', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const f = await fault(c.act, c.onConnect)
      const p = await proxyTo(f)
      const a = await ask(p.port())
      expect(a.status).toBe(c.status)
      expect(a.body).toBe(c.status === 504 ? 'Gateway Timeout\n' : 'Bad Gateway\n')
      expect(a.head).not.toContain(String(f.port)) // never reveals the upstream address
      if (c.minMs !== undefined) expect(a.ms).toBeGreaterThanOrEqual(c.minMs)
      expect(a.ms).toBeLessThan(RESPONSE_MS + 3000)
      await waitFor(() => f.open() === 0, 3000, 10, 'upstream socket closed by the proxy')
      await waitFor(() => p.runtime.listeners[0]?.activeConnections() === 0, 3000, 10, 'client socket closed')
    })
  }

  it('a response cut short (content-length 100, 10 bytes, then reset) reaches the client as a cut, not a hang', async () => {
    const f = await fault((s) => { s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789', () => { s.resetAndDestroy() }) })
    const p = await proxyTo(f)
    const a = await ask(p.port())
    expect(a.status).toBe(200)
    expect(a.body).toBe('0123456789') // what came, and then the connection ends: the client sees 90 bytes missing
    expect(a.ms).toBeLessThan(3000)
    await waitFor(() => f.open() === 0 && p.runtime.listeners[0]?.activeConnections() === 0, 3000, 10, 'both sides closed')
  })

  it('a body shorter than its content-length, then FIN, is cut and closed', async () => {
    const f = await fault((s) => { s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort') })
    const p = await proxyTo(f)
    const a = await ask(p.port())
    expect([a.status, a.body]).toEqual([200, 'short'])
    await waitFor(() => f.open() === 0 && p.runtime.listeners[0]?.activeConnections() === 0, 3000, 10, 'both sides closed')
  })

  it('bytes past the content-length are not passed on (no response splitting into the next answer)', async () => {
    const f = await fault((s) => { s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil') })
    const p = await proxyTo(f)
    const a = await ask(p.port())
    expect([a.status, a.body]).toEqual([200, 'ok'])
  })
})
