import { INCOMPLETE, UNSUPPORTED, headEnd, parseRequestHead } from '../http1/request-head.js'
import type { RawExchange } from '../upstream/raw-exchange.js'
import type { ClientSide } from '../upstream/raw-forwarder.js'
import { answerLines, answerRaw } from './http-answers.js'
import { FastLifecycle } from './fast-lifecycle.js'
import { grow, onlyLineBreaks } from './held-bytes.js'
import { MAX_QUEUED } from './http-connection.js'

/**
 * One client connection on the lean path: reads request heads, runs them one at a time in
 * order (as HttpConnection does for node:http: the next pipelined request waits for the previous
 * response, reading stops while requests wait, at most MAX_QUEUED wait), and hands the
 * connection to node:http for good at the first request the lean parser does not take.
 */
export class FastConnection extends FastLifecycle implements ClientSide {
  private off = 0
  /** Where the search for the next head's end may resume. */
  private scanFrom = 0
  /** Heads counted in `buf` past the running request, and where the counting got to. */
  private queued = 0
  private countedTo = 0
  /** The sequence number of the last request this connection runs (0: no limit yet). */
  private lastSeq = 0
  private last = false
  private ended = false
  /** When the head being read is due (performance.now), while headerTimer runs. */
  private headDue = 0

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

  override onData (chunk: Buffer): void {
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

  override onEnd (): void {
    this.ended = true
    if (!this.busy && !this.detached) this.next()
  }

  /** @internal */
  onHeaderTimeout (): void {
    this.headerTimer = undefined
    this.detach()
    this.host.refuseHead(this, 408, 'HPE_HEADERS_TIMEOUT')
  }

  override onClose (): void {
    const ex = this.exchange
    this.exchange = undefined
    if (this.headerTimer !== undefined) clearTimeout(this.headerTimer)
    ex?.clientClosed()
    this.settle()
    this.endGrace()
    this.host.closed(this)
  }
}

// At module level, the connection passed as the timer's argument: no closure per connection for
// a timer most connections never arm.
function headerTimedOut (conn: FastConnection): void {
  conn.onHeaderTimeout()
}
