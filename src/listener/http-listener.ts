import type { Server } from 'node:http'
import net, { type Socket } from 'node:net'
import type { HttpListenerConfig, ListenerConfig } from '../config/types.js'
import type { RequestHead } from '../http1/request-head.js'
import { reportError } from '../observability/events.js'
import type { HttpPools } from '../upstream/pools.js'
import { RawExchange } from '../upstream/raw-exchange.js'
import { RawForwarder } from '../upstream/raw-forwarder.js'
import { acceptHandles, afterAcceptPoll, type AcceptedHandle } from '../upstream/tcp-handle.js'
import { FastConnection } from './fast-connection.js'
import type { FastHost } from './fast-host.js'
import { HttpAdmission } from './http-admission.js'
import { answerRaw } from './http-answers.js'
import type { HttpConnection } from './http-connection.js'
import { NodePath } from './node-path.js'
import { createNodeServer } from './node-server.js'
import type { Listener, ListenerDeps } from './types.js'

export interface HttpListenerDeps extends ListenerDeps {
  readonly pools: HttpPools
}

/**
 * `TANDEM_HTTP_LEAN=off` sends every connection through node:http (the general path), for
 * comparison and as an escape hatch.
 */
const LEAN = process.env.TANDEM_HTTP_LEAN !== 'off'

function onAcceptError (err: Error): void { reportError('listener', err) }

/** How long node:http's idle keep-alive connections stay open once the listener stops: as the lean path's (fast-lifecycle.ts). */
const IDLE_GRACE_MS = 500

/**
 * The HTTP (L7) listener. Every connection starts on the lean path (fast-connection.ts: bodiless
 * GET and HEAD over raw sockets); at the first request the lean parser does not take, the
 * connection is handed to node:http for good (node-path.ts), which parses it with llhttp and
 * enforces the header limits and timeouts. Both paths share admission (routes, limits; http-admission.ts)
 * and the retry policy. Malformed requests never reach an upstream.
 */
export class HttpListener implements Listener, FastHost {
  readonly name: string
  readonly protocol = 'http' as const
  private readonly server: Server
  /** node:http's own connection handler, called for connections handed over. */
  private readonly nodeConnection: (socket: Socket) => void
  private admission: HttpAdmission
  private raw: RawForwarder
  /** node:http's events, and the requests of the connections it holds. */
  private readonly node: NodePath
  private readonly sockets = new Set<Socket>()
  private readonly lean = new Set<FastConnection>()
  private idleClose: NodeJS.Timeout | undefined
  private inflight = 0
  private stopping = false
  /** Off while this node of a pair is not active and stays bound (Listener.serve). */
  private on = true
  private idleWaiters: Array<() => void> = []

  constructor (private config: HttpListenerConfig, private deps: HttpListenerDeps) {
    this.name = config.name
    this.admission = new HttpAdmission(config, deps)
    this.node = new NodePath(this.admission, config, deps, this)
    this.raw = new RawForwarder(deps.pools, config.timeouts, deps.clock)
    const node = createNodeServer(config, this.node)
    this.server = node.server
    this.nodeConnection = node.nodeConnection
    // Lean connections arrive as bare handles (see listen); node:http's get a Socket each.
    if (!LEAN) this.server.on('connection', (socket: Socket) => { this.toNode(socket, undefined) })
  }

  get listening (): boolean {
    return this.server.listening && !this.stopping
  }

  get closing (): boolean {
    return this.stopping || !this.on
  }

  get serving (): boolean {
    return this.on
  }

  get maxHeaderSize (): number { return this.config.maxHeaderSize }
  get headerTimeout (): number { return this.config.timeouts.header }
  get idleTimeout (): number { return this.config.timeouts.idle }

  update (config: ListenerConfig, deps: ListenerDeps): void {
    if (config.protocol !== 'http') throw new TypeError(`listener ${this.name}: cannot become ${config.protocol}`)
    const d: HttpListenerDeps = { ...deps, pools: this.deps.pools }
    this.config = config
    this.deps = d
    this.admission = new HttpAdmission(config, d)
    this.node.update(this.admission, config, d)
    this.raw = new RawForwarder(d.pools, config.timeouts, d.clock)
    // node:http reads these per connection, so new connections get the new values.
    const t = config.timeouts
    const server = this.server as Server & { maxHeaderSize: number }
    server.maxHeaderSize = config.maxHeaderSize
    this.server.headersTimeout = t.header
    this.server.keepAliveTimeout = t.idle
    this.server.timeout = t.idle
  }

