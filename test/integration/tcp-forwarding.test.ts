import net from 'node:net'
import dns from 'node:dns'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  closedPort, closeKind, connect, echo, readAll, recordTcpEvents, startTcpProxy, startTcpServer, upstreamConfig,
  type TcpProxy, type TestTcpServer,
} from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'
import { PYTHON, startBlackhole } from '../helpers/blackhole.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function server (onSocket: (s: net.Socket) => void): Promise<TestTcpServer> {
  const s = await startTcpServer(onSocket)
  cleanups.push(() => s.close())
  return s
}

async function proxy (...args: Parameters<typeof startTcpProxy>): Promise<TcpProxy> {
  const p = await startTcpProxy(...args)
  cleanups.push(() => p.close())
  return p
}

/** Whether this machine takes an IPv4 client on a `[::]` listener (no IPv6, or v6only, say no). */
async function dualStack (): Promise<boolean> {
  const s = net.createServer()
  const port = await new Promise<number | undefined>((resolve) => {
    s.once('error', () => { resolve(undefined) })
    s.listen(0, '::', () => { resolve((s.address() as net.AddressInfo).port) })
  })
  if (port === undefined) return false
  const ok = await connect(port).then((c) => { c.destroy(); return true }, () => false)
  await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  return ok
}
const DUAL_STACK = await dualStack()

function events (): ReturnType<typeof recordTcpEvents> {
  const e = recordTcpEvents()
  cleanups.push(() => e.stop())
  return e
}

