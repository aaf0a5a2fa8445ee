/*
 * State carried from the active node to its standby: every Replicated source under its name
 * (`servers` from upstream/replication.ts, `ratelimits` from the rate-limit helper), as a full
 * snapshot when the state channel (re)connects and as changes every heartbeat after that.
 * Generic over the sources: it never looks inside a state, it only routes it by name.
 */
import type { Replicated } from '../state/replicated.js'
import type { StateMessage } from './messages.js'

export type Sources = ReadonlyMap<string, Replicated<unknown>>

/** Keys per slice of a large snapshot: a few ms to encode or parse. */
export const CHUNK = 5000

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
}

/** A record snapshot in slices of CHUNK keys; anything else whole. */
function byKeys (snap: unknown): unknown[] {
  if (!isRecord(snap)) return [snap]
  const keys = Object.keys(snap)
  if (keys.length <= CHUNK) return [snap]
  const out: unknown[] = []
  for (let i = 0; i < keys.length; i += CHUNK) {
    const slice: Record<string, unknown> = {}
    for (const k of keys.slice(i, i + CHUNK)) slice[k] = snap[k]
    out.push(slice)
  }
  return out
}

export class StateSync {
  private holdsFull = false

  /** `sources` is a getter: a reload may replace a source (a new rate-limit table). */
  constructor (private readonly sources: () => Sources) {}

  /** Standby: a full snapshot arrived on the current state connection and it is still up. */
  get inSync (): boolean { return this.holdsFull }

  /**
   * Active: everything, for a standby that (re)connects, as a sequence of messages; the last one
   * is marked `full`. Snapshots are taken at once (and reset each source's change tracking); a
   * snapshot that is a record of many keys is cut into slices of CHUNK keys, which apply() merges
   * like changes (the Replicated contract), so the sender can yield between slices and a large
   * transfer never holds a heartbeat back. Send no changes until the last slice is out.
   */
  * full (): Generator<StateMessage> {
    const whole: Record<string, unknown> = {}
    for (const [name, source] of this.sources()) {
      if (source.slices !== undefined) {
        for (const slice of source.slices(CHUNK)) yield { k: 'state', full: false, parts: { [name]: slice } }
        continue
      }
      const snap = source.snapshot()
      const slices = byKeys(snap)
      if (slices.length <= 1) {
        whole[name] = snap
        continue
      }
      for (const slice of slices) yield { k: 'state', full: false, parts: { [name]: slice } }
    }
    yield { k: 'state', full: true, parts: whole }
  }

  /** Active: what changed since the last call, or undefined. Called every heartbeat, connected or not. */
  changes (): StateMessage | undefined {
    let parts: Record<string, unknown> | undefined
    for (const [name, source] of this.sources()) {
      const c = source.takeChanges()
      if (c !== undefined) (parts ??= {})[name] = c
    }
    return parts === undefined ? undefined : { k: 'state', full: false, parts }
  }

  /**
   * Standby: merges a message from the active. Parts for sources this node does not have (the
   * peer runs another version or config) are skipped; a part a source refuses is skipped too,
   * and leaves this node out of sync until the next full snapshot.
   */
  apply (m: StateMessage): { applied: string[], failed: Array<{ name: string, error: string }> } {
    const sources = this.sources()
    const applied: string[] = []
    const failed: Array<{ name: string, error: string }> = []
    for (const [name, part] of Object.entries(m.parts)) {
      const source = sources.get(name)
      if (source === undefined) continue
      try {
        source.apply(part)
        applied.push(name)
      } catch (err) {
        failed.push({ name, error: err instanceof Error ? err.message : String(err) })
      }
    }
    if (failed.length > 0) this.holdsFull = false
    else if (m.full) this.holdsFull = true
    return { applied, failed }
  }

  /** The state connection closed, or this node stopped being standby. */
  lost (): void {
    this.holdsFull = false
  }
}
