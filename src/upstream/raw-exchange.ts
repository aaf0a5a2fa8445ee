import { BodyFraming } from '../http1/body-framing.js'
import { clientHead } from '../http1/client-head.js'
import { ResponseHeadError, readFinalHead, type ResponseHead } from '../http1/response-head.js'
import { RawAttempts } from './raw-attempts.js'
import type { RawConn } from './raw-conn.js'
import type { RawPool } from './raw-pool.js'
import { isServerFailureStatus, type UpstreamError } from './retry-policy.js'

/** undici's limit for a response head, kept for the lean path. */
const MAX_RESPONSE_HEAD = 64 * 1024

/**
 * One bodiless GET or HEAD over raw sockets: the response side, on top of its attempts
 * (raw-attempts.ts). The response head is rebuilt for the client; body bytes are relayed as they
 * come, with the framing (length, chunked, or until close, re-chunked) tracked only to find the
 * end, and the client's backpressure held against the upstream.
 */
export class RawExchange extends RawAttempts {
  private keepAlive = false
  private paused = false
  /** The client did not drain at some point of this response, so the server was held back. */
  private heldBack = false

  override data (chunk: Buffer): void {
    if (this.response === undefined) this.onHead(chunk)
    else this.onBody(chunk, 0)
  }

  override closed (err: UpstreamError, clean: boolean): void {
    this.conn = undefined
    if (this.response?.framing === 'close' && clean) {
      this.client.out.write('0\r\n\r\n')
      this.finish(false)
      return
    }
    // The client stopped reading, so this stopped reading the server: a server that gives up
    // sending meanwhile (its own send timeout; seen only once reading resumes) is not failing.
    // The client's answer is cut.
    if (this.heldBack && this.response !== undefined) {
      this.endAttempt(undefined)
      this.fail('UPSTREAM_RESET')
      return
    }
    this.upstreamFailed(err, this.pending !== undefined || this.response !== undefined)
  }

  override stalled (): void {
    // A client that does not read holds the upstream back: its own idle timeout judges it.
    if (this.paused) return
    this.dropConn()
    this.upstreamFailed(Object.assign(new Error('body timeout'), { code: 'UND_ERR_BODY_TIMEOUT' }), true)
  }

  /** The client's socket drained: move the upstream's bytes again. */
  clientDrained (): void {
    if (!this.paused) return
    this.paused = false
    this.conn?.resume()
  }

  /** The client went away: abandon the attempt, blame nobody (nginx logs 499). */
  clientClosed (): void {
    if (this.over) return
    this.over = true
    const status = this.response !== undefined && this.response.status < 500 ? this.response.status : 499
    this.endAttempt(undefined)
    this.publish(status, 'CLIENT_CLOSED')
  }

  private onHead (chunk: Buffer): void {
    let got: ReturnType<typeof readFinalHead>
    try {
      got = readFinalHead(this.pending, chunk, MAX_RESPONSE_HEAD, this.head.method === 'HEAD')
    } catch (err) {
      this.dropConn()
      this.upstreamFailed(err as ResponseHeadError, true)
      return
    }
    if (Buffer.isBuffer(got)) {
      // A first part still lies in the read buffer, which is reused: keep a copy.
      this.pending = this.pending === undefined ? Buffer.from(got) : got
      return
    }
    this.pending = undefined
    this.onResponse(got.head, got.buf)
  }

  private onResponse (r: ResponseHead, buf: Buffer): void {
    this.response = r
    this.body = new BodyFraming(r.framing, r.length)
    this.headersMs = this.fwd.clock.now() - this.attemptStart
    this.keepAlive = this.client.keepsAlive()
    const head = clientHead(r, this.fr.responseHeaders, this.keepAlive ? Math.floor(this.fwd.timeouts.idle / 1000) : undefined, this.fwd.httpDate())
    ;(this.conn as RawConn).watch(this.fwd.timeouts.idle)
    // The common case, a whole small response in one read, leaves in one write.
    if (r.framing === 'length' && buf.length - r.end === r.length && r.reusable) {
      this.body.take(buf, r.end)
      const out = Buffer.allocUnsafe(Buffer.byteLength(head, 'latin1') + r.length)
      buf.copy(out, out.write(head, 0, 'latin1'), r.end)
      this.client.out.write(out)
      this.finish(true)
      return
    }
    const client = this.client.out
    client.cork()
    client.write(head)
    this.onBody(buf, r.end)
    if (!client.uncork() && !this.over) this.pause()
  }

  private onBody (buf: Buffer, offset: number): void {
    const body = this.body as BodyFraming
    const end = body.take(buf, offset)
    if (end < 0) {
      this.dropConn()
      this.upstreamFailed(new ResponseHeadError('invalid chunked framing'), true)
      return
    }
    const client = this.client.out
    let ok = true
    if (end > offset) {
      // The read buffer is reused once this returns; a write left pending keeps what it is given.
      const bytes = Buffer.from(buf.subarray(offset, end))
      if (body.framing === 'close') {
        // Until-close bodies go to the client chunked, so its connection outlives this response.
        const corked = client.corked
        if (!corked) client.cork()
        client.write((end - offset).toString(16) + '\r\n')
        client.write(bytes)
        client.write('\r\n')
        if (!corked) ok = client.uncork()
      } else {
        ok = client.write(bytes)
      }
    }
    if (body.done) this.finish((this.response as ResponseHead).reusable && end === buf.length)
    else if (!ok) this.pause()
  }

  private pause (): void {
    this.paused = true
    this.heldBack = true
    this.conn?.pause()
  }

  /** The response is complete on the client side. `reusable`: the upstream connection may carry another. */
  private finish (reusable: boolean): void {
    const { status, keepAliveMs } = this.response as ResponseHead
    const conn = this.conn
    if (conn !== undefined) {
      this.conn = undefined
      conn.uses++
      if (this.paused) conn.resume()
      ;(this.pool as RawPool).release(conn, reusable, keepAliveMs)
    }
    this.over = true
    this.endAttempt(isServerFailureStatus(status) ? { ok: false, reason: 'status', ms: this.headersMs } : { ok: true, ms: this.headersMs })
    this.publish(status)
    this.client.exchangeDone(this.keepAlive)
  }
}
