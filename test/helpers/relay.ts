/*
 * A fault-injecting relay for pair tests, without root: UDP datagrams and TCP streams arriving
 * on one loopback port are passed to a target (one direction of a pair link, or a witness), and
 * can be cut, delayed or flapped. Replies to UDP datagrams (the auth-failure hint) go back to
 * the last sender. TCP streams are cut by destroying them and refusing new ones.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import { reservePort } from './ports.js'

export interface Relay {
  readonly port: number
  /** Drop everything (UDP) and refuse/destroy TCP, until heal(). */
  cut (): void
  /** Pass nothing, close nothing: datagrams are dropped and TCP bytes held (a blackholed link), until heal(). */
  blackhole (): void
  heal (): void
  /** Delay every UDP datagram by `ms` (0: none). */
  delay (ms: number): void
  readonly isCut: boolean
  /** Datagrams passed so far. */
  readonly passed: number
  /** The last datagram that arrived (to replay it). */
  readonly last: Buffer | undefined
  /** Send arbitrary bytes to the target from the relay's own socket (tests of bad messages). */
  inject (data: Buffer): void
  close (): Promise<void>
}

export async function startRelay (target: { host?: string, port: number }, opts: { udp?: boolean, tcp?: boolean, port?: number } = {}): Promise<Relay> {
  const host = target.host ?? '127.0.0.1'
  const wantUdp = opts.udp ?? true
  const wantTcp = opts.tcp ?? true
  let isCut = false
  let holes = false
  let delayMs = 0
  let passed = 0
  const streams = new Set<net.Socket>()
  const tcp = net.createServer((client) => {
    if (isCut) { client.destroy(); return }
    const upstream = net.connect({ host, port: target.port })
    streams.add(client)
    streams.add(upstream)
    const drop = (): void => { client.destroy(); upstream.destroy(); streams.delete(client); streams.delete(upstream) }
    // Blackholed, a close on one side is not passed on either: the other side's socket hangs.
    const dropFrom = (side: net.Socket): void => { if (holes) side.destroy(); else drop() }
    client.on('error', () => { dropFrom(client) })
    upstream.on('error', () => { dropFrom(upstream) })
    client.on('close', () => { dropFrom(client) })
    upstream.on('close', () => { dropFrom(upstream) })
    // Bytes go through only while not blackholed; held ones are dropped, as a black hole would.
    client.on('data', (d: Buffer) => { if (!holes) upstream.write(d) })
    upstream.on('data', (d: Buffer) => { if (!holes) client.write(d) })
  })
  const inbound = dgram.createSocket('udp4')
  const outbound = dgram.createSocket('udp4')
  let lastSender: { address: string, port: number } | undefined
  let last: Buffer | undefined
  inbound.on('message', (data, rinfo) => {
    last = data
    lastSender = { address: rinfo.address, port: rinfo.port }
    if (isCut || holes) return
    const send = (): void => { if (!isCut) { passed++; outbound.send(data, target.port, host) } }
    if (delayMs > 0) setTimeout(send, delayMs).unref()
    else send()
  })
  outbound.on('message', (data) => {
    if (isCut || holes || lastSender === undefined) return
    inbound.send(data, lastSender.port, lastSender.address)
  })
  inbound.on('error', () => {})
  outbound.on('error', () => {})
  await new Promise<void>((resolve) => { outbound.bind(0, '127.0.0.1', () => { resolve() }) })
  // One port for both protocols, like a peer's listen address.
  let port = opts.port ?? 0
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen(port, '127.0.0.1', () => { tcp.off('error', reject); resolve() })
      })
      port = (tcp.address() as net.AddressInfo).port
      if (!wantUdp) break
      await new Promise<void>((resolve, reject) => {
        inbound.once('error', reject)
        inbound.bind(port, '127.0.0.1', () => { inbound.off('error', reject); resolve() })
      })
      break
    } catch (err) {
      if (attempt >= 20 || opts.port !== undefined) throw err
      await new Promise<void>((resolve) => { tcp.close(() => { resolve() }) })
      port = 0
    }
  }
  if (!wantTcp) tcp.close()
  return {
    port,
    get isCut () { return isCut },
    get passed () { return passed },
    get last () { return last },
    cut () {
      isCut = true
      for (const s of streams) s.destroy()
      streams.clear()
      // Refused, not accepted and dropped: a connect must fail as to an unreachable host.
      if (wantTcp && tcp.listening) tcp.close()
    },
    blackhole () { holes = true },
    heal () {
      isCut = false
      holes = false
      if (wantTcp && !tcp.listening) tcp.listen(port, '127.0.0.1')
    },
    delay (ms) { delayMs = ms },
    inject (data) { outbound.send(data, target.port, host) },
    async close () {
      isCut = true
      for (const s of streams) s.destroy()
      await Promise.all([
        new Promise<void>((resolve) => { if (tcp.listening) tcp.close(() => { resolve() }); else resolve() }),
        new Promise<void>((resolve) => { setImmediate(resolve) }),
        new Promise<void>((resolve) => { try { inbound.close(() => { resolve() }) } catch { resolve() } }),
        new Promise<void>((resolve) => { try { outbound.close(() => { resolve() }) } catch { resolve() } }),
      ])
    },
  }
}

/** A port free for both TCP and UDP on 127.0.0.1 (a node's peer listen, or a listener). */
export async function freePort (): Promise<number> {
  return await reservePort()
}
