import { createHash, randomBytes } from 'node:crypto'
import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { connect, startTcpProxy, startTcpProxyProcess, startTcpServer, upstreamConfig } from '../helpers/tcp.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const MiB = 1024 * 1024
const block = randomBytes(MiB)

/**
 * Sends `total` bytes with backpressure and hashes them. Each MiB is the random block with its
 * index stamped at the front, so lost, repeated or reordered chunks change the hash.
 */
async function send (socket: net.Socket, total: number): Promise<string> {
  const hash = createHash('sha256')
  for (let i = 0; i * MiB < total; i++) {
    const chunk = Buffer.from(block)
    chunk.writeUInt32BE(i, 0)
    hash.update(chunk)
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error): void => reject(e)
        socket.once('error', onErr)
        socket.once('drain', () => { socket.off('error', onErr); resolve() })
      })
    }
  }
  socket.end()
  return hash.digest('hex')
}

/** Hashes everything received until the peer's end. */
function receive (socket: net.Socket): Promise<{ digest: string, bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let bytes = 0
    socket.on('data', (d: Buffer) => { bytes += d.length; hash.update(d) })
    socket.once('end', () => resolve({ digest: hash.digest('hex'), bytes }))
    socket.once('error', reject)
  })
}

describe('tcp listener: a long stream', () => {
  it('backpressure: a client that does not read stops the upstream writer, then gets every byte', async () => {
    const total = 192 * MiB
    let written = 0
    let sentDigest: Promise<string> | undefined
    const up = await startTcpServer((s) => {
      const orig = s.write.bind(s)
      s.write = ((chunk: Buffer, ...rest: never[]) => { written += chunk.length; return orig(chunk, ...rest) }) as typeof s.write
      sentDigest = send(s, total)
    })
    cleanups.push(() => up.close())
    const p = await startTcpProxy({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    cleanups.push(() => p.close())
    const c = await connect(p.port)
    c.pause()
    // Wait for the writer to stall: no progress over 10 samples 50 ms apart.
    let last = -1
    let still = 0
    const deadline = Date.now() + 30_000
    while (still < 10 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      still = written === last ? still + 1 : 0
      last = written
    }
    expect(still).toBe(10)
    // In flight: four kernel socket buffers (tcp_rmem/tcp_wmem maxima bound them; about 9 MB
    // here) plus one relay chunk. Half the total leaves room for generous autotuning.
    expect(written).toBeLessThan(total / 2)
    expect(written).toBeGreaterThan(0)
    const got = receive(c)
    c.resume()
    const { digest, bytes } = await got
    expect(bytes).toBe(total)
    expect(digest).toBe(await sentDigest)
  }, 60_000)

  it('1 GiB each way arrives byte-identical, and the proxy process grows by less than 64 MB', async () => {
    const total = 1024 * MiB
    let serverSide: Promise<[string, { digest: string, bytes: number }]> | undefined
    const up = await startTcpServer((s) => { serverSide = Promise.all([send(s, total), receive(s)]) })
    cleanups.push(() => up.close())
    const proxy = await startTcpProxyProcess({ upstream: 'u' }, [upstreamConfig('u', [up.address])])
    cleanups.push(() => proxy.close())

    // Warm up (code, buffers at full size), then measure from a fresh baseline.
    const warm = await connect(proxy.port)
    const warmDone = Promise.all([send(warm, 16 * MiB), receive(warm)])
    await warmDone
    await serverSide
    const baseline = await proxy.resetPeak()

    serverSide = undefined
    const c = await connect(proxy.port)
    const [sentUp, gotDown] = await Promise.all([send(c, total), receive(c)])
    const [sentDown, gotUp] = await (serverSide as unknown as Promise<[string, { digest: string, bytes: number }]>)
    expect(gotUp).toEqual({ digest: sentUp, bytes: total })
    expect(gotDown).toEqual({ digest: sentDown, bytes: total })
    const growth = proxy.peakRss() - baseline
    if (process.env.TCP_STREAM_DEBUG !== undefined) console.log({ baseline, peak: proxy.peakRss(), growth, samples: proxy.samples() })
    // The child samples every 50 ms; a stream of several seconds must have been watched throughout.
    expect(proxy.samples()).toBeGreaterThan(10)
    expect(growth).toBeLessThan(64 * MiB)
  }, 120_000)
})
