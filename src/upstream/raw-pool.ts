import net from 'node:net'
import type { UpstreamError } from './retry-policy.js'

/**
 * Keep-alive TCP connections to one server for the lean HTTP/1 path: the sockets themselves,
 * with no HTTP client on top (the exchange writes and parses). Idle connections are reused
 * newest first (the one least likely to have been closed by the backend), closed after
 * `idleMs` (or the backend's own Keep-Alive hint, less a margin), and never hold more than
 * `cap` connections open, busy or idle; requests beyond it wait in order.
 */

/** What holds a connection: the exchange. Every callback is for the connection it holds. */
export interface ConnUser {
  /** A connection for this request: reused (`conn.uses > 0`) or newly connected. */
  connected: (conn: RawConn) => void
  /** The connect failed (ECONNREFUSED …, or UND_ERR_CONNECT_TIMEOUT). */
  connectFailed: (err: UpstreamError) => void
  data: (chunk: Buffer) => void
  /** The upstream ended (`clean`: a FIN, no error) or the socket failed while held. */
  closed: (err: UpstreamError, clean: boolean) => void
  /** No byte moved for the body timeout while held. */
  stalled: () => void
}

const MARGIN_MS = 500

/** One upstream socket; its listeners are set once and dispatch to whoever holds it. */
export class RawConn {
  /** Requests this connection has carried to the end (the exchange counts them). */
  uses = 0
  user: ConnUser | undefined
  private connecting = true
  private error: UpstreamError | undefined

  constructor (readonly socket: net.Socket, private readonly pool: RawPool) {
    socket.on('connect', this.onConnect)
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    socket.on('timeout', this.onTimeout)
  }

  private readonly onConnect = (): void => {
    this.connecting = false
    this.socket.setTimeout(0)
    const u = this.user
    if (u !== undefined) u.connected(this)
    else this.pool.release(this, true, 0)
  }

  private readonly onData = (chunk: Buffer): void => {
    const u = this.user
    // Bytes on an idle connection answer no request: never trust it again.
    if (u === undefined) this.socket.destroy()
    else u.data(chunk)
  }

  private readonly onEnd = (): void => {
    this.socket.destroy()
  }

  private readonly onError = (err: UpstreamError): void => {
    this.error = err
  }

  private readonly onClose = (): void => {
    this.pool.gone(this)
    const u = this.user
    if (u === undefined) return
    this.user = undefined
    const clean = this.error === undefined
    const err: UpstreamError = this.error ?? Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
    // The retry policy tells the keep-alive race from a dead server by this (retry-policy.ts).
    err.socket = { bytesRead: this.uses > 0 ? 1 : 0 }
    if (this.connecting) u.connectFailed(err)
    else u.closed(err, clean)
  }

  private readonly onTimeout = (): void => {
    if (this.connecting) {
      this.error = Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })
      this.socket.destroy()
    } else if (this.user === undefined) {
      this.socket.destroy()
    } else {
      this.user.stalled()
    }
  }
}

export class RawPool {
  private readonly idle: RawConn[] = []
  private readonly waiting: ConnUser[] = []
  private open = 0

  constructor (
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeout: number,
    private readonly idleMs: number,
    readonly cap: number,
  ) {}

  /**
   * Gives `user` a connection: an idle one at once (synchronously), else a new one, else a
   * place in the queue. `fresh`: never an idle one (the retry after a keep-alive race).
   */
  acquire (user: ConnUser, fresh = false): void {
    if (!fresh) {
      const conn = this.idle.pop()
      if (conn !== undefined) {
        conn.socket.setTimeout(0)
        conn.user = user
        user.connected(conn)
        return
      }
    }
    if (this.open >= this.cap) {
      if (fresh && this.idle.length > 0) (this.idle.shift() as RawConn).socket.destroy()
      else {
        this.waiting.push(user)
        return
      }
    }
    this.connect(user)
  }

  /** Takes `user` out of the queue (it gave up: client gone, response timeout). */
  cancel (user: ConnUser): void {
    const i = this.waiting.indexOf(user)
    if (i !== -1) this.waiting.splice(i, 1)
  }

  /**
   * Ends a use. `reusable`: the exchange ended cleanly at a message boundary; `hintMs` is the
   * backend's Keep-Alive timeout (0: none).
   */
  release (conn: RawConn, reusable: boolean, hintMs: number): void {
    conn.user = undefined
    if (!reusable || conn.socket.destroyed) {
      conn.socket.destroy()
      return
    }
    const next = this.waiting.shift()
    if (next !== undefined) {
      conn.user = next
      next.connected(conn)
      return
    }
    const idleMs = hintMs > 0 ? Math.min(this.idleMs, hintMs - MARGIN_MS) : this.idleMs
    if (idleMs <= 0) {
      conn.socket.destroy()
      return
    }
    conn.socket.setTimeout(idleMs)
    this.idle.push(conn)
  }

  /** The socket closed: it no longer counts, and a waiting request may connect in its place. */
  gone (conn: RawConn): void {
    this.open--
    const i = this.idle.indexOf(conn)
    if (i !== -1) this.idle.splice(i, 1)
    const next = this.waiting.shift()
    if (next !== undefined) this.connect(next)
  }

  close (): void {
    this.waiting.length = 0
    for (const c of this.idle.splice(0)) c.socket.destroy()
  }

  private connect (user: ConnUser): void {
    this.open++
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true })
    socket.setTimeout(this.connectTimeout)
    const conn = new RawConn(socket, this)
    conn.user = user
  }
}
