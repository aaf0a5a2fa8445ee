import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { http } from '../node-builtins.js'
import type { Duplex } from 'node:stream'
import type { ClientConn } from './client-conn.js'
import type { HttpListenerConfig, HttpRouteConfig } from '../config/types.js'
import { ErrorCodes, type ErrorCode } from '../errors.js'
import { channels, publishHttpEnd } from '../observability/events.js'
import { answerLimited, HttpLimits, limitHeaders } from '../ratelimit/http.js'
import type { Verdict } from '../ratelimit/limiters.js'
import { HttpRouter } from '../router/http-router.js'
import { rewritePath } from '../router/match.js'
import { hasDotSegment } from '../router/path.js'
import type { ForwardRequest } from '../upstream/forward-request.js'
import { upstreamRequestHeaders } from '../upstream/headers.js'
import { TrustedProxies } from './client-ip.js'
import { answer, answerRaw, answerLines } from './http-answers.js'
import { requestTarget } from './request-target.js'
import type { ListenerDeps } from './types.js'

/** What admission reads of a request: node:http's IncomingMessage, or the lean parser's head. */
export interface RequestLike {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly rawHeaders: string[]
  readonly headers: IncomingHttpHeaders
  readonly httpVersionMajor: number
  readonly httpVersionMinor: number
  /** node:http only: the body has been read to its end. */
  readonly complete?: boolean
}

/**
 * One listener's decision on a request before anything is forwarded, shared by node:http and
 * the lean path: the request target, the rate limits (the listener's before routing, the
 * route's after), the route, and the upstream request headers. Requests it refuses (400, 404,
 * 429, 503) are answered and logged here and never reach an upstream.
 */
export class HttpAdmission {
  readonly router: HttpRouter
  private readonly trusted: TrustedProxies
  private readonly limits: HttpLimits | undefined

  constructor (private readonly config: HttpListenerConfig, private readonly deps: ListenerDeps) {
    this.router = new HttpRouter(config.routes)
    this.trusted = new TrustedProxies(config.trustedProxies)
    const routed = config.routes.some((r) => r.rateLimit !== undefined)
    this.limits = deps.limiters === undefined || (config.rateLimit === undefined && !routed) ? undefined : new HttpLimits(deps.limiters, config.rateLimit, routed, config.name)
  }

  /**
   * Routes the request and builds what the forwarder needs, or answers it on `out` (400, 404,
   * 429, 503) and returns undefined. A Promise only while a shared (Redis) rate limit decides.
   * `peer` is the socket's remote address (IPv4-mapped form unmapped).
   */
  prepare (req: RequestLike, out: ServerResponse | Duplex | ClientConn, peer: string, startedAt: number, upgrade: boolean): ForwardRequest | Promise<ForwardRequest | undefined> | undefined {
    const rawUrl = req.url ?? '/'
    const target = requestTarget(rawUrl, req.rawHeaders, req.httpVersionMajor, req.httpVersionMinor)
    if (!target.ok) return this.reject(req, out, peer, target.code, startedAt, '', req.headers.host ?? '', rawUrl)
    const { path: url, host, absolute } = target
    const trusted = this.trusted.trusts(peer)
    const client = trusted ? this.trusted.clientIp(peer, req.headers['x-forwarded-for']) : peer
    const early = this.limits?.before(client, req.headers)
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const route = this.router.match(req.method ?? 'GET', host, path, req.headers)
    if (early?.allowed === false) {
      const v = this.limits!.refusal(early, client, req.headers, route?.name, route?.rateLimit)
      return this.limited(req, out, v, startedAt, '', host, url, client)
    }
    const upstreamPath = route?.stripPrefix === true ? rewritePath(route, url) : url
    // Stripping a prefix that ends mid-segment can make a dot-segment (`pathPrefix: /api` turns
    // `/api./admin` into `/./admin`): refused as if the client had sent it, uncharged by the route.
    if (upstreamPath !== url && hasDotSegment(upstreamPath)) return this.reject(req, out, peer, 'BAD_REQUEST', startedAt, route!.name, host, url)
    const verdict = early ?? this.limits?.after(client, req.headers, route?.name, route?.rateLimit)
    const c: Admitted = { startedAt, host, url, upstreamPath, client, peer, trusted, upgrade, absolute }
    if (verdict instanceof Promise) return verdict.then((v) => out.destroyed ? this.left(req, route, c) : this.admit(req, out, v, route, c))
    return this.admit(req, out, verdict, route, c)
  }

