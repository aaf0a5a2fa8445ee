// The SNI preread must cost time linear in what the client sent (audit: quadratic preread). A
// ClientHello that never completes, sent as thousands of one-byte TLS records, one write each,
// used to make the proxy re-join and re-walk everything held on every record: four such clients
// cost about a second of the proxy's CPU. Now the hello may span MAX_HELLO_RECORDS records at
// most and the held bytes are re-parsed only when a record completes.
import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_HELLO_RECORDS } from '../../src/listener/sni.js'
import {
  closeKind, connect, recordTcpEvents, startTcpProxy, startTcpServer, upstreamConfig,
} from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** The records of the audit's repro: a hello announced as 0xffffff bytes long, then one byte per record. */
function attackRecords (tiny = 2800): Buffer[] {
  const start = Buffer.from('160301000101', 'hex') // handshake type: ClientHello
  const ff = Buffer.from('1603010001ff', 'hex') // three bytes of its 24-bit length
  const zero = Buffer.from('160301000100', 'hex')
  return [start, ff, ff, ff, ...new Array<Buffer>(tiny).fill(zero)]
}

/**
 * Writes each record on its own turn of the event loop (so the proxy reads them one by one)
 * until all are sent or the proxy closes; resolves with how many were written.
 */
function sendPaced (s: net.Socket, records: readonly Buffer[]): Promise<number> {
  return new Promise((resolve) => {
    let i = 0
    let gone = false
    s.on('error', () => { gone = true })
    s.on('close', () => { gone = true })
    const next = (): void => {
      if (gone || i === records.length) {
        if (!gone) s.end()
        resolve(i)
        return
      }
      s.write(records[i++] as Buffer)
      setImmediate(next)
    }
    next()
  })
}

const routes = [{ name: 'api', match: { sni: 'api.example.com' }, upstream: 'api' }]

describe('tcp preread: a ClientHello in many tiny records', () => {
  it(`is given up after ${MAX_HELLO_RECORDS} records: preread-failed, the upstream never sees it`, async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const api = await startTcpServer(() => {})
    cleanups.push(() => api.close())
    const p = await startTcpProxy({ routes }, [upstreamConfig('api', [api.address])])
    cleanups.push(() => p.close())
    const c = await connect(p.port)
    const closed = closeKind(c)
    const sent = await sendPaced(c, attackRecords())
    await closed
    await waitFor(() => ev.ends.length === 1, 5000, 5, 'end event')
    expect(ev.ends.map((e) => [e.end, e.sni, e.upstream, e.bytesIn])).toEqual([['preread-failed', undefined, undefined, 0]])
    // Closed soon after the cap, long before the 16 KiB preread limit (about 2,700 such records).
    expect(sent).toBeLessThan(200)
    expect(api.accepted).toBe(0)
  })

  it('four clients sending 2,800 one-byte records each cost the proxy little CPU', async () => {
    const p = await startTcpProxy({ routes }, [upstreamConfig('api', ['127.0.0.1:1'])])
    cleanups.push(() => p.close())
    const clients = await Promise.all([1, 2, 3, 4].map(async () => await connect(p.port)))
    // The proxy runs in this process: its CPU and the clients' (which stop once cut off) together.
    const before = process.cpuUsage()
    await Promise.all(clients.map(async (c) => {
      const closed = closeKind(c)
      await sendPaced(c, attackRecords())
      await closed
    }))
    const spent = process.cpuUsage(before)
    const ms = (spent.user + spent.system) / 1000
    // Generous for a loaded machine; the quadratic re-parse took about 650 ms here, this about 10.
    expect(ms).toBeLessThan(300)
  })
})
