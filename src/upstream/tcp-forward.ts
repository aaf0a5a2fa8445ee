import type { Clock } from '../clock.js'
import { channels, type TcpEnd } from '../observability/events.js'
import type { Server } from './server.js'
import { dial, type DialOwner } from './tcp-dial.js'
import { formatPeer, localOf, peerOf, type AcceptedHandle } from './tcp-handle.js'
import { TcpPreread } from './tcp-preread.js'
import { Conn, type Leg } from './tcp-relay.js'
import type { Upstream } from './upstream.js'

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

/**
 * One proxied TCP stream: picks a server, connects with `connectTimeout`, tries the next server
 * on a refused or timed-out connect while the client's early bytes wait (bounded), then relays
 * both ways with backpressure and half-close until both sockets have closed. The early phase
 * (those bytes, and the preread an SNI route waits on) is its base class, tcp-preread.ts.
 *
 * The forward's state decides what each socket event means; the Conns report here, and timers
 * are module-level functions given the forward, so a connection allocates no closures.
 */
export class TcpForward extends TcpPreread implements DialOwner {
  readonly startedAt: number
  /** The client's address and port, captured at accept when the log or a PROXY header needs them. */
  readonly clientAddress?: string
  readonly clientPort?: number
  upstream?: Upstream
  /** The server of the established stream, or the last one tried. */
  server?: Server
  sni?: string

  protected readonly client: Conn
  private up?: Conn
  /** The server acquired for the current attempt or stream, until released. */
  private held?: Server
  private tried?: Set<Server>
  private connectStart = 0
  private readonly toUpstream: Leg
  private toClient?: Leg
  private ended?: TcpEnd
  private finished = false
  private idleTimer?: NodeJS.Timeout

  constructor (handle: AcceptedHandle, private readonly opts: TcpForwardOptions) {
    super()
    this.startedAt = opts.clock.now()
    if (opts.proxyProtocol !== 'off' || channels.tcpConnectionEnd.hasSubscribers) {
      // Read now: once the peer resets, the kernel no longer knows it.
      const peer = peerOf(handle)
      this.clientAddress = peer?.address
      this.clientPort = peer?.port
    }
    handle.setNoDelay(true)
    this.client = new Conn(handle, this)
    this.toUpstream = this.client.leg
    if (opts.idleTimeout > 0) this.idleTimer = setTimeout(onIdleTimer, opts.idleTimeout, this)
    this.client.resume()
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
    this.client.close()
  }

  /** Closes both sides now (listener destroy, shutdown timeout). */
  destroy (end: TcpEnd): void {
    this.ended ??= end
    this.hook = undefined
    const up = this.up
    if (this.phase === 'connecting' && up !== undefined) {
      this.releaseHeld({ ok: true })
      this.up = undefined
    }
    if (this.phase !== 'relay') this.phase = 'done'
    this.cut(up)
    this.maybeFinish()
  }

  /**
   * Closes the client and `up`. Bytes still on their way would be lost behind a clean FIN: both
   * are reset then, so neither side takes a shortened stream for a whole one.
   */
  private cut (up: Conn | undefined): void {
    if (this.toUpstream.pending || this.toClient?.pending === true) {
      up?.reset()
      this.client.reset()
    } else {
      up?.close()
      this.client.close()
    }
  }

  private attempt (): void {
    const upstream = this.upstream as Upstream
    const server = upstream.pick(this.tried)
    if (server === undefined) {
      this.ended ??= this.tried === undefined ? 'no-server' : 'connect-failed'
      this.phase = 'done'
      this.client.close()
      this.maybeFinish()
      return
    }
    // Held from the pick on, so a burst of new streams sees it and maxConnections holds.
    upstream.acquire(server)
    this.held = server
    this.server = server
    this.connectStart = this.opts.clock.now()
    const up = dial(server.host, server.port, this)
    this.up = up
    this.toClient = up.leg
    this.phaseTimer = setTimeout(onConnectTimer, upstream.config.connectTimeout, this, up)
  }

  /** @internal The connect of `up` finished with `status` (0, or a negative errno). */
  dialed (up: Conn, status: number): void {
    if (up !== this.up || this.phase !== 'connecting') return
    if (status < 0) this.attemptFailed(up, 'connect')
    else this.connected(up)
  }

  /** A connect attempt failed: count it, then try the next server unless the client left. */
  private attemptFailed (up: Conn, reason: 'connect' | 'timeout'): void {
    clearTimeout(this.phaseTimer)
    this.phaseTimer = undefined
    this.releaseHeld({ ok: false, reason })
    this.up = undefined
    up.close()
    ;(this.tried ??= new Set()).add(this.server as Server)
    if (this.client.closed || this.ended !== undefined) {
      this.phase = 'done'
      this.maybeFinish()
      return
    }
    this.attempt()
  }

