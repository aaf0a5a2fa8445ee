import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { httpConfig, type RunningTandem } from '../helpers/tandem.js'
import { ok, rawExchange, statuses, type RawUpstream } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import dc from 'node:diagnostics_channel'
import type { HttpRequestEnd } from '../../src/observability/events.js'
import { closedPort } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// Issue 6.3 and 6.8: `idle` is for a client connection with nothing in flight; waiting on the
// upstream is bounded by `response`, for plain requests and WebSocket handshakes alike.

let up: RawUpstream | undefined
let proxy: RunningTandem | undefined

const fx = rawFixture()

const wsHandshake = 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
const switching = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'

describe('timeouts', () => {
  it('slowloris across the lean → node:http hand-over gets 408 at the header timeout it started with (was: twice it)', async () => {
    up = await fx.upstream(() => ok('served'))
    proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    timeouts: { header: 800ms }' }))
    const s = net.connect(proxy.port(), '127.0.0.1')
    s.setNoDelay(true)
    let text = ''
    let closedAt = 0
    s.on('data', (d: Buffer) => { text += d.toString('latin1') })
    s.on('error', () => {})
    s.on('close', () => { closedAt = performance.now() })
    await new Promise<void>((resolve) => s.once('connect', resolve))
    const start = performance.now()
    s.write('GET / HTTP/1.1\r\nHost: a\r\nX-A: ')
    // A byte every 100 ms; at 500 ms one the lean parser does not take (0x80), which hands the
    // connection to node:http mid-head; the head would complete at 1,400 ms.
    for (let t = 100; t < 1400 && !s.destroyed; t += 100) {
      await new Promise((resolve) => setTimeout(resolve, start + t - performance.now()))
      if (!s.destroyed) s.write(t === 500 ? Buffer.from([0x80]) : 'a')
    }
    if (!s.destroyed) s.write('\r\n\r\n')
    await waitFor(() => closedAt > 0, 5000, 10, 'the connection closed')
    expect(statuses(text)).toEqual([408])
    expect(closedAt - start).toBeLessThan(1300)
    expect(up.requests).toHaveLength(0)
  })

  it('an answer after the client idle timeout but within the response timeout is relayed (issue 6.3)', async () => {
    up = await fx.upstream(() => (socket) => { setTimeout(() => socket.write(ok('late')), 2500) })
    proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    timeouts: { idle: 1s, response: 6s }' }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.endsWith('late'), timeoutMs: 8000 })
    expect(statuses(r.text)).toEqual([200])
    expect(r.text.endsWith('\r\n\r\nlate')).toBe(true)
    expect(r.ms).toBeGreaterThanOrEqual(2400)
  })

  it('an upstream that never answers gives 504 at the response timeout, not a silent close at idle (issue 6.3)', async () => {
    up = await fx.upstream(() => 'hang')
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    retries: 0', listener: '    timeouts: { idle: 1s, response: 2500ms }' }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: 10_000 })
    expect(statuses(r.text)).toEqual([504])
    expect(r.ms).toBeGreaterThanOrEqual(2400)
  })

  // The lean path's response deadline rides on the pooled upstream connection's own timer, which
  // fires every 4 s (the pool idle time): a shorter deadline re-arms it, a longer one is met when
  // it fires. Both must give 504 on time on a reused connection.
  for (const [response, ms] of [['1500ms', 1500], ['5s', 5000]] as const) {
    it(`a reused upstream connection that stops answering gives 504 at the response timeout (${response})`, async () => {
      up = await fx.upstream((r) => r.indexOnConnection === 0 ? ok('first') : 'hang')
      proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    retries: 0', listener: `    timeouts: { idle: 1s, response: ${response} }` }))
      const first = await rawExchange(proxy.port(), 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.endsWith('first'), timeoutMs: 5000 })
      expect(statuses(first.text)).toEqual([200])
      const r = await rawExchange(proxy.port(), 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => /^HTTP\/1\.1 \d{3} [^]*\r\n\r\n/.test(t), timeoutMs: ms + 5000 })
      expect(statuses(r.text)).toEqual([504])
      expect(r.ms).toBeGreaterThanOrEqual(ms - 100)
      expect(r.ms).toBeLessThan(ms + 2000)
      expect(up.requests.map((q) => [q.connection, q.indexOnConnection])).toEqual([[1, 0], [1, 1]])
    })
  }

  it('the idle timeout still closes a client that stops sending its body: 408', async () => {
    up = await fx.upstream(() => ok('never'))
    proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    timeouts: { idle: 1s, response: 10s }' }))
    const r = await rawExchange(proxy.port(), 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc', { timeoutMs: 8000 })
    expect(statuses(r.text)).toEqual([408])
    expect(r.closed).toBe(true)
    expect(r.ms).toBeLessThan(5000)
    expect(proxy.runtime.upstreams.get('web')!.servers[0]!.failures).toBe(0)
  })

  it('a WebSocket 101 after connectTimeout but within the response timeout passes (issue 6.8)', async () => {
    up = await fx.upstream(() => (socket) => { setTimeout(() => socket.write(switching), 2500) })
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    connectTimeout: 1s', listener: '    timeouts: { response: 6s }' }))
    const r = await rawExchange(proxy.port(), wsHandshake, { until: (t) => t.includes('\r\n\r\n'), timeoutMs: 8000 })
    expect(statuses(r.text)).toEqual([101])
    expect(r.text).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n')
  })

  it('a refused upgrade whose body stalls is closed at the idle timeout and logged with its bytes (was: held for ever)', async () => {
    up = await fx.upstream(() => (socket) => { socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n') })
    proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    timeouts: { idle: 1s, response: 5s }' }))
    const seen: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { seen.push(m as HttpRequestEnd) }
    dc.subscribe('tandem:http:request-end', onEnd)
    try {
      const r = await rawExchange(proxy.port(), wsHandshake, { timeoutMs: 6000 })
      expect(r.closed).toBe(true)
      expect(r.ms).toBeLessThan(4000)
      expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*hello$/)
      // Only this request's line: the tunnel of the test before may still be ending (both its
      // directions close in turn) and log its own.
      const mine = (): HttpRequestEnd[] => seen.filter((e) => e.status !== 101)
      await waitFor(() => mine().length === 1, 2000, 10, 'access event')
      expect(mine()[0]).toMatchObject({ status: 200, bytesOut: 5 })
    } finally {
      dc.unsubscribe('tandem:http:request-end', onEnd)
    }
  })

  it('a failed upgrade has its access line too (no server up, connect refused)', async () => {
    const dead = await closedPort()
    proxy = await fx.proxy(httpConfig({ servers: [`127.0.0.1:${dead}`], upstream: '    retries: 0' }))
    const seen: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { seen.push(m as HttpRequestEnd) }
    dc.subscribe('tandem:http:request-end', onEnd)
    try {
      expect(statuses((await rawExchange(proxy.port(), wsHandshake)).text)).toEqual([502])
      await waitFor(() => seen.length === 1, 2000, 10, 'access event')
      expect(seen[0]).toMatchObject({ status: 502, error: 'UPSTREAM_CONNECT_FAILED', server: `127.0.0.1:${dead}` })
    } finally {
      dc.unsubscribe('tandem:http:request-end', onEnd)
    }
  })

  it('a WebSocket handshake nobody answers gives 504 at the response timeout, not connectTimeout (issue 6.8)', async () => {
    up = await fx.upstream(() => 'hang')
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    connectTimeout: 30s', listener: '    timeouts: { response: 1500ms }' }))
    const r = await rawExchange(proxy.port(), wsHandshake, { timeoutMs: 10_000 })
    expect(statuses(r.text)).toEqual([504])
    expect(r.ms).toBeGreaterThanOrEqual(1400)
    expect(r.ms).toBeLessThan(8000)
  })
})
