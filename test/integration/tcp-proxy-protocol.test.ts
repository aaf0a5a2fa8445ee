import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  expandV6, parseProxyHeader, readAll, startTcpProxy, startTcpServer, upstreamConfig, type ProxyHeader,
} from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** An upstream that decodes the PROXY header, then echoes what follows it and ends. */
async function headerServer (): Promise<{ address: string, seen: Array<{ header: ProxyHeader, rest: string }> }> {
  const seen: Array<{ header: ProxyHeader, rest: string }> = []
  const server = await startTcpServer((s) => {
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('end', () => {
      const all = Buffer.concat(chunks)
      const header = parseProxyHeader(all)
      if (header === undefined) throw new Error('no PROXY header')
      const rest = all.subarray(header.length).toString()
      seen.push({ header, rest })
      s.end(rest)
    })
  })
  cleanups.push(() => server.close())
  return { address: server.address, seen }
}

/** Connects to the proxy on `host` and sends `text` at once, before any upstream can exist. */
async function roundTrip (port: number, host: string, text: string): Promise<{ reply: string, localPort: number }> {
  const c = net.connect({ port, host, allowHalfOpen: true })
  c.end(text)
  const localPort = await new Promise<number>((resolve) => c.once('connect', () => resolve(c.localPort as number)))
  return { reply: (await readAll(c)).toString(), localPort }
}

const cases = [
  { version: 'v1', listen: '127.0.0.1', connectTo: '127.0.0.1', family: 'TCP4', address: '127.0.0.1' },
  { version: 'v2', listen: '127.0.0.1', connectTo: '127.0.0.1', family: 'TCP4', address: '127.0.0.1' },
  { version: 'v1', listen: '::1', connectTo: '::1', family: 'TCP6', address: '::1' },
  { version: 'v2', listen: '::1', connectTo: '::1', family: 'TCP6', address: '::1' },
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; the header carries plain IPv4.
  { version: 'v1', listen: '::', connectTo: '127.0.0.1', family: 'TCP4', address: '127.0.0.1' },
  { version: 'v2', listen: '::', connectTo: '127.0.0.1', family: 'TCP4', address: '127.0.0.1' },
] as const

describe('tcp listener: PROXY protocol', () => {
  for (const t of cases) {
    it(`${t.version} on ${t.listen}, client via ${t.connectTo}: ${t.family} with the real addresses and ports`, async () => {
      const up = await headerServer()
      const p = await startTcpProxy({
        upstream: 'u',
        proxyProtocol: t.version,
        listen: { text: `${t.listen}:0`, host: t.listen, port: 0 },
      }, [upstreamConfig('u', [up.address])])
      cleanups.push(() => p.close())

      const { reply, localPort } = await roundTrip(p.port, t.connectTo, 'payload after the header')
      expect(reply).toBe('payload after the header')
      await waitFor(() => up.seen.length === 1, 5000, 5, 'upstream saw the stream')
      const { header, rest } = up.seen[0]!
      expect(rest).toBe('payload after the header')
      // The v2 decoder prints full groups; v1 carries the text the proxy wrote.
      const want = t.version === 'v2' && t.family === 'TCP6' ? expandV6(t.address) : t.address
      expect({
        version: header.version,
        command: header.command,
        family: header.family,
        sourceAddress: header.sourceAddress,
        sourcePort: header.sourcePort,
        destAddress: header.destAddress,
        destPort: header.destPort,
      }).toEqual({
        version: t.version === 'v1' ? 1 : 2,
        command: 'PROXY',
        family: t.family,
        sourceAddress: want,
        sourcePort: localPort,
        destAddress: want,
        destPort: p.port,
      })
    })
  }

  it('every stream gets its own header, exactly once, before any client byte', async () => {
    const up = await headerServer()
    const p = await startTcpProxy({ upstream: 'u', proxyProtocol: 'v1' }, [upstreamConfig('u', [up.address])])
    cleanups.push(() => p.close())
    const results = await Promise.all([0, 1, 2].map(async (i) => await roundTrip(p.port, '127.0.0.1', `stream-${i}`)))
    expect(results.map((r) => r.reply).sort()).toEqual(['stream-0', 'stream-1', 'stream-2'])
    await waitFor(() => up.seen.length === 3, 5000, 5, 'three streams')
    const bySource = new Map(up.seen.map((s) => [s.header.sourcePort, s.rest]))
    for (const [i, r] of results.entries()) expect(bySource.get(r.localPort)).toBe(`stream-${i}`)
  })
})
