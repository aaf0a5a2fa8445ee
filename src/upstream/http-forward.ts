import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { HttpTimeouts } from '../config/types.js'
import type { Clock } from '../clock.js'
import { TandemError, httpStatusFor, statusText, type ErrorCode } from '../errors.js'
import { channels, publishHttpEnd, type HttpRequestEnd } from '../observability/events.js'
import { clientResponseHeaders } from './headers.js'
import type { HttpPools } from './pools.js'
import type { Server } from './server.js'
import type { Upstream } from './upstream.js'

/** What the listener decided about one request before it is forwarded. */
export interface ForwardRequest {
  readonly listener: string
  readonly route: string
  readonly upstream: Upstream
  /** Path and query as the upstream should see them (after stripPrefix). */
  readonly path: string
  /** Request headers for the upstream, already rewritten. */
  readonly headers: string[]
  readonly client: string
  readonly host: string
  readonly startedAt: number
  /** Headers the proxy adds to the client's response (rate-limit headers): name, value pairs. */
  readonly responseHeaders?: readonly string[]
}

/** Request bodies up to this size are buffered whole and so can be retried. */
const REPLAY_BUFFER_LIMIT = 64 * 1024
/** The access-event fields every forwarded request (or upgrade) has. */
export function accessFields (req: IncomingMessage, fr: ForwardRequest, status: number, startedAt: number, now: number): Omit<HttpRequestEnd, 'bytesIn' | 'bytesOut' | 'retries'> {
  return {
    listener: fr.listener,
    route: fr.route,
    method: req.method ?? '',
    host: fr.host,
    path: fr.path,
    status,
    client: fr.client,
    upstream: fr.upstream.name,
    totalMs: now - startedAt,
  }
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])
const RESET_ERRORS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED'])

type Failure = 'connect' | 'timeout' | 'reset' | 'status'

function classify (err: Error & { code?: string }): { reason: Failure, code: ErrorCode } {
  const code = err.code ?? ''
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { reason: 'timeout', code: 'UPSTREAM_CONNECT_TIMEOUT' }
  if (CONNECT_ERRORS.has(code)) return { reason: 'connect', code: 'UPSTREAM_CONNECT_FAILED' }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { reason: 'timeout', code: 'UPSTREAM_TIMEOUT' }
  if (RESET_ERRORS.has(code)) return { reason: 'reset', code: 'UPSTREAM_RESET' }
  return { reason: 'reset', code: 'UPSTREAM_FAILED' }
}

