import type http from 'node:http'
import type { Socket } from 'node:net'
import { answer, answerRaw } from './http-answers.js'

/**
 * Requests held behind the one in progress on one connection. More than this pipelined at once
 * and the connection closes after them: RFC 9112 §9.3.2 lets a server close with pipelined
 * requests unanswered, and a client that pipelines must retry those.
 */
export const MAX_QUEUED = 256

type Run = (req: http.IncomingMessage, res: http.ServerResponse) => void

interface Item {
  readonly req: http.IncomingMessage
  readonly res: http.ServerResponse
  /** Set when the parser refused this request's framing: it is answered with this status, never run. */
  fault?: number
  refused?: boolean
}

/**
 * node:http's own backpressure flags. A paused socket with `_paused` set is what node:http itself
 * does when responses pile up; setting it keeps node:http's body reads (readStart) from resuming
 * the socket behind our back, and the parser is resumed with the socket.
 */
interface ParsedSocket extends Socket {
  _paused?: boolean
  parser?: { resume: () => void } | null
}

/**
 * One client connection's requests, run one at a time in arrival order (nginx semantics): the
 * next pipelined request is not forwarded until the previous response has finished, and reading
 * from the socket stops while requests wait, so one connection holds at most one upstream
 * connection and upstreams see requests in order. Nothing after a response that ends the
 * connection (Connection: close, HTTP/1.0, or an error answer) is ever run.
 */
export class HttpConnection {
  private current: Item | undefined
  private readonly queue: Item[] = []
  private tail: Item | undefined
  /** A request that ends the connection was accepted: later ones are never run. */
  private last = false
  /** A framing error after the accepted requests: answered once they are done. */
  private pendingFault: number | undefined
  private parseFailed = false
  /** An upgrade pipelined behind requests in progress: started once they are answered. */
  private pendingUpgrade: (() => void) | undefined
  /** Set while a head the lean path began must complete (see headWithin). */
  private headTimer: NodeJS.Timeout | undefined

  /**
   * `run` forwards a request; `settle` is called once for every request push() accepted, when
   * it is answered or dropped.
   */
  constructor (readonly socket: Socket, private readonly run: Run, private readonly settle: () => void) {
    socket.once('close', this.onSocketClose)
  }

  /**
   * A connection handed over by the lean path mid-head: node:http's header timeout starts again
   * at the hand-over, so the head gets only what was left of its own (`ms`), then `expired`.
   * Without it, a head trickled across the hand-over had twice `timeouts.header`.
   */
  headWithin (ms: number, expired: () => void): void {
    this.headTimer = setTimeout(() => {
      this.headTimer = undefined
      if (this.current === undefined && !this.socket.destroyed) expired()
    }, Math.max(1, ms))
  }

  /** Takes the next parsed request; false when it will never run (not counted, not settled). */
  push (req: http.IncomingMessage, res: http.ServerResponse): boolean {
    this.clearHeadTimer()
    if (this.last || this.socket.destroyed) return false
    const item: Item = { req, res }
    this.tail = item
    if (!res.shouldKeepAlive) this.last = true
    if (this.current === undefined) {
      this.start(item)
      return true
    }
    this.queue.push(item)
    if (this.queue.length >= MAX_QUEUED) {
      // This one is answered with Connection: close; the client retries the rest elsewhere.
      this.last = true
      res.shouldKeepAlive = false
    }
    pauseReading(this.socket)
    return true
  }

  /**
   * The parser refused the bytes after the accepted requests (bad framing, bad chunk, junk).
   * A request whose body was being read is answered with `status` (or cut if its answer has
   * begun); otherwise the error answer follows the requests already accepted.
   */
  /** False when this connection had already failed to parse (node:http repeats the error). */
  parseError (status: number): boolean {
    // node:http reports the error again for every chunk that arrives while the answer lingers.
    if (this.parseFailed) return false
    this.parseFailed = true
    this.last = true
    const tail = this.tail
    if (tail !== undefined && !tail.req.complete && !tail.res.writableEnded) {
      tail.fault ??= status
      // A queued request is refused when its turn comes; the current one at once.
      if (tail === this.current) this.refuse(tail)
      return true
    }
    if (this.current === undefined) answerRaw(this.socket, status)
    else this.pendingFault = status
    return true
  }

  /**
   * Runs an upgrade handshake once every request before it is answered, so its 101 never lands
   * in the middle of an earlier response. node:http stops parsing at an upgrade, so nothing
   * follows it; it is dropped if an earlier response ends the connection.
   */
  upgrade (start: () => void): void {
    this.last = true
    if (this.current === undefined) start()
    else this.pendingUpgrade = start
  }

  /**
   * The client idle timeout fired. `idle` is for a connection with nothing in flight: while
   * tandem waits on the upstream, the response timeout governs instead. It still ends a client
   * that stopped sending its body (408) or stopped reading the answer.
   */
  idleExpired (): void {
    const c = this.current
    if (c === undefined) {
      this.socket.destroy()
      return
    }
    if (!c.req.complete) {
      c.fault ??= 408
      this.refuse(c)
      return
    }
    if (c.res.headersSent && c.res.writableNeedDrain) this.socket.destroy()
  }

  private start (item: Item): void {
    this.current = item
    item.res.once('close', this.onDone)
    // One microtask later: a framing error the parser finds right after these headers
    // (`Transfer-Encoding: gzip`) is reported first, and such a request is never forwarded.
    queueMicrotask(() => {
      if (item.fault !== undefined) this.refuse(item)
      else if (!this.socket.destroyed) this.run(item.req, item.res)
    })
  }

  /**
   * Answers a request the client got wrong. An exchange in progress sees the response end with
   * the request incomplete and gives up its upstream attempt. The request is not destroyed:
   * that would reset the socket under the answer.
   */
  private refuse (item: Item): void {
    if (item.refused === true) return
    item.refused = true
    const status = item.fault as number
    if (!item.res.headersSent && !item.res.destroyed) answer(item.res, status)
    else item.res.destroy()
  }

  private readonly onDone = (): void => {
    const done = this.current as Item
    this.current = undefined
    this.settle()
    if (!done.res.shouldKeepAlive || this.socket.destroyed) {
      // node:http closes the socket after this response; what waited is never run.
      this.last = true
      this.dropQueue()
      return
    }
    const next = this.queue.shift()
    if (next === undefined) {
      if (this.pendingFault !== undefined) answerRaw(this.socket, this.pendingFault)
      else if (this.pendingUpgrade !== undefined) this.pendingUpgrade()
      else if (!this.last) resumeReading(this.socket)
      return
    }
    // The last one waiting may still be receiving its body, even when it ends the connection.
    if (this.queue.length === 0 && (!this.last || !next.req.complete)) resumeReading(this.socket)
    this.start(next)
  }

  private readonly onSocketClose = (): void => {
    this.clearHeadTimer()
    this.last = true
    this.dropQueue()
  }

  private clearHeadTimer (): void {
    if (this.headTimer === undefined) return
    clearTimeout(this.headTimer)
    this.headTimer = undefined
  }

  private dropQueue (): void {
    const n = this.queue.length
    this.queue.length = 0
    for (let i = 0; i < n; i++) this.settle()
  }
}

function pauseReading (socket: ParsedSocket): void {
  socket._paused = true
  socket.pause()
}

function resumeReading (socket: ParsedSocket): void {
  if (socket._paused !== true) return
  socket._paused = false
  socket.parser?.resume()
  socket.resume()
}
