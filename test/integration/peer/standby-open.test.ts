// "Only the active node serves": with `standby: open` a node that is not active keeps its
// listening sockets (a virtual IP moves, not the bind) but must not serve on them. Before this,
// such a standby answered every request on its own address with the upstream's 200 and kept
// its keep-alive clients after losing the role. In process first (the Runtime the pair drives),
// then two processes.
import net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { get, makePair, roleOf, startSettled, type Pair } from '../../helpers/pair.js'
import { httpConfig, startProxy, tcpConfig, type RunningTandem } from '../../helpers/tandem.js'
import { closeKind, echo, readAll, startTcpServer } from '../../helpers/tcp.js'
import { closedPort, startUpstream, type TestUpstream } from '../../helpers/upstream.js'
import { waitFor } from '../../helpers/wait.js'
import { parseConfig } from '../../../src/config/load.js'
import { reloadRuntime } from '../../../src/runtime/reload.js'

const REFUSED = 'HTTP/1.1 503 Service Unavailable\r\n'

let upstream: TestUpstream
let proxy: RunningTandem | undefined
let pair: Pair | undefined
beforeAll(async () => { upstream = await startUpstream({ name: 'u1' }) })
afterAll(async () => { await upstream.close() })
afterEach(async () => {
  await proxy?.stop()
  proxy = undefined
  await pair?.close()
  pair = undefined
})

/** Writes `request` on `socket` and collects every byte until the connection ends. */
async function exchange (socket: net.Socket, request: string): Promise<string> {
  const all = readAll(socket)
  socket.write(request)
  return (await all).toString('latin1')
}

async function connected (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  return socket
}

/** Resolves with the first response head and body on a keep-alive connection (content-length framed). */
async function oneResponse (socket: net.Socket, request: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    let got = ''
    const onData = (d: Buffer): void => {
      got += d.toString('latin1')
      const end = got.indexOf('\r\n\r\n')
      const len = /\r\ncontent-length: (\d+)\r\n/i.exec(got)
      if (end !== -1 && len !== null && got.length >= end + 4 + Number(len[1])) {
        socket.off('data', onData)
        resolve(got)
      }
    }
    socket.on('data', onData).once('error', reject)
    socket.write(request)
  })
}

async function standby (p: RunningTandem): Promise<void> {
  p.runtime.role = 'standby'
  await p.runtime.standDown('now', true)
}

