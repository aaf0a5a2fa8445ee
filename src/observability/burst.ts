// "Once per burst" for error logs (pure): the first error of a kind is logged at once; repeats
// within `windowMs` are only counted, and the next line after the window says how many were
// left out. An EMFILE storm (thousands per second) thus writes one line per window, not one per
// accept, while the counter metric still sees every one. HAProxy's and nginx's accept-error
// logging are rate-limited the same way.
import type { Clock } from '../clock.js'

interface Slot { until: number, suppressed: number }

export class BurstGate {
  private readonly slots = new Map<string, Slot>()

  constructor (private readonly clock: Clock, private readonly windowMs = 10_000, private readonly maxKeys = 1000) {}

  /**
   * For one occurrence of `key`: undefined to stay silent, or `{ suppressed }` (occurrences left
   * out since the last line) when a line should be written now.
   */
  pass (key: string): { suppressed: number } | undefined {
    const now = this.clock.now()
    const slot = this.slots.get(key)
    if (slot !== undefined && now < slot.until) {
      slot.suppressed++
      return undefined
    }
    const suppressed = slot?.suppressed ?? 0
    // Keys are low-cardinality (component, code); the cap only bounds a pathological caller.
    if (slot === undefined && this.slots.size >= this.maxKeys) this.slots.delete(this.slots.keys().next().value as string)
    this.slots.set(key, { until: now + this.windowMs, suppressed: 0 })
    return { suppressed }
  }
}
