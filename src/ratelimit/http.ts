// Rate limiting as the HTTP listener sees it: the listener's limit before routing, the route's
// after, the verdict's headers on allowed responses, and the 429 for denied ones. A denied
// request never reaches an upstream and its body is never read into memory: with a body still
// coming, the answer closes the connection (nginx does the same), so nothing waits for it.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { http } from '../node-builtins.js'
import type { Duplex } from 'node:stream'
import type { ClientConn } from '../listener/client-conn.js'
import { answer, answerLines, answerRaw } from '../listener/http-answers.js'
import { channels, publishHttpEnd } from '../observability/events.js'
import { tighter, type RateLimit } from './limiter.js'
import { publishDenied, type RateLimiters, type Verdict } from './limiters.js'

/** What the access line needs of a denied request. */
export interface DeniedRequest {
  readonly listener: string
  readonly route: string
  readonly host: string
  readonly path: string
  readonly client: string
  readonly totalMs: number
}

export class HttpLimits {
  private readonly listenerLimit: RateLimit | undefined

  /** `routed`: some route of the listener has a limit of its own. `listener`: the listener's name. */
  constructor (private readonly limiters: RateLimiters, listenerLimit: string | undefined, private readonly routed: boolean, private readonly listener: string) {
    this.listenerLimit = limiters.get(listenerLimit)
  }

  /**
   * Before routing: the listener's limit in this node's buckets. Without route limits on the
   * listener that is the whole decision (returned, allowed or not; skip `after`). Otherwise it
   * is a peek (nothing moves yet, as the route's limit may still refuse) and only a denial is
   * returned (see `refusal`). With Redis, or a listener limit keyed by route, everything waits
   * for `after`.
   */
  before (client: string, headers: IncomingHttpHeaders): Verdict | undefined {
    const l = this.listenerLimit
    if (l === undefined || l.needsRoute || this.limiters.redis !== undefined) return undefined
    const key = l.keyOf(client, headers, '', this.listener)
    if (!this.routed) return this.limiters.decideLocal(l, key, undefined, '')
    const v = this.limiters.peekLocal(l, key)
    return v.allowed ? undefined : v
  }

  /**
   * After routing (`route` undefined when none matched): decides every limit of the request.
   * Undefined when none applies; a Promise only with the Redis store. Local verdicts are scratch.
   */
  after (client: string, headers: IncomingHttpHeaders, route: string | undefined, routeLimit: string | undefined): Verdict | Promise<Verdict> | undefined {
    const a = this.listenerLimit
    const b = route === undefined ? undefined : this.limiters.get(routeLimit)
    if (a === undefined && b === undefined) return undefined
    const r = route ?? ''
    const n = this.listener
    return this.limiters.decide(a, a === undefined ? '' : a.keyOf(client, headers, r, n), b, b === undefined ? '' : b.keyOf(client, headers, r, n))
  }

  /**
   * What to answer for `early`, a denial by `before`, once the route is known: a request passes
   * only when the route's limit allows it too, so when that one would refuse for longer, its
   * wait (and headers) are reported. Peeks only: no bucket moves.
   */
  refusal (early: Verdict, client: string, headers: IncomingHttpHeaders, route: string | undefined, routeLimit: string | undefined): Verdict {
    const b = route === undefined ? undefined : this.limiters.get(routeLimit)
    if (b === undefined) return early
    // `early` is the limiters' scratch, which the peek below overwrites.
    const first: Verdict = { allowed: false, limit: early.limit, result: { ...early.result } }
    const v = this.limiters.peekLocal(b, b.keyOf(client, headers, route!, this.listener))
    return tighter(v.result, first.result) ? v : first
  }
}

/** The reported limit's headers for an allowed response (the forwarder appends them to the upstream's). */
export function limitHeaders (v: Verdict): string[] | undefined {
  return v.limit === undefined ? undefined : v.limit.headers(v.result)
}

/** Answers 429 with Retry-After and the limit's headers; logs which limit denied. */
export function answerLimited (req: Pick<IncomingMessage, 'method' | 'headers'> & { readonly complete?: boolean }, out: ServerResponse | Duplex | ClientConn, v: Verdict, d: DeniedRequest): void {
  const limit = v.limit?.name ?? ''
  const headers = v.limit?.headers(v.result) ?? ['retry-after', '1']
  // As every answer tandem makes itself: the connection closes after it (nothing pipelined
  // behind runs), lingering, so that a client still sending its body reads the 429.
  if (out instanceof http.ServerResponse) answer(out, 429, headers)
  else answerRaw(out, 429, answerLines(429, headers), undefined, req.method)
  publishDenied(d.listener, limit)
  if (channels.httpRequestEnd.hasSubscribers) {
    publishHttpEnd({ listener: d.listener, route: d.route, method: req.method ?? '', host: d.host, path: d.path, status: 429, client: d.client, totalMs: d.totalMs, error: 'RATE_LIMITED', limit })
  }
}
