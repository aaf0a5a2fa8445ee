import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { HttpListenerConfig, HttpRouteConfig, ListenerConfig } from '../config/types.js'
import { TandemError, httpStatusFor, statusText, type ErrorCode } from '../errors.js'
import { channels, publishHttpEnd } from '../observability/events.js'
import { HttpRouter } from '../router/http-router.js'
import { rewritePath } from '../router/match.js'
import { HttpForwarder, type ForwardRequest } from '../upstream/http-forward.js'
import { upstreamRequestHeaders } from '../upstream/headers.js'
import { answerLimited, HttpLimits, limitHeaders } from '../ratelimit/http.js'
import type { Verdict } from '../ratelimit/limiters.js'
import type { HttpPools } from '../upstream/pools.js'
import { UpgradeForwarder } from '../upstream/websocket.js'
import { TrustedProxies, unmapV4 } from './client-ip.js'
import type { Listener, ListenerDeps } from './types.js'

export interface HttpListenerDeps extends ListenerDeps {
  readonly pools: HttpPools
}

/**
 * The HTTP (L7) listener: node:http parses and enforces header limits and timeouts, the router
 * picks a route, the forwarder does the rest. Malformed requests never reach an upstream.
 */
export class HttpListener implements Listener {
  readonly name: string
  readonly protocol = 'http' as const
  private readonly server: http.Server
  private router: HttpRouter
  private forwarder: HttpForwarder
  private upgrades: UpgradeForwarder
  private trusted: TrustedProxies
  private limits: HttpLimits | undefined
  private readonly sockets = new Set<Socket>()
  private inflight = 0
  private closing = false
  private idleWaiters: Array<() => void> = []

