import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { HttpTimeouts } from '../config/types.js'
import type { Clock } from '../clock.js'
import { TandemError, httpStatusFor, statusText } from '../errors.js'
import { channels, publishHttpEnd } from '../observability/events.js'
import { accessFields, type ForwardRequest } from './forward-request.js'
import { lingerAfterLastResponse } from '../listener/http-answers.js'
import { clientResponseHeaders, safeReason } from './headers.js'
import { capOf, type HttpPools } from './pools.js'
import type { Server } from './server.js'
import { ReplayableBody } from './request-body.js'
import { IDEMPOTENT, afterError, isServerFailureStatus, type Failure, type UpstreamError } from './retry-policy.js'

export { accessFields, type ForwardRequest } from './forward-request.js'

/** The first bytes of a request body kept while it streams, so that a retry can send it again. */
const REPLAY_LIMIT = 64 * 1024

/**
 * Forwards one request: picks a server, streams the body up and the response down with
 * backpressure, retries where that is safe, answers 502/503/504 when it must. Every attempt is
 * one Exchange, an undici dispatch handler, so the hot path allocates no closures per chunk.
 */
export class HttpForwarder {
  constructor (
    private readonly pools: HttpPools,
    private readonly timeouts: HttpTimeouts,
    readonly clock: Clock,
  ) {}

  forward (req: IncomingMessage, res: ServerResponse, fr: ForwardRequest): void {
    new Exchange(this, req, res, fr).next()
  }

  /** Sends an error status if nothing was sent yet, else cuts the connection; then logs. */
  fail (req: IncomingMessage, res: ServerResponse, fr: ForwardRequest, err: TandemError, ex?: Exchange): void {
    // Whatever the status, the rest of an unread body must not be parsed as the next request.
    if (!req.complete) res.shouldKeepAlive = false
    const status = httpStatusFor(err)
    if (!res.headersSent && !res.destroyed) {
      const body = statusText(status) + '\n'
      // An error answer ends the connection: nothing pipelined behind it runs, and what the
      // client still sends is read and dropped so the answer is not lost to a reset.
      res.shouldKeepAlive = false
      lingerAfterLastResponse(res.socket)
      const headers = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body))]
      if (fr.responseHeaders !== undefined) headers.push(...fr.responseHeaders)
      res.writeHead(status, statusText(status), headers as unknown as Record<string, string>)
      res.end(body)
    } else {
      res.destroy()
    }
    this.done(req, fr, status, ex, err.code)
  }

  done (req: IncomingMessage, fr: ForwardRequest, status: number, ex?: Exchange, error?: string): void {
    if (!channels.httpRequestEnd.hasSubscribers) return
    publishHttpEnd({
      ...accessFields(req, fr, status, fr.startedAt, this.clock.now()),
      server: ex?.server?.address,
      bytesIn: ex?.bytesIn,
      bytesOut: ex?.bytesOut,
      upstreamMs: ex?.headersMs,
      error,
      retries: ex === undefined ? 0 : ex.attempts - 1,
    })
  }

  dispatch (ex: Exchange, server: Server, fresh: boolean, idempotent: boolean): void {
    const config = ex.fr.upstream.config
    const opts: Dispatcher.DispatchOptions = {
      path: ex.fr.path,
      method: ex.req.method as Dispatcher.HttpMethod,
      headers: ex.fr.headers,
      // undici streams any async iterable; its types only list Readable.
      body: ex.body() as Dispatcher.DispatchOptions['body'],
      headersTimeout: this.timeouts.response,
      bodyTimeout: this.timeouts.idle,
    }
    if (!fresh) {
      const pool = this.pools.get(server, config, idempotent)
      // Every connection busy: undici queues the request, and no timeout of its own runs until
      // it is written. Checked only past the cap (pool.stats walks the pool's clients).
      const cap = capOf(server)
      if (server.active > cap && saturated(pool, cap)) ex.queued(this.timeouts.response)
      pool.dispatch(opts, ex)
      return
    }
    const client = this.pools.fresh(server, config)
    ex.onFinish = () => { client.close().catch(() => {}) }
    client.dispatch({ ...opts, reset: true }, ex)
  }
}