describe('a node that is not active with standby: open (in process)', () => {
  it('stays bound and answers a new request 503 NOT_ACTIVE with Connection: close; the upstream sees nothing', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    await standby(proxy)
    const seen = upstream.count
    const got = await exchange(await connected(proxy.port()), 'GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n')
    expect(got.startsWith(REFUSED)).toBe(true)
    expect(got.toLowerCase()).toContain('\r\nconnection: close\r\n')
    expect(got.endsWith('\r\n\r\nService Unavailable\n')).toBe(true)
    // The general path too (a body is not the lean path's), and a WebSocket upgrade.
    const post = await exchange(await connected(proxy.port()), 'POST /x HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello')
    expect(post.startsWith(REFUSED)).toBe(true)
    const ws = await exchange(await connected(proxy.port()),
      'GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    expect(ws.startsWith(REFUSED)).toBe(true)
    expect(upstream.count).toBe(seen)
  })

  it('closes idle keep-alive connections at once and a busy one after its response', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const idle = await connected(proxy.port())
    expect(await oneResponse(idle, 'GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    const busy = await connected(proxy.port())
    upstream.setDelay(300)
    try {
      const busyAnswer = exchange(busy, 'GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n')
      await waitFor(() => upstream.count === 2, 5000, 5, 'the slow request reached the upstream')
      const idleEnd = closeKind(idle)
      await standby(proxy)
      expect((await idleEnd).kind).not.toBe('reset')
      const got = await busyAnswer
      expect(got).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(got.toLowerCase()).toContain('\r\nconnection: close\r\n')
      expect(got.endsWith('\r\n\r\nu1')).toBe(true)
    } finally {
      upstream.setDelay(0)
    }
  })

  it('a connection accepted while active, its request not sent yet, is answered once with Connection: close', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const early = await connected(proxy.port())
    await waitFor(() => proxy!.runtime.listeners[0]!.activeConnections() === 1, 2000, 2, 'the connection accepted')
    await standby(proxy)
    const got = await exchange(early, 'GET /early HTTP/1.1\r\nHost: app.test\r\n\r\n')
    expect(got).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(got.toLowerCase()).toContain('\r\nconnection: close\r\n')
    expect(got.endsWith('\r\n\r\nu1')).toBe(true)
    const late = await exchange(await connected(proxy.port()), 'GET /late HTTP/1.1\r\nHost: app.test\r\n\r\n')
    expect(late.startsWith(REFUSED)).toBe(true)
  })

  // Regression: each bind added another 'error' listener to the HTTP server; after ten
  // activations Node warned of a leak and each accept error was counted that many times.
  it('binding again and again (standby: closed) keeps one accept-error handler', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const server = (proxy.runtime.listeners[0] as unknown as { server: net.Server }).server
    for (let i = 0; i < 3; i++) {
      proxy.runtime.role = 'standby'
      await proxy.runtime.standDown('now')
      expect(server.listening).toBe(false)
      proxy.runtime.role = 'active'
      await proxy.runtime.bindListeners()
    }
    expect(server.listenerCount('error')).toBe(1)
    expect(await get(`http://127.0.0.1:${proxy.port()}/`)).toEqual({ status: 200, body: 'u1' })
  })

  // Regression: the new Runtime of a reload copied the role at its start; a step-down (or a
  // takeover) landing while its listeners bound went to the old Runtime only, so the node served
  // on (or stayed dark) against the election's role.
  it('a role change while a reload binds reaches the new Runtime (standby: closed)', async () => {
    const port = await closedPort()
    const peer = `peer: { id: a, listen: "127.0.0.1:${await closedPort()}", peers: ["127.0.0.1:${await closedPort()}"], secret: 0123456789abcdef01 }\n`
    const yaml = peer + httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }).replace('127.0.0.1:0', `127.0.0.1:${port}`)
    proxy = await startProxy(yaml)
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200)
    const stepDown = await reloadRuntime(proxy.runtime, parseConfig(yaml, 'test.yaml'), () => 'standby')
    await stepDown.retired
    expect(stepDown.runtime.role).toBe('standby')
    expect(await closeKind(net.connect(port, '127.0.0.1'))).toEqual({ kind: 'reset', code: 'ECONNREFUSED' })
    const takeover = await reloadRuntime(stepDown.runtime, parseConfig(yaml, 'test.yaml'), () => 'active')
    try {
      await takeover.retired
      expect(takeover.runtime.role).toBe('active')
      expect(await get(`http://127.0.0.1:${port}/`)).toEqual({ status: 200, body: 'u1' })
    } finally {
      await takeover.runtime.stop(1000)
    }
  })

  it('serves again once active (bindListeners), on the same socket', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const port = proxy.port()
    await standby(proxy)
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(503)
    proxy.runtime.role = 'active'
    await proxy.runtime.bindListeners()
    expect(proxy.port()).toBe(port)
    expect(await get(`http://127.0.0.1:${port}/`)).toEqual({ status: 200, body: 'u1' })
  })

  it('a reload on such a standby keeps refusing: the kept listener and a new one alike', async () => {
    // A fixed port: a reload adopts a listener by its configured address (never a port-0 one).
    const port = await closedPort()
    const yaml = httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }).replace('127.0.0.1:0', `127.0.0.1:${port}`)
    proxy = await startProxy(yaml)
    await standby(proxy)
    const added = yaml + '  - name: more\n    protocol: http\n    listen: 127.0.0.1:0\n    routes:\n      - match: { pathPrefix: / }\n        upstream: web\n'
    const { runtime, retired } = await reloadRuntime(proxy.runtime, parseConfig(added, 'test.yaml'))
    try {
      expect(runtime.listeners[0]?.address().port).toBe(port)
      const more = runtime.listener('more')!.address().port
      for (const p of [port, more]) expect(await get(`http://127.0.0.1:${p}/`)).toEqual({ status: 503, body: 'Service Unavailable\n' })
      runtime.role = 'active'
      await runtime.bindListeners()
      for (const p of [port, more]) expect(await get(`http://127.0.0.1:${p}/`)).toEqual({ status: 200, body: 'u1' })
    } finally {
      await retired
      await runtime.stop(1000)
    }
  })

  it('a TCP listener closes new connections at once, never dials, and leaves open streams alone', async () => {
    let dialled = 0
    const up = await startTcpServer((s) => { dialled++; echo(s) })
    try {
      proxy = await startProxy(tcpConfig(up.address))
      const open = await connected(proxy.port())
      const openEcho = readAll(open)
      open.write('before ')
      await waitFor(() => dialled === 1, 5000, 5, 'the first stream dialled')
      await standby(proxy)
      const late = await connected(proxy.port())
      const lateBytes = readAll(late)
      late.write('after')
      expect((await lateBytes).length).toBe(0)
      expect(dialled).toBe(1)
      open.end('and after')
      expect((await openEcho).toString('latin1')).toBe('before and after')
    } finally {
      await proxy?.stop()
      proxy = undefined
      await up.close()
    }
  })
})

describe('a pair with standby: open (two processes)', () => {
  it('the standby answers 503 on its own address while the active serves; after the active dies it serves', async () => {
    pair = await makePair(upstream.port, { standby: 'open' }, { standby: 'open' })
    await startSettled(pair)
    const a = `http://127.0.0.1:${pair.a.listenPort}/`
    const b = `http://127.0.0.1:${pair.b.listenPort}/`
    const seen = upstream.count
    expect(await get(a)).toEqual({ status: 200, body: 'u1' })
    expect(await get(b)).toEqual({ status: 503, body: 'Service Unavailable\n' })
    expect(upstream.count).toBe(seen + 1)
    pair.a.kill('SIGKILL')
    await waitFor(async () => (await roleOf(pair!.b)) === 'active', 15_000, 20, 'B active')
    expect(await get(b)).toEqual({ status: 200, body: 'u1' })
  }, 40_000)
})
