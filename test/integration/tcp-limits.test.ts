import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  closeKind, connect, echo, readAll, recordTcpEvents, startTcpProxy, startTcpServer, upstreamConfig,
} from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function echoes (socket: net.Socket, text: string): Promise<boolean> {
  const got: Buffer[] = []
  const onData = (d: Buffer): number => got.push(d)
  socket.on('data', onData)
  socket.write(text)
  await waitFor(() => Buffer.concat(got).toString() === text, 5000, 5, `echo of ${text}`)
  socket.off('data', onData)
  return true
}

describe('tcp listener: connection limits', () => {
  it('listener maxConnections: the newcomer is closed at once and counted, existing streams go on', async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const up = await startTcpServer(echo)
    cleanups.push(() => up.close())
    const p = await startTcpProxy({ upstream: 'u', maxConnections: 2 }, [upstreamConfig('u', [up.address])])
    cleanups.push(() => p.close())

    const a = await connect(p.port)
    const b = await connect(p.port)
    await waitFor(() => p.listener.activeConnections() === 2, 5000, 5, 'two streams')
    const c = await connect(p.port)
    const cClosed = await closeKind(c)
    expect(cClosed.kind).not.toBe('reset')
    expect(ev.ends).toHaveLength(1)
    expect(ev.ends[0]).toMatchObject({ listener: 'tcp', end: 'rejected', bytesIn: 0, bytesOut: 0 })
    expect(ev.ends[0]!.upstream).toBeUndefined()
    expect(up.accepted).toBe(2)

    expect(await echoes(a, 'a-still-works')).toBe(true)
    expect(await echoes(b, 'b-still-works')).toBe(true)

    const aDone = readAll(a)
    a.end()
    await aDone
    await waitFor(() => p.listener.activeConnections() === 1, 5000, 5, 'a closed')
    const d = await connect(p.port)
    expect(await echoes(d, 'room again')).toBe(true)
    expect(up.accepted).toBe(3)
    b.destroy()
    d.destroy()
  })

  it('per-server maxConnections: a burst fills each server to its limit, the rest find no server', async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const a = await startTcpServer(echo)
    const b = await startTcpServer(echo)
    cleanups.push(() => a.close(), () => b.close())
    const p = await startTcpProxy({ upstream: 'u' }, [upstreamConfig('u', [
      { address: a.address, maxConnections: 2 },
      { address: b.address, maxConnections: 1 },
    ], { balance: 'least-connections' })])
    cleanups.push(() => p.close())

    // Five at once: the servers are held from the pick, so concurrent connects cannot overshoot.
    const clients = await Promise.all([1, 2, 3, 4, 5].map(async () => await connect(p.port)))
    const outcomes = await Promise.all(clients.map(async (c, i) => {
      c.write(`c${i}`)
      return await new Promise<'served' | 'closed'>((resolve) => {
        c.once('data', () => resolve('served'))
        void closeKind(c).then(() => resolve('closed'))
      })
    }))
    expect(outcomes.filter((o) => o === 'served')).toHaveLength(3)
    expect(outcomes.filter((o) => o === 'closed')).toHaveLength(2)
    expect([a.accepted, b.accepted]).toEqual([2, 1])
    const [sa, sb] = p.upstreams.get('u')!.servers
    expect([sa!.active, sb!.active]).toEqual([2, 1])
    await waitFor(() => ev.ends.length === 2, 5000, 5, 'two refusals')
    expect(ev.ends.map((e) => e.end)).toEqual(['no-server', 'no-server'])

    // Once they close, the servers have room again.
    for (const c of clients) c.destroy()
    await waitFor(() => sa!.active === 0 && sb!.active === 0, 5000, 5, 'all released')
    const again = await connect(p.port)
    expect(await echoes(again, 'again')).toBe(true)
    again.destroy()
  })
})
