import { afterEach, describe, expect, it } from 'vitest'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Agent, request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { waitFor } from '../helpers/wait.js'

let upstreams: TestUpstream[] = []
let proxy: RunningTandem | undefined
const cleanups: Array<() => Promise<void> | void> = []

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
  await proxy?.stop()
  proxy = undefined
  await Promise.all(upstreams.map(async (u) => { await u.close() }))
  upstreams = []
})

function yaml (address: string, upstreamExtra = ''): string {
  return httpConfig({ servers: [address], upstream: upstreamExtra })
}

const MB = 1024 * 1024

/** A body of `total` bytes made on the fly, never held whole. */
function generated (total: number): Readable {
  const chunk = Buffer.alloc(64 * 1024, 120)
  let sent = 0
  return new Readable({
    read () {
      if (sent >= total) { this.push(null); return }
      const n = Math.min(chunk.length, total - sent)
      sent += n
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n))
    },
  })
}

describe('streaming with backpressure', () => {
  it('a 200 MB upload and a 200 MB download raise RSS by less than 150 MB (no whole-body buffering)', async () => {
    const size = 200 * MB
    const u = await startUpstream({
      name: 'big',
      handler: (req, res) => {
        if (req.method === 'POST') {
          let n = 0
          req.on('data', (c: Buffer) => { n += c.length })
          req.on('end', () => { res.end(String(n)) })
          return
        }
        res.writeHead(200, { 'content-length': String(size) })
        generated(size).pipe(res)
      },
    })
    upstreams = [u]
    proxy = await startProxy(yaml(u.address))
    global.gc?.()
    const base = process.memoryUsage().rss
    let peak = base
    const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
    try {
      // Which half failed, when one does (a CI run once saw "other side closed" here, not reproduced since).
      const half = (what: string) => (err: Error): never => { throw new Error(`${what}: ${err.message}`, { cause: err }) }
      const up = await request(proxy.url() + '/up', { method: 'POST', body: generated(size), headers: { 'content-length': String(size) } }).catch(half('upload'))
      expect(up.statusCode).toBe(200)
      expect(await up.body.text()).toBe(String(size))
      const down = await request(proxy.url() + '/down').catch(half('download'))
      expect(down.statusCode).toBe(200)
      let got = 0
      // A deliberately slow reader, so the proxy must hold the upstream back.
      await pipeline(down.body, new Writable({
        highWaterMark: 64 * 1024,
        write (c: Buffer, _e, cb) { got += c.length; if (got % (16 * MB) < c.length) setTimeout(cb, 5); else cb() },
      })).catch((err: Error) => { throw new Error(`download body after ${got} bytes: ${err.message}`, { cause: err }) })
      expect(got).toBe(size)
    } finally {
      clearInterval(timer)
    }
    // Proxy, client and upstream share this process; buffering either 200 MB body whole would
    // show as 200 MB or more. Node 24's young generation alone moves RSS by tens of MB.
    expect((peak - base) / MB).toBeLessThan(150)
  }, 120_000)

  // Regression: a body of up to 64 KiB was read whole before a server was even picked (nginx's
  // request buffering), so the server saw nothing of a slowly sent small upload until its end,
  // against the spec's "no whole-body buffering".
  it('a small body streams too: the server has the head and the first part before the rest is sent; a retry sends it whole', async () => {
    let headAt = 0
    let firstPartAt = 0
    let body = ''
    const server = http.createServer((req, res) => {
      headAt = Date.now()
      req.setEncoding('latin1')
      req.on('data', (c: string) => { if (body === '') firstPartAt = Date.now(); body += c })
      req.on('end', () => { res.end(`got ${body.length}`) })
    })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    cleanups.push(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
    const refused = await new Promise<number>((resolve) => {
      const s = net.createServer()
      s.listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => { resolve(p) }) })
    })
    // The first server refuses: the attempt on the second must carry the whole body still.
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${refused}`, `127.0.0.1:${(server.address() as AddressInfo).port}`], upstream: '    retries: 1' }))
    const client = net.connect(proxy.port(), '127.0.0.1')
    let answer = ''
    client.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    client.write(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n${'a'.repeat(500)}`)
    await waitFor(() => body.length === 500, 5000, 10, 'the first part at the server')
    const restAt = Date.now()
    client.write('b'.repeat(500))
    await waitFor(() => answer.includes('got 1000'), 5000, 10, 'the answer')
    client.destroy()
    // The first part was at the server before the rest was sent (waited for above), head first.
    expect(headAt).toBeLessThanOrEqual(firstPartAt)
    expect(firstPartAt).toBeLessThanOrEqual(restAt)
    expect(body).toBe('a'.repeat(500) + 'b'.repeat(500))
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK')
    expect(proxy.runtime.upstreams.get('web')!.servers.map((x) => x.failures)).toEqual([1, 0])
  })

  it('survives the keep-alive race against an upstream with a 1 s keep-alive: zero errors', async () => {
    const u = await startUpstream({ name: 'ka', keepAliveTimeout: 1000 })
    upstreams = [u]
    proxy = await startProxy(yaml(u.address))
    const agent = new Agent({ keepAliveTimeout: 30_000 })
    cleanups.push(async () => { await agent.close() })
    const statuses: number[] = []
    // Requests spaced around the upstream's idle close, where a reused socket is most at risk.
    const gaps = [950, 990, 1000, 1005, 1010, 1020, 1050, 980, 1000, 1000]
    for (const gap of gaps) {
      for (let i = 0; i < 3; i++) {
        const res = await request(proxy.url() + '/', { dispatcher: agent, method: i === 1 ? 'POST' : 'GET', body: i === 1 ? 'payload' : undefined })
        statuses.push(res.statusCode)
        await res.body.text()
      }
      await new Promise((resolve) => setTimeout(resolve, gap))
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([])
    expect(u.count).toBeGreaterThanOrEqual(30)
  }, 60_000)

  it('retries on a fresh connection when a reused one was closed under it: zero errors', async () => {
    // A backend that, like many non-Node servers, announces no keep-alive timeout and drops idle
    // connections after 1 s; requests arrive right at that moment, on the reused socket.
    let served = 0
    const backend = net.createServer((socket) => {
      let buf = ''
      let idle: NodeJS.Timeout | undefined
      // After 1 s idle the server starts closing; a request that crosses the close is dropped
      // unanswered, exactly what a proxy reusing that socket sees in the wild.
      let closing = false
      const arm = (): void => {
        clearTimeout(idle)
        idle = setTimeout(() => { closing = true; setTimeout(() => { socket.destroy() }, 80) }, 1000)
      }
      arm()
      socket.on('error', () => {})
      socket.on('data', (c: Buffer) => {
        if (closing) { socket.destroy(); return }
        buf += c.toString('latin1')
        let end: number
        while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
          const head = buf.slice(0, end)
          const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
          if (buf.length < end + 4 + len) break
          buf = buf.slice(end + 4 + len)
          served++
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok')
          arm()
        }
      })
    })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => { await new Promise((r) => backend.close(r)) })
    proxy = await startProxy(yaml(`127.0.0.1:${(backend.address() as AddressInfo).port}`))
    const agent = new Agent({ keepAliveTimeout: 30_000 })
    cleanups.push(async () => { await agent.close() })
    const statuses: number[] = []
    for (const gap of [1010, 1020, 1030, 1015, 1025, 1035, 1010, 1020, 1030, 1015, 1025, 1035]) {
      const res = await request(proxy.url() + '/', { dispatcher: agent, method: statuses.length % 2 === 0 ? 'GET' : 'POST', body: statuses.length % 2 === 0 ? undefined : 'data' })
      statuses.push(res.statusCode)
      await res.body.text()
      await new Promise((resolve) => setTimeout(resolve, gap))
    }
    expect(statuses).toEqual(Array(12).fill(200))
    expect(served).toBe(12)
  }, 60_000)

  it('passes WebSocket upgrades through both ways', async () => {
    const backend = http.createServer()
    const wss = new WebSocketServer({ server: backend })
    wss.on('connection', (ws) => { ws.on('message', (m) => { ws.send(`echo:${m.toString()}`) }) })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => { wss.close(); backend.closeAllConnections(); await new Promise((r) => backend.close(r)) })
    proxy = await startProxy(yaml(`127.0.0.1:${(backend.address() as AddressInfo).port}`))
    const ws = new WebSocket(proxy.url().replace('http', 'ws') + '/chat')
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const replies: string[] = []
    ws.on('message', (m) => replies.push(m.toString()))
    for (const m of ['one', 'two', 'three']) ws.send(m)
    await waitFor(() => replies.length === 3, 5000)
    expect(replies).toEqual(['echo:one', 'echo:two', 'echo:three'])
    ws.close()
    await new Promise((resolve) => ws.once('close', resolve))
    await waitFor(() => proxy!.runtime.listeners[0]!.activeConnections() === 0, 5000, 20, 'client sockets closed')
    await waitFor(() => proxy!.runtime.upstreams.get('web')!.servers[0]!.active === 0, 5000, 20, 'upstream released')
  })

  it('an upgrade the upstream refuses closes both sides and leaks no sockets', async () => {
    const backend = http.createServer((req, res) => { res.end('plain') })
    backend.on('upgrade', (_req, socket) => { socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\nno way') })
    let open = 0
    backend.on('connection', (s) => { open++; s.on('close', () => { open-- }) })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => { backend.closeAllConnections(); await new Promise((r) => backend.close(r)) })
    proxy = await startProxy(yaml(`127.0.0.1:${(backend.address() as AddressInfo).port}`))
    const ws = new WebSocket(proxy.url().replace('http', 'ws') + '/chat')
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume() })
      ws.on('error', () => {})
    })
    expect(status).toBe(403)
    ws.terminate()
    await waitFor(() => open === 0, 5000, 20, 'upstream sockets closed')
    await waitFor(() => proxy!.runtime.listeners[0]!.activeConnections() === 0, 5000, 20, 'client sockets closed')
    expect(proxy.runtime.upstreams.get('web')!.servers[0]!.active).toBe(0)
  })
})