  private connected (up: Conn): void {
    clearTimeout(this.phaseTimer)
    this.phaseTimer = undefined
    const server = this.server as Server
    const upstream = this.upstream as Upstream
    // Sampled now, not at close: streams can live for hours and the balancer needs it sooner.
    upstream.record(server, { ok: true, ms: this.opts.clock.now() - this.connectStart })
    if (this.client.closed || this.ended !== undefined) {
      // The client left while we connected; the attempt still told us the server is fine.
      this.phase = 'done'
      up.close()
      return
    }
    this.phase = 'relay'
    if (channels.tcpConnectionStart.hasSubscribers) {
      channels.tcpConnectionStart.publish({ listener: this.opts.listener, upstream: upstream.name, server: server.address })
    }
    up.handle.setNoDelay(true)
    up.leg.to = this.client
    up.resume()
    this.toUpstream.to = up
    this.toUpstream.bytes += this.early.length
    this.toUpstream.replay(this.early.replay(this.opts.proxyProtocol, { address: this.clientAddress, port: this.clientPort },
      this.opts.proxyProtocol === 'off' ? undefined : localOf(this.client.handle)))
    if (this.client.eof) up.end()
  }

  private releaseHeld (outcome: { ok: true } | { ok: false, reason: 'connect' | 'timeout' }): void {
    const held = this.held
    if (held === undefined) return
    this.held = undefined
    ;(this.upstream as Upstream).release(held, outcome)
  }

  private maybeFinish (): void {
    if (!this.client.gone || this.phase === 'connecting') return
    if (this.up !== undefined && !this.up.gone) return
    if (this.finished) return
    this.finished = true
    clearTimeout(this.idleTimer)
    clearTimeout(this.phaseTimer)
    this.releaseHeld({ ok: true })
    this.phase = 'done'
    if (channels.tcpConnectionEnd.hasSubscribers) {
      channels.tcpConnectionEnd.publish({
        listener: this.opts.listener,
        client: formatPeer(this.clientAddress, this.clientPort),
        upstream: this.upstream?.name,
        server: this.server?.address,
        bytesIn: this.toUpstream.bytes,
        bytesOut: this.toClient?.bytes ?? 0,
        durationMs: this.opts.clock.now() - this.startedAt,
        end: this.ended ?? 'closed',
        sni: this.sni,
      })
    }
    this.opts.onClose(this)
  }

  /** @internal */
  connEof (conn: Conn): void {
    if (conn === this.client) {
      if (this.phase === 'relay') this.up?.end()
      else this.hook?.(this, false)
    } else if (conn === this.up && this.phase === 'relay') {
      this.client.end()
    }
  }

  /** @internal A reset, or a failed read or write: the other side learns it as a reset. */
  connFailed (conn: Conn): void {
    if (conn === this.client) {
      this.ended ??= 'client-reset'
      if (this.phase === 'relay') this.up?.reset()
      conn.close()
    } else if (conn === this.up) {
      if (this.phase === 'connecting') return this.attemptFailed(conn, 'connect')
      this.ended ??= 'upstream-reset'
      this.client.reset()
      conn.close()
    }
  }

  /** @internal */
  connClosed (conn: Conn): void {
    if (conn === this.client) this.hook = undefined
    else if (conn !== this.up) return
    this.maybeFinish()
  }

  /** @internal Both directions idle for idleTimeout (checked lazily: reads and writes only stamp a time). */
  idleCheck (): void {
    const timeout = this.opts.idleTimeout
    const last = Math.max(this.toUpstream.at, this.toClient?.at ?? 0)
    const idle = performance.now() - last
    // The preread has its own deadline; timers may fire up to a millisecond early.
    if (this.hook !== undefined || idle < timeout - 1) {
      this.idleTimer = setTimeout(onIdleTimer, this.hook !== undefined ? timeout : timeout - idle, this)
      return
    }
    this.idleTimer = undefined
    this.ended ??= 'idle-timeout'
    this.cut(this.phase === 'relay' ? this.up : undefined)
  }

  /** @internal */
  connectTimedOut (up: Conn): void {
    if (up === this.up && this.phase === 'connecting') this.attemptFailed(up, 'timeout')
  }
}

function onIdleTimer (forward: TcpForward): void { forward.idleCheck() }
// libuv runs timers before I/O callbacks: after a stall of our own loop longer than the connect
// timeout, a connect that completed meanwhile is seen only in this turn's poll phase, which runs
// before setImmediate callbacks. Deciding there does not blame a healthy server for our stall.
function onConnectTimer (forward: TcpForward, up: Conn): void { setImmediate(onConnectDeadline, forward, up) }
function onConnectDeadline (forward: TcpForward, up: Conn): void { forward.connectTimedOut(up) }
