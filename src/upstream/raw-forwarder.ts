import type { Clock } from '../clock.js'
import type { HttpTimeouts } from '../config/types.js'
import type { ClientConn } from '../listener/client-conn.js'
import type { HttpPools } from './pools.js'

/** What an exchange needs of the client connection (listener/fast-connection.ts). */
export interface ClientSide {
  /** Where the response goes. */
  readonly out: ClientConn
  /** Whether the connection may carry another request after this one. */
  keepsAlive: () => boolean
  /** The response ended cleanly; `keepAlive` false: the connection closes after it. */
  exchangeDone: (keepAlive: boolean) => void
  /** tandem answers `status` itself (the connection then closes); `extra`: header name, value pairs. */
  answer: (status: number, extra?: readonly string[]) => void
  /** The response was cut short: the connection is destroyed. */
  cut: () => void
}

/** Shared by a listener's exchanges: the pools, the timeouts, the clock. */
export class RawForwarder {
  private date = ''
  private dateUntil = 0

  constructor (readonly pools: HttpPools, readonly timeouts: HttpTimeouts, readonly clock: Clock) {}

  /** An IMF-fixdate for the Date header, made once a second (node:http does the same). */
  httpDate (): string {
    const now = Date.now()
    if (now >= this.dateUntil) {
      this.date = new Date(now).toUTCString()
      this.dateUntil = now - (now % 1000) + 1000
    }
    return this.date
  }
}
