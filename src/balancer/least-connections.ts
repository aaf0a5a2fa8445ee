/*
 * Least connections, weighted, as nginx's least_conn: the candidate with the fewest in-flight
 * requests or connections per unit of effective weight (active / effectiveWeight) wins.
 *
 * Ties are broken by smooth weighted round-robin among the tied candidates only. Invariant: the
 * winner always has the minimal active / weight; among equals, picks rotate in proportion to
 * weight. That is what makes sequential traffic (every server idle at each pick) spread 3:1:1
 * instead of always landing on the first server, while concurrent traffic follows the load.
 */
import type { Server } from '../upstream/server.js'
import type { Balancer, PickContext } from './types.js'
import { SmoothWeights } from './round-robin.js'

export class LeastConnections implements Balancer {
  private readonly weights = new SmoothWeights()

  pick (candidates: readonly Server[], _ctx?: PickContext): Server | undefined {
    let best: Server | undefined
    let min = Number.POSITIVE_INFINITY
    let tied = 0
    for (const s of candidates) {
      const load = s.active / s.effectiveWeight
      if (load < min) {
        min = load
        best = s
        tied = 1
      } else if (load === min) {
        tied++
      }
    }
    if (tied <= 1) return best ?? candidates[0]
    // Same expression as above, so equality is exact even for fractional slow-start weights.
    return this.weights.pick(candidates, (s) => s.active / s.effectiveWeight === min)
  }

  update (_servers: readonly Server[]): void {
    this.weights.reset()
  }
}
