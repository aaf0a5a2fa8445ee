import type { Clock } from '../clock.js'
import type { ListenerConfig } from '../config/types.js'
import type { RateLimiters } from '../ratelimit/limiters.js'
import type { Upstream } from '../upstream/upstream.js'

export interface ListenerDeps {
  readonly upstreams: ReadonlyMap<string, Upstream>
  /** The Runtime's rate limits; absent in tests that build a listener alone. */
  readonly limiters?: RateLimiters
  readonly clock: Clock
  readonly random: () => number
}

/** What the runtime needs of every listener, HTTP or TCP. */
export interface Listener {
  readonly name: string
  readonly protocol: 'http' | 'tcp'
  /** True while bound and accepting. */
  readonly listening: boolean
  /** Binds; rejects with the system error (EADDRINUSE, EACCES). */
  listen (): Promise<void>
  /** The bound address (after listen). */
  address (): { host: string, port: number }
  /** Client connections open now. */
  activeConnections (): number
  /**
   * Stops accepting; established connections go on. What the kernel has queued is accepted
   * first (closing would reset it), unless `now`: a node losing the active role closes the
   * socket before this returns, so it takes no connection after.
   */
  stopAccepting (now?: boolean): Promise<void>
  /**
   * Off on a pair's node that is not active while its socket stays bound (`standby: open`):
   * new HTTP requests are answered 503 (NOT_ACTIVE) with `Connection: close`, new TCP
   * connections are closed at once, and keep-alive connections close (idle ones now, busy ones
   * after their response). Streams and tunnels already open go on. On from construction.
   */
  serve (on: boolean): void
  /** Resolves when in-flight requests and streams have finished. */
  drained (): Promise<void>
  /**
   * Closes everything still open; resolves once what was cut has been reported (a TCP stream's
   * end is published when its handles close, a turn of the loop later), within about a second.
   */
  destroy (): void | Promise<void>
  /**
   * A reload keeps the bound socket: new connections and requests follow `config` and `deps`
   * from now on; those in flight finish as they started. Same protocol and address only.
   */
  update (config: ListenerConfig, deps: ListenerDeps): void
}
