import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { TandemError } from '../errors.js'
import type { ForwardRequest } from './forward-request.js'
import { clientResponseHeaders, safeReason } from './headers.js'
import type { HttpForwarder } from './http-forward.js'
import { ReplayableBody } from './request-body.js'
import { IDEMPOTENT, afterError, isServerFailureStatus, type Failure, type UpstreamError } from './retry-policy.js'
import type { Server } from './server.js'

/** The first bytes of a request body kept while it streams, so that a retry can send it again. */
const REPLAY_LIMIT = 64 * 1024

/** One client request across its attempts; undici's handler for the current attempt. */
export class Exchange implements Dispatcher.DispatchHandler {
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
