import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startProxy, type RunningTandem } from '../helpers/tandem.js'
import { closeKind, connect, echo, recordTcpEvents, startTcpServer, type TestTcpServer } from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function start (limit: string): Promise<{ proxy: RunningTandem, up: TestTcpServer }> {
  const up = await startTcpServer(echo)
  cleanups.push(() => up.close())
  const proxy = await startProxy(`
log: { level: silent, access: false }
upstreams:
  cache:
    servers: [{ address: ${up.address} }]
listeners:
  - name: conns
    protocol: tcp
    listen: 127.0.0.1:0
    upstream: cache
    rateLimit: new-conns
rateLimits:
  new-conns: ${limit}
`)
  cleanups.push(() => proxy.stop())
  return { proxy, up }
}

async function echoes (socket: net.Socket, text: string): Promise<void> {
  let got = ''
  const onData = (d: Buffer): void => { got += d.toString() }
  socket.on('data', onData)
  socket.write(text)
  await waitFor(() => got === text, 5000, 5, `echo of ${text}`)
  socket.off('data', onData)
}

describe('rate limiting of new TCP connections', () => {
  it('over the limit a connection is closed at once; the upstream never sees it; established streams go on', async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const { proxy, up } = await start('{ key: client-ip, rate: 1/m, burst: 3 }')
    const port = proxy.port('conns')
    const kept: net.Socket[] = []
    for (let i = 0; i < 3; i++) {
      const s = await connect(port)
      cleanups.push(() => s.destroy())
      await echoes(s, `hello ${i}`)
      kept.push(s)
    }
    const refused = []
    for (let i = 0; i < 4; i++) {
      const s = await connect(port)
      cleanups.push(() => s.destroy())
      s.write('never relayed')
      refused.push(await closeKind(s))
    }
    expect(refused).toHaveLength(4)
    expect(up.accepted).toBe(3)
    for (const [i, s] of kept.entries()) await echoes(s, `still ${i}`)
    const limited = ev.ends.filter((e) => e.end === 'rate-limited')
    expect(limited).toHaveLength(4)
    expect(limited[0]).toMatchObject({ listener: 'conns', limit: 'new-conns', bytesIn: 0, bytesOut: 0 })
    expect(limited[0]!.upstream).toBeUndefined()
  })

})
