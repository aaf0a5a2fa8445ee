import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import tls from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  closeKind, connect, readAll, recordTcpEvents, startTcpProxy, startTcpServer, upstreamConfig, type TestTcpServer,
} from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

let dir: string
let key: Buffer
let cert: Buffer

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-sni-'))
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=tandem test',
    '-addext', 'subjectAltName=DNS:api.example.com,DNS:*.example.com,DNS:*.example.org',
  ], { stdio: 'ignore' })
  key = readFileSync(join(dir, 'key.pem'))
  cert = readFileSync(join(dir, 'cert.pem'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A real TLS server that answers its own name and closes. */
async function tlsUpstream (name: string): Promise<{ address: string, servernames: Array<string | false | null> }> {
  const servernames: Array<string | false | null> = []
  const server = tls.createServer({ key, cert }, (s) => {
    servernames.push(s.servername)
    s.end(name)
  })
  server.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as net.AddressInfo).port
  return { address: `127.0.0.1:${port}`, servernames }
}

/** A plain TCP server that records the raw bytes of each stream and answers `reply`. */
async function rawUpstream (reply: string, greet = false): Promise<TestTcpServer & { streams: Buffer[] }> {
  const streams: Buffer[] = []
  const server = await startTcpServer((s) => {
    if (greet) s.write(reply)
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('end', () => { streams.push(Buffer.concat(chunks)); s.end(greet ? '' : reply) })
  })
  cleanups.push(() => server.close())
  return Object.assign(server, { streams })
}

function tlsGet (port: number, servername: string | undefined): Promise<{ text: string, authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      ca: cert,
      ...(servername === undefined ? { checkServerIdentity: () => undefined } : { servername }),
      rejectUnauthorized: false,
    })
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', reject)
    s.on('end', () => resolve({ text: Buffer.concat(chunks).toString(), authorized: s.authorized }))
  })
}

/** The exact first flight node:tls sends for `servername`, captured in memory. */
function clientHello (servername: string): Promise<Buffer> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    const chunks: Buffer[] = []
    const wire = new Duplex({
      read () {},
      write (chunk: Buffer, _enc, cb) {
        chunks.push(chunk)
        clearTimeout(timer)
        timer = setTimeout(() => { resolve(Buffer.concat(chunks)); c.destroy() }, 0)
        cb()
      },
    })
    const c = tls.connect({ socket: wire, servername })
    c.on('error', () => {})
  })
}

/** A ClientHello naming `name`, padded (extension 21) so that it fills one record of exactly `size` bytes. */
function paddedHello (name: string, size: number): Buffer {
  const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff])
  const host = Buffer.from(name, 'latin1')
  const sni = Buffer.concat([u16(0), u16(host.length + 5), u16(host.length + 3), Buffer.from([0]), u16(host.length), host])
  const fixed = 2 + 32 + 1 + 4 + 2 // version, random, session id, one cipher suite, null compression
  const pad = size - 5 - 4 - fixed - 2 - sni.length - 4
  const extensions = Buffer.concat([sni, u16(21), u16(pad), Buffer.alloc(pad)])
  const body = Buffer.concat([
    Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0]),
    u16(extensions.length), extensions,
  ])
  const hs = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body])
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs])
}

const routes = [
  { name: 'api', match: { sni: 'api.example.com' }, upstream: 'api' },
  { name: 'com', match: { sni: '*.example.com' }, upstream: 'com' },
]

