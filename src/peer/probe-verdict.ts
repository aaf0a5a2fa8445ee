/** Consecutive witness results needed to change its verdict (a role never flips on one probe). */
export const WITNESS_RISE = 2
export const WITNESS_FALL = 2

/**
 * The TCP witness's verdict from its probe results (pure): up or down after two results in a
 * row, and when a probe last succeeded (a blackholed witness never fails a probe quickly, so
 * the election also asks for a recent success, see WitnessGate.blessed).
 */
export class ProbeVerdict {
  private up = false
  private run = 0
  private okAt = Number.NEGATIVE_INFINITY
  private probed = false

  record (now: number, ok: boolean): void {
    this.probed = true
    if (ok) this.okAt = now
    if (ok === this.up) {
      this.run = 0
    } else if (++this.run >= (ok ? WITNESS_RISE : WITNESS_FALL)) {
      this.up = ok
      this.run = 0
    }
  }

  /** The verdict is up and a probe succeeded within the last `ms`. */
  confirmed (now: number, ms: number): boolean {
    return this.up && now - this.okAt <= ms
  }

  /** unknown only until the first probe ends: a witness refused since start is down, not unknown. */
  get state (): 'up' | 'down' | 'unknown' {
    if (!this.probed) return 'unknown'
    return this.up ? 'up' : 'down'
  }
}
