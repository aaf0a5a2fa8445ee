// The connect timeout must not blame a healthy server for the proxy's own event-loop stall
// (audit): libuv runs timers before I/O callbacks, so after a stall longer than connectTimeout
// the timer used to fire before the connect that had completed meanwhile was seen, and the
// server was counted as failed.
import { afterEach, describe, expect, it } from 'vitest'
import { connect, echo, readAll, recordTcpEvents, startTcpProxy, startTcpServer, upstreamConfig } from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function busy (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* the loop is stalled */ }
}

describe('tcp connect timeout under an event-loop stall', () => {
  it('a connect that completed during a stall longer than connectTimeout is used; no failure is counted', async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const server = await startTcpServer(echo)
    cleanups.push(() => server.close())
    const p = await startTcpProxy({ upstream: 'u' }, [upstreamConfig('u', [server.address], { connectTimeout: 50 })])
    cleanups.push(() => p.close())
    const u = p.upstreams.get('u')!
    // Stall right after the proxy has started its connect (and its timer), before it polls again.
    const acquire = u.acquire.bind(u)
    u.acquire = (s) => { acquire(s); setImmediate(busy, 200) }

    const c = await connect(p.port)
    const reply = readAll(c)
    c.end('ping')
    expect((await reply).toString()).toBe('ping')
    await waitFor(() => ev.ends.length === 1, 5000, 5, 'end event')
    expect(ev.ends.map((e) => [e.end, e.server])).toEqual([['closed', server.address]])
    expect(u.servers.map((s) => [s.failures, s.consecutiveFailures, s.state(Date.now())])).toEqual([[0, 0, 'up']])
    expect(server.accepted).toBe(1)
  })
})
