import { describe, expect, it } from 'vitest'
import { httpConfig, type RunningTandem } from '../helpers/tandem.js'
import { ok, rawExchange, statuses, type RawReply, type RawUpstream, type ReceivedRequest } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'

// Issue 6.4 and 6.5: odd but legal answers are relayed; a request that may have reached the
// upstream is sent again only when its method is idempotent.

let proxy: RunningTandem | undefined

const fx = rawFixture()

async function upstream (reply: (r: ReceivedRequest) => RawReply): Promise<RawUpstream> {
  return await fx.upstream(reply)
}

const partialThenReset = (socket: import('node:net').Socket): void => {
  socket.write('HTTP/1.1 200 OK\r\nContent-Le', () => { socket.destroy() })
}

describe('upstream answers and replays', () => {
  it('a reason phrase with obs-text (200 Успешно) is relayed with a safe phrase (issue 6.4)', async () => {
    const u = await upstream(() => Buffer.concat([Buffer.from('HTTP/1.1 200 '), Buffer.from('Успешно', 'utf8'), Buffer.from('\r\ncontent-length: 2\r\n\r\nok')]))
    proxy = await fx.proxy(httpConfig({ servers: [u.address] }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(r.text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true)
    expect(r.text.endsWith('\r\n\r\nok')).toBe(true)
  })

  it('a 101 with obs-text in its reason phrase still opens the tunnel', async () => {
    const u = await upstream(() => Buffer.concat([Buffer.from('HTTP/1.1 101 '), Buffer.from([0xe9]), Buffer.from('\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')]))
    proxy = await fx.proxy(httpConfig({ servers: [u.address] }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', { until: (t) => t.includes('\r\n\r\n') })
    expect(r.text.startsWith('HTTP/1.1 101 Switching Protocols\r\n')).toBe(true)
  })

  it('a POST answered in part and then reset is sent once: 502 (issue 6.5)', async () => {
    const a = await upstream(() => partialThenReset)
    const b = await upstream(() => partialThenReset)
    proxy = await fx.proxy(httpConfig({ servers: [a.address, b.address], upstream: '    retries: 1' }))
    const r = await rawExchange(proxy.port(), 'POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc')
    expect(statuses(r.text)).toEqual([502])
    expect(a.requests.length + b.requests.length).toBe(1)
  })

  it('a GET answered in part and then reset is not replayed on the same server as a keep-alive race (issue 6.5)', async () => {
    // The old race check counted this response's own bytes as proof of an earlier exchange.
    // The spec retries idempotent requests only after a reset before any response byte.
    const a = await upstream(() => partialThenReset)
    const b = await upstream(() => ok('b'))
    proxy = await fx.proxy(httpConfig({ servers: [a.address, b.address], upstream: '    retries: 1' }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statuses(r.text)).toEqual([502])
    expect(a.requests).toHaveLength(1)
    expect(b.requests).toHaveLength(0)
  })

  it('a GET reset before any response byte goes to the next server', async () => {
    const a = await upstream(() => 'destroy')
    const b = await upstream(() => ok('b'))
    proxy = await fx.proxy(httpConfig({ servers: [a.address, b.address], upstream: '    retries: 1' }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statuses(r.text)).toEqual([200])
    expect(r.text.endsWith('\r\n\r\nb')).toBe(true)
    // A fresh connection that is reset is no keep-alive race: no second try on the same server.
    expect(a.requests).toHaveLength(1)
    expect(b.requests).toHaveLength(1)
  })

  it('a POST dropped on a reused connection is not sent again; a GET is (issue 6.5)', async () => {
    // Answers the first request on each connection; drops the connection on the second.
    const u = await upstream((r) => r.indexOnConnection === 0 ? ok('first') : 'destroy')
    proxy = await fx.proxy(httpConfig({ servers: [u.address], upstream: '    retries: 1' }))
    const port = proxy.port()
    const post = 'POST /order HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc'
    expect(statuses((await rawExchange(port, post)).text)).toEqual([200])
    expect(statuses((await rawExchange(port, post)).text)).toEqual([502])
    expect(u.requests.map((q) => q.head.split(' ')[0])).toEqual(['POST', 'POST'])
    expect(u.requests.map((q) => q.body.toString())).toEqual(['abc', 'abc'])

    const get = 'GET /list HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'
    expect(statuses((await rawExchange(port, get)).text)).toEqual([200])
    const r = await rawExchange(port, get)
    expect(statuses(r.text)).toEqual([200])
    // GET #2 met the dropped connection and was re-sent on a fresh one.
    expect(u.requests.map((q) => q.head.split(' ')[0])).toEqual(['POST', 'POST', 'GET', 'GET', 'GET'])
  })

  // Regression: undici held a 304 to its Content-Length, so the general path sent the client
  // nothing, logged 502 and counted the server as failing (three ejected it).
  it('a 304 with Content-Length on the general path is relayed and blames nobody', async () => {
    const u = await upstream(() => 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: "x"\r\n\r\n')
    proxy = await fx.proxy(httpConfig({ servers: [u.address], upstream: '    passive: { failures: 1, ejectFor: 60s }' }))
    for (let i = 0; i < 3; i++) {
      // HTTP/1.0 takes the general path.
      const r = await rawExchange(proxy.port(), 'GET /cached HTTP/1.0\r\nHost: a\r\nIf-None-Match: "x"\r\n\r\n')
      expect(statuses(r.text)).toEqual([304])
      expect(r.text.toLowerCase()).toContain('\r\netag: "x"\r\n')
    }
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(server.failures).toBe(0)
    expect(server.state(proxy.runtime.clock.now())).toBe('up')
  })

  // Regression: an upstream `Transfer-Encoding: gzip, chunked` reached the client re-chunked
  // with no coding named (the lean path already refused it).
  it('a response transfer coding other than chunked is a 502 on both paths', async () => {
    const u = await upstream(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
    proxy = await fx.proxy(httpConfig({ servers: [u.address] }))
    for (const req of ['GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx']) {
      const r = await rawExchange(proxy.port(), req)
      expect(statuses(r.text)).toEqual([502])
    }
  })

  // Regression: a head of bare-LF lines never ends in CRLFCRLF, so the lean path waited for the
  // response timeout and answered 504, blaming a timeout.
  it('a bare-LF response head is a 502 at once on the lean path, not a 504 at the response timeout', async () => {
    const u = await upstream(() => 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok')
    proxy = await fx.proxy(httpConfig({ servers: [u.address], listener: '    timeouts: { response: 10s }' }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statuses(r.text)).toEqual([502])
    expect(r.ms).toBeLessThan(5000)
  })

  // Regression: the head, still corked with the broken first chunk, was dropped with the
  // connection: the client got an empty close while the access log said 502.
  it('a response whose first body bytes break its framing, in the same read as its head, is a 502 (lean path)', async () => {
    const u = await upstream(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc')
    proxy = await fx.proxy(httpConfig({ servers: [u.address] }))
    const r = await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statuses(r.text)).toEqual([502])
    expect(r.text).toContain('\r\nConnection: close\r\n')
    expect(r.closed).toBe(true)
  })

  // Regression: the general path wrote the head into node:http at once, so a broken first chunk
  // in the same read left nothing to answer with: the client got an empty close.
  it('a response whose first body bytes break its framing, in the same read as its head, is a 502 (general path)', async () => {
    const u = await upstream(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n')
    proxy = await fx.proxy(httpConfig({ servers: [u.address] }))
    const r = await rawExchange(proxy.port(), 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi')
    expect(statuses(r.text)).toEqual([502])
    expect(r.text.endsWith('\r\n\r\nBad Gateway\n')).toBe(true)
    expect(r.closed).toBe(true)
  })

  // Regression: node:http refuses a `Trailer` field on a response it will not chunk, and the
  // general path answered 502 and blamed a server that did nothing wrong.
  it('a Content-Length response announcing a Trailer is relayed on the general path (no 502, no blame)', async () => {
    const u = await upstream(() => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTrailer: x-sum\r\nX-App: 1\r\n\r\nhello')
    proxy = await fx.proxy(httpConfig({ servers: [u.address], upstream: '    passive: { failures: 1, ejectFor: 60s }' }))
    for (const req of ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n']) {
      const r = await rawExchange(proxy.port(), req)
      expect(statuses(r.text)).toEqual([200])
      expect(r.text).toContain('\r\nX-App: 1\r\n')
      expect(r.text.toLowerCase()).not.toContain('\r\ntrailer:')
      expect(r.text.endsWith('\r\n\r\nhello')).toBe(true)
    }
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(server.failures).toBe(0)
  })
})
