import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { HttpListenerConfig, HttpRouteConfig, ListenerConfig } from '../config/types.js'
import { TandemError, httpStatusFor, type ErrorCode } from '../errors.js'
import { channels, publishHttpEnd, reportError } from '../observability/events.js'
import { HttpRouter } from '../router/http-router.js'
import { rewritePath } from '../router/match.js'
import { HttpForwarder, type ForwardRequest } from '../upstream/http-forward.js'
import { upstreamRequestHeaders } from '../upstream/headers.js'
import { answerLimited, HttpLimits, limitHeaders } from '../ratelimit/http.js'
import type { Verdict } from '../ratelimit/limiters.js'
import type { HttpPools } from '../upstream/pools.js'
import { UpgradeForwarder, tunnelAllowed } from '../upstream/websocket.js'
import { TrustedProxies, unmapV4 } from './client-ip.js'
import { answer, answerRaw, lingerAfterLastResponse, statusForParseError } from './http-answers.js'
import { HttpConnection } from './http-connection.js'
import { requestTarget } from './request-target.js'
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
  private readonly connections = new WeakMap<Socket, HttpConnection>()
  private inflight = 0
  private closing = false
  private idleWaiters: Array<() => void> = []

  constructor (private config: HttpListenerConfig, private deps: HttpListenerDeps) {
    this.name = config.name
    this.router = new HttpRouter(config.routes)
    this.trusted = new TrustedProxies(config.trustedProxies)
    this.limits = limitsFor(config, deps)
    this.forwarder = new HttpForwarder(deps.pools, config.timeouts, deps.clock)
    this.upgrades = new UpgradeForwarder(deps.clock, config.timeouts.idle, config.timeouts.response)
    const t = config.timeouts
    this.server = http.createServer({
      maxHeaderSize: config.maxHeaderSize,
      headersTimeout: t.header,
      requestTimeout: 0, // the response timeout is the upstream's; the idle timeout guards the socket
      keepAliveTimeout: t.idle,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(t.header / 2))),
      noDelay: true,
      // Only upgrades the route allows (WebSocket by default) become tunnels; any other
      // (h2c …) is an ordinary request, its Upgrade header dropped as hop-by-hop.
      shouldUpgradeCallback: (req) => this.tunnels(req),
    })
    // The idle timeout is judged per connection (HttpConnection.idleExpired), not by node:http.
    this.server.timeout = t.idle
    this.server.on('timeout', (socket: Socket) => {
      const conn = this.connections.get(socket)
      if (conn === undefined) socket.destroy()
      else conn.idleExpired()
    })
    this.server.on('request', this.onRequest)
    // 100 Continue is sent when the request's turn comes (see run), not ahead of requests before it.
    this.server.on('checkContinue', this.onRequest)
    this.server.on('upgrade', this.onUpgrade)
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
      answerRaw(socket, 405)
      this.logRefusal(socket, 405, 'METHOD_NOT_ALLOWED', 'CONNECT', req.url ?? '')
    })
    this.server.on('clientError', this.onClientError)
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      this.connections.set(socket, new HttpConnection(socket, this.run, this.onSettled))
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
    this.upgrades = new UpgradeForwarder(d.clock, config.timeouts.idle, config.timeouts.response)
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
    // A pair's standby unbinds and binds again on each role change.
    this.closing = false
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => { reject(err) }
      this.server.once('error', onError)
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', onError)
        // After listen, errors are accept() failures (EMFILE, ENFILE): the server keeps listening.
        this.server.on('error', (err) => { reportError('listener', err) })
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

  /**
   * Unbinds at once. close()'s callback waits for every connection (a tunnel, a hung upstream),
   * so it is not awaited: the drain and its deadline belong to the caller.
   */
  async stopAccepting (): Promise<void> {
    this.closing = true
    if (this.server.listening) this.server.close()
    // Keep-alive sockets with no request in flight are closed now; busy ones after their response.
    this.server.closeIdleConnections()
    await new Promise<void>((resolve) => { setImmediate(resolve) })
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
    // An Upgrade that is not tunnelled (h2c …) leaves the parser stopped after its headers, as
    // if the protocol had switched: the connection ends with this answer, the rest is unread.
    if (this.closing || req.headers.upgrade !== undefined) res.shouldKeepAlive = false
    const conn = this.connections.get(req.socket)
    if (conn === undefined) {
      res.destroy()
      return
    }
    if (conn.push(req, res)) this.inflight++
  }

  /** Called by the connection when this request's turn comes. */
  private readonly run = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const startedAt = this.deps.clock.now()
    if (this.closing) res.shouldKeepAlive = false
    if (/100-continue/i.test(req.headers.expect ?? '')) res.writeContinue()
    const fr = this.prepare(req, res, startedAt, false)
    if (fr instanceof Promise) void fr.then((f) => { if (f !== undefined && !res.destroyed) this.forwarder.forward(req, res, f) })
    else if (fr !== undefined) this.forwarder.forward(req, res, fr)
  }

  private readonly onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    // Bytes after a `Connection: close` request: ignored, that request is still answered.
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      lingerAfterLastResponse(socket as Socket)
      return
    }
    // The client's socket failed (reset): nobody to answer.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      socket.destroy()
      return
    }
    const status = statusForParseError(err.code)
    const conn = this.connections.get(socket as Socket)
    if (conn === undefined) answerRaw(socket, status)
    else if (!conn.parseError(status)) return
    this.logRefusal(socket, status, err.code ?? 'BAD_REQUEST')
  }

  /** An access event for a request refused before it could be routed (parse errors, CONNECT). */
  private logRefusal (socket: Duplex, status: number, error: string, method = '', path = ''): void {
    if (!channels.httpRequestEnd.hasSubscribers) return
    const client = unmapV4((socket as Socket).remoteAddress ?? '')
    publishHttpEnd({ listener: this.name, route: '', method, host: '', path, status, client, totalMs: 0, error })
  }

  private readonly onSettled = (): void => {
    if (--this.inflight > 0) return
    if (this.closing) this.server.closeIdleConnections()
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A tunnel is in flight until its client socket closes, so a drain waits for it too.
    this.inflight++
    socket.once('close', this.onSettled)
    const start = (): void => {
      const startedAt = this.deps.clock.now()
      const fr = this.prepare(req, socket, startedAt, true)
      if (fr instanceof Promise) void fr.then((f) => { if (f !== undefined && !socket.destroyed) this.upgrades.forward(req, socket, head, f) })
      else if (fr !== undefined) this.upgrades.forward(req, socket, head, fr)
    }
    const conn = this.connections.get(socket as Socket)
    if (conn === undefined) start()
    else conn.upgrade(start)
  }

  /** Whether node:http should hand this request's socket to onUpgrade (see tunnelAllowed). */
  private tunnels (req: http.IncomingMessage): boolean {
    if (req.headers.upgrade === undefined) return false
    const target = requestTarget(req.url ?? '/', req.rawHeaders, req.httpVersionMajor)
    if (!target.ok) return false
    const route = this.router.match(req.method ?? 'GET', target.host, target.path, req.headers)
    return route !== undefined && tunnelAllowed(req, route.upgrades)
  }

  /**
   * Routes the request and builds what the forwarder needs, or answers it here (400, 404, 429,
   * 503). A Promise only while a shared (Redis) rate limit decides.
   */
  private prepare (req: http.IncomingMessage, out: http.ServerResponse | Duplex, startedAt: number, upgrade: boolean): ForwardRequest | Promise<ForwardRequest | undefined> | undefined {
    const rawUrl = req.url ?? '/'
    const target = requestTarget(rawUrl, req.rawHeaders, req.httpVersionMajor)
    if (!target.ok) return this.reject(req, out, target.code, startedAt, '', req.headers.host ?? '', rawUrl)
    const { path: url, host, absolute } = target
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
    const c: Admission = { startedAt, host, url, client, peer, trusted, upgrade, absolute }
    if (verdict instanceof Promise) return verdict.then((v) => out.destroyed ? undefined : this.admit(req, out, v, route, c))
    return this.admit(req, out, verdict, route, c)
  }

  /** After the rate limits: a 429, a 404 / 503, or the request to forward. */
  private admit (req: http.IncomingMessage, out: http.ServerResponse | Duplex, verdict: Verdict | undefined, route: HttpRouteConfig | undefined, c: Admission): ForwardRequest | undefined {
    const { startedAt, host, url, client, peer, trusted, upgrade, absolute } = c
    if (verdict?.allowed === false) return this.limited(req, out, verdict, startedAt, route?.name ?? '', host, url, client)
    if (route === undefined) return this.reject(req, out, 'NO_ROUTE', startedAt, '', host, url)
    const upstream = this.deps.upstreams.get(route.upstream)
    if (upstream === undefined) return this.reject(req, out, 'NO_SERVER_UP', startedAt, route.name, host, url)
    return {
      listener: this.name,
      route: route.name,
      upstream,
      path: route.stripPrefix ? rewritePath(route, url) : url,
      headers: upstreamRequestHeaders(req.rawHeaders, { peer, proto: 'http', trusted, ...(absolute && { host }) }, upgrade),
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
    if (out instanceof http.ServerResponse) answer(out, status)
    else answerRaw(out, status)
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
  /** The target was in absolute form: its authority replaces Host upstream. */
  readonly absolute: boolean
}

function limitsFor (config: HttpListenerConfig, deps: ListenerDeps): HttpLimits | undefined {
  const routed = config.routes.some((r) => r.rateLimit !== undefined)
  return deps.limiters === undefined || (config.rateLimit === undefined && !routed) ? undefined : new HttpLimits(deps.limiters, config.rateLimit, routed)
}
