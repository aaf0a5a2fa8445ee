import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import net from 'node:net'
import dc from 'node:diagnostics_channel'
import type { Clock } from '../../src/clock.js'
import { parseConfig } from '../../src/config/load.js'
import type { HttpRequestEnd } from '../../src/observability/events.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { httpConfig, type RunningTandem } from '../helpers/tandem.js'
import { rawExchange, statuses } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import { waitFor } from '../helpers/wait.js'

// What an upstream answers to a WebSocket handshake (audit of the Upgrade path, #3 #5 #6 #7 #8):
// a refusal is relayed like a plain response (its body with backpressure, its hop-by-hop fields
// dropped), a 101 that switches to nothing or to what the client did not offer is a 502, and a
// tunnel's lifetime is not its server's response time.

const fx = rawFixture()
let proxy: RunningTandem | undefined

const handshake = (path = '/ws'): string => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
const badGateway = 'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 12\r\nconnection: close\r\n\r\nBad Gateway\n'
const DATE = '[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT'

const seen: HttpRequestEnd[] = []
const onEnd = (m: unknown): void => { seen.push(m as HttpRequestEnd) }
beforeEach(() => { seen.length = 0; dc.subscribe('tandem:http:request-end', onEnd) })
afterEach(() => { dc.unsubscribe('tandem:http:request-end', onEnd) })

const MiB = 1024 * 1024

