import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { http } from '../node-builtins.js'
import type { AddressInfo } from 'node:net'
import type { AdminConfig } from '../config/types.js'
import { reportError } from '../observability/events.js'
import { createMetrics, roleOf, type Metrics } from '../observability/metrics.js'
import type { Runtime } from '../runtime/runtime.js'
import type { PeerNode } from '../peer/node.js'
import { serverAction, statusSnapshot, stepDown, type Answer, type ServerAction } from './api.js'
import { ASSET_PATH, DASHBOARD_CSP, asset } from './assets.js'
import { EventStream } from './events.js'
import { AdminAccess } from './access.js'
import { DashboardFeed } from './feed.js'
import { MAX_BODY, clientErrorStatus, json, readBody, send, text } from './http-io.js'

export interface AdminDeps {
  /** A getter: a reload swaps the Runtime. */
  runtime: () => Runtime
  version: string
  /** POST /api/reload; answers 501 while absent. */
  reload?: () => Promise<Answer>
  /** The pair node; given only with `peer:` configured (it may be undefined until the node starts). */
  peer?: () => PeerNode | undefined
}

interface Request {
  req: IncomingMessage
  res: ServerResponse
  params: string[]
}

interface Route {
  pattern: RegExp
  methods: readonly string[]
  handle (r: Request): void | Promise<void>
}

const GET = ['GET', 'HEAD'] as const
/** Admin connections at once: the dashboard, scrapers and scripts need a handful each. */
export const MAX_CONNECTIONS = 256

const STATE_PATH = /^\/api\/upstreams\/([^/]+)\/servers\/([^/]+)\/(drain|disable|enable)$/
const WEIGHT_PATH = /^\/api\/upstreams\/([^/]+)\/servers\/([^/]+)\/(weight)$/

/**
 * The admin HTTP server: a route table over api.ts, bearer-token checks on every mutating
 * endpoint, and JSON errors. Every socket has a timeout; no handler error escapes.
 */
export class AdminServer {
  private readonly server: Server
  private readonly routes: Route[]
  private readonly events: EventStream
  private readonly feed: DashboardFeed
  private readonly access: AdminAccess
  private metrics: Metrics | undefined
  private shuttingDown = false

