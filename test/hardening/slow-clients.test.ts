// Slow and abusive clients (issue 6): slowloris headers get 408 at the header timeout; a client
// that never reads a big response holds bounded memory (backpressure reaches the upstream);
// 10,000 idle keep-alive connections do not slow a new client down.
import http from 'node:http'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { httpConfig, startProxy } from '../helpers/tandem.js'
import { ensureFdLimit, fdCount, rssBytes, startProxyProcess, type ProxyProcess } from '../helpers/proc.js'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => { while (cleanups.length > 0) await cleanups.pop()!() })

async function upstream (opts: Parameters<typeof startUpstream>[0]): Promise<TestUpstream> {
  const u = await startUpstream(opts)
  cleanups.push(async () => { await u.close() })
  return u
}

describe('slow and abusive clients', () => {
  it('slowloris: headers dripped forever get 408 at the header timeout, and the socket is closed', async () => {
    const u = await upstream({ name: 'u' })
    const p = await startProxy(httpConfig({ servers: [u.address], listener: '    timeouts: { header: 1s, idle: 30s, response: 30s }' }))
    cleanups.push(async () => await p.stop(500))
    const t0 = Date.now()
    const s = net.connect(p.port(), '127.0.0.1')
    cleanups.push(() => { s.destroy() })
    let got = ''
    s.on('data', (c: Buffer) => { got += c.toString('latin1') })
    s.on('error', () => {})
    const closed = new Promise<number>((resolve) => { s.on('close', () => { resolve(Date.now() - t0) }) })
    s.write('GET / HTTP/1.1\r\nHost: app.test\r\n')
    let i = 0
    const timer = setInterval(() => { if (!s.destroyed) s.write(`x-drip-${i++}: 1\r\n`) }, 100)
    cleanups.push(() => { clearInterval(timer) })
    const ms = await closed
    clearInterval(timer)
    expect(got).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
    expect(ms).toBeGreaterThanOrEqual(900)
    expect(ms).toBeLessThan(1000 + 3000)
    expect(u.count).toBe(0)
  })

  it('a client that never reads a 64 MiB response: the upstream is held back, not buffered in the proxy', async () => {
    let written = 0
    let upstreamClosed = false
    const chunk = Buffer.alloc(64 * 1024, 97)
    const u = await upstream({
      name: 'big',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-length': 64 * 1024 * 1024 })
        const pump = (): void => {
          while (written < 64 * 1024 * 1024) {
            written += chunk.length
            if (!res.write(chunk)) { res.once('drain', pump); return }
          }
          res.end()
        }
        res.on('close', () => { upstreamClosed = true })
        pump()
      },
    })
    const p = await startProxy(httpConfig({ servers: [u.address] }))
    cleanups.push(async () => await p.stop(500))
    const s = net.connect(p.port(), '127.0.0.1')
    cleanups.push(() => { s.destroy() })
    s.on('error', () => {})
    s.pause() // never reads
    s.write('GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n')
    // Let the pipeline fill: socket buffers on both legs plus the proxy's stream high-water marks.
    await waitFor(() => written > 0, 5000, 10, 'upstream writing')
    let last = -1
    await waitFor(() => { const stable = written === last; last = written; return stable && written > 0 }, 10_000, 250, 'upstream held back')
    expect(written).toBeLessThan(24 * 1024 * 1024) // kernel buffers on two sockets and stream buffers, not 64 MiB
    s.destroy()
    await waitFor(() => upstreamClosed, 5000, 10, 'upstream response closed after the client left')
  })

  it('10,000 idle keep-alive connections: a new client is still served quickly (figures printed)', async () => {
    const IDLE = 10_000
    const skip = ensureFdLimit(IDLE + 2000)
    if (skip !== undefined) {
      console.warn(`skipped: ${skip}`)
      return
    }
    const u = await upstream({ name: 'u' })
    const proxy: ProxyProcess = await startProxyProcess(httpConfig({
      servers: [u.address],
      log: '{ level: info, access: false }',
      listener: '    timeouts: { header: 10s, idle: 120s, response: 10s }',
    }), IDLE + 2000)
    cleanups.push(async () => await proxy.stop())
    const port = proxy.ports.listeners.public as number
    const rss0 = rssBytes(proxy.pid)

    // Each connection makes one keep-alive request, then stays open and idle.
    const idle: net.Socket[] = []
    cleanups.push(() => { for (const s of idle) s.destroy() })
    const BATCH = 500
    for (let i = 0; i < IDLE; i += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, async () => {
        await new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1')
          idle.push(s)
          let got = ''
          const onData = (c: Buffer): void => {
            got += c.toString('latin1')
            if (got.endsWith('\r\n\r\nu')) { s.off('data', onData); resolve() }
          }
          s.on('data', onData)
          s.once('error', reject)
          s.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n')
        })
      }))
    }
    await waitFor(() => fdCount(proxy.pid) >= IDLE, 10_000, 50, 'proxy holds the idle connections')
    const rss = rssBytes(proxy.pid)

    // A new client, one fresh connection per request, while all of them stay open.
    const times: number[] = []
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now()
      const status = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => { res.resume(); res.on('end', () => { resolve(res.statusCode ?? 0) }) }).on('error', reject)
      })
      times.push(performance.now() - t0)
      expect(status).toBe(200)
    }
    times.sort((a, b) => a - b)
    const p50 = times[25] as number
    const max = times[49] as number
    console.log(`[figures] ${IDLE} idle keep-alive connections: new-client latency p50 ${p50.toFixed(2)} ms, max ${max.toFixed(2)} ms; ` +
      `proxy RSS ${(rss0 / 2 ** 20).toFixed(1)} MiB before, ${(rss / 2 ** 20).toFixed(1)} MiB with them (${((rss - rss0) / IDLE / 1024).toFixed(1)} KiB each); fds ${fdCount(proxy.pid)}`)
    expect(idle.filter((s) => !s.destroyed)).toHaveLength(IDLE) // none was dropped
    expect(p50).toBeLessThan(250) // generous: a loaded 2-core CI machine; bench/ has the tight numbers
    expect(max).toBeLessThan(2000)
    expect(rss - rss0).toBeLessThan(IDLE * 64 * 1024) // < 64 KiB per idle connection
  })
})