/** True when the socket had carried earlier exchanges: the keep-alive race, not a dead server. */
function onReusedSocket (err: Error & { socket?: { bytesRead?: number } }): boolean {
  return err.socket === undefined || (err.socket.bytesRead ?? 0) > 0
}

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
    const exchange = new Exchange(this, req, res, fr)
    const length = Number(req.headers['content-length'] ?? -1)
    // Small bodies are read first, as nginx's request buffering does, so the request can be
    // replayed on another connection; larger ones stream and are retried only if unread.
    if (length > 0 && length <= REPLAY_BUFFER_LIMIT) exchange.bufferBody()
    else exchange.next()
  }

  /** Sends an error status if nothing was sent yet, else cuts the connection; then logs. */
  fail (req: IncomingMessage, res: ServerResponse, fr: ForwardRequest, err: TandemError, ex?: Exchange): void {
    // Whatever the status, the rest of an unread body must not be parsed as the next request.
    if (!req.complete) res.shouldKeepAlive = false
    const status = httpStatusFor(err)
    if (!res.headersSent && !res.destroyed) {
      const body = statusText(status) + '\n'
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) })
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

  dispatch (ex: Exchange, server: Server, fresh: boolean): void {
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
      this.pools.get(server, config).dispatch(opts, ex)
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
  bytesIn = 0
  bytesOut = 0
  headersMs: number | undefined
  onFinish: (() => void) | undefined
  private readonly tried = new Set<Server>()
  private attemptStart = 0
  private attemptOpen = false
  private abortFn: ((err?: Error) => void) | undefined
  private resumeFn: (() => void) | undefined
  private freshRetryUsed = false
  private clientGone = false
  private readonly hasBody: boolean
  private buffered: Buffer | undefined

  constructor (
    private readonly fwd: HttpForwarder,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly fr: ForwardRequest,
  ) {
    const h = req.headers
    this.hasBody = h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')
    res.on('close', this.onClientClose)
    res.on('drain', this.onClientDrain)
  }

  /** The request body for undici: a buffered copy, or the client stream read without destroying it on failure. */
  body (): Buffer | AsyncIterable<Buffer> | null {
    if (this.buffered !== undefined) return this.buffered
    if (!this.hasBody) return null
    return countBytes(this, this.req.iterator({ destroyOnReturn: false }))
  }

  /** Reads the whole (small) body, then forwards. */
  bufferBody (): void {
    const parts: Buffer[] = []
    const req = this.req
    req.on('data', (c: Buffer) => { parts.push(c); this.bytesIn += c.length })
    req.once('end', () => {
      this.buffered = parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts)
      if (!this.clientGone) this.next()
    })
    req.once('error', () => { this.clientGone = true })
  }

  /** True while the upstream has seen no byte of the client's body: a retry is still safe. */
  private replayable (): boolean {
    return !this.hasBody || this.buffered !== undefined || !this.req.readableDidRead
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
    this.abortFn = undefined
    this.fr.upstream.acquire(server)
    this.fwd.dispatch(this, server, fresh)
  }

  private endAttempt (outcome: { ok: true, ms?: number } | { ok: false, reason: Failure, ms?: number }): void {
    this.attemptOpen = false
    this.fr.upstream.release(this.server as Server, outcome)
    const finish = this.onFinish
    this.onFinish = undefined
    finish?.()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.abortFn = abort
    if (this.clientGone) abort(new TandemError('UPSTREAM_FAILED', 'client closed'))
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage?: string): boolean {
    if (statusCode < 200) return true // 1xx other than 101 are not relayed
    this.headersMs = this.fwd.clock.now() - this.attemptStart
    this.resumeFn = resume
    const res = this.res
    if (res.destroyed) return true
    if (statusMessage !== undefined && statusMessage !== '') res.statusMessage = statusMessage
    const headers = clientResponseHeaders(rawHeaders)
    if (this.fr.responseHeaders !== undefined) headers.push(...this.fr.responseHeaders)
    res.writeHead(statusCode, headers as unknown as Record<string, string>)
    return true
  }

  onData (chunk: Buffer): boolean {
    this.bytesOut += chunk.length
    return this.res.write(chunk)
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    const res = this.res
    if (rawTrailers !== null && rawTrailers.length > 0 && !res.destroyed) {
      const trailers: Record<string, string> = {}
      for (let i = 0; i < rawTrailers.length; i += 2) trailers[String(rawTrailers[i])] = String(rawTrailers[i + 1])
      try { res.addTrailers(trailers) } catch { /* only chunked responses carry trailers */ }
    }
    res.end()
    this.endAttempt(res.statusCode < 500 ? { ok: true, ms: this.headersMs } : { ok: false, reason: 'status', ms: this.headersMs })
    this.fwd.done(this.req, this.fr, res.statusCode, this)
  }

  onError (err: Error & { code?: string }): void {
    if (!this.attemptOpen) return
    if (this.clientGone) {
      // The client left: not the server's fault, and nobody to answer (nginx logs 499).
      this.endAttempt({ ok: true })
      this.fwd.done(this.req, this.fr, 499, this, 'CLIENT_CLOSED')
      return
    }
    const server = this.server as Server
    const { reason, code } = classify(err)
    this.endAttempt({ ok: false, reason })
    if (this.headersMs === undefined && this.replayable()) {
      if (reason === 'reset' && !this.freshRetryUsed && onReusedSocket(err)) {
        // The keep-alive race: the server closed an idle socket as we reused it. Same server, new socket.
        this.freshRetryUsed = true
        this.start(server, true)
        return
      }
      const safe = reason === 'connect' || code === 'UPSTREAM_CONNECT_TIMEOUT' ||
        (reason === 'reset' && IDEMPOTENT.has(this.req.method ?? ''))
      if (safe && this.attempts <= this.fr.upstream.config.retries) {
        const nextServer = this.fr.upstream.pick(this.tried)
        if (nextServer !== undefined) {
          this.start(nextServer, false)
          return
        }
      }
    }
    this.fwd.fail(this.req, this.res, this.fr, new TandemError(code, err.message, { cause: err }), this)
  }

  private readonly onClientDrain = (): void => {
    this.resumeFn?.()
  }

  private readonly onClientClose = (): void => {
    if (this.res.writableFinished) return
    this.clientGone = true
    if (this.attemptOpen) this.abortFn?.(new TandemError('UPSTREAM_FAILED', 'client closed'))
  }
}

async function * countBytes (ex: Exchange, source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    ex.bytesIn += chunk.length
    yield chunk
  }
}