/** One client request across its attempts; undici's handler for the current attempt. */
class Exchange implements Dispatcher.DispatchHandler {
  server: Server | undefined
  attempts = 0
  bytesOut = 0
  headersMs: number | undefined
  onFinish: (() => void) | undefined
  private readonly tried = new Set<Server>()
  private attemptStart = 0
  private attemptOpen = false
  private abortFn: ((err?: Error) => void) | undefined
  private resumeFn: (() => void) | undefined
  /** Runs while the attempt waits in undici's queue (no connection free yet), see onQueueTimeout. */
  private queueTimer: NodeJS.Timeout | undefined
  private queueExpired = false
  private freshRetryUsed = false
  private clientGone = false
  /** The client did not drain at some point of this response, so the server was held back. */
  private clientStalled = false
  /** A byte of the current attempt's response arrived (undici's onResponseStarted). */
  private responseStarted = false
  /**
   * The upstream's head, written with the first body bytes or at the end: node:http sends
   * nothing before then anyway, and until then a failure (a broken first chunk) still gets the
   * client a 502 instead of an empty close.
   */
  private pendingHead: string[] | undefined
  private readonly idempotent: boolean
  private readonly reqBody: ReplayableBody | undefined

  constructor (
    private readonly fwd: HttpForwarder,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly fr: ForwardRequest,
  ) {
    const h = req.headers
    this.idempotent = IDEMPOTENT.has(req.method ?? '')
    const hasBody = h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')
    this.reqBody = hasBody ? new ReplayableBody(req, REPLAY_LIMIT) : undefined
    res.on('close', this.onClientClose)
    res.on('drain', this.onClientDrain)
  }

  /** Client body bytes read (each once, whatever the attempts). */
  get bytesIn (): number { return this.reqBody?.bytes ?? 0 }

  /** The request body for this attempt: streamed from the client, replayed where a retry needs it. */
  body (): AsyncIterable<Buffer> | null {
    return this.reqBody?.attempt() ?? null
  }

  /** A retry can send the whole body again: none, or all of what was read is kept. */
  private replayable (): boolean {
    return this.reqBody?.replayable ?? true
  }

  next (): void {
    const server = this.fr.upstream.pick(this.tried)
    if (server === undefined) {
      this.fwd.fail(this.req, this.res, this.fr, new TandemError('NO_SERVER_UP'))
      return
    }
    this.start(server, false)
  }

  private start (server: Server, fresh: boolean): void {
    this.server = server
    this.tried.add(server)
    this.attempts++
    this.attemptStart = this.fwd.clock.now()
    this.attemptOpen = true
    this.responseStarted = false
    this.pendingHead = undefined
    this.abortFn = undefined
    this.fr.upstream.acquire(server)
    this.fwd.dispatch(this, server, fresh, this.idempotent)
  }

  /** The attempt waits in undici's queue: bounded by `ms` (see onQueueTimeout). */
  queued (ms: number): void {
    this.queueTimer = setTimeout(this.onQueueTimeout, ms)
  }

  /**
   * `timeouts.response` passed before undici had a connection for the attempt (every one to the
   * server busy): 503 QUEUE_TIMEOUT, as on the lean path, and the server is not judged, since it
   * never saw the request. undici cannot take a queued request back: it is aborted when it
   * would start (onConnect).
   */
  private readonly onQueueTimeout = (): void => {
    this.queueTimer = undefined
    if (!this.attemptOpen || this.abortFn !== undefined) return
    this.queueExpired = true
    this.endAttempt()
    this.fwd.fail(this.req, this.res, this.fr, new TandemError('QUEUE_TIMEOUT', 'no connection to the server within timeouts.response'), this)
  }