/** An upstream that answers every request 200 with a `total`-byte body, written as fast as the socket takes it. */
async function bigBody (total: number): Promise<{ address: string, sent: () => number, open: () => number }> {
  let sent = 0
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  const u = await fx.upstream(() => (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`)
    const pump = (): void => {
      while (sent < total && !socket.destroyed) {
        const n = Math.min(chunk.length, total - sent)
        sent += n
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { socket.once('drain', pump); return }
      }
    }
    pump()
  })
  return { address: u.address, sent: () => sent, open: () => u.open }
}

/** Polls until `value` stops growing (unchanged over `polls` polls in a row) or reaches `limit`. */
async function settled (value: () => number, limit: number, polls = 5): Promise<number> {
  let last = -1
  let same = 0
  await waitFor(() => {
    const v = value()
    same = v === last ? same + 1 : 0
    last = v
    return v >= limit || same >= polls
  }, 10_000, 50, 'the upstream to stall or finish')
  return last
}

describe('upstream answers to an upgrade', () => {
  it('a refused upgrade\'s body is relayed with backpressure, and the server held until it is all read (audit #3)', async () => {
    // Was: every byte the server sent was read into memory at once (400 MB took 1 s), and the
    // server was released at the head while its body still streamed.
    const TOTAL = 128 * MiB
    const big = await bigBody(TOTAL)
    proxy = await fx.proxy(httpConfig({ servers: [big.address] }))
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    const s = net.connect(proxy.port(), '127.0.0.1')
    s.on('error', () => {})
    s.write(handshake('/big'))
    // The client reads nothing: the server gets as far as the socket buffers on the way.
    const stalledAt = await settled(big.sent, TOTAL)
    expect(stalledAt).toBeLessThan(32 * MiB)
    expect(server.active).toBe(1)
    expect(seen).toHaveLength(0)
    // Once the client reads, the whole body comes, then the close.
    let received = 0
    let text = ''
    s.on('data', (c: Buffer) => { received += c.length; if (text.length < 4096) text += c.toString('latin1') })
    await new Promise<void>((resolve) => s.once('close', resolve))
    const headEnd = text.indexOf('\r\n\r\n') + 4
    expect(text.slice(0, headEnd)).toMatch(new RegExp(`^HTTP/1\\.1 200 OK\\r\\ncontent-length: ${TOTAL}\\r\\nDate: ${DATE}\\r\\nconnection: close\\r\\n\\r\\n$`))
    expect(received - headEnd).toBe(TOTAL)
    await waitFor(() => server.active === 0 && big.open() === 0, 5000, 10, 'server released')
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ status: 200, bytesOut: TOTAL, server: big.address })
  })

  it('a client that stops reading a refused upgrade\'s body is cut at the idle timeout, both sides closed (audit #3)', async () => {
    // Was: the whole body was read, and the client socket held for ever with it.
    const big = await bigBody(64 * MiB)
    proxy = await fx.proxy(httpConfig({ servers: [big.address], listener: '    timeouts: { idle: 1s }' }))
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    const listener = proxy.runtime.listeners[0]!
    const s = net.connect(proxy.port(), '127.0.0.1')
    s.on('error', () => {})
    try {
      s.write(handshake('/big'))
      await waitFor(() => listener.activeConnections() === 1, 5000, 10, 'the client connection')
      const started = Date.now()
      await waitFor(() => listener.activeConnections() === 0 && big.open() === 0 && server.active === 0, 5000, 10, 'both sides closed')
      expect(Date.now() - started).toBeLessThan(4000)
      expect(big.sent()).toBeLessThan(32 * MiB)
      await waitFor(() => seen.length === 1, 2000, 10, 'access event')
      expect(seen[0]).toMatchObject({ status: 200 })
      expect(seen[0]!.bytesOut).toBeLessThan(32 * MiB)
    } finally {
      s.destroy()
    }
  })

  it('a tunnel\'s server gets the handshake time as its response time, not the tunnel\'s lifetime (audit #5)', async () => {
    // Was: at the close, the whole tunnel's life went into rttEwma, which starved the server
    // under balance: response-time. The clock is moved ten minutes while the tunnel is open.
    const up = await fx.upstream(() => ({ switchTo: 'websocket' }))
    let offset = 0
    const clock: Clock = { now: () => performance.now() + offset }
    const runtime = new Runtime(parseConfig(httpConfig({ servers: [up.address], upstream: '    balance: response-time' }), 'test.yaml'), { clock })
    await runtime.start()
    try {
      const server = runtime.upstreams.get('web')!.servers[0]!
      const s = net.connect(runtime.listeners[0]!.address().port, '127.0.0.1')
      s.on('error', () => {})
      let text = ''
      s.on('data', (c: Buffer) => { text += c.toString('latin1'); if (text.endsWith('\r\n\r\n')) s.write('ping') })
      s.write(handshake())
      await waitFor(() => text.endsWith('tunnel:ping'), 5000, 10, 'the tunnel')
      expect(statuses(text)).toEqual([101])
      const handshakeRtt = server.rttEwma
      expect(handshakeRtt).toBeGreaterThan(0)
      expect(handshakeRtt).toBeLessThan(1000)
      offset += 600_000
      s.destroy()
      await waitFor(() => server.active === 0 && seen.length === 1, 5000, 10, 'the tunnel closed')
      expect(server.rttEwma).toBe(handshakeRtt)
      expect(server.failures).toBe(0)
      // The access line still has the tunnel's whole life.
      expect(seen[0]).toMatchObject({ status: 101 })
      expect(seen[0]!.totalMs).toBeGreaterThanOrEqual(600_000)
    } finally {
      await runtime.stop(1000)
    }
  })

  it('a 101 without Upgrade and Connection is a 502 held against the server (audit #6)', async () => {
    // Was: relayed as `101 Switching Protocols` + `connection: close`, the server's bytes lost.
    const up = await fx.upstream(() => 'HTTP/1.1 101 Switching Protocols\r\n\r\nRAW')
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    retries: 0' }))
    const r = await rawExchange(proxy.port(), handshake('/101bare'))
    expect(r.text).toBe(badGateway)
    expect(r.closed).toBe(true)
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    await waitFor(() => server.active === 0 && seen.length === 1, 5000, 10, 'released and logged')
    expect(server.failures).toBe(1)
    expect(seen[0]).toMatchObject({ status: 502, error: 'UPSTREAM_FAILED', server: up.address })
  })

  it('a 101 to a protocol the client did not offer is a 502, and no client byte reaches the server (audit #7)', async () => {
    // Was: `101` with `Upgrade: h2c` to an `Upgrade: websocket` offer opened the tunnel.
    const up = await fx.upstream((r) => ({ switchTo: r.head.startsWith('GET /101h2c ') ? 'h2c' : 'WebSocket' }))
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    retries: 0' }))
    const r = await rawExchange(proxy.port(), handshake('/101h2c') + 'CLIENTFRAME')
    expect(r.text).toBe(badGateway)
    expect(r.closed).toBe(true)
    expect(up.bytes.toString('latin1')).toBe(up.requests[0]!.head)
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    await waitFor(() => server.active === 0, 5000, 10, 'released')
    expect(server.failures).toBe(1)
    // The protocol offered, spelled otherwise, is the same one.
    const ok = await rawExchange(proxy.port(), handshake('/ws') + 'hi', { until: (t) => t.endsWith('tunnel:hi') })
    expect(statuses(ok.text)).toEqual([101])
    // The tunnel ends once both directions have (half-close passes through): its line comes
    // after the client's FIN has gone through the upstream and back.
    await waitFor(() => seen.some((e) => e.status === 101), 5000, 10, 'the tunnel\'s access line')
  })

  it.each([
    ['fields named in Connection, Proxy-Authenticate and Trailer are dropped, Date added',
      'HTTP/1.1 401 Unauthorized\r\nConnection: close, X-Internal-Token\r\nX-Internal-Token: s3cr3t\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\ncontent-length: 2\r\n\r\nno',
      `^HTTP/1\\.1 401 Unauthorized\\r\\ncontent-length: 2\\r\\nDate: ${DATE}\\r\\nconnection: close\\r\\n\\r\\nno$`],
    ['a 200 refusal does not pass Upgrade on',
      'HTTP/1.1 200 OK\r\nConnection: Upgrade\r\nUpgrade: websocket\r\ncontent-length: 2\r\n\r\nok',
      `^HTTP/1\\.1 200 OK\\r\\ncontent-length: 2\\r\\nDate: ${DATE}\\r\\nconnection: close\\r\\n\\r\\nok$`],
    ['the server\'s own Date is kept, once',
      'HTTP/1.1 403 Forbidden\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\n\r\nno',
      '^HTTP/1\\.1 403 Forbidden\\r\\nDate: Mon, 01 Jan 2024 00:00:00 GMT\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nno$'],
    ['a transfer coding node:http does not undo is a 502, as for a plain request',
      'HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n',
      `^${badGateway.replaceAll('\r\n', '\\r\\n').replace('\n', '\\n')}$`],
  ])('a refused upgrade\'s head is filtered as a plain response\'s: %s (audit #8)', async (_, answer, expected) => {
    const up = await fx.upstream(() => answer)
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    retries: 0' }))
    const r = await rawExchange(proxy.port(), handshake())
    expect(r.text).toMatch(new RegExp(expected))
    expect(r.closed).toBe(true)
    await waitFor(() => seen.length === 1, 2000, 10, 'access event')
    expect(seen).toHaveLength(1)
  })

  // Regression (audit #9, #13): an upstream's FIN closed the whole tunnel, so what the client
  // sent after it never arrived; and the access line counted the HTTP heads as tunnel bytes.
  it('a tunnel passes a half-close on: the client still sends after the server\'s FIN; the line counts tunnel bytes only', async () => {
    const up = await fx.upstream(() => (socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nbye')
      socket.end()
    })
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const s = net.connect({ port: proxy.port(), host: '127.0.0.1', allowHalfOpen: true })
    s.on('error', () => {})
    let text = ''
    let ended = false
    s.on('data', (c: Buffer) => { text += c.toString('latin1') })
    s.on('end', () => { ended = true })
    s.write(handshake())
    await waitFor(() => ended, 5000, 10, 'the server\'s FIN at the client')
    expect(text.endsWith('\r\n\r\nbye')).toBe(true)
    s.end('more')
    await waitFor(() => up.bytes.toString('latin1').endsWith('\r\n\r\nmore'), 5000, 10, 'the client\'s bytes after the FIN at the server')
    await waitFor(() => seen.length === 1, 5000, 10, 'the tunnel\'s access line')
    expect(seen[0]).toMatchObject({ status: 101, bytesIn: 4, bytesOut: 3 })
  })
})