describe('tcp listener: forwarding', () => {
  it('passes bytes unchanged both ways and reports the stream when it closes', async () => {
    const ev = events()
    const up = await server(echo)
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    const clientPort = c.localPort
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251))
    const got = readAll(c)
    c.end(payload)
    expect((await got).equals(payload)).toBe(true)
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.starts).toEqual([{ listener: 'tcp', upstream: 'u', server: up.address }])
    const end = ev.ends[0]!
    expect(end).toMatchObject({
      listener: 'tcp', upstream: 'u', server: up.address, bytesIn: 70_000, bytesOut: 70_000, end: 'closed',
      client: `127.0.0.1:${clientPort}`,
    })
    // A loopback exchange of 70 kB: positive and well under the test's own time.
    expect(end.durationMs).toBeGreaterThan(0)
    expect(end.durationMs).toBeLessThan(10_000)
    const s = p.upstreams.get('u')!.servers[0]!
    expect({ active: s.active, requests: s.requests, failures: s.failures }).toEqual({ active: 0, requests: 1, failures: 0 })
    expect(p.listener.activeConnections()).toBe(0)
  })

  // Skipped where the machine has no dual-stack `[::]` listener (no IPv6, or bindv6only).
  it.skipIf(!DUAL_STACK)('an IPv4 client of a dual-stack [::] listener is reported as 127.0.0.1:port, not [::ffff:127.0.0.1]:port', async () => {
    const ev = events()
    const up = await server(echo)
    const p = await proxy({ upstream: 'u', listen: { text: '[::]:0', host: '::', port: 0 } }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port, '127.0.0.1')
    const clientPort = c.localPort
    const got = readAll(c)
    c.end('x')
    expect((await got).toString()).toBe('x')
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.ends.map((e) => e.client)).toEqual([`127.0.0.1:${clientPort}`])
  })

  it('a server given by name is resolved, and an unresolvable name fails over like a refused connect', async () => {
    const ev = events()
    const up = await server(echo)
    const port = up.address.split(':')[1]
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [`no-such-host.invalid:${port}`, `localhost:${port}`])])
    for (let i = 0; i < 2; i++) {
      const c = await connect(p.port)
      const got = readAll(c)
      c.end('by name')
      expect((await got).toString()).toBe('by name')
    }
    await waitFor(() => ev.ends.length === 2, 5000, 10, 'end events')
    expect(ev.ends.map((e) => [e.server, e.end])).toEqual([[`localhost:${port}`, 'closed'], [`localhost:${port}`, 'closed']])
    const [bad, good] = p.upstreams.get('u')!.servers
    expect(bad!.failures).toBeGreaterThanOrEqual(1)
    expect({ failures: good!.failures, active: good!.active + bad!.active }).toEqual({ failures: 0, active: 0 })
  })

  it('a name whose first address fails at once (ENETUNREACH, synchronously) goes on to its next address', async () => {
    // The resolver answers for this one name as a host file with two entries would; the sockets
    // are real: connect(2) to a multicast address fails before it starts, unlike a refused one.
    const lookup = dns.lookup
    const spy = vi.spyOn(dns, 'lookup').mockImplementation(((host: string, options: unknown, callback: (...a: unknown[]) => void) => {
      if (host !== 'two-addresses.test') return (lookup as (...a: unknown[]) => void)(host, options, callback)
      process.nextTick(callback, null, [{ address: '224.0.0.1', family: 4 }, { address: '127.0.0.1', family: 4 }])
    }) as unknown as typeof dns.lookup)
    cleanups.push(() => { spy.mockRestore() })
    const up = await server(echo)
    const port = up.address.split(':')[1]
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [`two-addresses.test:${port}`])])
    const c = await connect(p.port)
    const got = readAll(c)
    c.end('second address')
    expect((await got).toString()).toBe('second address')
    expect(p.upstreams.get('u')!.servers[0]!.failures).toBe(0)
  })

  it('honours half-close: the client ends, the server replies after seeing the end', async () => {
    const up = await server((s) => {
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      // Replies only once the client's FIN has arrived, then writes more before its own end.
      s.on('end', () => {
        const got = Buffer.concat(chunks).toString()
        s.write(`got:${got};`)
        setImmediate(() => s.end('bye'))
      })
    })
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    const reply = readAll(c)
    c.end('question')
    expect((await reply).toString()).toBe('got:question;bye')
  })

  it('the upstream may half-close first; the client keeps sending', async () => {
    const up = await server((s) => {
      s.end('hello-first')
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      s.on('end', () => { received = Buffer.concat(chunks).toString() })
    })
    let received = ''
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    const ended = new Promise<void>((resolve) => c.once('end', resolve))
    const reply = readAll(c)
    await ended
    c.end('late data')
    expect((await reply).toString()).toBe('hello-first')
    await waitFor(() => received === 'late data', 5000, 10, 'late data upstream')
  })

  it('closes a stream idle for idleTimeout and reports idle-timeout', async () => {
    const ev = events()
    const up = await server(() => {})
    const p = await proxy({ upstream: 'u', idleTimeout: 150 }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    const t0 = Date.now()
    const closed = closeKind(c)
    c.write('x')
    expect((await closed).kind).not.toBe('reset')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.ends[0]!.end).toBe('idle-timeout')
    expect(ev.ends[0]!.bytesIn).toBe(1)
  })

  it('idle with bytes still undelivered (a client that stopped reading): cut with a reset, not a clean close', async () => {
    // Was: a FIN after a shortened stream, which a client cannot tell from the whole one.
    const ev = events()
    const up = await server((s) => { s.end(Buffer.alloc(8 << 20, 97)) })
    const p = await proxy({ upstream: 'u', idleTimeout: 300 }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    c.pause()
    const closed = closeKind(c)
    c.pause() // closeKind resumes; hold the bytes back until the proxy gives up
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    c.resume()
    expect((await closed).kind).toBe('reset')
    expect(ev.ends[0]!.end).toBe('idle-timeout')
  })

  it('a stream with traffic outlives idleTimeout', async () => {
    const up = await server(echo)
    const p = await proxy({ upstream: 'u', idleTimeout: 200 }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    let echoed = 0
    c.on('data', (d: Buffer) => { echoed += d.length })
    // 8 writes 60 ms apart: 480 ms in all, more than twice the idle timeout.
    for (let i = 1; i <= 8; i++) {
      c.write('ping')
      await waitFor(() => echoed === 4 * i, 5000, 5, 'echo')
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
    expect(c.destroyed).toBe(false)
    c.destroy()
  })

  it('fails over to the next server on a refused connect; the early bytes arrive', async () => {
    const ev = events()
    const dead = await closedPort()
    const got: string[] = []
    const up = await server((s) => {
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      s.on('end', () => { got.push(Buffer.concat(chunks).toString()); s.end('ok') })
    })
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [`127.0.0.1:${dead}`, up.address])])
    for (let i = 0; i < 4; i++) {
      // Written before the proxy can have connected anywhere, then half-closed at once.
      const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true })
      c.write(`early-${i}-`)
      c.end('rest')
      expect((await readAll(c)).toString()).toBe('ok')
    }
    expect(got).toEqual(['early-0-rest', 'early-1-rest', 'early-2-rest', 'early-3-rest'])
    const [deadServer, live] = p.upstreams.get('u')!.servers
    expect(deadServer!.failures).toBeGreaterThanOrEqual(1)
    expect(deadServer!.active).toBe(0)
    expect(live!.requests).toBe(4)
    await waitFor(() => ev.ends.length === 4, 5000, 10, 'end events')
    expect(ev.ends.map((e) => [e.server, e.end, e.bytesIn, e.bytesOut])).toEqual(
      [0, 1, 2, 3].map((i) => [up.address, 'closed', `early-${i}-rest`.length, 2]))
  })

  it('gives up with connect-failed when every server refuses, and no-server when none is eligible', async () => {
    const ev = events()
    const a = await closedPort()
    const b = await closedPort()
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [`127.0.0.1:${a}`, `127.0.0.1:${b}`])])
    const c = await connect(p.port)
    c.write('hello')
    expect((await closeKind(c)).kind).not.toBe('reset')
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.ends[0]).toMatchObject({ end: 'connect-failed', upstream: 'u', bytesIn: 0, bytesOut: 0 })
    const servers = p.upstreams.get('u')!.servers
    expect(servers.map((s) => [s.failures, s.active])).toEqual([[1, 0], [1, 0]])

    for (const s of servers) p.upstreams.get('u')!.setAdminState(s, 'disabled')
    const c2 = await connect(p.port)
    await closeKind(c2)
    await waitFor(() => ev.ends.length === 2, 5000, 10, 'end event')
    expect(ev.ends[1]).toMatchObject({ end: 'no-server', upstream: 'u' })
    expect(ev.ends[1]!.server).toBeUndefined()
  })

  it.skipIf(PYTHON === undefined)('fails over on a connect timeout (a listener whose backlog is full)', async () => {
    const hole = await startBlackhole()
    cleanups.push(() => { hole.close() })
    const port = hole.port
    const ev = events()
    const up = await server(echo)
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [`127.0.0.1:${port}`, up.address], { connectTimeout: 200 })])
    const c = await connect(p.port)
    const t0 = Date.now()
    const reply = readAll(c)
    // More than the proxy keeps while connecting: it pauses the client, and nothing is lost.
    const early = Buffer.alloc(1024 * 1024, 'e')
    c.end(early)
    expect((await reply).equals(early)).toBe(true)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190)
    const slow = p.upstreams.get('u')!.servers[0]!
    expect([slow.failures, slow.active]).toEqual([1, 0])
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.ends[0]).toMatchObject({ end: 'closed', server: up.address, bytesIn: early.length, bytesOut: early.length })
  })

  it('propagates a client reset to the upstream as a reset', async () => {
    const ev = events()
    let upstreamSide: Promise<{ kind: string, code?: string }> | undefined
    const up = await server((s) => { upstreamSide = closeKind(s); s.write('hi') })
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    await new Promise((resolve) => c.once('data', resolve))
    c.resetAndDestroy()
    await waitFor(() => upstreamSide !== undefined, 5000, 10, 'upstream accepted')
    expect(await upstreamSide).toEqual({ kind: 'reset', code: 'ECONNRESET' })
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.ends[0]!.end).toBe('client-reset')
  })

  it('propagates an upstream reset to the client as a reset', async () => {
    const ev = events()
    const up = await server((s) => { s.once('data', () => s.resetAndDestroy()) })
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    const c = await connect(p.port)
    const closed = closeKind(c)
    c.write('boom')
    expect(await closed).toEqual({ kind: 'reset', code: 'ECONNRESET' })
    await waitFor(() => ev.ends.length === 1, 5000, 10, 'end event')
    expect(ev.ends[0]!.end).toBe('upstream-reset')
  })

  it('listen() rejects with the system error when the port is taken', async () => {
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', ['127.0.0.1:1'])])
    const taken = { text: `127.0.0.1:${p.port}`, host: '127.0.0.1', port: p.port }
    await expect(startTcpProxy({ upstream: 'u', listen: taken }, [upstreamConfig('u', ['127.0.0.1:1'])]))
      .rejects.toMatchObject({ code: 'EADDRINUSE' })
  })

  it('stopAccepting keeps established streams; drained() resolves when they close; destroy() ends the rest', async () => {
    const ev = events()
    const up = await server(echo)
    const p = await proxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    const a = await connect(p.port)
    const b = await connect(p.port)
    await waitFor(() => p.listener.activeConnections() === 2, 5000, 10, 'two streams')
    await p.listener.stopAccepting()
    await expect(connect(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    let drained = false
    const d = p.listener.drained().then(() => { drained = true })
    const echoed = readAll(a)
    a.end('still works')
    expect((await echoed).toString()).toBe('still works')
    await waitFor(() => p.listener.activeConnections() === 1, 5000, 10, 'one stream left')
    expect(drained).toBe(false)
    const bClosed = closeKind(b)
    p.listener.destroy()
    await d
    await bClosed
    expect(ev.ends.map((e) => e.end).sort()).toEqual(['closed', 'shutdown'])
  })
})
