// The general path of an HTTP listener: node:http parses (llhttp, with its header limits and
// timeouts), an HttpConnection per socket runs its requests one at a time, and each request is
// admitted (http-admission.ts) before it is forwarded or becomes a tunnel. Connections come here
// when the lean path hands them over, or all of them with TANDEM_HTTP_LEAN=off (http-listener.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { HttpListenerConfig } from '../config/types.js'
import { HttpForwarder } from '../upstream/http-forward.js'
import { UpgradeForwarder } from '../upstream/websocket.js'
import { unmapV4 } from './client-ip.js'
import type { HttpAdmission } from './http-admission.js'
import type { HttpListenerDeps } from './http-listener.js'
import { answerRaw, lingerAfterLastResponse, statusForParseError } from './http-answers.js'
import { HttpConnection } from './http-connection.js'
import { continueIfExpected, expectationFailedOn, type NodeServerHandlers } from './node-server.js'
import { tunnels } from './upgrade-route.js'

/** What the general path needs of its listener. */
export interface NodePathHost {
  /** Shutting down or not serving: answers close their connection. */
  readonly closing: boolean
  /** Off while this node of a pair is not active (Listener.serve): requests are answered 503. */
  readonly serving: boolean
  /** Counts a request or tunnel as in flight, released through settled. */
  hold: () => void
  settled: () => void
}

/** node:http's events for one listener (the handlers are bound: node:http calls them bare). */
export class NodePath implements NodeServerHandlers {
  private readonly connections = new WeakMap<Socket, HttpConnection>()
  private forwarder: HttpForwarder
  private upgrades: UpgradeForwarder

  constructor (
    private admission: HttpAdmission,
    config: HttpListenerConfig,
    private deps: HttpListenerDeps,
    private readonly host: NodePathHost,
  ) {
    this.forwarder = new HttpForwarder(deps.pools, config.timeouts, deps.clock)
    this.upgrades = new UpgradeForwarder(deps.clock, config.timeouts.idle, config.timeouts.response)
  }

  /** A reload: requests that start from now on follow these; those in flight finish as they began. */
  update (admission: HttpAdmission, config: HttpListenerConfig, deps: HttpListenerDeps): void {
    this.admission = admission
    this.deps = deps
    this.forwarder = new HttpForwarder(deps.pools, config.timeouts, deps.clock)
    this.upgrades = new UpgradeForwarder(deps.clock, config.timeouts.idle, config.timeouts.response)
  }

  /** Precondition: node:http has just taken `socket` (its connection handler ran). */
  adopt (socket: Socket): HttpConnection {
    const c = new HttpConnection(socket, this.run, this.settled)
    this.connections.set(socket, c)
    return c
  }

  readonly timeout = (socket: Socket): void => {
    const conn = this.connections.get(socket)
    if (conn === undefined) socket.destroy()
    else conn.idleExpired()
  }

  readonly connect = (req: IncomingMessage, socket: Duplex): void => {
    guardDetached(socket)
    answerRaw(socket, 405)
    this.admission.logRefusal(peerOf(socket), 405, 'METHOD_NOT_ALLOWED', 'CONNECT', req.url ?? '')
  }

  readonly tunnels = (req: IncomingMessage): boolean => tunnels(this.admission.router, req)

  readonly request = (req: IncomingMessage, res: ServerResponse): void => {
    // An Upgrade that is not tunnelled (h2c …) leaves the parser stopped after its headers, as
    // if the protocol had switched: the connection ends with this answer, the rest is unread.
    if (this.host.closing || req.headers.upgrade !== undefined) res.shouldKeepAlive = false
    const conn = this.connections.get(req.socket)
    if (conn === undefined) {
      res.destroy()
      return
    }
    if (conn.push(req, res)) this.host.hold()
  }

  /** Called by the connection when this request's turn comes. */
  private readonly run = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = this.deps.clock.now()
    if (this.host.closing) res.shouldKeepAlive = false
    if (!this.host.serving) {
      this.admission.refuse(req, res, peerOf(req.socket), 'NOT_ACTIVE', startedAt)
      return
    }
    if (expectationFailedOn(req)) {
      this.admission.refuse(req, res, peerOf(req.socket), 'EXPECTATION_FAILED', startedAt)
      return
    }
    const fr = this.admission.prepare(req, res, peerOf(req.socket), startedAt, false)
    if (fr instanceof Promise) void fr.then((f) => { if (f !== undefined && !res.destroyed) { continueIfExpected(req, res); this.forwarder.forward(req, res, f) } })
    else if (fr !== undefined) { continueIfExpected(req, res); this.forwarder.forward(req, res, fr) }
  }

  readonly clientError = (err: Error & { code?: string }, socket: Duplex): void => {
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
    const status = statusForParseError(err.code, (err as { rawPacket?: Buffer }).rawPacket)
    const conn = this.connections.get(socket as Socket)
    if (conn === undefined) answerRaw(socket, status)
    else if (!conn.parseError(status)) return
    this.admission.logRefusal(peerOf(socket), status, err.code ?? 'BAD_REQUEST')
  }

  private readonly settled = (): void => {
    this.host.settled()
  }

  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    guardDetached(socket)
    // A tunnel is in flight until its client socket closes, so a drain waits for it too.
    this.host.hold()
    socket.once('close', this.settled)
    const start = (): void => {
      const startedAt = this.deps.clock.now()
      if (!this.host.serving) {
        this.admission.refuse(req, socket, peerOf(socket), 'NOT_ACTIVE', startedAt)
        return
      }
      const fr = this.admission.prepare(req, socket, peerOf(socket), startedAt, true)
      if (fr instanceof Promise) void fr.then((f) => { if (f !== undefined && !socket.destroyed) this.upgrades.forward(req, socket, head, f) })
      else if (fr !== undefined) this.upgrades.forward(req, socket, head, fr)
    }
    const conn = this.connections.get(socket as Socket)
    if (conn === undefined) start()
    else conn.upgrade(start)
  }
}

/**
 * node:http takes its error listener off a socket it hands to 'upgrade' or 'connect': until
 * someone adds one, a reset from the client (ECONNRESET while an answer lingers) would be an
 * uncaught exception that ends the process.
 */
function guardDetached (socket: Duplex): void {
  socket.on('error', destroySocket)
}

function destroySocket (this: Duplex): void {
  this.destroy()
}

function peerOf (socket: Duplex): string {
  return unmapV4((socket as Socket).remoteAddress ?? '')
}
