// The lean HTTP/1 path (listener/fast-connection.ts, upstream/raw-exchange.ts) and its hand-over
// to node:http: what only this path does, over real sockets with byte-recording upstreams.
// Everything else (routing, limits, faults, pipelining rules, timeouts) is tested through both
// paths by the rest of the suite, since every connection starts on this one.
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { rawFixture } from '../helpers/raw-fixture.js'
import { ok, rawExchange, statuses } from '../helpers/raw-http.js'
import { httpConfig } from '../helpers/tandem.js'
import { waitFor } from '../helpers/wait.js'

const fx = rawFixture()
const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`

describe('lean HTTP/1 path', () => {
  it('GET, then POST, then GET on one connection: the connection moves to node:http at the POST and stays in order', async () => {
    const up = await fx.upstream((r) => ok(`${r.head.split(' ')[0] ?? ''} ${r.head.split(' ')[1] ?? ''} ${r.body.toString()}`))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const post = 'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello'
    const r = await rawExchange(proxy.port(), get('/1') + post + get('/3', 'Connection: close\r\n'))
    expect(statuses(r.text)).toEqual([200, 200, 200])
    expect([...r.text.matchAll(/\r\n\r\n((?:GET|POST) [^\r]*?)(?=HTTP|$)/g)].map((m) => m[1])).toEqual(['GET /1 ', 'POST /2 hello', 'GET /3 '])
    expect(up.requests.map((q) => q.head.split(' ').slice(0, 2).join(' '))).toEqual(['GET /1', 'POST /2', 'GET /3'])
    expect(r.closed).toBe(true)
  })

  it('a POST split across packets before its head ends still reaches node:http whole', async () => {
    const up = await fx.upstream((r) => ok(r.body.toString()))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const s = net.connect(proxy.port(), '127.0.0.1')
    let text = ''
    s.on('data', (c: Buffer) => { text += c.toString('latin1') })
    await new Promise<void>((resolve) => s.once('connect', resolve))
    s.write('POST / HTTP/1.1\r\nHo')
    await new Promise((resolve) => setTimeout(resolve, 50))
    s.write('st: a\r\nContent-Length: 3\r\n\r\nabc')
    await waitFor(() => text.endsWith('abc'), 3000, 10, 'answer')
    expect(statuses(text)).toEqual([200])
    s.destroy()
  })

  it('a head trickled over many reads reaches the upstream byte for byte, and pipelined requests after it in order', async () => {
    const up = await fx.upstream((r) => ok(`${r.head.split(' ')[1] ?? ''} ${/\r\nx-pad: (x*)\r\n/i.exec(r.head)?.[1]?.length ?? 0}`))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    maxHeaderSize: 256kb' }))
    const s = net.connect(proxy.port(), '127.0.0.1')
    s.setNoDelay(true)
    let text = ''
    s.on('data', (c: Buffer) => { text += c.toString('latin1') })
    await new Promise<void>((resolve) => s.once('connect', resolve))
    const head = `GET /a HTTP/1.1\r\nHost: a\r\nX-Pad: ${'x'.repeat(100_000)}\r\n\r\n`
    const all = head + 'GET /b HTTP/1.1\r\nHost: a\r\n\r\n'
    // 400 writes, each after the proxy had a turn to read the one before.
    for (let i = 0; i < all.length; i += Math.ceil(all.length / 400)) {
      s.write(all.slice(i, i + Math.ceil(all.length / 400)))
      await new Promise((resolve) => setImmediate(resolve))
    }
    await waitFor(() => statuses(text).length === 2, 5000, 10, 'two answers')
    expect(text).toContain('\r\n\r\n/a 100000')
    expect(text.endsWith('\r\n\r\n/b 0')).toBe(true)
    s.destroy()
  })

  it('a chunked response passes through byte for byte with its trailers, and the upstream connection is reused', async () => {
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n4\r\nbody\r\n3;x=1\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n'
    const up = await fx.upstream(() => chunked)
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), get('/1') + get('/2', 'Connection: close\r\n'))
    const bodies = r.text.split(/HTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\n/).slice(1)
    expect(bodies).toEqual(['4\r\nbody\r\n3;x=1\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n', '4\r\nbody\r\n3;x=1\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n'])
    expect(r.text.match(/Transfer-Encoding: chunked\r\n/g)).toHaveLength(2)
    expect(up.connections).toBe(1)
  })

  it('a body delimited by the upstream closing reaches the client chunked, and the client connection stays open', async () => {
    let n = 0
    const up = await fx.upstream(() => (socket) => { socket.end(`HTTP/1.1 200 OK\r\n\r\nuntil-close-${++n}`) })
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), get('/1'), { until: (t) => t.endsWith('0\r\n\r\n') })
    expect(r.closed).toBe(false)
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Transfer-Encoding: chunked\r\n[^]*Connection: keep-alive\r\n[^]*\r\n\r\nd\r\nuntil-close-1\r\n0\r\n\r\n$/)
  })

  it('HEAD gets the head only, Content-Length kept, and the connection carries the next request', async () => {
    const up = await fx.upstream((r) => r.head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n' : ok('after'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), 'HEAD / HTTP/1.1\r\nHost: a\r\n\r\n' + get('/2', 'Connection: close\r\n'))
    expect(statuses(r.text)).toEqual([200, 200])
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-length: 11\r\n[^]*?\r\n\r\nHTTP\/1\.1 200 OK\r\ncontent-length: 5\r\n[^]*\r\n\r\nafter$/)
  })

  it('1xx answers before the response are not relayed', async () => {
    const up = await fx.upstream(() => 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n' + ok('final'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), get('/', 'Connection: close\r\n'))
    expect(statuses(r.text)).toEqual([200])
    expect(r.text.endsWith('\r\n\r\nfinal')).toBe(true)
  })

  it('the request the upstream sees: hop-by-hop fields gone, X-Forwarded-* added, the rest in order and spelling', async () => {
    const up = await fx.upstream(() => ok('x'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    await rawExchange(proxy.port(), 'GET /p?q=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Real-IP: 6.6.6.6\r\nAccept: */*\r\n\r\n')
    expect(up.requests[0]?.head).toBe('GET /p?q=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nx-forwarded-for: 127.0.0.1\r\n' +
      'x-forwarded-proto: http\r\nx-forwarded-host: a.example\r\n\r\n')
  })

  it("honours the upstream's Keep-Alive timeout: the idle connection is closed half a second before it", async () => {
    const up = await fx.upstream(() => ok('x', 'Keep-Alive: timeout=1\r\n'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const t0 = Date.now()
    await rawExchange(proxy.port(), get('/', 'Connection: close\r\n'))
    expect(up.open).toBe(1)
    await waitFor(() => up.open === 0, 2000, 5, 'idle upstream connection closed')
    const ms = Date.now() - t0
    expect(ms).toBeGreaterThanOrEqual(400)
    expect(ms).toBeLessThan(1000)
  })

  it('shutdown: a connection accepted just before it still gets its first request answered, then closes; a silent one is closed', async () => {
    const up = await fx.upstream(() => ok('late'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const listener = proxy.runtime.listeners[0]!
    const open = (): Promise<net.Socket> => new Promise((resolve) => { const s = net.connect(proxy.port(), '127.0.0.1', () => { resolve(s) }) })
    const late = await open()
    const silent = await open()
    let text = ''
    let lateClosed = false
    let silentClosed = false
    late.on('data', (c: Buffer) => { text += c.toString('latin1') })
    late.on('close', () => { lateClosed = true })
    silent.on('close', () => { silentClosed = true })
    silent.resume()
    await waitFor(() => listener.activeConnections() === 2, 2000, 5, 'both accepted')
    await proxy.runtime.stopAccepting()
    // The first bytes arrive after the proxy stopped accepting: answered, not reset.
    late.write(get('/late'))
    let drained = false
    void proxy.runtime.drained().then(() => { drained = true })
    await waitFor(() => lateClosed && silentClosed && drained, 3000, 10, 'both closed, drained')
    expect(statuses(text)).toEqual([200])
    expect(text).toContain('\r\nConnection: close\r\n')
    expect(text.endsWith('\r\n\r\nlate')).toBe(true)
  })

  it('16 MiB to a client not reading yet, then a POST that moves the connection to node:http: both answers whole, in order', async () => {
    const big = 'x'.repeat(16 * 1024 * 1024)
    const up = await fx.upstream((r) => r.head.startsWith('GET') ? ok(big) : ok(`posted ${r.body.toString()}`))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const s = net.connect(proxy.port(), '127.0.0.1')
    await new Promise<void>((resolve) => s.once('connect', resolve))
    // Not reading until the GET is forwarded: the proxy's writes to this client fill the socket and wait.
    s.pause()
    s.write(get('/big') + 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')
    await waitFor(() => up.requests.length === 1, 3000, 5, 'GET forwarded')
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => { chunks.push(c) })
    s.resume()
    await new Promise<void>((resolve) => s.once('close', resolve))
    const text = Buffer.concat(chunks).toString('latin1')
    expect(statuses(text)).toEqual([200, 200])
    expect(text.indexOf(big)).toBeGreaterThan(0)
    expect(text.endsWith('\r\n\r\nposted hi')).toBe(true)
    expect(text.length).toBeLessThan(big.length + 1024)
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(['/big', '/p'])
  })

  it('an idle lean connection is counted until the idle timeout closes it', async () => {
    const up = await fx.upstream(() => ok('one'))
    const proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    timeouts: { idle: 300ms }' }))
    const listener = proxy.runtime.listeners[0]!
    const s = net.connect(proxy.port(), '127.0.0.1')
    let text = ''
    let closedAt = 0
    s.on('data', (c: Buffer) => { text += c.toString('latin1') })
    s.on('close', () => { closedAt = performance.now() })
    await new Promise<void>((resolve) => s.once('connect', resolve))
    s.write(get('/1'))
    await waitFor(() => text.endsWith('one'), 3000, 5, 'answer')
    const answeredAt = performance.now()
    expect(listener.activeConnections()).toBe(1)
    await waitFor(() => closedAt > 0, 3000, 10, 'closed by the idle timeout')
    expect(closedAt - answeredAt).toBeGreaterThanOrEqual(250)
    await waitFor(() => listener.activeConnections() === 0, 1000, 5, 'no longer counted')
  })
})
