// The general path's node:http server for one HTTP listener: its options and event wiring. The
// listener feeds it sockets itself (the 'connection' listener node:http adds is taken out and
// returned), so a connection can start on the lean path and be handed over later.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { HttpListenerConfig } from '../config/types.js'
import { http } from '../node-builtins.js'

/** What the listener does with node:http's events. */
export interface NodeServerHandlers {
  /** A request in its connection's queue (100-continue and failed expectations too). */
  request (req: IncomingMessage, res: ServerResponse): void
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** A request node:http could not parse. */
  clientError (err: Error & { code?: string }, socket: Duplex): void
  /** The socket's idle timeout fired (judged by the connection, not by node:http). */
  timeout (socket: Socket): void
  connect (req: IncomingMessage, socket: Duplex): void
  /** Should this Upgrade request become a tunnel (see tunnelAllowed)? */
  tunnels (req: IncomingMessage): boolean
}

/** Requests whose Expect is not 100-continue (node:http's checkExpectation): answered 417. */
const expectationFailed = new WeakSet<IncomingMessage>()

export function expectationFailedOn (req: IncomingMessage): boolean {
  return expectationFailed.has(req)
}

/**
 * Sends 100 Continue if the client waits for one. Precondition: the request is admitted (routed,
 * within its rate limits): one that is refused gets its answer with no 100 first, so the client
 * never starts a body that would be thrown away. HTTP/1.0 has no 1xx: a 100 there would be read
 * as the final answer (RFC 9110 §10.1.1).
 */
export function continueIfExpected (req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMinor >= 1 && /100-continue/i.test(req.headers.expect ?? '')) res.writeContinue()
}

export function createNodeServer (config: HttpListenerConfig, h: NodeServerHandlers): { server: Server, nodeConnection: (socket: Socket) => void } {
  const t = config.timeouts
  const server = http.createServer({
    maxHeaderSize: config.maxHeaderSize,
    headersTimeout: t.header,
    requestTimeout: 0, // the response timeout is the upstream's; the idle timeout guards the socket
    keepAliveTimeout: t.idle,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(t.header / 2))),
    noDelay: true,
    // A 1.1 request without Host is refused by requestTarget, answered and logged like any other.
    requireHostHeader: false,
    // Only upgrades the route allows (WebSocket by default) become tunnels; any other
    // (h2c …) is an ordinary request, its Upgrade header dropped as hop-by-hop.
    shouldUpgradeCallback: (req) => h.tunnels(req),
  })
  const nodeConnection = server.listeners('connection')[0] as (socket: Socket) => void
  server.removeListener('connection', nodeConnection)
  server.timeout = t.idle
  server.on('timeout', h.timeout)
  server.on('request', h.request)
  // 100 Continue is sent once the request's turn comes and it is admitted (see NodePath.run,
  // continueIfExpected), not ahead of requests before it.
  server.on('checkContinue', h.request)
  // Any other Expect: 417 in its turn, logged, closing the connection (node's own 417 kept it
  // open and ran the next pipelined request).
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    expectationFailed.add(req)
    h.request(req, res)
  })
  server.on('upgrade', h.upgrade)
  server.on('connect', h.connect)
  server.on('clientError', h.clientError)
  return { server, nodeConnection }
}
