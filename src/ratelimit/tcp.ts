// Rate limiting as the TCP listener sees it: a new connection is decided on accept, from the bare
// handle's peer address, before any upstream connect; established streams are never touched.
import { unmapV4 } from '../listener/client-ip.js'
import { peerOf, type AcceptedHandle } from '../upstream/tcp-handle.js'
import type { RateLimit } from './limiter.js'
import { publishDenied, type RateLimiters } from './limiters.js'

export class TcpLimit {
  private readonly limit: RateLimit

  private constructor (private readonly limiters: RateLimiters, limit: RateLimit, private readonly listener: string) {
    this.limit = limit
  }

  /** Undefined when the listener has no limit (or no limiters were given). */
  static for (limiters: RateLimiters | undefined, name: string | undefined, listener: string): TcpLimit | undefined {
    const limit = limiters?.get(name)
    return limiters === undefined || limit === undefined ? undefined : new TcpLimit(limiters, limit, listener)
  }

  get name (): string { return this.limit.name }

  /**
   * Whether the connection may go on: synchronous with the local store, a Promise with Redis.
   * A refusal is published (metrics count it); the caller closes the connection.
   */
  admit (handle: AcceptedHandle): boolean | Promise<boolean> {
    const v = this.limiters.decide(this.limit, this.limit.keyOf(clientOf(handle), undefined, ''), undefined, '')
    if (v instanceof Promise) return v.then((r) => this.counted(r.allowed))
    return this.counted(v.allowed)
  }

  private counted (allowed: boolean): boolean {
    if (!allowed) publishDenied(this.listener, this.limit.name)
    return allowed
  }
}

/** The peer address of an accepted handle, without wrapping it in a Socket. */
function clientOf (handle: AcceptedHandle): string {
  return unmapV4(peerOf(handle)?.address ?? '')
}