  /** `outcome` undefined: the attempt says nothing about the server (the client's doing). */
  private endAttempt (outcome?: { ok: true, ms?: number } | { ok: false, reason: Failure, ms?: number }): void {
    this.attemptOpen = false
    if (this.queueTimer !== undefined) clearTimeout(this.queueTimer)
    this.queueTimer = undefined
    this.fr.upstream.release(this.server as Server, outcome)
    const finish = this.onFinish
    this.onFinish = undefined
    finish?.()
  }

  onConnect (abort: (err?: Error) => void): void {
    if (this.queueTimer !== undefined) clearTimeout(this.queueTimer)
    this.queueTimer = undefined
    this.abortFn = abort
    if (this.clientGone || this.queueExpired) abort(new TandemError('UPSTREAM_FAILED', this.clientGone ? 'client closed' : 'queue timeout'))
  }

  onResponseStarted (): void {
    this.responseStarted = true
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage?: string): boolean {
    if (statusCode < 200) return true // 1xx other than 101 are not relayed
    const res = this.res
    if (res.destroyed) return true
    try {
      this.pendingHead = clientResponseHeaders(rawHeaders)
    } catch (err) {
      this.abortFn?.(new TandemError('UPSTREAM_FAILED', 'unrelayable response head', { cause: err }))
      return false
    }
    if (this.fr.responseHeaders !== undefined) this.pendingHead.push(...this.fr.responseHeaders)
    res.statusCode = statusCode
    if (statusMessage !== undefined && statusMessage !== '') res.statusMessage = safeReason(statusCode, statusMessage)
    this.headersMs = this.fwd.clock.now() - this.attemptStart
    this.resumeFn = resume
    return true
  }

  /** Writes the held head; false when it cannot be (answered meanwhile, or node:http refuses it: the attempt is aborted). */
  private sendHead (): boolean {
    const headers = this.pendingHead as string[]
    this.pendingHead = undefined
    const res = this.res
    // The listener answered the client's own fault (408, a broken body) meanwhile.
    if (res.headersSent || res.writableEnded) return false
    const err = writeRelayedHead(res, headers)
    if (err === undefined) return true
    // A head node:http will not write (a header value it refuses): the upstream's fault, 502.
    this.abortFn?.(new TandemError('UPSTREAM_FAILED', 'unwritable response head', { cause: err }))
    return false
  }

  onData (chunk: Buffer): boolean {
    this.bytesOut += chunk.length
    if (this.pendingHead !== undefined && !this.sendHead()) return true
    const ok = this.res.write(chunk)
    if (!ok) this.clientStalled = true
    return ok
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    const res = this.res
    if (this.pendingHead !== undefined && !this.sendHead() && !res.headersSent) {
      this.endAttempt({ ok: false, reason: 'reset', ms: this.headersMs })
      this.fwd.fail(this.req, res, this.fr, new TandemError('UPSTREAM_FAILED', 'unwritable response head'), this)
      return
    }
    if (rawTrailers !== null && rawTrailers.length > 0 && !res.destroyed) {
      const trailers: Record<string, string> = {}
      for (let i = 0; i < rawTrailers.length; i += 2) trailers[String(rawTrailers[i])] = String(rawTrailers[i + 1])
      try { res.addTrailers(trailers) } catch { /* only chunked responses carry trailers */ }
    }
    res.end()
    this.endAttempt(isServerFailureStatus(res.statusCode) ? { ok: false, reason: 'status', ms: this.headersMs } : { ok: true, ms: this.headersMs })
    this.fwd.done(this.req, this.fr, res.statusCode, this)
  }

