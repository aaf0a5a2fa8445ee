import { INCOMPLETE, UNSUPPORTED, headEnd, parseRequestHead } from '../http1/request-head.js'
import type { RawExchange } from '../upstream/raw-exchange.js'
import type { AcceptedHandle } from '../upstream/tcp-handle.js'
import type { ClientSide } from '../upstream/raw-forwarder.js'
import { ClientConn, type ClientConnOwner } from './client-conn.js'
import { answerLines, answerRaw } from './http-answers.js'
import type { FastHost } from './fast-host.js'
import { grow, onlyLineBreaks } from './held-bytes.js'
import { MAX_QUEUED } from './http-connection.js'

/** How long a shutdown waits for the next request of an idle connection (see close). */
const FRESH_GRACE_MS = 500


/**
 * One client connection on the lean path: reads request heads, runs them one at a time in
 * order (as HttpConnection does for node:http: the next pipelined request waits for the previous
 * response, reading stops while requests wait, at most MAX_QUEUED wait), and hands the
 * connection to node:http for good at the first request the lean parser does not take.
 */
export class FastConnection implements ClientSide, ClientConnOwner {
  readonly out: ClientConn
  private buf: Buffer | undefined
  /** Where `buf` grows when a head spans reads (see append). */
  private store: Buffer | undefined
  private off = 0
  /** Where the search for the next head's end may resume. */
  private scanFrom = 0
  /** Heads counted in `buf` past the running request, and where the counting got to. */
  private queued = 0
  private countedTo = 0
  private started = 0
  /** The sequence number of the last request this connection runs (0: no limit yet). */
  private lastSeq = 0
  private busy = false
  private last = false
  private ended = false
  private detached = false
  private exchange: RawExchange | undefined
  private headerTimer: NodeJS.Timeout | undefined
  /** When the head being read is due (performance.now), while headerTimer runs. */
  private headDue = 0
  /** A closing answer is being flushed: settle once it is out. */
  private settleOnDrain = false
  /** Set while shutdown holds a connection that has not sent its first request yet. */
  private graceTimer: NodeJS.Timeout | undefined
  private graced = false

  constructor (handle: AcceptedHandle, private readonly host: FastHost) {
    this.out = new ClientConn(handle, this, host.idleTimeout)
    this.out.resume()
  }

  /** The client's address (IPv4-mapped form unmapped), read once per connection. */
  get peer (): string {
    return this.out.peer
  }

  /** Idle: no request running and nothing read (shutdown closes such connections at once). */
  get idle (): boolean {
    return !this.busy && this.buf === undefined
  }

  /** Accepted just before its listener stopped serving, and held for its first request (see close). */
  get heldForFirst (): boolean {
    return this.graced && this.started === 1
  }

  keepsAlive (): boolean {
    return !this.last && !this.host.closing && !this.ended
  }

  exchangeDone (keepAlive: boolean): void {
    this.exchange = undefined
    if (!keepAlive && this.ended && !this.last && this.buf !== undefined && !onlyLineBreaks(this.buf, this.off) &&
      parseRequestHead(this.buf, this.off, this.host.maxHeaderSize, this.off) === INCOMPLETE) {
      // The FIN came with the start of another head: that one gets its 400, as node:http's.
      this.settle()
      this.detach()
      this.host.refuseHead(this, 400, 'HPE_INVALID_EOF_STATE')
      return
    }
    if (!keepAlive) {
      // Settled once the answer is flushed: a shutdown waiting on it must not cut it short.
      this.finishConnection()
      if (this.out.flushed) this.settle()
      else this.settleOnDrain = true
      return
    }
    this.settle()
    this.next()
  }

  answer (status: number, extra?: readonly string[]): void {
    this.exchange = undefined
    this.detach()
    answerRaw(this.out, status, answerLines(status, extra))
    this.settle()
  }

  cut (): void {
    this.exchange = undefined
    this.detach()
    this.out.destroy()
    this.settle()
  }

  /** The listener answered the request itself (answerRaw or a 429): this connection is done. */
  answered (): void {
    this.detach()
    this.settle()
  }

  /**
   * Shutdown: a busy connection closes after its response. An idle one may have its client's
   * next request on the wire already (its first, for one accepted a moment ago; the next one on
   * a keep-alive connection), and closing it with bytes unread resets the client, which cannot
   * safely retry a POST: it is held as in flight for FRESH_GRACE_MS (within the shutdown
   * deadline, which destroys what is left), its request answered with `Connection: close`, or
   * closed when nothing came.
   */
  close (): void {
    if (!this.idle || this.detached || this.graced) return
    this.graced = true
    this.host.hold()
    this.graceTimer = setTimeout(graceOver, FRESH_GRACE_MS, this)
  }

  /** Everything is closed at once (the listener is destroyed). */
  destroy (): void {
    this.detach()
    this.out.destroy()
  }

  onData (chunk: Buffer): void {
    if (this.detached) return
    if (this.buf === undefined) {
      this.buf = chunk
      this.off = 0
      this.scanFrom = 0
      this.countedTo = 0
    } else {
      this.append(this.buf, chunk)
    }
    if (this.busy) this.count()
    else this.next()
  }

  /** Adds a read to the bytes held (held-bytes.ts: O(n) in all for a head spread over reads). */
  private append (buf: Buffer, chunk: Buffer): void {
    const g = grow(buf, this.off, chunk, this.store)
    this.buf = g.buf
    this.store = g.store
    if (g.dropped === 0) return
    this.scanFrom -= g.dropped
    this.countedTo = Math.max(0, this.countedTo - g.dropped)
    this.off = 0
  }

