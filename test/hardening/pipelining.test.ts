import { describe, expect, it } from 'vitest'
import net from 'node:net'
import { httpConfig, type RunningTandem } from '../helpers/tandem.js'
import { ok, rawExchange, statuses, type RawUpstream } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import { DEFAULT_POOL_CONNECTIONS } from '../../src/upstream/pools.js'
import { MAX_QUEUED } from '../../src/listener/http-connection.js'
import { waitFor } from '../helpers/wait.js'

// Issue 6.6 and 6.7: a connection's requests run one at a time, in order; nothing runs after a
// response that ends the connection; each server's pool has a connection cap.

let up: RawUpstream | undefined
let proxy: RunningTandem | undefined

const fx = rawFixture()

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`

describe('pipelining', () => {
  it('200 pipelined requests reach the upstream one at a time, in order, on one connection (issue 6.6)', async () => {
    let inFlight = 0
    let peak = 0
    up = await fx.upstream((r) => (socket) => {
      inFlight++
      peak = Math.max(peak, inFlight)
      // Answer a little later, so overlapping requests would show.
      setTimeout(() => { inFlight--; socket.write(ok(r.head.split(' ')[1] ?? '')) }, 1)
    })
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const n = 200
    let bytes = ''
    for (let i = 0; i < n; i++) bytes += get(`/${i}`)
    const r = await rawExchange(proxy.port(), bytes, { until: (t) => statuses(t).length === n, timeoutMs: 20_000 })
    expect(statuses(r.text)).toEqual(Array(n).fill(200))
    const bodies = [...r.text.matchAll(/\r\n\r\n(\/\d+)(?=HTTP|$)/g)].map((m) => m[1])
    expect(bodies).toEqual(Array.from({ length: n }, (_, i) => `/${i}`))
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(Array.from({ length: n }, (_, i) => `/${i}`))
    expect(peak).toBe(1)
    // undici may open a second socket while the first is still wrapping up; never 200.
    expect(up.connections).toBeLessThanOrEqual(3)
  })

  it(`more than ${MAX_QUEUED} waiting behind one request: those are answered, then the connection closes`, async () => {
    up = await fx.upstream((r) => ok(r.head.split(' ')[1] ?? ''))
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    let bytes = ''
    for (let i = 0; i < 300; i++) bytes += get(`/${i}`)
    // One write, so the proxy reads all 300 at once (7.8 KB, one loopback segment).
    const r = await rawExchange(proxy.port(), bytes, { timeoutMs: 20_000 })
    expect(r.closed).toBe(true)
    expect(statuses(r.text)).toEqual(Array(MAX_QUEUED + 1).fill(200))
    expect(r.text.match(/Connection: close/g)).toHaveLength(1)
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(Array.from({ length: MAX_QUEUED + 1 }, (_, i) => `/${i}`))
  })

  it('10,000 pipelined requests on one connection neither fan out nor stall another client (issue 6.6)', async () => {
    up = await fx.upstream((r) => ok(r.head.split(' ')[1] ?? ''))
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    let flood = ''
    for (let i = 0; i < 10_000; i++) flood += get(`/${i}`)
    const flooding = rawExchange(proxy.port(), flood, { timeoutMs: 20_000 })
    await waitFor(() => up!.requests.length > 0, 5000, 5, 'flood started')
    const other = await rawExchange(proxy.port(), get('/other', 'Connection: close\r\n'))
    expect(statuses(other.text)).toEqual([200])
    expect(other.ms).toBeLessThan(2000)
    const r = await flooding
    expect(r.closed).toBe(true)
    // At most one read's worth is taken, run in order, and the connection then closes (the
    // client may lose the tail of the answers to the reset of its unread flood).
    const paths = up.requests.map((q) => q.head.split(' ')[1]).filter((p) => p !== '/other')
    expect(paths.length).toBeGreaterThan(0)
    expect(paths.length).toBeLessThanOrEqual(MAX_QUEUED + 1)
    expect(paths).toEqual(Array.from({ length: paths.length }, (_, i) => `/${i}`))
    expect(statuses(r.text).length).toBeLessThanOrEqual(paths.length)
    expect(up.peakConnections).toBeLessThanOrEqual(4)
  }, 30_000)

  it('a Connection: close POST pipelined behind a slow request still receives its whole body', async () => {
    up = await fx.upstream((r) => (socket) => {
      const reply = ok(`${r.head.split(' ')[1] ?? ''}:${r.body.length}`)
      if (r.head.startsWith('GET')) setTimeout(() => socket.write(reply), 100)
      else socket.write(reply)
    })
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const s = net.connect(proxy.port(), '127.0.0.1')
    let text = ''
    s.on('data', (c: Buffer) => { text += c.toString('latin1') })
    s.on('error', () => {})
    const closed = new Promise<void>((resolve) => s.on('close', () => resolve()))
    const body = Buffer.alloc(300_000, 97)
    s.write(get('/1') + 'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 300000\r\nConnection: close\r\n\r\n')
    s.write(body.subarray(0, 10))
    await waitFor(() => up!.requests.length === 1, 5000, 5, 'first request upstream')
    s.write(body.subarray(10))
    await closed
    expect(statuses(text)).toEqual([200, 200])
    expect(text.endsWith('/2:300000')).toBe(true)
    expect(up.requests.map((q) => q.body.length)).toEqual([0, 300_000])
  })

  it('nothing pipelined after Connection: close is run (issue 6.7)', async () => {
    up = await fx.upstream((r) => ok(r.head.split(' ')[1] ?? ''))
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), get('/1', 'Connection: close\r\n') + get('/2') + get('/3'))
    expect(statuses(r.text)).toEqual([200])
    expect(r.closed).toBe(true)
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(['/1'])
  })

  it('nothing pipelined after an HTTP/1.0 request without keep-alive is run', async () => {
    up = await fx.upstream((r) => ok(r.head.split(' ')[1] ?? ''))
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), 'GET /1 HTTP/1.0\r\n\r\n' + get('/2'))
    expect(statuses(r.text)).toEqual([200])
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(['/1'])
  })

  it('nothing pipelined after an error answer is run (issue 6.7)', async () => {
    up = await fx.upstream((r) => ok(r.head.split(' ')[1] ?? ''))
    const routes = '      - match: { pathPrefix: /ok }\n        upstream: web'
    proxy = await fx.proxy(httpConfig({ servers: [up.address], routes }))
    const r = await rawExchange(proxy.port(), get('/ok/1') + get('/missing') + get('/ok/2') + get('/ok/3'))
    expect(statuses(r.text)).toEqual([200, 404])
    expect(r.text).toMatch(/HTTP\/1\.1 404 Not Found\r\n[^]*Connection: close\r\n/)
    expect(r.closed).toBe(true)
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(['/ok/1'])
  })

  it('a request with a broken body behind an executing one: the first is answered, then 400', async () => {
    up = await fx.upstream((r) => (socket) => { setTimeout(() => socket.write(ok(r.head.split(' ')[1] ?? '')), 50) })
    proxy = await fx.proxy(httpConfig({ servers: [up.address] }))
    const r = await rawExchange(proxy.port(), get('/1') + 'POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')
    expect(statuses(r.text)).toEqual([200, 400])
    expect(up.requests.map((q) => q.head.split(' ')[1])).toEqual(['/1'])
  })

  it(`each server's pool holds at most ${DEFAULT_POOL_CONNECTIONS} connections (issue 6.6)`, async () => {
    const held: net.Socket[] = []
    up = await fx.upstream(() => (socket) => { held.push(socket) })
    proxy = await fx.proxy(httpConfig({ servers: [up.address], listener: '    timeouts: { response: 20s }' }))
    const clients = DEFAULT_POOL_CONNECTIONS + 40
    const replies: Array<Promise<{ text: string }>> = []
    for (let i = 0; i < clients; i++) {
      replies.push(rawExchange(proxy.port(), get(`/${i}`, 'Connection: close\r\n'), { timeoutMs: 20_000 }))
    }
    await waitFor(() => up!.requests.length >= DEFAULT_POOL_CONNECTIONS, 10_000, 20, 'pool filled')
    // The rest wait in the pool's queue: give them a chance to (wrongly) open more connections.
    const seen = up.requests.length
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(up.peakConnections).toBe(DEFAULT_POOL_CONNECTIONS)
    expect(up.requests.length).toBe(seen)
    // Answering frees connections for the waiting requests; every client gets its 200.
    const answer = (): void => { for (const s of held.splice(0)) s.write(ok('x')) }
    const timer = setInterval(answer, 20)
    try {
      const all = await Promise.all(replies)
      expect(all.map((r) => statuses(r.text)[0])).toEqual(Array(clients).fill(200))
    } finally {
      clearInterval(timer)
    }
    expect(up.peakConnections).toBe(DEFAULT_POOL_CONNECTIONS)
  }, 40_000)
})