describe('tcp listener: SNI routing', () => {
  it('routes real TLS clients by servername to real TLS servers, end to end, without terminating TLS', async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const api = await tlsUpstream('api')
    const com = await tlsUpstream('com')
    const dflt = await tlsUpstream('default')
    const p = await startTcpProxy({ routes, upstream: 'default' }, [
      upstreamConfig('api', [api.address]), upstreamConfig('com', [com.address]), upstreamConfig('default', [dflt.address]),
    ])
    cleanups.push(() => p.close())

    const table: Array<[string | undefined, string, boolean]> = [
      ['api.example.com', 'api', true],
      ['API.Example.COM', 'api', true],
      ['www.example.com', 'com', true],
      ['a.b.example.com', 'com', false], // the certificate's wildcard covers one label only
      ['example.com', 'default', false],
      ['other.test', 'default', false],
      [undefined, 'default', true], // no name to check; the chain itself is trusted
    ]
    for (const [servername, want, authorized] of table) {
      const got = await tlsGet(p.port, servername)
      expect(got, String(servername)).toEqual({ text: want, authorized })
    }
    // The TLS servers themselves saw the client's servername: the handshake was theirs.
    expect(api.servernames).toEqual(['api.example.com', 'API.Example.COM'])
    expect(com.servernames).toEqual(['www.example.com', 'a.b.example.com'])
    await waitFor(() => ev.ends.length === table.length, 5000, 5, 'end events')
    expect(ev.ends.map((e) => [e.sni, e.upstream, e.end])).toEqual(table.map(([name, want]) => [name?.toLowerCase(), want, 'closed']))
  })

  it('replays a ClientHello that arrives in pieces, byte for byte', async () => {
    const api = await rawUpstream('to-api')
    const com = await rawUpstream('to-com')
    const p = await startTcpProxy({ routes }, [upstreamConfig('api', [api.address]), upstreamConfig('com', [com.address])])
    cleanups.push(() => p.close())
    const hello = await clientHello('shop.example.com')
    const c = await connect(p.port)
    const reply = readAll(c)
    const cuts = [0, 3, 9, 60, hello.length]
    for (let i = 1; i < cuts.length; i++) {
      c.write(hello.subarray(cuts[i - 1], cuts[i]))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    c.end('after-hello')
    expect((await reply).toString()).toBe('to-com')
    expect(com.streams).toHaveLength(1)
    expect(com.streams[0]!.equals(Buffer.concat([hello, Buffer.from('after-hello')]))).toBe(true)
    expect(api.streams).toHaveLength(0)
  })

  it('a ClientHello still unfinished at 16,384 bytes is read on (a record may be 16,384 + 5) and routed by its name', async () => {
    const api = await rawUpstream('to-api')
    const p = await startTcpProxy({ routes }, [upstreamConfig('api', [api.address]), upstreamConfig('com', ['127.0.0.1:1'])])
    cleanups.push(() => p.close())
    // One record of 16,384 + 5 bytes; and a hello whose first record ends at byte 16,384, the rest in a second.
    const whole = paddedHello('api.example.com', 16384 + 5)
    const hs = paddedHello('api.example.com', 16379 + 100 + 5).subarray(5)
    const frame = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 0xff]), b])
    const split = Buffer.concat([frame(hs.subarray(0, 16379)), frame(hs.subarray(16379))])
    for (const hello of [whole, split]) {
      const c = await connect(p.port)
      const reply = readAll(c)
      // Two writes, so the proxy holds exactly 16,384 bytes of an unfinished hello first.
      c.write(hello.subarray(0, 16384))
      await new Promise((resolve) => setTimeout(resolve, 20))
      c.end(hello.subarray(16384))
      expect((await reply).toString()).toBe('to-api')
    }
    expect(api.streams.map((b) => b.length)).toEqual([whole.length, split.length])
    expect(api.streams[0]!.equals(whole) && api.streams[1]!.equals(split)).toBe(true)
  })

  it('not TLS, or nothing within prereadTimeout: the fallback upstream gets the stream', async () => {
    const fallback = await rawUpstream('fallback')
    const p = await startTcpProxy({ routes, upstream: 'plain', prereadTimeout: 200 }, [
      upstreamConfig('api', ['127.0.0.1:1']), upstreamConfig('com', ['127.0.0.1:1']), upstreamConfig('plain', [fallback.address]),
    ])
    cleanups.push(() => p.close())

    const c = await connect(p.port)
    const reply = readAll(c)
    c.end('PING\r\n')
    expect((await reply).toString()).toBe('fallback')
    expect(fallback.streams[0]!.toString()).toBe('PING\r\n')

    // A server-first protocol: the client waits for a greeting, so the proxy must stop waiting.
    const greeter = await rawUpstream('220 hello\r\n', true)
    const p2 = await startTcpProxy({ routes, upstream: 'smtp', prereadTimeout: 200 }, [
      upstreamConfig('api', ['127.0.0.1:1']), upstreamConfig('com', ['127.0.0.1:1']), upstreamConfig('smtp', [greeter.address]),
    ])
    cleanups.push(() => p2.close())
    const t0 = Date.now()
    const c2 = await connect(p2.port)
    const greeting = await new Promise<string>((resolve) => c2.once('data', (d: Buffer) => resolve(d.toString())))
    expect(greeting).toBe('220 hello\r\n')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190)
    c2.destroy()
  })

  it('without a fallback upstream: not-TLS and timeouts are closed (preread-failed), unknown names too (no-server)', async () => {
    const ev = recordTcpEvents()
    cleanups.push(() => ev.stop())
    const api = await rawUpstream('to-api')
    const p = await startTcpProxy({ routes: routes.slice(0, 1), prereadTimeout: 150 }, [upstreamConfig('api', [api.address])])
    cleanups.push(() => p.close())

    const plain = await connect(p.port)
    plain.write('GET / HTTP/1.1\r\n\r\n')
    await closeKind(plain)
    const silent = await connect(p.port)
    await closeKind(silent)
    const unknown = await connect(p.port)
    unknown.write(await clientHello('nobody.example.net'))
    await closeKind(unknown)

    await waitFor(() => ev.ends.length === 3, 5000, 5, 'three ends')
    expect(ev.ends.map((e) => [e.end, e.sni, e.upstream])).toEqual([
      ['preread-failed', undefined, undefined],
      ['preread-failed', undefined, undefined],
      ['no-server', 'nobody.example.net', undefined],
    ])
    expect(api.accepted).toBe(0)
  })
})