  /** Starts the next request in the buffer, waits for more bytes, or hands over. */
  private next (): void {
    if (this.detached) return
    const buf = this.buf
    if (buf === undefined) {
      if (this.ended) this.finishConnection()
      else this.out.resume()
      return
    }
    if (this.lastSeq !== 0 && this.started >= this.lastSeq) {
      this.finishConnection()
      return
    }
    const r = parseRequestHead(buf, this.off, this.host.maxHeaderSize, this.scanFrom)
    if (r === INCOMPLETE) {
      this.scanFrom = buf.length
      if (this.ended && onlyLineBreaks(buf, this.off)) this.finishConnection()
      else if (this.ended) {
        // A head cut short by the client's FIN: llhttp's verdict on the general path, not a
        // silent close. (Line breaks alone before the FIN are no request: llhttp skips them.)
        this.detach()
        this.host.refuseHead(this, 400, 'HPE_INVALID_EOF_STATE')
      } else {
        if (this.headerTimer === undefined) {
          this.headerTimer = setTimeout(headerTimedOut, this.host.headerTimeout, this)
          this.headDue = performance.now() + this.host.headerTimeout
        }
        this.out.resume()
      }
      return
    }
    if (r === UNSUPPORTED) {
      const rest = buf.subarray(this.off)
      const headLeftMs = this.headerTimer === undefined ? undefined : this.headDue - performance.now()
      this.detach()
      this.host.handOver(this, rest.length > 0 ? rest : undefined, headLeftMs)
      return
    }
    if (this.headerTimer !== undefined) {
      clearTimeout(this.headerTimer)
      this.headerTimer = undefined
    }
    this.off = r.end
    this.scanFrom = r.end
    if (r.end <= this.countedTo) this.queued--
    else this.countedTo = r.end
    if (this.off === buf.length) this.buf = this.store = undefined
    this.started++
    if (r.close || this.started === this.lastSeq) this.last = true
    this.busy = true
    const ex = this.host.request(this, r)
    this.endGrace()
    if (ex instanceof Promise) void ex.then((e) => { this.run(e) }, () => { this.answer(500) })
    else this.run(ex)
  }

  private run (ex: RawExchange | undefined): void {
    if (ex === undefined) {
      this.answered()
      return
    }
    if (this.detached || this.out.destroyed) {
      this.settle()
      return
    }
    this.exchange = ex
    ex.start()
    if (this.buf !== undefined && this.busy) this.count()
  }

  /** Counts the complete heads waiting in the buffer; reading stops while any wait. */
  private count (): void {
    const buf = this.buf
    if (buf === undefined) return
    for (;;) {
      const end = headEnd(buf, this.countedTo, this.countedTo)
      if (end === -1) break
      this.countedTo = end
      if (++this.queued >= MAX_QUEUED && this.lastSeq === 0) this.lastSeq = this.started + MAX_QUEUED
    }
    if (this.queued > 0 || buf.length - this.off > this.host.maxHeaderSize) this.out.pause()
  }

  /**
   * Ends the connection after its last response. With nothing more read from the client it
   * closes once the answer is flushed (node:http's destroySoon); with bytes still unread it
   * lingers, so that the reset those would cause cannot destroy the answer.
   */
  private finishConnection (): void {
    const unread = this.buf !== undefined
    this.detach()
    if (unread) this.out.linger()
    else this.out.destroySoon()
  }

  private settle (): void {
    if (!this.busy) return
    this.busy = false
    this.host.settled()
  }

  /** Stops reading for this connection; what comes later is someone else's (or discarded). */
  private detach (): void {
    if (this.detached) return
    this.detached = true
    this.buf = this.store = undefined
    if (this.headerTimer !== undefined) clearTimeout(this.headerTimer)
  }

  onEnd (): void {
    this.ended = true
    if (!this.busy && !this.detached) this.next()
  }

  onIdle (): boolean {
    // Idle means nothing in flight; a slow upstream is judged by the response timeout instead.
    // A detached connection is only flushing its last bytes: to a client that stopped reading.
    return this.detached || !this.busy || this.out.needsDrain
  }

  /** @internal */
  onHeaderTimeout (): void {
    this.headerTimer = undefined
    this.detach()
    this.host.refuseHead(this, 408, 'HPE_HEADERS_TIMEOUT')
  }

  /** Ends a shutdown hold (the request came, the client left, or the grace ran out). */
  private endGrace (): void {
    if (this.graceTimer === undefined) return
    clearTimeout(this.graceTimer)
    this.graceTimer = undefined
    this.host.settled()
  }

  /** @internal */
  onGraceOver (): void {
    if (this.idle && !this.detached) {
      this.detach()
      this.out.destroy()
    }
    this.endGrace()
  }

  onDrain (): void {
    this.exchange?.clientDrained()
    if (this.settleOnDrain) {
      this.settleOnDrain = false
      this.settle()
    }
  }

  onClose (): void {
    const ex = this.exchange
    this.exchange = undefined
    if (this.headerTimer !== undefined) clearTimeout(this.headerTimer)
    ex?.clientClosed()
    this.settle()
    this.endGrace()
    this.host.closed(this)
  }
}

// Timer callbacks at module level, the connection passed as the timer's argument: no closure
// per connection for timers most connections never arm.
function headerTimedOut (conn: FastConnection): void {
  conn.onHeaderTimeout()
}

function graceOver (conn: FastConnection): void {
  conn.onGraceOver()
}
