import { util } from '../node-builtins.js'
import type { RawPool } from './raw-pool.js'
import type { UpstreamError } from './retry-policy.js'
import { dial } from './tcp-dial.js'
import { writeLatin1, type WriteReq } from './tcp-handle.js'
import type { DialOwner } from './tcp-dial.js'
import type { Conn } from './tcp-relay.js'

/**
 * One keep-alive connection of the lean HTTP/1 path (raw-pool.ts hands them out), and what it
 * tells the exchange that holds it. Kept apart from the pool, which only decides who gets which
 * connection: this is the socket, its errors and its one timer.
 */

/** What holds a connection: the exchange. Every callback is for the connection it holds. */
export interface ConnUser {
  /** A connection for this request: reused (`conn.uses > 0`) or newly connected. */
  connected: (conn: RawConn) => void
  /** The connect failed (ECONNREFUSED …, or UND_ERR_CONNECT_TIMEOUT). */
  connectFailed: (err: UpstreamError) => void
  /** Bytes read; their memory is reused after the call returns, so copy what is kept. */
  data: (chunk: Buffer) => void
  /** The upstream ended (`clean`: a FIN, no error) or the socket failed while held. */
  closed: (err: UpstreamError, clean: boolean) => void
  /** No byte came for the watch time (see watch) while held. */
  stalled: () => void
  /** The response head was not there by the time send() gave. */
  responseTimedOut: () => void
}

const kRaw = Symbol('tandem.rawConn')

/**
 * One upstream connection. Its one timer is never reset per request: when it fires it checks
 * what the connection is doing (connecting, idle since when, a response head due, last read while
 * held) and either acts or arms itself for the rest of the time, so a reused connection costs no
 * timer calls. The timer fires at least every pool idle time (4 s), so a response deadline later
 * than that (the default is 60 s) never re-arms it.
 */
export class RawConn implements DialOwner {
  /** Requests this connection has carried to the end (the exchange counts them). */
  uses = 0
  user: ConnUser | undefined
  private readonly conn: Conn
  private connecting = true
  private error: UpstreamError | undefined
  private timer: NodeJS.Timeout
  /** performance.now() when the timer fires. */
  private timerAt: number
  /** While held: performance.now() by which the response head is due (0: none). */
  private dueBy = 0
  /** performance.now() when it went idle, or -1 while held. */
  private idleSince = -1
  private idleMs = 0
  /** While held: how long without a byte read counts as stalled (0: not watched). */
  private watchMs = 0

  constructor (host: string, port: number, private readonly connectMs: number, private readonly pool: RawPool) {
    this.conn = dial(host, port, this)
    this.timer = setTimeout(this.onTimer, connectMs)
    this.timerAt = performance.now() + connectMs
  }

  get destroyed (): boolean {
    return this.conn.closed
  }

  /**
   * Sends a request head whose response head is due within `dueMs` (else the user hears
   * responseTimedOut); a failure shows as closed() (the socket is reset).
   */
  send (head: string, dueMs: number): void {
    const now = performance.now()
    this.dueBy = now + Math.max(1, dueMs)
    if (this.dueBy < this.timerAt) this.arm(this.dueBy - now)
    const r = writeLatin1(this.conn.handle, head, onWritten, kRaw, this)
    if (r < 0) this.connFailed(this.conn, r)
  }

  /** From now until released, `ms` without a byte read is a stall. */
  watch (ms: number): void {
    this.dueBy = 0
    this.watchMs = ms
    if (ms < this.pool.idleMs) this.arm(ms)
  }

  pause (): void {
    this.conn.pause()
  }

  resume (): void {
    this.conn.resume()
  }

  destroy (): void {
    this.conn.close()
  }

  /** @internal Now held by `user` (from the pool's idle list). */
  take (user: ConnUser): void {
    this.user = user
    this.idleSince = -1
    this.watchMs = 0
    this.dueBy = 0
  }

  /** @internal Now idle in the pool for up to `ms`. */
  park (ms: number): void {
    this.user = undefined
    this.idleSince = performance.now()
    this.idleMs = ms
    this.watchMs = 0
    this.dueBy = 0
    // A backend's Keep-Alive hint shorter than the pool's own: close in time, ahead of its FIN.
    if (ms < this.pool.idleMs) this.arm(ms)
  }

  dialed (_conn: Conn, status: number): void {
    if (status < 0) return this.connFailed(this.conn, status)
    this.connecting = false
    this.conn.handle.setNoDelay(true)
    this.conn.resume()
    this.arm(this.pool.idleMs)
    const u = this.user
    if (u !== undefined) u.connected(this)
    else this.pool.release(this, true, 0)
  }

  stash (chunk: Buffer): boolean {
    const u = this.user
    // Bytes on an idle connection answer no request: never trust it again.
    if (u === undefined) this.conn.close()
    else u.data(chunk)
    return true
  }

  connEof (): void {
    this.conn.close()
  }

  connFailed (_conn: Conn, status: number): void {
    this.error ??= errnoError(status)
    this.conn.close()
  }

  connClosed (): void {
    clearTimeout(this.timer)
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

  /** @internal A pending write ended. */
  written (status: number): void {
    if (status < 0 && !this.conn.closed) this.connFailed(this.conn, status)
  }

  private arm (ms: number): void {
    clearTimeout(this.timer)
    const after = Math.max(1, Math.ceil(ms))
    this.timer = setTimeout(this.onTimer, after)
    this.timerAt = performance.now() + after
  }

  private readonly onTimer = (): void => {
    if (this.conn.closed) return
    if (this.connecting) {
      this.error = Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })
      this.conn.close()
      return
    }
    const now = performance.now()
    if (this.idleSince >= 0) {
      const left = this.idleSince + this.idleMs - now
      if (left <= 0) this.conn.close()
      else this.arm(left)
      return
    }
    if (this.dueBy > 0) {
      const left = this.dueBy - now
      if (left > 0) return this.arm(Math.min(left, this.pool.idleMs))
      this.dueBy = 0
      this.user?.responseTimedOut()
      if (!this.conn.closed) this.arm(this.pool.idleMs)
      return
    }
    if (this.watchMs > 0) {
      const left = this.conn.leg.at + this.watchMs - now
      if (left <= 0) this.user?.stalled()
      if (!this.conn.closed) this.arm(left <= 0 ? this.watchMs : left)
      return
    }
    this.arm(this.pool.idleMs)
  }
}

function onWritten (this: WriteReq, status: number): void {
  (this[kRaw] as RawConn).written(status)
}

/** A libuv errno as the error net.Socket would have given (code ECONNRESET …). */
function errnoError (status: number): UpstreamError {
  let code: string
  try {
    code = util.getSystemErrorName(status)
  } catch {
    code = 'UND_ERR_SOCKET'
  }
  return Object.assign(new Error(code), { code, errno: status })
}
