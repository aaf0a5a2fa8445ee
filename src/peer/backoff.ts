/*
 * How long a node that failed locally (its listeners could not bind) keeps from taking the active
 * role back by preemption (pure). Without it a preempting node that cannot serve was handed the
 * role every time its fault ran out, failed again, and cost the pair two failovers each cycle, for
 * ever. Each fault in a row doubles the hold, up to a cap; serving for a fault's length, or a
 * long quiet time, ends the row.
 */
export class FaultBackoff {
  private streak = 0
  private lastFault = Number.NEGATIVE_INFINITY
  private holdUntil = Number.NEGATIVE_INFINITY

  /** `base`: the first hold, ms; `cap`: the longest. */
  constructor (private readonly base: number, private readonly cap: number) {}

  /** A local fault at `now` that lasts until `endsAt`: no preemption until the hold after it ends. */
  fault (now: number, endsAt: number): void {
    if (now - this.lastFault > 2 * this.cap) this.streak = 0
    this.streak++
    this.lastFault = now
    this.holdUntil = endsAt + Math.min(this.base * 2 ** (this.streak - 1), this.cap)
  }

  /** The node served (was active) for `base` ms: it can bind again; the next fault starts a new row. */
  served (): void { this.streak = 0 }

  holds (now: number): boolean { return now < this.holdUntil }
}
