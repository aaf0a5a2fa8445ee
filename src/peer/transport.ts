/*
 * The pair's two channels on the `listen` address:
 *  - UDP for heartbeats, sent to every address in `peers` (one per link); any one arriving counts.
 *    A datagram is never queued behind anything, so a large state transfer cannot delay one.
 *  - TCP for state: the active node connects to the peer and streams length-prefixed signed
 *    frames (a full snapshot on connect, then changes). TCP's ordering and flow control suit bulk
 *    state; its head-of-line blocking is harmless here because no heartbeat rides on it.
 * Both channels check every message (messages.ts); the source address is never trusted.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import type { HostPort } from '../config/types.js'
import { MAX_DATAGRAM, MAX_FRAME, Signer, Verifier, type Envelope, type Heartbeat, type Rejection, type StateMessage } from './messages.js'

export interface TransportHandlers {
  heartbeat (m: Envelope & Heartbeat, link: number): void
  state (m: Envelope & StateMessage): void
  /** The inbound state connection closed: what it carried may be incomplete from now on. */
  stateLost (): void
  rejected (reason: Rejection, claimed?: string): void
  /** The peer says our messages fail its authentication. */
  hint (from: string): void
  error (err: Error, where: string): void
}

export interface TransportOptions {
  readonly id: string
  readonly secret: string
  readonly listen: HostPort
  readonly peers: readonly HostPort[]
  /** ms; connect and idle timeouts of the state channel derive from it. */
  readonly heartbeat: number
}

/** Unauthenticated state connections held at once; a newer one closes the oldest. */
const MAX_PENDING = 4

/** At most one auth-failure hint per this many ms per source (a flood cannot amplify). */
const HINT_INTERVAL = 250

export class PeerTransport {
  readonly signer: Signer
  private readonly udp: dgram.Socket
  private readonly tcp: net.Server
  private readonly udpVerifier: Verifier
  /**
   * One for every state connection, so a frame recorded on one is a replay on the next (the
   * sequence is the sender's, across connections).
   */
  private readonly stateVerifier: Verifier
  private inbound: net.Socket | undefined
  /** State connections not authenticated yet: they replace `inbound` only with a valid frame. */
  private readonly pending = new Set<net.Socket>()
  private outbound: net.Socket | undefined
  private outboundReady = false
  private connecting = false
  private nextLink = 0
  private readonly hinted = new Map<string, number>()
  private closed = false

  constructor (private readonly opts: TransportOptions, private readonly on: TransportHandlers) {
    this.signer = new Signer(opts.id, opts.secret)
    this.udpVerifier = new Verifier(opts.id, opts.secret, MAX_DATAGRAM, ['hb'], this.signer)
    this.stateVerifier = new Verifier(opts.id, opts.secret, MAX_FRAME, ['state'], this.signer)
    this.signer.echo = () => this.udpVerifier.lastSeen
    this.udp = dgram.createSocket({ type: opts.listen.host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false })
    this.udp.on('message', (data, rinfo) => { this.onDatagram(data, rinfo) })
    this.udp.on('error', (err) => { this.on.error(err, 'udp') })
    this.tcp = net.createServer((socket) => { this.onInbound(socket) })
    this.tcp.on('error', (err) => { this.on.error(err, 'tcp') })
  }

