import type { Server } from '../upstream/server.js'

export interface PickContext {
  /** Clock ms. */
  readonly now: number
  /** Uniform in [0, 1); injected so tests are exact. */
  readonly random: () => number
}

/**
 * A load-balancing strategy. Pure: no sockets, no timers. It ranks the candidates it is given
 * (already filtered for health, admin state, room and backup rules) and never retries.
 */
export interface Balancer {
  pick (candidates: readonly Server[], ctx: PickContext): Server | undefined
  /** Called when membership or weights change. */
  update? (servers: readonly Server[]): void
}
