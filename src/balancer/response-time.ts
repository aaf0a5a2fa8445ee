/*
 * Response time: least expected latency, weighted by in-flight load (in the spirit of Finagle's
 * and Linkerd's peak-EWMA, without the random pair).
 *
 * Each server carries rttEwma, a time-decayed EWMA of its response (HTTP: time to response
 * headers; TCP: connect time) kept by Upstream.release() through ewma() below. A pick scores
 * every candidate as
 *
 *   expected rtt × (active + 1) / effectiveWeight
 *
 * Every candidate within TOLERANCE of the lowest score is "near-best", and the near-best share
 * the pick by smooth weighted round-robin. Invariant: apart from the probe share, the server
 * picked scores at most TOLERANCE × the minimum, and a server with no usable sample scores below
 * every idle server that has one, so it is tried next.
 *
 * - The band exists because the choice is otherwise deterministic: a server only 2% slower than
 *   its peers would lose every comparison and get a fraction of its share, which is also what
 *   keeps a recovered server from regaining traffic until its average is exactly back.
 * - A server without a sample, or whose last sample is older than STALE_MS, is "unknown": its
 *   expected rtt is the fastest fresh one (base) and its load factor is `active`, not
 *   `active + 1`, so while idle it scores 0 and is tried at once, but cannot swallow every
 *   request before its first answer comes back.
 * - A fresh sample decays toward base as it ages (the same exp(-age / TAU_MS) that ewma() uses),
 *   so a server that got little traffic lately looks progressively more optimistic.
 * - PROBE_SHARE of picks (decided by the injected random) go uniformly to a non-best candidate.
 *   That keeps samples flowing from slow servers, so one that becomes fast again is noticed.
 * - TAU_MS = 1 s: the time to win back a share after a server goes from slow to fast is about
 *   TAU × ln(slowdown / (band × fast rtt)); 40 ms slower against 1 ms peers is ~5 TAU. With
 *   2 s it would take ~10 s, too slow for "within seconds"; at the probe rate alone a slow
 *   server still gives dozens of samples per TAU under load, enough to average.
 *
 * Why best-score and not power of two choices: p2c exists for many balancers acting on stale,
 * shared information, where everyone herding onto the same "best" server hurts. Here one process
 * sees every in-flight request (active is bumped before the next pick), so the (active + 1)
 * factor already spreads concurrent load, and p2c over three servers would either never pick the
 * worst one (pairs without replacement) or give it a fixed 1/9 however slow it is.
 */
import type { Server } from '../upstream/server.js'
import type { Balancer, PickContext } from './types.js'
import { SmoothWeights } from './round-robin.js'

/** Decay constant of the response-time average, ms: a sample's weight halves in ~0.7 s. */
export const TAU_MS = 1000
/** A server whose last sample is older than this is re-probed as if it had none. */
export const STALE_MS = 5000
/** Fraction of picks sent to a random non-best candidate. */
export const PROBE_SHARE = 0.05
/** Scores within this factor of the best count as equally good and share picks by weight. */
export const TOLERANCE = 1.2

/**
 * Time-decayed EWMA: the old value keeps weight exp(-(now - prevAt) / TAU_MS), so the average
 * covers the last few seconds whatever the request rate. `prev` 0 means no sample yet.
 */
export function ewma (prev: number, prevAt: number, sample: number, now: number): number {
  if (prev === 0) return sample
  const w = Math.exp(-Math.max(0, now - prevAt) / TAU_MS)
  return prev * w + sample * (1 - w)
}

export class ResponseTime implements Balancer {
  private readonly weights = new SmoothWeights()
  private scores = new Float64Array(8)

  pick (candidates: readonly Server[], ctx: PickContext): Server | undefined {
    const n = candidates.length
    if (n <= 1) return candidates[0]
    const now = ctx.now

    let base = Number.POSITIVE_INFINITY
    for (const s of candidates) {
      if (s.rttEwma > 0 && now - s.rttAt <= STALE_MS && s.rttEwma < base) base = s.rttEwma
    }
    if (base === Number.POSITIVE_INFINITY) base = 1

    if (this.scores.length < n) this.scores = new Float64Array(n * 2)
    const scores = this.scores
    let min = Number.POSITIVE_INFINITY
    let bestIdx = 0
    for (let i = 0; i < n; i++) {
      const score = scoreOf(candidates[i]!, base, now)
      scores[i] = score
      if (score < min) {
        min = score
        bestIdx = i
      }
    }

    const r = ctx.random()
    if (r < PROBE_SHARE) {
      // r / PROBE_SHARE is again uniform in [0, 1): one random draw decides both.
      let j = Math.min(Math.floor((r / PROBE_SHARE) * (n - 1)), n - 2)
      if (j >= bestIdx) j++
      return candidates[j]
    }
    const limit = min * TOLERANCE
    let near = 0
    for (let i = 0; i < n; i++) if (scores[i]! <= limit) near++
    if (near <= 1) return candidates[bestIdx]
    return this.weights.pick(candidates, (_s, i) => scores[i]! <= limit)
  }

  update (_servers: readonly Server[]): void {
    this.weights.reset()
  }
}

/** Precondition: base > 0 is the smallest fresh rttEwma among the candidates, or 1 if none. */
function scoreOf (s: Server, base: number, now: number): number {
  const age = now - s.rttAt
  if (s.rttEwma === 0 || age > STALE_MS) return (base * s.active) / s.effectiveWeight
  const expected = base + (s.rttEwma - base) * Math.exp(-Math.max(0, age) / TAU_MS)
  return (expected * (s.active + 1)) / s.effectiveWeight
}
