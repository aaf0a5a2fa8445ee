import type { RawExchange } from '../upstream/raw-exchange.js'
import type { AcceptedHandle } from '../upstream/tcp-handle.js'
import { ClientConn, type ClientConnOwner } from './client-conn.js'
import type { FastHost } from './fast-host.js'

/** How long a shutdown waits for the next request of an idle connection (see close). */
const FRESH_GRACE_MS = 500

/**
 * How a lean client connection (fast-connection.ts) stands with its listener and ends: in flight
 * or settled, detached from reading, held through a shutdown for a request already on the wire,
 * closed once its last answer is out. The request loop is FastConnection's; this part only stops it.
 */
export abstract class FastLifecycle implements ClientConnOwner {
  readonly out: ClientConn
  protected buf: Buffer | undefined
  /** Where `buf` grows when a head spans reads (see FastConnection.append). */
  protected store: Buffer | undefined
  protected started = 0
  protected busy = false
  protected detached = false
  protected exchange: RawExchange | undefined
  protected headerTimer: NodeJS.Timeout | undefined
  /** A closing answer is being flushed: settle once it is out. */
  protected settleOnDrain = false
  /** Set while shutdown holds a connection that has not sent its first request yet. */
  private graceTimer: NodeJS.Timeout | undefined
  private graced = false

  constructor (handle: AcceptedHandle, protected readonly host: FastHost) {
    this.out = new ClientConn(handle, this, host.idleTimeout)
    this.out.resume()
  }

  abstract onData (chunk: Buffer): void
  abstract onEnd (): void
  abstract onClose (): void

  /** The client's address (IPv4-mapped form unmapped), read once per connection. */
  get peer (): string {
    return this.out.peer
  }

  /** Idle: no request running and nothing read (shutdown closes such connections at once). */
  get idle (): boolean {
    return !this.busy && this.buf === undefined
  }

  /** Accepted just before its listener stopped serving, and held for its first request (see close). */
  get heldForFirst (): boolean {
    return this.graced && this.started === 1
  }

  /**
   * Shutdown: a busy connection closes after its response. An idle one may have its client's
   * next request on the wire already (its first, for one accepted a moment ago; the next one on
   * a keep-alive connection), and closing it with bytes unread resets the client, which cannot
   * safely retry a POST: it is held as in flight for FRESH_GRACE_MS (within the shutdown
   * deadline, which destroys what is left), its request answered with `Connection: close`, or
   * closed when nothing came.
   */
  close (): void {
    if (!this.idle || this.detached || this.graced) return
    this.graced = true
    this.host.hold()
    this.graceTimer = setTimeout(graceOver, FRESH_GRACE_MS, this)
  }

  /** Everything is closed at once (the listener is destroyed). */
  destroy (): void {
    this.detach()
    this.out.destroy()
  }

  /**
   * Ends the connection after its last response. With nothing more read from the client it
   * closes once the answer is flushed (node:http's destroySoon); with bytes still unread it
   * lingers, so that the reset those would cause cannot destroy the answer.
   */
  protected finishConnection (): void {
    const unread = this.buf !== undefined
    this.detach()
    if (unread) this.out.linger()
    else this.out.destroySoon()
  }

  protected settle (): void {
    if (!this.busy) return
    this.busy = false
    this.host.settled()
  }

  /** Stops reading for this connection; what comes later is someone else's (or discarded). */
  protected detach (): void {
    if (this.detached) return
    this.detached = true
    this.buf = this.store = undefined
    if (this.headerTimer !== undefined) clearTimeout(this.headerTimer)
  }

  onIdle (): boolean {
    // Idle means nothing in flight; a slow upstream is judged by the response timeout instead.
    // A detached connection is only flushing its last bytes: to a client that stopped reading.
    return this.detached || !this.busy || this.out.needsDrain
  }

  /** Ends a shutdown hold (the request came, the client left, or the grace ran out). */
  protected endGrace (): void {
    if (this.graceTimer === undefined) return
    clearTimeout(this.graceTimer)
    this.graceTimer = undefined
    this.host.settled()
  }

  /** @internal */
  onGraceOver (): void {
    if (this.idle && !this.detached) {
      this.detach()
      this.out.destroy()
    }
    this.endGrace()
  }

  onDrain (): void {
    this.exchange?.clientDrained()
    if (this.settleOnDrain) {
      this.settleOnDrain = false
      this.settle()
    }
  }
}

// At module level, the connection passed as the timer's argument: no closure per connection for
// a timer most connections never arm.
function graceOver (conn: FastLifecycle): void {
  conn.onGraceOver()
}
