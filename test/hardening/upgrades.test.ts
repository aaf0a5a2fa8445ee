import { describe, expect, it } from 'vitest'
import net from 'node:net'
import dc from 'node:diagnostics_channel'
import type { HttpRequestEnd } from '../../src/observability/events.js'
import { httpConfig, type RunningTandem } from '../helpers/tandem.js'
import { ok, rawExchange, statuses, type RawUpstream } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import { waitFor } from '../helpers/wait.js'
import { closedPort } from '../helpers/upstream.js'

// Issue 6.9: only WebSocket upgrades become tunnels, unless a route lists other protocols.

let up: RawUpstream | undefined
let proxy: RunningTandem | undefined

const fx = rawFixture()

/** Answers an Upgrade with 101 and then echoes `tunnel:` + every later byte; plain requests with 200. */
async function start (routes: string): Promise<number> {
  up = await fx.upstream((r) => {
    const proto = /\r\nupgrade: *([^\r]+)/i.exec(r.head)?.[1]
    if (proto === undefined && r.head.startsWith('GET /slow ')) return (socket) => { setTimeout(() => socket.write(ok('slow')), 150) }
    if (proto === undefined) return ok('plain')
    return { switchTo: proto }
  })
  proxy = await fx.proxy(httpConfig({ servers: [up.address], routes }))
  return proxy.port()
}

/** Sends the handshake, then `payload` once a response head is back; resolves on the echo or close. */
async function tunnel (port: number, handshake: string, payload: string): Promise<string> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    let sent = false
    const timer = setTimeout(() => { s.destroy() }, 5000)
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      if (!sent && text.includes('\r\n\r\n')) { sent = true; s.write(payload) }
      if (text.includes('tunnel:' + payload)) s.destroy()
    })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve(text) })
    s.write(handshake)
  })
}

const upgrade = (proto: string, method = 'GET'): string => `${method} /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: ${proto}\r\n\r\n`

