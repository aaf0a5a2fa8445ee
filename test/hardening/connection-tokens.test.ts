// Five desync defects an audit of the lean path found, each with the bytes that showed it.
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { httpConfig } from '../helpers/tandem.js'
import { ok, rawExchange, statuses } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import { waitFor } from '../helpers/wait.js'

const fx = rawFixture()

describe('Connection tokens, HEAD bodies, targets and 100-continue', () => {
  it('an upstream `Connection: content-length` keeps the response framed (was: no framing, the next response read as body)', async () => {
    const up = await fx.upstream(() => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: content-length\r\n\r\nhello')
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => statuses(t).length === 2 && t.endsWith('hello') })
    const [first, second] = r.text.split(/(?=HTTP\/1\.1 )/)
    expect(first).toMatch(/\r\nContent-Length: 5\r\n/)
    expect(first?.endsWith('\r\n\r\nhello')).toBe(true)
    expect(second?.endsWith('\r\n\r\nhello')).toBe(true)
  })

  it('a body an upstream writes late after a HEAD response never reaches the next request (was: served as its response)', async () => {
    const late = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED'
    const up = await fx.upstream((r) => r.head.startsWith('HEAD ')
      ? (socket: net.Socket) => {
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${late.length}\r\n\r\n`)
          setTimeout(() => { if (!socket.destroyed) socket.write(late) }, 100)
        }
      : ok('victim'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const head = await rawExchange(proxy.port(), 'HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.includes('\r\n\r\n') })
    expect(statuses(head.text)).toEqual([200])
    await new Promise((resolve) => setTimeout(resolve, 30))
    const victim = await rawExchange(proxy.port(), 'GET /victim HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(victim.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(victim.text.endsWith('\r\n\r\nvictim')).toBe(true)
    expect(up.connections).toBe(2)
  })

  it('a body an upstream writes after a 204 that announced one never reaches the next request (was: served as its response, on the lean path)', async () => {
    const evil = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'
    const up = await fx.upstream((r) => r.head.startsWith('GET /nc ')
      ? (socket: net.Socket) => {
          socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 42\r\n\r\n')
          setTimeout(() => { if (!socket.destroyed) socket.write(evil) }, 100)
        }
      // The victim's answer comes after the stray bytes, as a slower upstream's would.
      : (socket: net.Socket) => { setTimeout(() => { if (!socket.destroyed) socket.write(ok('victim')) }, 200) })
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const nc = await rawExchange(proxy.port(), 'GET /nc HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.includes('\r\n\r\n') })
    expect(statuses(nc.text)).toEqual([204])
    const victim = await rawExchange(proxy.port(), 'GET /victim HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(victim.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(victim.text.endsWith('\r\n\r\nvictim')).toBe(true)
    expect(up.connections).toBe(2)
  })

  it('`Connection: host` cannot strip Host (was: forwarded with no Host after routing on it)', async () => {
    const up = await fx.upstream(() => ok('x'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    for (const extra of ['', 'Content-Length: 2\r\n']) {
      const method = extra === '' ? 'GET' : 'POST'
      const r = await rawExchange(proxy.port(), `${method} /a HTTP/1.1\r\nHost: a.example\r\nConnection: host, x-forwarded-proto\r\n${extra}Connection: close\r\n\r\n${extra === '' ? '' : 'hi'}`)
      expect(statuses(r.text)).toEqual([200])
      const got = up.requests.at(-1)!
      expect(got.head, method).toMatch(/\r\nhost: a\.example\r\n/i)
      expect(got.head, method).toMatch(/\r\nx-forwarded-proto: http\r\n/i)
    }
  })

  it('a HTAB in the request target gets 400 and is not forwarded (was: forwarded verbatim by the lean path)', async () => {
    const up = await fx.upstream(() => ok('x'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), 'GET /b\tHTTP/1.1 HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(statuses(r.text)).toEqual([400])
    expect(up.bytes.length).toBe(0)
  })

  it('an HTTP/1.0 client with Expect: 100-continue gets no 100, only the final answer', async () => {
    const up = await fx.upstream(() => ok('done'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), 'POST /a HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi')
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(r.text).not.toContain('100 Continue')
    await waitFor(() => up.requests.length === 1, 2000, 5, 'forwarded')
    expect(up.requests[0]?.body.toString()).toBe('hi')
    // HTTP/1.1 still gets its 100 first.
    const r11 = await rawExchange(proxy.port(), 'POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')
    expect(statuses(r11.text)).toEqual([100, 200])
  })
})

describe('a client that stops reading', () => {
  it.each([
    ['lean path (GET)', 'GET /big HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['general path (POST)', 'POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi'],
  ])('%s: a server that gives up sending meanwhile (its send timeout) is not counted as failing', async (_name, request) => {
    // The audit's case: the proxy stops reading the upstream while the client does not drain; an
    // upstream that then closes was counted as a reset against the server.
    const chunk = Buffer.alloc(1 << 20, 120)
    const up = await fx.upstream(() => (socket: net.Socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${64 << 20}\r\n\r\n`)
      let sent = 0
      const more = (): void => { while (sent < 48 && socket.write(chunk)) sent++; if (sent < 48) socket.once('drain', more) }
      more()
      setTimeout(() => { socket.destroy() }, 400)
    })
    const proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    passive: { failures: 1, ejectFor: 60s }' }))
    const client = net.connect(proxy.port(), '127.0.0.1')
    client.on('error', () => {})
    await new Promise<void>((resolve) => { client.once('connect', resolve) })
    let got = 0
    client.once('data', (d: Buffer) => { got += d.length; client.pause() })
    client.write(request)
    const closed = new Promise<void>((resolve) => { client.once('close', () => { resolve() }) })
    await waitFor(() => up.connections === 1 && up.open === 0, 5000, 10, 'the upstream closed its side')
    client.resume()
    client.on('data', (d: Buffer) => { got += d.length })
    await closed
    expect(got).toBeLessThan((64 << 20) + 100)
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(server.failures).toBe(0)
    expect(server.state(proxy.runtime.clock.now())).toBe('up')
  })
})
