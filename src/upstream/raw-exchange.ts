import { ErrorCodes, type ErrorCode } from '../errors.js'
import { BodyFraming } from '../http1/body-framing.js'
import type { RequestHead } from '../http1/request-head.js'
import { ResponseHeadError, clientHead, readFinalHead, type ResponseHead } from '../http1/response-head.js'
import { channels } from '../observability/events.js'
import type { ForwardRequest } from './forward-request.js'
import type { ClientSide, RawForwarder } from './raw-forwarder.js'
import type { ConnUser, RawConn, RawPool } from './raw-pool.js'
import { afterError, isServerFailureStatus, type UpstreamError } from './retry-policy.js'
import type { Server } from './server.js'
import type { Outcome } from './upstream.js'

/** undici's limit for a response head, kept for the lean path. */
const MAX_RESPONSE_HEAD = 64 * 1024

/**
 * One bodiless GET or HEAD over raw sockets, across its attempts. The response head is rebuilt
 * for the client; body bytes are relayed as they come, with the framing (length, chunked, or
 * until close, re-chunked) tracked only to find the end. Retries, blame and the access event
 * follow the general path exactly (retry-policy.ts is shared).
 */
export class RawExchange implements ConnUser {
  server: Server | undefined
  private pool: RawPool | undefined
  private conn: RawConn | undefined
  private attempts = 0
  private tried: Set<Server> | undefined
  private freshRetryUsed = false
  private attemptStart = 0
  private timer: NodeJS.Timeout | undefined
  /** Waiting for a connection (queued or connecting); a give-up then releases what arrives. */
  private awaiting = false
  private abandoned = false
  private pending: Buffer | undefined
  private response: ResponseHead | undefined
  private body: BodyFraming | undefined
  private headersMs: number | undefined
  private keepAlive = false
  private paused = false
  /** The client did not drain at some point of this response, so the server was held back. */
  private heldBack = false
  /** Answered, cut or finished: nothing more happens. */
  private over = false
  private readonly reqHead: string

  constructor (
    private readonly fwd: RawForwarder,
    private readonly client: ClientSide,
    private readonly head: RequestHead,
    private readonly fr: ForwardRequest,
  ) {
    const h = fr.headers
    let text = `${head.method} ${fr.path} HTTP/1.1\r\n`
    for (let i = 0; i < h.length; i += 2) text += `${h[i] as string}: ${h[i + 1] as string}\r\n`
    this.reqHead = text + '\r\n'
  }

  start (): void {
    const server = this.fr.upstream.pick(this.tried)
    if (server === undefined) {
      this.fail('NO_SERVER_UP')
      return
    }
    this.attempt(server, false)
  }

  private attempt (server: Server, fresh: boolean): void {
    this.server = server
    this.attempts++
    this.attemptStart = this.fwd.clock.now()
    this.fr.upstream.acquire(server)
    this.pool = this.fwd.pools.raw(server, this.fr.upstream.config)
    this.awaiting = true
    this.pool.acquire(this, fresh)
    // A pooled connection came at once and carries the response deadline itself (RawConn.send);
    // one that has to be waited for (queued, connecting) is timed here until it comes.
    if (this.awaiting) this.timer = setTimeout(this.onResponseTimeout, this.fwd.timeouts.response)
  }

