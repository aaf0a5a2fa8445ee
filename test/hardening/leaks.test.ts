// Leak check (issue 6): after 100,000 HTTP requests, 20,000 TCP connections and 2,000 WebSocket
// upgrades through a proxy child process, its file descriptors and heap are back near the
// baseline taken after a warm-up. Figures are printed with a [figures] prefix.
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import autocannon from 'autocannon'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { ensureFdLimit, fdCount, heapAfterGc, rssBytes, startProxyProcess, type ProxyProcess } from '../helpers/proc.js'
import { waitFor } from '../helpers/wait.js'

const HTTP_REQUESTS = 100_000
const TCP_CONNECTIONS = 20_000
const WS_UPGRADES = 2_000

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => { while (cleanups.length > 0) await cleanups.pop()!() })

async function backends (): Promise<{ http: number, tcp: number }> {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'content-length': 2 }); res.end('ok') })
  server.keepAliveTimeout = 30_000
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => { ws.on('message', (m) => { ws.send(m) }) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const echo = net.createServer((s) => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    server.closeAllConnections()
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    await new Promise<void>((resolve) => { echo.close(() => { resolve() }) })
  })
  return { http: (server.address() as AddressInfo).port, tcp: (echo.address() as AddressInfo).port }
}

async function httpLoad (port: number, amount: number): Promise<{ ok: number, errors: number, non2xx: number, rps: number }> {
  const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, amount, timeout: 10 })
  return { ok: r['2xx'], errors: r.errors + r.timeouts, non2xx: r.non2xx, rps: r.requests.average }
}

/** `n` connect → "ping" → echo → end cycles, `concurrency` at a time; resolves with the failures. */
async function tcpLoad (port: number, n: number, concurrency = 100): Promise<number> {
  let next = 0
  let failed = 0
  const one = async (): Promise<void> => {
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      const timer = setTimeout(() => { failed++; s.destroy(); resolve() }, 10_000)
      s.on('error', () => { failed++; clearTimeout(timer); resolve() })
      s.once('data', (c: Buffer) => { if (c.toString() !== 'ping') failed++; s.end() })
      s.on('close', () => { clearTimeout(timer); resolve() })
      s.write('ping')
    })
  }
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next++ < n) await one() }))
  return failed
}

async function wsLoad (port: number, n: number, concurrency = 50): Promise<number> {
  let next = 0
  let failed = 0
  const one = async (): Promise<void> => {
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
      const timer = setTimeout(() => { failed++; ws.terminate(); resolve() }, 10_000)
      ws.on('error', () => { failed++; clearTimeout(timer); resolve() })
      ws.on('open', () => { ws.send('hi') })
      ws.on('message', (m: Buffer) => { if (m.toString() !== 'hi') failed++; ws.close() })
      ws.on('close', () => { clearTimeout(timer); resolve() })
    })
  }
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next++ < n) await one() }))
  return failed
}

describe('no leaks through a proxy child process', () => {
  it(`fds and heap return near baseline after ${HTTP_REQUESTS} HTTP requests, ${TCP_CONNECTIONS} TCP connections, ${WS_UPGRADES} WebSocket upgrades`, async () => {
    const skip = ensureFdLimit(4096)
    if (skip !== undefined) { console.warn(`skipped: ${skip}`); return }
    const b = await backends()
    const proxy: ProxyProcess = await startProxyProcess(`
log: { level: info, access: false }
upstreams:
  web: { servers: [{ address: 127.0.0.1:${b.http} }] }
  echo: { servers: [{ address: 127.0.0.1:${b.tcp} }] }
listeners:
  - { name: public, protocol: http, listen: 127.0.0.1:0, routes: [{ upstream: web }] }
  - { name: raw, protocol: tcp, listen: 127.0.0.1:0, upstream: echo }
`, 4096)
    cleanups.push(async () => await proxy.stop())
    // Before any traffic: the descriptors a started proxy holds (listeners, stdio, epoll, ...).
    const fds0 = fdCount(proxy.pid)
    const httpPort = proxy.ports.listeners.public as number
    const tcpPort = proxy.ports.listeners.raw as number

    // Warm-up: JIT, pools, lazily created structures; then the baseline.
    expect(await httpLoad(httpPort, 2000)).toMatchObject({ ok: 2000, errors: 0, non2xx: 0 })
    expect(await tcpLoad(tcpPort, 500)).toBe(0)
    expect(await wsLoad(httpPort, 100)).toBe(0)
    const heap0 = await heapAfterGc(proxy)
    const rss0 = rssBytes(proxy.pid)

    const t0 = performance.now()
    const h = await httpLoad(httpPort, HTTP_REQUESTS)
    const t1 = performance.now()
    const tcpFailed = await tcpLoad(tcpPort, TCP_CONNECTIONS)
    const t2 = performance.now()
    const wsFailed = await wsLoad(httpPort, WS_UPGRADES)
    const t3 = performance.now()
    expect(h).toMatchObject({ ok: HTTP_REQUESTS, errors: 0, non2xx: 0 })
    expect(tcpFailed).toBe(0)
    expect(wsFailed).toBe(0)
    const rssPeak = rssBytes(proxy.pid)

    // Back to the start: upstream keep-alive sockets idle out after 4 s, client sockets are gone.
    let fds = fdCount(proxy.pid)
    await waitFor(() => { fds = fdCount(proxy.pid); return fds <= fds0 + 5 }, 15_000, 250, `fds back near ${fds0}`)
    const heap = await heapAfterGc(proxy)
    console.log(`[figures] leak check: ${HTTP_REQUESTS} HTTP in ${((t1 - t0) / 1000).toFixed(1)} s (${h.rps.toFixed(0)} req/s), ` +
      `${TCP_CONNECTIONS} TCP in ${((t2 - t1) / 1000).toFixed(1)} s, ${WS_UPGRADES} WS in ${((t3 - t2) / 1000).toFixed(1)} s; ` +
      `fds ${fds0} → ${fds}; heap after GC ${(heap0 / 2 ** 20).toFixed(1)} → ${(heap / 2 ** 20).toFixed(1)} MiB; ` +
      `RSS ${(rss0 / 2 ** 20).toFixed(1)} MiB baseline, ${(rssPeak / 2 ** 20).toFixed(1)} MiB after the load`)
    expect(heap - heap0).toBeLessThan(8 * 2 ** 20)
  }, 120_000)
})