  constructor (private config: HttpListenerConfig, private deps: HttpListenerDeps) {
    this.name = config.name
    this.router = new HttpRouter(config.routes)
    this.trusted = new TrustedProxies(config.trustedProxies)
    this.limits = limitsFor(config, deps)
    this.forwarder = new HttpForwarder(deps.pools, config.timeouts, deps.clock)
    this.upgrades = new UpgradeForwarder(deps.clock, config.timeouts.idle)
    const t = config.timeouts
    this.server = http.createServer({
      maxHeaderSize: config.maxHeaderSize,
      headersTimeout: t.header,
      requestTimeout: 0, // the response timeout is the upstream's; the idle timeout guards the socket
      keepAliveTimeout: t.idle,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(t.header / 2))),
      noDelay: true,
    })
    this.server.timeout = t.idle
    this.server.on('request', this.onRequest)
    this.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeContinue()
      this.onRequest(req, res)
    })
    this.server.on('upgrade', this.onUpgrade)
    this.server.on('clientError', onClientError)
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => { this.sockets.delete(socket) })
    })
  }

  get listening (): boolean {
    return this.server.listening && !this.closing
  }

  update (config: ListenerConfig, deps: ListenerDeps): void {
    if (config.protocol !== 'http') throw new TypeError(`listener ${this.name}: cannot become ${config.protocol}`)
    const d: HttpListenerDeps = { ...deps, pools: this.deps.pools }
    this.config = config
    this.deps = d
    this.router = new HttpRouter(config.routes)
    this.trusted = new TrustedProxies(config.trustedProxies)
    this.limits = limitsFor(config, d)
    this.forwarder = new HttpForwarder(d.pools, config.timeouts, d.clock)
    this.upgrades = new UpgradeForwarder(d.clock, config.timeouts.idle)
    // node:http reads these per connection, so new connections get the new values.
    const t = config.timeouts
    const server = this.server as http.Server & { maxHeaderSize: number }
    server.maxHeaderSize = config.maxHeaderSize
    this.server.headersTimeout = t.header
    this.server.keepAliveTimeout = t.idle
    this.server.timeout = t.idle
  }

  async listen (): Promise<void> {
    const { host, port } = this.config.listen
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => { reject(err) }
      this.server.once('error', onError)
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', onError)
        this.server.on('error', () => {})
        resolve()
      })
    })
  }

  address (): { host: string, port: number } {
    const a = this.server.address()
    if (a === null || typeof a === 'string') return { host: this.config.listen.host, port: this.config.listen.port }
    return { host: a.address, port: a.port }
  }

  activeConnections (): number {
    return this.sockets.size
  }

  async stopAccepting (): Promise<void> {
    this.closing = true
    await new Promise<void>((resolve) => {
      if (!this.server.listening) { resolve(); return }
      this.server.close(() => { resolve() })
      // Keep-alive sockets with no request in flight would hold close() open.
      this.server.closeIdleConnections()
    })
  }

  async drained (): Promise<void> {
    if (this.inflight === 0) return
    await new Promise<void>((resolve) => { this.idleWaiters.push(resolve) })
  }

  destroy (): void {
    this.server.closeAllConnections()
    for (const s of this.sockets) s.destroy()
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const startedAt = this.deps.clock.now()
    this.inflight++
    res.once('close', this.onResponseClose)
    if (this.closing) res.shouldKeepAlive = false
    const fr = this.prepare(req, res, startedAt, false)
    if (fr instanceof Promise) void fr.then((f) => { if (f !== undefined && !res.destroyed) this.forwarder.forward(req, res, f) })
    else if (fr !== undefined) this.forwarder.forward(req, res, fr)
  }

  private readonly onResponseClose = (): void => {
    if (--this.inflight > 0) return
    if (this.closing) this.server.closeIdleConnections()
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const startedAt = this.deps.clock.now()
    const fr = this.prepare(req, socket, startedAt, true)
    if (fr instanceof Promise) void fr.then((f) => { if (f !== undefined && !socket.destroyed) this.upgrades.forward(req, socket, head, f) })
    else if (fr !== undefined) this.upgrades.forward(req, socket, head, fr)
  }

  /**
   * Routes the request and builds what the forwarder needs, or answers it here (404, 429, 503).
   * A Promise only while a shared (Redis) rate limit decides.
   */
  private prepare (req: http.IncomingMessage, out: http.ServerResponse | Duplex, startedAt: number, upgrade: boolean): ForwardRequest | Promise<ForwardRequest | undefined> | undefined {
    const rawUrl = req.url ?? '/'
    const url = rawUrl.charCodeAt(0) === 47 /* / */ ? rawUrl : originForm(rawUrl)
    const host = req.headers.host ?? ''
    if (url === undefined) return this.reject(req, out, 'BAD_REQUEST', startedAt, '', host, rawUrl)
    const peer = unmapV4(req.socket.remoteAddress ?? '')
    const trusted = this.trusted.trusts(peer)
    const client = trusted ? this.trusted.clientIp(peer, req.headers['x-forwarded-for']) : peer
    // Rate limits: the listener's before routing, the route's after (ratelimit/http.ts).
    const early = this.limits?.before(client, req.headers)
    if (early?.allowed === false) return this.limited(req, out, early, startedAt, '', host, url, client)
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const route = this.router.match(req.method ?? 'GET', host, path, req.headers)
    const verdict = early ?? this.limits?.after(client, req.headers, route?.name, route?.rateLimit)
    const c: Admission = { startedAt, host, url, client, peer, trusted, upgrade }
    if (verdict instanceof Promise) return verdict.then((v) => out.destroyed ? undefined : this.admit(req, out, v, route, c))
    return this.admit(req, out, verdict, route, c)
  }

  /** After the rate limits: a 429, a 404 / 503, or the request to forward. */
  private admit (req: http.IncomingMessage, out: http.ServerResponse | Duplex, verdict: Verdict | undefined, route: HttpRouteConfig | undefined, c: Admission): ForwardRequest | undefined {
    const { startedAt, host, url, client, peer, trusted, upgrade } = c
    if (verdict?.allowed === false) return this.limited(req, out, verdict, startedAt, route?.name ?? '', host, url, client)
    if (route === undefined) return this.reject(req, out, 'NO_ROUTE', startedAt, '', host, url)
    const upstream = this.deps.upstreams.get(route.upstream)
    if (upstream === undefined) return this.reject(req, out, 'NO_SERVER_UP', startedAt, route.name, host, url)
    return {
      listener: this.name,
      route: route.name,
      upstream,
      path: route.stripPrefix ? rewritePath(route, url) : url,
      headers: upstreamRequestHeaders(req.rawHeaders, { peer, proto: 'http', trusted }, upgrade),
      client,
      host,
      startedAt,
      responseHeaders: verdict === undefined ? undefined : limitHeaders(verdict),
    }
  }

  private limited (req: http.IncomingMessage, out: http.ServerResponse | Duplex, v: Verdict, startedAt: number, route: string, host: string, path: string, client: string): undefined {
    answerLimited(req, out, v, { listener: this.name, route, host, path, client, totalMs: this.deps.clock.now() - startedAt })
    return undefined
  }

  private reject (req: http.IncomingMessage, out: http.ServerResponse | Duplex, code: ErrorCode, startedAt: number, route: string, host: string, path: string): undefined {
    const status = httpStatusFor(new TandemError(code))
    const body = statusText(status) + '\n'
    if (out instanceof http.ServerResponse) {
      out.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      out.end(body)
    } else {
      out.end(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => { out.destroy() })
    }
    if (channels.httpRequestEnd.hasSubscribers) {
      publishHttpEnd({
        listener: this.name,
        route,
        method: req.method ?? '',
        host,
        path,
        status,
        client: unmapV4(req.socket.remoteAddress ?? ''),
        totalMs: this.deps.clock.now() - startedAt,
        error: code,
      })
    }
    return undefined
  }
}

/** What admit() needs of prepare()'s work. */
interface Admission {
  readonly startedAt: number
  readonly host: string
  readonly url: string
  readonly client: string
  readonly peer: string
  readonly trusted: boolean
  readonly upgrade: boolean
}

function limitsFor (config: HttpListenerConfig, deps: ListenerDeps): HttpLimits | undefined {
  const routed = config.routes.some((r) => r.rateLimit !== undefined)
  return deps.limiters === undefined || (config.rateLimit === undefined && !routed) ? undefined : new HttpLimits(deps.limiters, config.rateLimit, routed)
}

/** Absolute-form request targets (`GET http://host/p`) become origin-form; anything else is refused. */
function originForm (target: string): string | undefined {
  if (target === '*') return target
  try {
    const u = new URL(target)
    return u.pathname + u.search
  } catch {
    return undefined
  }
}

function onClientError (err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage != null) {
    socket.destroy()
    return
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT' ? 408 : 400
  const text = status === 408 ? 'Request Timeout' : statusText(status)
  const body = text + '\n'
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => { socket.destroy() })
}