  connected (conn: RawConn): void {
    this.awaiting = false
    if (this.abandoned) {
      (this.pool as RawPool).release(conn, true, 0)
      return
    }
    this.conn = conn
    let dueMs = this.fwd.timeouts.response
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
      dueMs -= this.fwd.clock.now() - this.attemptStart
    }
    conn.send(this.reqHead, dueMs)
  }

  connectFailed (err: UpstreamError): void {
    this.awaiting = false
    if (!this.abandoned) this.upstreamFailed(err, false)
  }

  data (chunk: Buffer): void {
    if (this.response === undefined) this.onHead(chunk)
    else this.onBody(chunk, 0)
  }

  closed (err: UpstreamError, clean: boolean): void {
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

  responseTimedOut (): void {
    this.onResponseTimeout()
  }

  stalled (): void {
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

  /** Ends the attempt's accounting; `outcome` undefined judges nobody. */
  private endAttempt (outcome: Outcome | undefined): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.awaiting) {
      this.abandoned = true
      this.pool?.cancel(this)
    }
    this.dropConn()
    this.fr.upstream.release(this.server as Server, outcome)
  }

  /** Destroys the current upstream connection without hearing from it again. */
  private dropConn (): void {
    const conn = this.conn
    if (conn === undefined) return
    this.conn = undefined
    conn.user = undefined
    conn.destroy()
  }

  private readonly onResponseTimeout = (): void => {
    this.dropConn()
    if (this.awaiting) {
      this.abandoned = true
      if (this.pool?.cancel(this) === true) {
        // Still in tandem's own queue (every connection to the server busy, as when clients
        // stop reading): the server never saw the request, so it is not judged (503, as a
        // full maxConnections is; HAProxy's queue timeout answers 503 too).
        this.endAttempt(undefined)
        return this.fail('QUEUE_TIMEOUT')
      }
    }
    this.upstreamFailed(Object.assign(new Error('response timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), false)
  }

  /** `started`: a byte of this attempt's response had arrived. */
  private upstreamFailed (err: UpstreamError, started: boolean): void {
    const headersSent = this.response !== undefined
    const decision = afterError(err, {
      idempotent: true,
      headersSent,
      responseStarted: started,
      replayable: true,
      freshRetryUsed: this.freshRetryUsed,
      attempts: this.attempts,
      retries: this.fr.upstream.config.retries,
    })
    const server = this.server as Server
    this.pending = undefined
    switch (decision.action) {
      case 'client':
        this.endAttempt(undefined)
        return this.fail('BAD_REQUEST')
      case 'local':
        this.endAttempt(undefined)
        return this.fail('PROXY_OVERLOADED')
      case 'fresh':
        this.endAttempt(undefined)
        this.freshRetryUsed = true
        return this.attempt(server, true)
      case 'next': {
        this.endAttempt({ ok: false, reason: decision.reason })
        ;(this.tried ??= new Set()).add(server)
        const next = this.fr.upstream.pick(this.tried)
        if (next !== undefined) return this.attempt(next, false)
        break
      }
      case 'fail':
        this.endAttempt({ ok: false, reason: decision.reason })
    }
    this.fail(decision.code)
  }

  /**
   * Answers the client with the error's status, or cuts a response already begun. A head still
   * corked with the first body bytes (the whole answer came in one read) never left: it is
   * dropped and the client gets the error status rather than an empty close.
   */
  private fail (code: ErrorCode): void {
    const status = ErrorCodes[code]
    this.over = true
    if (this.response !== undefined && !this.client.out.discardCorked()) {
      this.client.cut()
      this.publish(this.response.status, code)
      return
    }
    this.client.answer(status, this.fr.responseHeaders)
    this.publish(status, code)
  }

  private publish (status: number, error?: string): void {
    if (!channels.httpRequestEnd.hasSubscribers) return
    const fr = this.fr
    // Built whole here, in publishHttpEnd's field order (one object shape for every subscriber):
    // the request path's events are not copied.
    channels.httpRequestEnd.publish({
      listener: fr.listener,
      route: fr.route,
      method: this.head.method,
      host: fr.host,
      path: fr.path,
      status,
      client: fr.client,
      upstream: fr.upstream.name,
      server: this.server?.address,
      bytesIn: 0,
      bytesOut: this.body?.payload ?? 0,
      upstreamMs: this.headersMs,
      totalMs: this.fwd.clock.now() - fr.startedAt,
      error,
      limit: undefined,
      retries: Math.max(0, this.attempts - 1), // none made (no server up): 0, as on the general path
    })
  }
}
