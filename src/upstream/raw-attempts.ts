import { ErrorCodes, type ErrorCode } from '../errors.js'
import type { BodyFraming } from '../http1/body-framing.js'
import type { RequestHead } from '../http1/request-head.js'
import type { ResponseHead } from '../http1/response-head.js'
import { channels } from '../observability/events.js'
import type { ForwardRequest } from './forward-request.js'
import type { ClientSide, RawForwarder } from './raw-forwarder.js'
import type { ConnUser, RawConn } from './raw-conn.js'
import type { RawPool } from './raw-pool.js'
import { afterError, type UpstreamError } from './retry-policy.js'
import type { Server } from './server.js'
import type { Outcome } from './upstream.js'

/**
 * The attempts of one lean-path exchange (raw-exchange.ts relays the response): picking a
 * server, waiting for a connection, the response deadline, retries and blame, the error answer
 * and the access event. Retries and blame follow the general path exactly (retry-policy.ts is
 * shared). A base class rather than a helper so the exchange stays one object per request.
 */
export abstract class RawAttempts implements ConnUser {
  server: Server | undefined
  protected pool: RawPool | undefined
  protected conn: RawConn | undefined
  private attempts = 0
  private tried: Set<Server> | undefined
  private freshRetryUsed = false
  protected attemptStart = 0
  private timer: NodeJS.Timeout | undefined
  /** Waiting for a connection (queued or connecting); a give-up then releases what arrives. */
  private awaiting = false
  private abandoned = false
  protected pending: Buffer | undefined
  protected response: ResponseHead | undefined
  protected body: BodyFraming | undefined
  protected headersMs: number | undefined
  /** Answered, cut or finished: nothing more happens. */
  protected over = false
  private readonly reqHead: string

  constructor (
    protected readonly fwd: RawForwarder,
    protected readonly client: ClientSide,
    protected readonly head: RequestHead,
    protected readonly fr: ForwardRequest,
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

  abstract data (chunk: Buffer): void
  abstract closed (err: UpstreamError, clean: boolean): void
  abstract stalled (): void

  responseTimedOut (): void {
    this.onResponseTimeout()
  }

  /** Ends the attempt's accounting; `outcome` undefined judges nobody. */
  protected endAttempt (outcome: Outcome | undefined): void {
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
  protected dropConn (): void {
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
  protected upstreamFailed (err: UpstreamError, started: boolean): void {
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
  protected fail (code: ErrorCode): void {
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

  protected publish (status: number, error?: string): void {
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