  onError (err: UpstreamError): void {
    if (!this.attemptOpen) return
    // undici holds a 204 or 304 (or a HEAD's answer) to its Content-Length, though no body may
    // follow (RFC 9112 §6.3): the response ended with its head, and the server did nothing wrong.
    if (err.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' && this.headersMs !== undefined &&
      (this.res.statusCode === 204 || this.res.statusCode === 304 || this.req.method === 'HEAD')) {
      this.onComplete(null)
      return
    }
    if (this.clientGone) {
      // The client left or broke its own request (the listener answered it): not the server's
      // fault, and nobody to answer (nginx logs 499).
      this.endAttempt()
      const answered = this.res.headersSent && this.res.statusCode < 500
      this.fwd.done(this.req, this.fr, answered ? this.res.statusCode : 499, this, 'CLIENT_CLOSED')
      return
    }
    if (this.responseStarted && this.clientStalled) {
      // The client stopped reading, so undici stopped reading the server: a server that gives
      // up sending meanwhile (its own send timeout) is not failing. The client's answer is cut.
      this.endAttempt()
      this.fwd.fail(this.req, this.res, this.fr, new TandemError('UPSTREAM_RESET', err.message, { cause: err }), this)
      return
    }
    const server = this.server as Server
    const decision = afterError(err, {
      idempotent: this.idempotent,
      headersSent: this.headersMs !== undefined,
      responseStarted: this.responseStarted,
      replayable: this.replayable(),
      freshRetryUsed: this.freshRetryUsed,
      attempts: this.attempts,
      retries: this.fr.upstream.config.retries,
    })
    switch (decision.action) {
      case 'client':
        this.endAttempt()
        this.fwd.fail(this.req, this.res, this.fr, new TandemError('BAD_REQUEST', err.message, { cause: err }), this)
        return
      case 'local':
        this.endAttempt()
        this.fwd.fail(this.req, this.res, this.fr, new TandemError('PROXY_OVERLOADED', err.message, { cause: err }), this)
        return
      case 'fresh':
        this.endAttempt()
        this.freshRetryUsed = true
        this.start(server, true)
        return
      case 'next': {
        this.endAttempt({ ok: false, reason: decision.reason })
        const nextServer = this.fr.upstream.pick(this.tried)
        if (nextServer !== undefined) {
          this.start(nextServer, false)
          return
        }
        break
      }
      case 'fail':
        this.endAttempt({ ok: false, reason: decision.reason })
    }
    this.fwd.fail(this.req, this.res, this.fr, new TandemError(decision.code, err.message, { cause: err }), this)
  }

  private readonly onClientDrain = (): void => {
    this.resumeFn?.()
  }

  private readonly onClientClose = (): void => {
    // Answered while the request was still arriving: the listener refused the rest of it (bad
    // framing, stalled body), so the attempt upstream is abandoned too.
    if (this.res.writableFinished && this.req.complete) return
    this.clientGone = true
    if (this.attemptOpen) this.abortFn?.(new TandemError('UPSTREAM_FAILED', 'client closed'))
  }
}

/**
 * res.writeHead() with the upstream's fields; the error when node:http refuses them. A `Trailer`
 * field on a response that will not be chunked to this client (Content-Length, an HTTP/1.0
 * client, a 204) announces trailers that cannot follow, and node:http refuses the whole head
 * for it: the field is dropped and the response relayed.
 */
function writeRelayedHead (res: ServerResponse, headers: string[]): Error | undefined {
  try {
    res.writeHead(res.statusCode, headers as unknown as Record<string, string>)
    return undefined
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_HTTP_TRAILER_INVALID') return err as Error
  }
  const kept: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'trailer') kept.push(headers[i] as string, headers[i + 1] as string)
  }
  try {
    res.writeHead(res.statusCode, kept as unknown as Record<string, string>)
    return undefined
  } catch (err) {
    return err as Error
  }
}

/** Every connection of `pool` is busy: a request dispatched now waits in undici's queue. */
function saturated (pool: { readonly stats: { readonly free: number, readonly running: number } }, cap: number): boolean {
  const stats = pool.stats // a new object each read, walking the pool's clients
  return stats.free === 0 && stats.running >= cap
}