  /** The client left while a shared (Redis) limit decided: nobody to answer, one access line (nginx's 499). */
  private left (req: RequestLike, route: HttpRouteConfig | undefined, c: Admitted): undefined {
    if (!channels.httpRequestEnd.hasSubscribers) return undefined
    publishHttpEnd({ listener: this.config.name, route: route?.name ?? '', method: req.method ?? '', host: c.host, path: c.url, status: 499, client: c.client, upstream: route?.upstream, totalMs: this.deps.clock.now() - c.startedAt, error: 'CLIENT_CLOSED' })
    return undefined
  }

  /** Answers a request with `code`'s status without routing it (a node that is not active). */
  refuse (req: RequestLike, out: ServerResponse | Duplex | ClientConn, peer: string, code: ErrorCode, startedAt: number): undefined {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    return this.reject(req, out, peer, code, startedAt, '', req.headers.host ?? '', q === -1 ? url : url.slice(0, q))
  }

  /** An access event for a request refused before it could be routed (parse errors, CONNECT). */
  logRefusal (peer: string, status: number, error: string, method = '', path = ''): void {
    if (!channels.httpRequestEnd.hasSubscribers) return
    publishHttpEnd({ listener: this.config.name, route: '', method, host: '', path, status, client: peer, totalMs: 0, error })
  }

  /** After the rate limits: a 429, a 404 / 503, or the request to forward. */
  private admit (req: RequestLike, out: ServerResponse | Duplex | ClientConn, verdict: Verdict | undefined, route: HttpRouteConfig | undefined, c: Admitted): ForwardRequest | undefined {
    const { startedAt, host, url, upstreamPath, client, peer, trusted, upgrade, absolute } = c
    if (verdict?.allowed === false) return this.limited(req, out, verdict, startedAt, route?.name ?? '', host, url, client)
    // An admitted request was charged: its answer carries the limit's headers, whoever gives it.
    const limited = verdict === undefined ? undefined : limitHeaders(verdict)
    if (route === undefined) return this.reject(req, out, peer, 'NO_ROUTE', startedAt, '', host, url, limited)
    const upstream = this.deps.upstreams.get(route.upstream)
    if (upstream === undefined) return this.reject(req, out, peer, 'NO_SERVER_UP', startedAt, route.name, host, url, limited)
    return {
      listener: this.config.name,
      route: route.name,
      upstream,
      path: upstreamPath,
      headers: upstreamRequestHeaders(req.rawHeaders, { peer, proto: 'http', trusted, ...(absolute && { host }) }, upgrade),
      client,
      host,
      startedAt,
      responseHeaders: limited,
    }
  }

  private limited (req: RequestLike, out: ServerResponse | Duplex | ClientConn, v: Verdict, startedAt: number, route: string, host: string, path: string, client: string): undefined {
    answerLimited(req, out, v, { listener: this.config.name, route, host, path, client, totalMs: this.deps.clock.now() - startedAt })
    return undefined
  }

  private reject (req: RequestLike, out: ServerResponse | Duplex | ClientConn, peer: string, code: ErrorCode, startedAt: number, route: string, host: string, path: string, extra?: readonly string[]): undefined {
    const status = ErrorCodes[code]
    if (out instanceof http.ServerResponse) answer(out, status, extra)
    else answerRaw(out, status, answerLines(status, extra), undefined, req.method)
    if (channels.httpRequestEnd.hasSubscribers) {
      publishHttpEnd({ listener: this.config.name, route, method: req.method ?? '', host, path, status, client: peer, totalMs: this.deps.clock.now() - startedAt, error: code })
    }
    return undefined
  }
}

/** What admit() needs of prepare()'s work. */
interface Admitted {
  readonly startedAt: number
  readonly host: string
  readonly url: string
  /** `url` as the route forwards it (stripPrefix applied). */
  readonly upstreamPath: string
  readonly client: string
  readonly peer: string
  readonly trusted: boolean
  readonly upgrade: boolean
  /** The target was in absolute form: its authority replaces Host upstream. */
  readonly absolute: boolean
}