  async listen (): Promise<void> {
    const { host, port } = this.config.listen
    // A pair's standby unbinds and binds again on each role change.
    this.stopping = false
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => { reject(err) }
      this.server.once('error', onError)
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', onError)
        // After listen, errors are accept() failures (EMFILE, ENFILE): the server keeps listening.
        // Added once: a pair node binds the same server again on each activation.
        if (!this.server.listeners('error').includes(onAcceptError)) this.server.on('error', onAcceptError)
        if (LEAN) acceptHandles(this.server, this.onHandle)
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
    return this.sockets.size + this.lean.size
  }

  /**
   * Unbinds (see Listener.stopAccepting for `now`). close()'s callback waits for every
   * connection (a tunnel, a hung upstream), so it is not awaited: the drain and its deadline
   * belong to the caller.
   */
  async stopAccepting (now = false): Promise<void> {
    this.stopping = true
    // Connections the kernel completed while the loop was busy wait in the accept queue, and
    // closing the socket resets them: one poll first accepts them, to be answered (with
    // `Connection: close`) like those already open. Only the ones that land in the microseconds
    // before close() are reset, as with any server.
    if (!now) await afterAcceptPoll()
    // net.Server's close, not http.Server's: that one would also close every idle keep-alive
    // connection at once, under a request already on its way (closeIdle gives them a grace).
    if (this.server.listening) net.Server.prototype.close.call(this.server)
    this.closeIdle()
    await new Promise<void>((resolve) => { setImmediate(resolve) })
  }

  serve (on: boolean): void {
    this.on = on
    if (!on) this.closeIdle()
  }

  /**
   * Keep-alive connections with no request in flight close after IDLE_GRACE_MS (a request that
   * comes meanwhile is answered with `Connection: close`, see NodePath), busy ones after their
   * response: the client may have sent its next request already, and a close under it is a
   * reset, which a client cannot safely retry for a POST. The lean path's do the same.
   */
  private closeIdle (): void {
    for (const c of this.lean) c.close()
    if (this.idleClose !== undefined) return
    this.idleClose = setTimeout(() => {
      this.idleClose = undefined
      this.server.closeIdleConnections()
    }, IDLE_GRACE_MS)
    this.idleClose.unref()
  }

  async drained (): Promise<void> {
    if (this.inflight === 0) return
    await new Promise<void>((resolve) => { this.idleWaiters.push(resolve) })
  }

  destroy (): void {
    clearTimeout(this.idleClose)
    this.server.closeAllConnections()
    for (const s of this.sockets) s.destroy()
    for (const c of this.lean) c.destroy()
  }

  // --- the lean path (FastHost) ---

  request (conn: FastConnection, head: RequestHead): RawExchange | undefined | Promise<RawExchange | undefined> {
    this.inflight++
    // A connection that reached this node while it served gets its first request answered.
    if (!this.on && !conn.heldForFirst) return this.admission.refuse(head, conn.out, conn.peer, 'NOT_ACTIVE', this.deps.clock.now())
    const fr = this.admission.prepare(head, conn.out, conn.peer, this.deps.clock.now(), false)
    if (fr === undefined) return undefined
    const raw = this.raw
    if (fr instanceof Promise) return fr.then((f) => f === undefined ? undefined : new RawExchange(raw, conn, head, f))
    return new RawExchange(raw, conn, head, fr)
  }

  handOver (conn: FastConnection, buffered: Buffer | undefined, headLeftMs?: number): void {
    this.lean.delete(conn)
    const peer = conn.peer
    const c = this.toNode(conn.out.toSocket(), buffered)
    if (headLeftMs !== undefined) {
      c.headWithin(headLeftMs, () => {
        answerRaw(c.socket, 408)
        this.admission.logRefusal(peer, 408, 'HPE_HEADERS_TIMEOUT')
      })
    }
  }

  private readonly onHandle = (handle: AcceptedHandle): void => {
    this.lean.add(new FastConnection(handle, this))
  }

  private toNode (socket: Socket, buffered: Buffer | undefined): HttpConnection {
    this.sockets.add(socket)
    socket.once('close', () => { this.sockets.delete(socket) })
    socket.pause()
    if (buffered !== undefined) socket.unshift(buffered)
    this.nodeConnection.call(this.server, socket)
    const c = this.node.adopt(socket)
    // node:http consumes the socket from here; what was unshifted is emitted first.
    socket.resume()
    return c
  }

  refuseHead (conn: FastConnection, status: 400 | 408, code: string): void {
    answerRaw(conn.out, status)
    this.admission.logRefusal(conn.peer, status, code)
  }

  settled (): void {
    if (--this.inflight > 0) return
    if (this.closing) this.closeIdle()
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  hold (): void {
    this.inflight++
  }

  closed (conn: FastConnection): void {
    this.lean.delete(conn)
  }
}