  async start (): Promise<void> {
    const { host, port } = this.opts.listen
    await new Promise<void>((resolve, reject) => {
      this.udp.once('error', reject)
      this.udp.bind({ address: host, port }, () => { this.udp.off('error', reject); resolve() })
    })
    // TCP on the same port as UDP, so one address is configured per node.
    const udpPort = this.udp.address().port
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', reject)
      this.tcp.listen({ host, port: udpPort }, () => { this.tcp.off('error', reject); resolve() })
    })
  }

  address (): { host: string, port: number } {
    const a = this.udp.address()
    return { host: a.address, port: a.port }
  }

  /** Sends one heartbeat over every link; each copy has its own sequence number. */
  sendHeartbeat (hb: Heartbeat): void {
    if (this.closed) return
    for (const [i, peer] of this.opts.peers.entries()) {
      const data = this.signer.encode({ ...hb, via: i })
      this.udp.send(data, peer.port, peer.host, (err) => { if (err !== null && err !== undefined) this.on.error(err, `udp send ${peer.text}`) })
    }
  }

  /** True while an outbound state connection is up (this node is active and reaches the peer). */
  get stateConnected (): boolean { return this.outboundReady }

  /** Date.now() when the outbound state connection came up. */
  stateConnectedAt = 0

  /** Closes the outbound state connection; the next maintainState() dials the next link. */
  dropState (): void {
    this.outbound?.destroy()
  }

  /**
   * Keeps an outbound state connection (active node) or drops it (`want` false). `onConnect` runs
   * once each time a connection is established: send the full snapshot there.
   */
  maintainState (want: boolean, onConnect: () => void): void {
    if (!want || this.closed) {
      this.release()
      return
    }
    if (this.outbound !== undefined || this.connecting) return
    const peer = this.opts.peers[this.nextLink % this.opts.peers.length] as HostPort
    this.nextLink++
    this.connecting = true
    const socket = net.connect({ host: peer.host, port: peer.port, noDelay: true })
    socket.setTimeout(Math.max(1000, 5 * this.opts.heartbeat))
    this.outbound = socket
    socket.once('connect', () => {
      if (this.outbound !== socket) return
      this.connecting = false
      this.outboundReady = true
      this.stateConnectedAt = Date.now()
      // The standby only listens on this socket; after connect, silence is normal (a link that
      // blackholes it shows as a standby that stays out of sync: see PeerNode).
      socket.setTimeout(0)
      onConnect()
    })
    socket.on('timeout', () => { socket.destroy() })
    socket.on('error', () => {})
    socket.on('data', () => {})
    socket.once('close', () => {
      if (this.outbound !== socket) return
      this.connecting = false
      this.outboundReady = false
      this.outbound = undefined
    })
  }

  /**
   * No longer the active: stop using the outbound connection, but let the frames already queued
   * on it (the last changes before a hand-over) reach the peer; destroy() would drop them.
   */
  private release (): void {
    const socket = this.outbound
    if (socket === undefined) return
    const ready = this.outboundReady
    this.outbound = undefined
    this.outboundReady = false
    this.connecting = false
    if (!ready || this.closed) {
      socket.destroy()
      return
    }
    socket.end()
    setTimeout(() => { socket.destroy() }, Math.max(1000, 5 * this.opts.heartbeat)).unref()
  }

  /** Queues a state frame on the outbound connection; false when there is none. */
  sendState (m: StateMessage): boolean {
    const socket = this.outbound
    if (socket === undefined || !this.outboundReady) return false
    const body = this.signer.encode(m)
    const head = Buffer.alloc(4)
    head.writeUInt32BE(body.length)
    socket.write(head)
    socket.write(body)
    return true
  }

  /** Bytes queued on the state connection and not yet sent (backpressure). */
  get stateBacklog (): number { return this.outbound?.writableLength ?? 0 }

  async close (): Promise<void> {
    this.closed = true
    this.outbound?.destroy()
    this.inbound?.destroy()
    for (const socket of this.pending) socket.destroy()
    await Promise.all([
      new Promise<void>((resolve) => { this.tcp.close(() => { resolve() }) }),
      new Promise<void>((resolve) => { try { this.udp.close(() => { resolve() }) } catch { resolve() } }),
    ])
  }

  private onDatagram (data: Buffer, rinfo: dgram.RemoteInfo): void {
    const d = this.udpVerifier.decode(data)
    if (d.ok === 'hint') { this.on.hint(d.from); return }
    if (!d.ok) {
      this.on.rejected(d.reason, d.claimed)
      if (d.reason === 'unauthenticated' && d.claimed !== undefined) this.sendHint(rinfo)
      return
    }
    const m = d.message
    if (m.k !== 'hb') { this.on.rejected('malformed'); return }
    const via = m.via
    this.on.heartbeat(m, typeof via === 'number' && Number.isInteger(via) && via >= 0 && via < 16 ? via : 0)
  }

  /** Tells a sender with another secret that its messages fail here; rate-limited per source. */
  private sendHint (rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`
    const now = Date.now()
    if ((this.hinted.get(key) ?? 0) > now - HINT_INTERVAL) return
    if (this.hinted.size > 1000) this.hinted.clear()
    this.hinted.set(key, now)
    this.udp.send(this.signer.hint(), rinfo.port, rinfo.address, () => {})
  }

  private onInbound (socket: net.Socket): void {
    // One state connection at a time: a new one (the active reconnected) replaces the old once
    // its first frame authenticates, so a bare connect cannot cut the live one. A few may wait.
    const oldest = this.pending.size >= MAX_PENDING ? this.pending.values().next().value : undefined
    if (oldest !== undefined) {
      this.pending.delete(oldest)
      oldest.destroy()
    }
    this.pending.add(socket)
    // Its first frame is a slice of the snapshot (or a change batch): it must come within this.
    const firstFrame = setTimeout(() => { if (this.pending.has(socket)) socket.destroy() }, Math.max(2000, 10 * this.opts.heartbeat))
    firstFrame.unref()
    const verifier = this.stateVerifier
    socket.setNoDelay(true)
    // The active sends at least every second; a silent connection is a dead one.
    socket.setTimeout(Math.max(5000, 10 * this.opts.heartbeat))
    socket.on('timeout', () => { socket.destroy() })
    socket.on('error', () => {})
    let pending: Buffer[] = []
    let size = 0
    let need = 4
    let header = true
    socket.on('data', (chunk: Buffer) => {
      pending.push(chunk)
      size += chunk.length
      while (size >= need) {
        const all = pending.length === 1 ? pending[0] as Buffer : Buffer.concat(pending)
        const part = all.subarray(0, need)
        const rest = all.subarray(need)
        pending = rest.length > 0 ? [rest] : []
        size = rest.length
        if (header) {
          need = part.readUInt32BE(0)
          header = false
          if (need > MAX_FRAME || need < 1) {
            this.on.rejected('oversize')
            socket.destroy()
            return
          }
        } else {
          need = 4
          header = true
          const d = verifier.decode(Buffer.from(part))
          if (d.ok === true && d.message.k === 'state') {
            if (this.inbound !== socket) this.adopt(socket)
            this.on.state(d.message)
          } else if (d.ok !== true) {
            this.on.rejected(d.ok === 'hint' ? 'malformed' : d.reason, d.ok === false ? d.claimed : undefined)
            socket.destroy()
            return
          }
        }
      }
    })
    socket.once('close', () => {
      clearTimeout(firstFrame)
      this.pending.delete(socket)
      if (this.inbound === socket) {
        this.inbound = undefined
        this.on.stateLost()
      }
    })
  }

  /** An authenticated connection becomes the state connection; the one it replaces closes. */
  private adopt (socket: net.Socket): void {
    this.pending.delete(socket)
    const old = this.inbound
    this.inbound = socket
    old?.destroy()
  }
}
