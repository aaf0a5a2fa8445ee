import net, { type Socket } from 'node:net'
import type { Clock } from '../clock.js'
import { channels, type TcpEnd } from '../observability/events.js'
import { proxyHeader } from './proxy-protocol.js'
import type { Server } from './server.js'
import type { Upstream } from './upstream.js'
import { Leg, socketFor, type AcceptedHandle } from './tcp-relay.js'

/** What the listener fixes for every stream it accepts. */
export interface TcpForwardOptions {
  readonly listener: string
  readonly proxyProtocol: 'off' | 'v1' | 'v2'
  /** 0 disables. */
  readonly idleTimeout: number
  readonly clock: Clock
  /** Called once, after the client and upstream sockets have both closed. */
  readonly onClose: (forward: TcpForward) => void
}

/** Called while early bytes are awaited: on every new chunk, on client end, and on timeout. */
export type EarlyHook = (forward: TcpForward, timedOut: boolean) => void

/** Bytes kept from the client before the upstream is connected; beyond this the client is paused. */
const EARLY_LIMIT = 64 * 1024

const kForward = Symbol('tandem.tcpForward')
type Tagged = Socket & { [kForward]: TcpForward }

type Phase = 'early' | 'connecting' | 'relay' | 'done'

/**
 * One proxied TCP stream: picks a server, connects with `connectTimeout`, tries the next server
 * on a refused or timed-out connect while the client's early bytes wait (bounded), then relays
 * both ways with backpressure and half-close until both sockets have closed.
 *
 * The forward's state decides what each socket event means, so the handlers are shared
 * module-level functions (no closures per connection or chunk); sockets point back here.
 */
export class TcpForward {
  readonly client: Socket
  readonly startedAt: number
  /** The client's address and port, captured at accept when the log or a PROXY header needs them. */
  readonly clientAddress?: string
  readonly clientPort?: number
  upstream?: Upstream
  /** The server of the established stream, or the last one tried. */
  server?: Server
  sni?: string

  private phase: Phase = 'early'
  private up?: Socket
  /** The server acquired for the current attempt or stream, until released. */
  private held?: Server
  private tried?: Set<Server>
  private connectStart = 0
  private readonly toUpstream: Leg
  private readonly toClient: Leg
  private early?: Buffer[]
  private earlyLen = 0
  private hook?: EarlyHook
  private clientEnded = false
  private upEnded = false
  private clientClosed = false
  private upClosed = false
  private ended?: TcpEnd
  private finished = false

  constructor (handle: AcceptedHandle, private readonly opts: TcpForwardOptions) {
    this.startedAt = opts.clock.now()
    this.toUpstream = new Leg((chunk) => this.stash(chunk))
    this.toClient = new Leg()
    const client = socketFor(handle, this.toUpstream.onread)
    this.client = client
    if (opts.proxyProtocol !== 'off' || channels.tcpConnectionEnd.hasSubscribers) {
      // Read before the socket can close; Node caches the answer.
      this.clientAddress = client.remoteAddress
      this.clientPort = client.remotePort
    }
    ;(client as Tagged)[kForward] = this
    this.toUpstream.from = client
    this.toClient.to = client
    client.on('end', onClientEnd)
    client.on('error', onClientError)
    client.on('timeout', onClientTimeout)
    client.on('close', onClientClose)
    if (opts.idleTimeout > 0) client.setTimeout(opts.idleTimeout)
  }

  /** Bytes the client sent that have not been forwarded yet. */
  earlyBytes (): Buffer {
    const early = this.early
    if (early === undefined) return Buffer.alloc(0)
    if (early.length === 1) return early[0] as Buffer
    const joined = Buffer.concat(early, this.earlyLen)
    this.early = [joined]
    return joined
  }

  /** True once the client has half-closed (sent FIN). */
  get clientHasEnded (): boolean {
    return this.clientEnded
  }

  /** Awaits early bytes (TLS ClientHello) for at most `timeoutMs`; `hook` decides when enough. */
  preread (timeoutMs: number, hook: EarlyHook): void {
    if (this.phase !== 'early') return
    this.hook = hook
    this.client.setTimeout(timeoutMs)
    if (this.earlyLen > 0 || this.clientEnded) hook(this, false)
  }

  /** Starts the upstream side; the early bytes are replayed first. */
  connect (upstream: Upstream): void {
    if (this.phase !== 'early') return
    this.stopPreread()
    this.upstream = upstream
    this.phase = 'connecting'
    this.attempt()
  }

