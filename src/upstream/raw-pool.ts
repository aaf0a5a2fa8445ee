import { RawConn, type ConnUser } from './raw-conn.js'

/**
 * Keep-alive TCP connections to one server for the lean HTTP/1 path: bare TCP handles
 * (tcp-handle.ts), with no HTTP client on top (the exchange writes and parses). Idle connections
 * are reused newest first (the one least likely to have been closed by the backend), closed after
 * `idleMs` (or the backend's own Keep-Alive hint, less a margin), and never hold more than
 * `cap` connections open, busy or idle; requests beyond it wait in order.
 */

const MARGIN_MS = 500

export class RawPool {
  private readonly idle: RawConn[] = []
  private readonly waiting: ConnUser[] = []
  private open = 0
  /** Closed by a reload: what is queued is still served, then every connection closes. */
  private closing = false

  constructor (
    private readonly host: string,
    private readonly port: number,
    private connectTimeout: number,
    readonly idleMs: number,
    public cap: number,
  ) {}

  /** A reload's new connectTimeout and cap: for connections opened from now on (and the queue). */
  update (connectTimeout: number, cap: number): void {
    this.connectTimeout = connectTimeout
    this.cap = cap
    while (this.open < this.cap && this.waiting.length > 0) this.connect(this.waiting.shift() as ConnUser)
  }

  /**
   * Gives `user` a connection: an idle one at once (synchronously), else a new one, else a
   * place in the queue. `fresh`: never an idle one (the retry after a keep-alive race).
   */
  acquire (user: ConnUser, fresh = false): void {
    if (!fresh) {
      const conn = this.idle.pop()
      if (conn !== undefined) {
        conn.take(user)
        user.connected(conn)
        return
      }
    }
    if (this.open >= this.cap) {
      if (fresh && this.idle.length > 0) (this.idle.shift() as RawConn).destroy()
      else {
        this.waiting.push(user)
        return
      }
    }
    this.connect(user)
  }

  /** Takes `user` out of the queue (it gave up: client gone, response timeout); true if it was in it. */
  cancel (user: ConnUser): boolean {
    const i = this.waiting.indexOf(user)
    if (i !== -1) this.waiting.splice(i, 1)
    return i !== -1
  }

  /**
   * Ends a use. `reusable`: the exchange ended cleanly at a message boundary; `hintMs` is the
   * backend's Keep-Alive timeout (0: none).
   */
  release (conn: RawConn, reusable: boolean, hintMs: number): void {
    conn.user = undefined
    if (!reusable || conn.destroyed) {
      conn.destroy()
      return
    }
    const next = this.waiting.shift()
    if (next !== undefined) {
      conn.take(next)
      next.connected(conn)
      return
    }
    const idleMs = hintMs > 0 ? Math.min(this.idleMs, hintMs - MARGIN_MS) : this.idleMs
    if (idleMs <= 0 || this.closing) {
      conn.destroy()
      return
    }
    conn.park(idleMs)
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

  /**
   * Keeps no connection from now on. Requests already queued were admitted to this server and
   * are served on the busy connections as they free up (dropping them would leave them to time
   * out); idle connections close now, the rest once the queue is empty.
   */
  close (): void {
    this.closing = true
    for (const c of this.idle.splice(0)) c.destroy()
  }

  private connect (user: ConnUser): void {
    this.open++
    const conn = new RawConn(this.host, this.port, this.connectTimeout, this)
    conn.user = user
  }
}
