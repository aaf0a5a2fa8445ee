import type { RequestHead } from '../http1/request-head.js'
import type { RawExchange } from '../upstream/raw-exchange.js'
import type { FastConnection } from './fast-connection.js'

/** What a lean connection needs of its listener. */
export interface FastHost {
  readonly maxHeaderSize: number
  readonly headerTimeout: number
  readonly idleTimeout: number
  /** The listener is shutting down: answer what is in flight, then close. */
  readonly closing: boolean
  /**
   * Routes and forwards one request: returns its exchange, or undefined when the listener
   * answered it (404, 429 …; the connection then closes), or a Promise while a shared rate
   * limit decides.
   */
  request: (conn: FastConnection, head: RequestHead) => RawExchange | undefined | Promise<RawExchange | undefined>
  /**
   * The rest of this connection is node:http's: `buffered` is what was read and not used;
   * `headLeftMs`, when a head had begun, is what is left of its header timeout.
   */
  handOver: (conn: FastConnection, buffered: Buffer | undefined, headLeftMs?: number) => void
  /**
   * A partial head that will not complete: 408 when it outlived the header timeout, 400 when the
   * client ended its side after it. The listener answers (closing) and logs `code`.
   */
  refuseHead: (conn: FastConnection, status: 400 | 408, code: string) => void
  /** Once for every request that started, when it is answered or dropped; and for every hold. */
  settled: () => void
  /** Counts a connection as in flight (released through settled) so a drain waits for it. */
  hold: () => void
  closed: (conn: FastConnection) => void
}