  /** Closes the client without an upstream (no route, preread failed, no server). */
  reject (end: TcpEnd): void {
    if (this.phase !== 'early') return
    this.stopPreread()
    this.ended ??= end
    this.phase = 'done'
    this.client.destroy()
  }

  /** Closes both sides now (listener destroy, shutdown timeout). */
  destroy (end: TcpEnd): void {
    this.ended ??= end
    this.hook = undefined
    const up = this.up
    if (this.phase === 'connecting' && up !== undefined) {
      this.releaseHeld({ ok: true })
      this.up = undefined
      up.destroy()
    }
    if (this.phase !== 'relay') this.phase = 'done'
    up?.destroy()
    this.client.destroy()
    this.maybeFinish()
  }

  private stopPreread (): void {
    if (this.hook === undefined) return
    this.hook = undefined
    this.client.setTimeout(this.opts.idleTimeout)
  }

  /** Keeps (copies) a chunk read before the upstream exists. Returns false to pause the client. */
  private stash (chunk: Buffer): boolean {
    ;(this.early ??= []).push(Buffer.from(chunk))
    this.earlyLen += chunk.length
    this.hook?.(this, false)
    return this.earlyLen < EARLY_LIMIT
  }

  private attempt (): void {
    const upstream = this.upstream as Upstream
    const server = upstream.pick(this.tried)
    if (server === undefined) {
      this.ended ??= this.tried === undefined ? 'no-server' : 'connect-failed'
      this.phase = 'done'
      this.client.destroy()
      this.maybeFinish()
      return
    }
    // Held from the pick on, so a burst of new streams sees it and maxConnections holds.
    upstream.acquire(server)
    this.held = server
    this.server = server
    this.upClosed = false
    this.upEnded = false
    this.connectStart = this.opts.clock.now()
    const up = net.connect({
      host: server.host,
      port: server.port,
      allowHalfOpen: true,
      noDelay: true,
      timeout: upstream.config.connectTimeout,
      onread: this.toClient.onread,
    })
    ;(up as Tagged)[kForward] = this
    this.up = up
    this.toClient.from = up
    up.on('connect', onUpConnect)
    up.on('end', onUpEnd)
    up.on('error', onUpError)
    up.on('timeout', onUpTimeout)
    up.on('close', onUpClose)
  }

  /** A connect attempt failed: count it, then try the next server unless the client left. */
  private attemptFailed (up: Socket, reason: 'connect' | 'timeout'): void {
    this.releaseHeld({ ok: false, reason })
    this.up = undefined
    up.destroy()
    ;(this.tried ??= new Set()).add(this.server as Server)
    if (this.clientClosed || this.ended !== undefined) {
      this.phase = 'done'
      this.maybeFinish()
      return
    }
    this.attempt()
  }

  private connected (up: Socket): void {
    const server = this.server as Server
    const upstream = this.upstream as Upstream
    up.setTimeout(0)
    // Sampled now, not at close: streams can live for hours and the balancer needs it sooner.
    upstream.record(server, { ok: true, ms: this.opts.clock.now() - this.connectStart })
    if (this.clientClosed || this.ended !== undefined) {
      // The client left while we connected; the attempt still told us the server is fine.
      this.phase = 'done'
      up.destroy()
      return
    }
    this.phase = 'relay'
    if (channels.tcpConnectionStart.hasSubscribers) {
      channels.tcpConnectionStart.publish({ listener: this.opts.listener, upstream: upstream.name, server: server.address })
    }
    this.toUpstream.to = up
    this.toUpstream.replay(this.replayBytes())
    this.early = undefined
    if (this.clientEnded) up.end()
  }

  /** The PROXY header (if configured) and the early bytes, as one write. */
  private replayBytes (): Buffer | undefined {
    const early = this.earlyLen > 0 ? this.earlyBytes() : undefined
    this.toUpstream.bytes += this.earlyLen
    if (this.opts.proxyProtocol === 'off') return early
    const c = this.client
    const header = proxyHeader(this.opts.proxyProtocol, this.clientAddress === undefined
      ? undefined
      : { sourceAddress: this.clientAddress, sourcePort: this.clientPort ?? 0, destAddress: c.localAddress ?? '', destPort: c.localPort ?? 0 })
    return early === undefined ? header : Buffer.concat([header, early])
  }

