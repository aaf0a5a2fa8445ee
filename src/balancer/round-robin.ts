/*
 * Smooth weighted round-robin, nginx's algorithm (ngx_http_upstream_get_peer).
 *
 * On every pick each candidate's current weight grows by its effective weight; the candidate with
 * the largest current weight wins (first in input order on a tie) and loses the sum of all
 * candidates' effective weights. Invariant: over a stable candidate set the current weights sum to
 * zero after every pick, so over any whole cycle each server is picked exactly in proportion to
 * its weight (3:1:1 over 500 picks gives 300/100/100) and the picks are spread out: a a b a c,
 * never a a a b c.
 *
 * Current weights are kept per Server, not per position, so servers may leave and rejoin the
 * candidate set between picks (health, drain, maxConnections, retries that exclude a server):
 * one that is absent keeps its current weight frozen, as nginx does for peers that are down.
 * update() forgets all of them, which restarts the cycle.
 */
import type { Server } from '../upstream/server.js'
import type { Balancer, PickContext } from './types.js'

interface Slot { current: number }

/** Current weights for smooth WRR; shared with least-connections, which uses it to rotate ties. */
export class SmoothWeights {
  private slots = new Map<Server, Slot>()

  /**
   * Picks from `servers` and moves the current weights on. `accept` narrows the set without
   * allocating a filtered array; servers it rejects are neither picked nor touched.
   */
  pick (servers: readonly Server[], accept?: (s: Server, i: number) => boolean): Server | undefined {
    let best: Server | undefined
    let bestSlot: Slot | undefined
    let total = 0
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!
      if (accept !== undefined && !accept(s, i)) continue
      let slot = this.slots.get(s)
      if (slot === undefined) {
        slot = { current: 0 }
        this.slots.set(s, slot)
      }
      const w = s.effectiveWeight
      slot.current += w
      total += w
      if (bestSlot === undefined || slot.current > bestSlot.current) {
        best = s
        bestSlot = slot
      }
    }
    if (bestSlot !== undefined) bestSlot.current -= total
    return best
  }

  reset (): void {
    // A fresh map also drops servers that left the upstream, so nothing outlives a reload.
    this.slots = new Map()
  }
}

export class RoundRobin implements Balancer {
  private readonly weights = new SmoothWeights()

  pick (candidates: readonly Server[], _ctx?: PickContext): Server | undefined {
    if (candidates.length === 1) return candidates[0]
    return this.weights.pick(candidates)
  }

  update (_servers: readonly Server[]): void {
    this.weights.reset()
  }
}
