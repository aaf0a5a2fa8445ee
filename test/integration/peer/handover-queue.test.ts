// A node that hands the active role over closes its listening sockets, and Linux resets every
// connection still in a closed socket's accept queue. The failover suite saw it as
// `connect ECONNRESET` / `read ECONNRESET` on clients that had connected just before a step-down.
// A hand-over now accepts what the kernel queued before it closes (those clients reached the node
// while it was active); a fault still closes at once. In process: the Runtime the pair drives.
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { httpConfig, startProxy, tcpConfig, type RunningTandem } from '../../helpers/tandem.js'
import { echo, readAll, startTcpServer } from '../../helpers/tcp.js'
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js'

const REQUEST = 'GET /queued HTTP/1.1\r\nHost: app.test\r\n\r\n'

let upstream: TestUpstream
let proxy: RunningTandem | undefined
beforeAll(async () => { upstream = await startUpstream({ name: 'u1' }) })
afterAll(async () => { await upstream.close() })
afterEach(async () => { await proxy?.stop(); proxy = undefined })

/** Whether loopback holds an ESTABLISHED connection from `localPort` to `port` (/proc/net/tcp). */
function established (localPort: number, port: number): boolean {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0')
  return readFileSync('/proc/net/tcp', 'utf8').split('\n')
    .some((l) => l.includes(`0100007F:${hex(localPort)} 0100007F:${hex(port)} 01 `))
}

/**
 * Connects to `port` and returns once the kernel completed the handshake, without letting the
 * event loop turn: the proxy has not accepted the connection, it waits in the accept queue.
 */
async function queuedConnection (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {}) // read through `answer`
  // net.connect issues connect(2) on the next tick; this continuation runs right after it, in the same turn.
  await new Promise<void>((resolve) => { process.nextTick(resolve) })
  const deadline = Date.now() + 2000
  while (!established(socket.localPort ?? 0, port)) {
    if (Date.now() > deadline) throw new Error('handshake not complete within 2 s')
  }
  return socket
}

/** Sends the request and collects what comes back until the connection ends: bytes or an error code. */
async function answer (socket: net.Socket, request = REQUEST): Promise<{ bytes: string, error?: string }> {
  return await new Promise((resolve) => {
    let bytes = ''
    socket.setTimeout(5000, () => { socket.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })) })
    socket.on('data', (d: Buffer) => { bytes += d.toString('latin1') })
    socket.on('close', () => { resolve({ bytes }) })
    socket.once('error', (err: NodeJS.ErrnoException) => { resolve({ bytes, error: err.code ?? err.message }) })
    socket.once('end', () => { resolve({ bytes }) })
    socket.write(request)
  })
}

async function refused (port: number): Promise<string> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve('connected') })
    s.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? err.message) })
  })
}

describe('losing the active role with connections in the accept queue', () => {
  it('a hand-over (standby) answers the queued connection in full, then refuses new ones', async () => {
    // Fails with one setImmediate before close() in place of afterAcceptPoll: from here it runs
    // before the loop polls again, and the queued connection was reset.
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const port = proxy.port()
    const socket = await queuedConnection(port)
    proxy.runtime.role = 'standby'
    const unbound = proxy.runtime.standDown('queued')
    const got = await answer(socket)
    await unbound
    expect(got.error).toBeUndefined()
    expect(got.bytes).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(got.bytes.toLowerCase()).toContain('\r\nconnection: close\r\n')
    expect(got.bytes.endsWith('\r\n\r\nu1')).toBe(true)
    expect(await refused(port)).toBe('ECONNREFUSED')
  })

  it('a shutdown (stopAccepting) answers the queued connection too', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const port = proxy.port()
    const socket = await queuedConnection(port)
    const stopped = proxy.runtime.listeners[0]!.stopAccepting()
    const got = await answer(socket)
    await stopped
    expect(got.error).toBeUndefined()
    expect(got.bytes).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nu1$/)
    expect(await refused(port)).toBe('ECONNREFUSED')
  })

  it('a hand-over forwards a queued TCP connection too (L4 listener)', async () => {
    const up = await startTcpServer(echo)
    try {
      proxy = await startProxy(tcpConfig(up.address))
      const port = proxy.port()
      const socket = await queuedConnection(port)
      proxy.runtime.role = 'standby'
      const unbound = proxy.runtime.standDown('queued')
      const got = readAll(socket)
      socket.end('ping through the hand-over')
      expect((await got).toString('latin1')).toBe('ping through the hand-over')
      await unbound
      expect(await refused(port)).toBe('ECONNREFUSED')
    } finally {
      await proxy?.stop()
      proxy = undefined
      await up.close()
    }
  })

  it('a node that became active again before the poll stays bound', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    proxy.runtime.role = 'standby'
    const unbound = proxy.runtime.standDown('queued')
    proxy.runtime.role = 'active'
    await unbound
    expect(proxy.runtime.listeners[0]?.listening).toBe(true)
    const got = await answer(net.connect(proxy.port(), '127.0.0.1'), 'GET /again HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n')
    expect(got.bytes).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nu1$/)
  })

  it('a fault closes at once: the queued connection is reset by the kernel, never answered', async () => {
    proxy = await startProxy(httpConfig({ servers: [`127.0.0.1:${upstream.port}`] }))
    const port = proxy.port()
    const socket = await queuedConnection(port)
    const seen = upstream.count
    proxy.runtime.role = 'fault'
    await proxy.runtime.standDown('now')
    const got = await answer(socket)
    expect(got).toEqual({ bytes: '', error: 'ECONNRESET' })
    expect(upstream.count).toBe(seen)
    expect(await refused(port)).toBe('ECONNREFUSED')
  })
})