  constructor (private readonly config: AdminConfig, private readonly deps: AdminDeps) {
    this.access = new AdminAccess(config)
    // Subscribed from construction, before the runtime and the peer start: counters count from then.
    this.metrics = this.createMetrics()
    this.feed = new DashboardFeed(deps.runtime, (tick) => { this.events.publish('tick', tick) })
    this.events = new EventStream(() => statusSnapshot(deps.runtime(), deps.version, deps.peer?.()), () => this.feed.aggregator.history())
    this.routes = [
      { pattern: ASSET_PATH, methods: GET, handle: async ({ req, res }) => { await this.dashboard(req, res) } },
      { pattern: /^\/healthz$/, methods: GET, handle: ({ res }) => { text(res, 200, 'ok') } },
      { pattern: /^\/readyz$/, methods: GET, handle: ({ res }) => { this.ready(res) } },
      { pattern: /^\/metrics$/, methods: GET, handle: async ({ res }) => { await this.scrape(res) } },
      { pattern: /^\/api\/status$/, methods: GET, handle: ({ res }) => { json(res, 200, statusSnapshot(deps.runtime(), deps.version, deps.peer?.())) } },
      { pattern: /^\/api\/peer\/step-down$/, methods: ['POST'], handle: ({ req, res }) => { req.resume(); const a = stepDown(deps.peer?.()); json(res, a.status, a.body) } },
      { pattern: /^\/api\/events$/, methods: ['GET'], handle: ({ req, res }) => { req.socket.setNoDelay(true); this.events.add(res) } },
      { pattern: /^\/api\/reload$/, methods: ['POST'], handle: async ({ res }) => { await this.reload(res) } },
      { pattern: STATE_PATH, methods: ['POST'], handle: async (r) => { await this.serverAction(r) } },
      { pattern: WEIGHT_PATH, methods: ['PUT'], handle: async (r) => { await this.serverAction(r) } },
    ]
    this.server = http.createServer({
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      keepAliveTimeout: 5_000,
      maxHeaderSize: 16 * 1024,
    })
    // Idle sockets close after a minute; an event stream writes every second, so it stays.
    this.server.timeout = 60_000
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => { void this.onRequest(req, res) })
    // Sockets past this are closed at accept: nothing unauthenticated holds the proxy's descriptors.
    this.server.maxConnections = MAX_CONNECTIONS
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable) socket.end(`HTTP/1.1 ${clientErrorStatus(err)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
      socket.destroy()
    })
  }

  private createMetrics (): Metrics {
    const peer = this.deps.peer
    return createMetrics(this.deps.runtime, peer === undefined ? undefined : () => peer())
  }

  async listen (): Promise<void> {
    this.metrics ??= this.createMetrics()
    const { host, port } = this.config.listen
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject)
        this.server.listen(port, host, () => {
          this.server.off('error', reject)
          // accept() failures (EMFILE) after listen must not crash the process: count and go on.
          this.server.on('error', (err) => { reportError('admin', err) })
          resolve()
        })
      })
    } catch (err) {
      this.metrics.close()
      this.metrics = undefined
      throw err
    }
    this.feed.start()
  }

  address (): { host: string, port: number } {
    const a = this.server.address() as AddressInfo | null
    if (a === null) return { host: this.config.listen.host, port: this.config.listen.port }
    return { host: a.address, port: a.port }
  }

  /** From now on /readyz answers 503, so a load balancer in front stops sending traffic. */
  setShuttingDown (): void {
    this.shuttingDown = true
  }

  async close (): Promise<void> {
    this.feed.stop()
    this.events.close()
    this.metrics?.close()
    this.metrics = undefined
    if (!this.server.listening) return
    const closed = new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
    this.server.closeAllConnections()
    await closed
  }

  private async onRequest (req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', () => { res.destroy() })
    req.on('error', () => { req.destroy() })
    res.setHeader('x-content-type-options', 'nosniff')
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/'
    const badHost = this.access.hostRefusal(req, path)
    if (badHost !== undefined) {
      req.resume()
      res.setHeader('connection', 'close')
      json(res, badHost.status, badHost.body)
      return
    }
    try {
      const method = req.method ?? 'GET'
      for (const route of this.routes) {
        const m = route.pattern.exec(path)
        if (m === null) continue
        if (!route.methods.includes(method)) {
          req.resume()
          res.setHeader('allow', route.methods.join(', '))
          json(res, 405, { error: `method ${method} not allowed; use ${route.methods.join(' or ')}` })
          return
        }
        if (method === 'POST' || method === 'PUT') {
          const refused = this.access.writeRefusal(req)
          if (refused !== undefined) {
            req.resume()
            if (refused.status === 401) res.setHeader('www-authenticate', 'Bearer realm="tandem"')
            json(res, refused.status, refused.body)
            return
          }
        }
        await route.handle({ req, res, params: m.slice(1) })
        return
      }
      req.resume()
      json(res, 404, { error: `no such endpoint: ${method} ${path}` })
    } catch (err) {
      if (res.headersSent) res.destroy()
      else json(res, 500, { error: (err as Error).message })
    }
  }

  private ready (res: ServerResponse): void {
    const role = roleOf(this.deps.runtime())
    if (this.shuttingDown) text(res, 503, 'shutting down')
    else if (role !== 'active') text(res, 503, role)
    else text(res, 200, 'ready')
  }

  private async scrape (res: ServerResponse): Promise<void> {
    const metrics = this.metrics
    if (metrics === undefined) {
      json(res, 503, { error: 'closing' })
      return
    }
    const body = await metrics.registry.metrics()
    send(res, 200, metrics.registry.contentType, body)
  }

  private async dashboard (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/'
    let file
    try {
      file = await asset(path)
    } catch (err) {
      json(res, 500, { error: `dashboard file missing from this install (${(err as NodeJS.ErrnoException).code ?? 'error'}); rebuild with npm run build` })
      return
    }
    if (file === undefined) {
      json(res, 404, { error: `no such endpoint: GET ${path}` })
      return
    }
    res.setHeader('content-security-policy', DASHBOARD_CSP)
    res.setHeader('referrer-policy', 'no-referrer')
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache' })
    res.end(req.method === 'HEAD' ? undefined : file.body)
  }

  private async reload (res: ServerResponse): Promise<void> {
    if (this.deps.reload === undefined) {
      json(res, 501, { error: 'reload not available yet' })
      return
    }
    const answer = await this.deps.reload()
    json(res, answer.status, answer.body)
  }

  private async serverAction ({ req, res, params }: Request): Promise<void> {
    const action = params[2] as ServerAction
    let upstream: string
    let address: string
    try {
      upstream = decodeURIComponent(params[0] ?? '')
      address = decodeURIComponent(params[1] ?? '')
    } catch {
      req.resume()
      json(res, 400, { error: 'malformed percent-encoding in the path' })
      return
    }
    let body: unknown
    if (action === 'weight') {
      const raw = await readBody(req)
      if (raw === undefined) {
        res.setHeader('connection', 'close')
        json(res, 413, { error: `body larger than ${MAX_BODY} bytes` })
        return
      }
      try {
        body = JSON.parse(raw)
      } catch {
        json(res, 400, { error: 'body must be JSON: {"weight": N}' })
        return
      }
    } else {
      req.resume()
    }
    const answer = serverAction(this.deps.runtime(), upstream, address, action, body)
    json(res, answer.status, answer.body)
  }
}