describe('upgrades', () => {
  it('WebSocket passes by default; bytes after the 101 flow through the tunnel', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const text = await tunnel(port, upgrade('websocket'), 'hello')
    expect(statuses(text)).toEqual([101])
    expect(text.endsWith('\r\n\r\ntunnel:hello')).toBe(true)
  })

  it.each([
    ['h2c'],
    ['websocket, h2c'],
    ['h2c, websocket'],
  ])('Upgrade: %s on a default route is a plain request, Upgrade dropped, connection closed', async (proto) => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const r = await rawExchange(port, upgrade(proto) + 'PRI * HTTP/2.0\r\n\r\n')
    expect(statuses(r.text)).toEqual([200])
    expect(r.closed).toBe(true)
    expect(up!.requests).toHaveLength(1)
    expect(up!.requests[0]!.head).not.toMatch(/upgrade/i)
  })

  it('a handshake whose server refuses the connect goes to the next server (retries: 1), as a request does', async () => {
    // Was: 502 for every handshake the balancer sent to the dead server (502, 101, 502, 101).
    const dead = await closedPort()
    up = await fx.upstream((r) => ({ switchTo: /\r\nupgrade: *([^\r]+)/i.exec(r.head)?.[1] ?? 'websocket' }))
    proxy = await fx.proxy(httpConfig({ servers: [`127.0.0.1:${dead}`, up.address], upstream: '    retries: 1\n    balance: round-robin' }))
    const answers: number[][] = []
    for (let i = 0; i < 4; i++) answers.push(statuses(await tunnel(proxy.port(), upgrade('websocket'), `n${i}`)))
    expect(answers).toEqual([[101], [101], [101], [101]])
    // With retries: 0 the refused connect is the answer.
    const strict = await fx.proxy(httpConfig({ servers: [`127.0.0.1:${dead}`], upstream: '    retries: 0' }))
    expect(statuses(await tunnel(strict.port(), upgrade('websocket'), 'x'))).toEqual([502])
  })

  it('a WebSocket upgrade with POST is no handshake: plain request', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const r = await rawExchange(port, upgrade('websocket', 'POST'))
    expect(statuses(r.text)).toEqual([200])
    expect(up!.requests[0]!.head).not.toMatch(/upgrade/i)
  })

  it('a route listing h2c tunnels it', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web\n        upgrades: [websocket, H2C]')
    const text = await tunnel(port, upgrade('h2c'), 'frames')
    expect(statuses(text)).toEqual([101])
    expect(text.endsWith('\r\n\r\ntunnel:frames')).toBe(true)
    expect(up!.requests[0]!.head).toMatch(/\r\nUpgrade: h2c\r\n/)
  })

  it('upgrades: [] refuses WebSocket tunnels on that route only', async () => {
    const port = await start('      - match: { pathPrefix: /plain }\n        upstream: web\n        upgrades: []\n      - match: { pathPrefix: / }\n        upstream: web')
    const plain = await rawExchange(port, 'GET /plain HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    expect(statuses(plain.text)).toEqual([200])
    const other = await rawExchange(port, upgrade('websocket'), { until: (t) => t.includes('\r\n\r\n') })
    expect(statuses(other.text)).toEqual([101])
  })

  it('an upgrade pipelined behind a slow request waits for its answer: 200 then 101, never interleaved', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const text = await tunnel(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n' + upgrade('websocket'), 'hi')
    expect(statuses(text)).toEqual([200, 101])
    expect(text.indexOf('\r\n\r\nslow')).toBeLessThan(text.indexOf('HTTP/1.1 101'))
    expect(up!.requests.map((q) => q.head.split(' ')[1])).toEqual(['/slow', '/x'])
  })

  it('a client that leaves during the handshake is not held against the server', async () => {
    up = await fx.upstream(() => 'hang')
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    passive: { failures: 1, ejectFor: 60s }' }))
    const s = net.connect(proxy.port(), '127.0.0.1')
    s.on('error', () => {})
    s.write(upgrade('websocket'))
    await waitFor(() => up!.requests.length === 1, 5000, 10, 'handshake at the upstream')
    s.destroy()
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    await waitFor(() => server.active === 0, 5000, 10, 'attempt released')
    expect(server.failures).toBe(0)
    expect(server.state(proxy.runtime.clock.now())).toBe('up')
  })

  it('bytes sent with the handshake reach the upstream after its 101, not as a request body', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const text = await tunnel(port, upgrade('websocket') + 'early', 'late')
    expect(statuses(text)).toEqual([101])
    expect(text).toContain('tunnel:early')
    const bytes = up!.bytes.toString('latin1')
    const head = up!.requests[0]!.head
    expect(head).not.toMatch(/content-length|transfer-encoding/i)
    expect(bytes).toBe(head + 'earlylate')
  })
  // Audit #4: node:http leaves an upgrade's body unread (as the new protocol's first bytes), and
  // tandem held it back until a 101 while sending Content-Length upstream. A server that ignores
  // Upgrade (as RFC 9110 §7.8 allows) waited for the body: 504, and the server was blamed.
  it.each([
    ['Content-Length', 'GET /waitbody HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nBODY!'],
    ['Transfer-Encoding', 'GET /waitbody HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nBODY!\r\n0\r\n\r\n'],
  ])('an upgrade with a body (%s) is a plain request: its body reaches the server, no 504, nobody blamed', async (_, request) => {
    up = await fx.upstream((r) => ok(`got ${r.body.length}`))
    proxy = await fx.proxy(httpConfig({ servers: [up.address], upstream: '    passive: { failures: 1, ejectFor: 60s }', listener: '    timeouts: { response: 2s }' }))
    const r = await rawExchange(proxy.port(), request)
    expect(statuses(r.text)).toEqual([200])
    expect(r.closed).toBe(true)
    expect(up.requests).toHaveLength(1)
    const got = up.requests[0]!
    expect(got.head).toMatch(/^GET \/waitbody HTTP\/1\.1\r\n/)
    expect(got.head).not.toMatch(/upgrade/i)
    // Framed again by the proxy (a length or chunks), the same five bytes.
    expect(got.body.toString('latin1')).toMatch(/^(BODY!|5\r\nBODY!\r\n0\r\n\r\n)$/)
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(server.failures).toBe(0)
    expect(server.state(proxy.runtime.clock.now())).toBe('up')
  })

  it('what `curl --http2 -d hello=world` sends, on a route listing h2c, gets the normal answer (was: 504)', async () => {
    up = await fx.upstream((r) => ok(`got ${r.body.length} body bytes\n`))
    proxy = await fx.proxy(httpConfig({
      servers: [up.address],
      listener: '    timeouts: { response: 2s }',
      routes: '      - match: { pathPrefix: / }\n        upstream: web\n        upgrades: [websocket, h2c]',
    }))
    const r = await rawExchange(proxy.port(), 'POST /upload HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 11\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nhello=world')
    expect(statuses(r.text)).toEqual([200])
    expect(r.text.endsWith('\r\n\r\ngot 11 body bytes\n')).toBe(true)
    expect(up.requests[0]!.head).not.toMatch(/upgrade|http2-settings/i)
    expect(up.requests[0]!.body.toString()).toBe('hello=world')
  })

  it('an upgrade with Content-Length: 0 still becomes a tunnel', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const text = await tunnel(port, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n', 'hi')
    expect(statuses(text)).toEqual([101])
    expect(text.endsWith('\r\n\r\ntunnel:hi')).toBe(true)
  })

  // Audit #12: RFC 9110 §7.8, a server must ignore Upgrade in an HTTP/1.0 request.
  it('an HTTP/1.0 request with Upgrade is a plain request (was: tunnelled, sent upstream as 1.1)', async () => {
    const port = await start('      - match: { pathPrefix: / }\n        upstream: web')
    const r = await rawExchange(port, 'GET /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    expect(statuses(r.text)).toEqual([200])
    expect(r.text.endsWith('\r\n\r\nplain')).toBe(true)
    expect(r.closed).toBe(true)
    expect(up!.requests).toHaveLength(1)
    expect(up!.requests[0]!.head).not.toMatch(/upgrade/i)
  })

  // Audit #10: every upgrade has one access line, a client that leaves mid-handshake too (499).
  it('a client that leaves during the handshake has one access line: 499 CLIENT_CLOSED', async () => {
    up = await fx.upstream((r) => r.head.startsWith('GET /hang ') ? 'hang' : { switchTo: 'websocket' })
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const seen: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { seen.push(m as HttpRequestEnd) }
    dc.subscribe('tandem:http:request-end', onEnd)
    try {
      const s = net.connect(proxy.port(), '127.0.0.1')
      s.on('error', () => {})
      s.write('GET /hang HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
      await waitFor(() => up!.requests.length === 1, 5000, 10, 'handshake at the upstream')
      s.destroy()
      await waitFor(() => seen.length === 1, 5000, 10, 'access event')
      expect(seen[0]).toMatchObject({ status: 499, error: 'CLIENT_CLOSED', path: '/hang', server: up.address, bytesIn: 0, bytesOut: 0 })
      // A later upgrade's line comes after it, and nothing more for the first.
      expect(statuses(await tunnel(proxy.port(), upgrade('websocket'), 'x'))).toEqual([101])
      await waitFor(() => seen.length === 2, 5000, 10, 'second access event')
      expect(seen.map((e) => [e.path, e.status])).toEqual([['/hang', 499], ['/x', 101]])
    } finally {
      dc.unsubscribe('tandem:http:request-end', onEnd)
    }
  })
})