  private releaseHeld (outcome: { ok: true } | { ok: false, reason: 'connect' | 'timeout' }): void {
    const held = this.held
    if (held === undefined) return
    this.held = undefined
    ;(this.upstream as Upstream).release(held, outcome)
  }

  private maybeFinish (): void {
    if (!this.clientClosed || this.phase === 'connecting') return
    if (this.up !== undefined && !this.upClosed) return
    if (this.finished) return
    this.finished = true
    this.releaseHeld({ ok: true })
    this.phase = 'done'
    if (channels.tcpConnectionEnd.hasSubscribers) {
      channels.tcpConnectionEnd.publish({
        listener: this.opts.listener,
        client: formatAddress(this.clientAddress, this.clientPort),
        upstream: this.upstream?.name,
        server: this.server?.address,
        bytesIn: this.toUpstream.bytes,
        bytesOut: this.toClient.bytes,
        durationMs: this.opts.clock.now() - this.startedAt,
        end: this.ended ?? 'closed',
        sni: this.sni,
      })
    }
    this.opts.onClose(this)
  }

  /** @internal socket events, dispatched by the shared handlers below. */
  onClientEnd (): void {
    this.clientEnded = true
    if (this.phase === 'relay') finishWriting(this.up as Socket, this.upEnded)
    else this.hook?.(this, false)
  }

  onClientError (): void {
    this.ended ??= 'client-reset'
    if (this.phase === 'relay' && this.up !== undefined && !this.up.destroyed) this.up.resetAndDestroy()
  }

  onClientTimeout (): void {
    if (this.hook !== undefined) return this.hook(this, true)
    this.ended ??= 'idle-timeout'
    if (this.phase === 'relay') this.up?.destroy()
    this.client.destroy()
  }

  onClientClose (): void {
    this.clientClosed = true
    this.hook = undefined
    const up = this.up
    // The client is gone but the upstream may still be flushing; its idle timer now bounds that.
    if (this.phase === 'relay' && up !== undefined && !this.upClosed && this.opts.idleTimeout > 0) {
      up.setTimeout(this.opts.idleTimeout)
    }
    this.maybeFinish()
  }

  onUpConnect (up: Socket): void {
    if (up === this.up) this.connected(up)
  }

  onUpEnd (up: Socket): void {
    if (up !== this.up) return
    this.upEnded = true
    if (this.phase === 'relay') finishWriting(this.client, this.clientEnded)
  }

  onUpError (up: Socket): void {
    if (up !== this.up) return
    if (this.phase === 'connecting') return this.attemptFailed(up, 'connect')
    this.ended ??= 'upstream-reset'
    if (!this.client.destroyed) this.client.resetAndDestroy()
  }

  onUpTimeout (up: Socket): void {
    if (up !== this.up) return
    if (this.phase === 'connecting') return this.attemptFailed(up, 'timeout')
    this.ended ??= 'idle-timeout'
    up.destroy()
  }

  onUpClose (up: Socket): void {
    if (up !== this.up) return
    this.upClosed = true
    this.maybeFinish()
  }
}

/**
 * Sends our FIN to `socket`. When its peer has already sent its own and everything we wrote
 * has reached the kernel, close() alone does it: the kernel still delivers the queued bytes,
 * then the FIN, and it saves the shutdown() and a trip through the stream machinery.
 */
function finishWriting (socket: Socket, peerEnded: boolean): void {
  if (socket.destroyed) return
  if (peerEnded && socket.writableLength === 0) socket.destroy()
  else socket.end()
}

function formatAddress (host: string | undefined, port: number | undefined): string {
  if (host === undefined) return 'unknown'
  return host.includes(':') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`
}

function onClientEnd (this: Tagged): void { this[kForward].onClientEnd() }
function onClientError (this: Tagged): void { this[kForward].onClientError() }
function onClientTimeout (this: Tagged): void { this[kForward].onClientTimeout() }
function onClientClose (this: Tagged): void { this[kForward].onClientClose() }
function onUpConnect (this: Tagged): void { this[kForward].onUpConnect(this) }
function onUpEnd (this: Tagged): void { this[kForward].onUpEnd(this) }
function onUpError (this: Tagged): void { this[kForward].onUpError(this) }
function onUpTimeout (this: Tagged): void { this[kForward].onUpTimeout(this) }
function onUpClose (this: Tagged): void { this[kForward].onUpClose(this) }
