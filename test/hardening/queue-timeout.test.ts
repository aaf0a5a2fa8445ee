// A request that waits out `timeouts.response` in a queue for a connection (every pooled
// connection to the server busy with a response still streaming, as when clients stop reading)
// never reached the server: it gets 503 QUEUE_TIMEOUT and the server is not judged. Regressions:
// on the lean path it was a 504 counted as the server's timeout (with `passive: { failures: 1 }`
// the healthy server was ejected, every later request 503); on the general path, no answer.
import net from 'node:net'
import dc from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'
import { channels, type HttpRequestEnd } from '../../src/observability/events.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { ensureFdLimit, startProxyProcess } from '../helpers/proc.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Sent { socket: net.Socket, text: () => string }

/** Writes `data` on a new connection to `port`, collecting what comes back. */
function send (port: number, data: string): Sent {
  const socket = net.connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  socket.on('error', () => {})
  cleanups.push(() => { socket.destroy() })
  socket.write(data)
  return { socket, text: () => text }
}

describe('connection queues to a server', () => {
  it('a request timed out in the queue is 503 QUEUE_TIMEOUT and blames no server (was: 504, and the server ejected)', async () => {
    // The upstream starts a chunked answer for /slow and holds it open; anything else is answered.
    const sockets = new Set<net.Socket>()
    const up = net.createServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
      s.on('data', (d: Buffer) => {
        if (d.toString('latin1').startsWith('GET /slow ')) s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
        else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      })
    })
    await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => { for (const s of sockets) s.destroy(); up.close() })
    const address = `127.0.0.1:${(up.address() as net.AddressInfo).port}`
    const proxy: RunningTandem = await startProxy(httpConfig({
      servers: [address],
      upstream: '    passive: { failures: 1, ejectFor: 30s }',
      listener: '    timeouts: { response: 300ms, idle: 30s }',
    }))
    cleanups.push(async () => { await proxy.stop() })
    const upstream = proxy.runtime.upstreams.get('web')!
    const server = upstream.servers[0]!
    // Two pooled connections instead of the default 256, so that two clients fill the pool.
    proxy.runtime.pools.raw(server, upstream.config).cap = 2
    const ends: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { ends.push(m as HttpRequestEnd) }
    dc.subscribe(channels.httpRequestEnd.name, onEnd)
    cleanups.push(() => { dc.unsubscribe(channels.httpRequestEnd.name, onEnd) })

    const port = Number(new URL(proxy.url()).port)
    const raw = (path: string): Sent => send(port, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`)
    const hogs = [raw('/slow'), raw('/slow')]
    await waitFor(() => hogs.every((h) => h.text().includes('hello')), 5000, 10, 'both slow answers started')
    const queued = raw('/x')
    await waitFor(() => queued.text().includes('\r\n\r\n'), 5000, 10, 'the queued request answered')
    expect(queued.text()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/)
    expect(ends.map((e) => [e.path, e.status, e.error])).toEqual([['/x', 503, 'QUEUE_TIMEOUT']])
    expect({ failures: server.failures, state: server.state(proxy.runtime.clock.now()) }).toEqual({ failures: 0, state: 'up' })
  })

  it('general path: a request still in undici\'s queue at the response timeout is 503 QUEUE_TIMEOUT, and the server stays up (was: no answer at all)', async () => {
    // undici's pool to a server holds 256 connections (not adjustable once made): 256 POSTs hold
    // them with answers that never finish, in a proxy process of its own (descriptors).
    const HOGS = 256
    const skip = ensureFdLimit(4 * HOGS + 200)
    if (skip !== undefined) {
      console.warn(`skipped: ${skip}`)
      return
    }
    const sockets = new Set<net.Socket>()
    const up = net.createServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
      s.on('data', (d: Buffer) => {
        const text = d.toString('latin1')
        if (text.startsWith('POST /slow ')) s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
        else if (text.startsWith('POST ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      })
    })
    await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => { for (const s of sockets) s.destroy(); up.close() })
    const proxy = await startProxyProcess(httpConfig({
      servers: [`127.0.0.1:${(up.address() as net.AddressInfo).port}`],
      upstream: '    passive: { failures: 1, ejectFor: 30s }',
      listener: '    timeouts: { response: 500ms, idle: 30s }',
      log: '{ level: info, access: true }',
    }), 4 * HOGS + 200)
    cleanups.push(async () => { await proxy.stop() })
    const port = proxy.ports.listeners.public as number
    // A body sends it down the general (node:http + undici) path.
    const post = (path: string): Sent => send(port, `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi`)
    const hogs = Array.from({ length: HOGS }, () => post('/slow'))
    await waitFor(() => hogs.every((h) => h.text().includes('hello')), 15_000, 20, 'every slow answer started')
    const queued = post('/x')
    await waitFor(() => queued.text().includes('\r\n\r\n'), 5000, 10, 'the queued request answered')
    expect(queued.text()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/)
    for (const h of hogs) h.socket.destroy()
    // Not ejected: once the connections are free, the next request is served.
    await waitFor(async () => {
      const again = post('/y')
      await waitFor(() => again.text().includes('\r\n\r\n') || again.socket.destroyed, 5000, 10, 'answer')
      return again.text().startsWith('HTTP/1.1 200 ')
    }, 10_000, 100, 'served again')
    expect(proxy.output()).toContain('"error":"QUEUE_TIMEOUT"')
    expect(proxy.output()).not.toContain('passive ejection')
  })
})
