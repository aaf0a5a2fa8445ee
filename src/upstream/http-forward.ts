import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { HttpTimeouts } from '../config/types.js'
import type { Clock } from '../clock.js'
import { TandemError, httpStatusFor, statusText } from '../errors.js'
import { channels, publishHttpEnd } from '../observability/events.js'
import { accessFields, type ForwardRequest } from './forward-request.js'
import { lingerAfterLastResponse } from '../listener/http-answers.js'
import { Exchange } from './http-exchange.js'
import { capOf, type HttpPools } from './pools.js'
import type { Server } from './server.js'

export { accessFields, type ForwardRequest } from './forward-request.js'

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


/** Every connection of `pool` is busy: a request dispatched now waits in undici's queue. */
function saturated (pool: { readonly stats: { readonly free: number, readonly running: number } }, cap: number): boolean {
  const stats = pool.stats // a new object each read, walking the pool's clients
  return stats.free === 0 && stats.running >= cap
}
