// One limit's buckets: key → TAT, capped at `maxKeys` with least-recently-used eviction, full
// buckets expiring by themselves, and the snapshots and changes that carry them to the peer.
// The keys are stored with no JS object or string per key (key-slots.ts). Decisions are
// synchronous and allocate nothing; time comes in as `now` (see gcra.ts).
import type { Clock } from '../clock.js'
import type { Replicated } from '../state/replicated.js'
import { gcraInto, type GcraResult } from './gcra.js'
import { encodeKey } from './key-bytes.js'
import { FREE, KeySlots, NONE } from './key-slots.js'

/** Buckets as they travel: a TAT as "ms ahead of the sender's now" (no process-local times). */
export interface TableState {
  readonly keys: string[]
  /** ms each key's TAT is ahead of now; 0 means full (the receiver drops the key). */
  readonly ahead: number[]
}

export interface BucketTableOptions {
  readonly intervalMs: number
  readonly burst: number
  readonly maxKeys: number
}

export class BucketTable extends KeySlots implements Replicated<TableState> {
  readonly intervalMs: number
  readonly burst: number

  constructor (options: BucketTableOptions, private readonly clock: Clock) {
    super(options.maxKeys)
    this.intervalMs = options.intervalMs
    this.burst = options.burst
  }

  get size (): number { return this.count }

  /**
   * Decides one request for `key` at `now` into `out`. With `commit` false nothing changes (a
   * peek, for a limit whose request another limit may still refuse); otherwise an admitted
   * request moves the TAT, and any request makes the key the most recently used.
   */
  decide (key: string, now: number, out: GcraResult, commit = true): GcraResult {
    const h = encodeKey(key)
    let slot = this.find(h)
    gcraInto(out, slot === NONE ? 0 : this.tat[slot]!, now, this.intervalMs, this.burst)
    if (!commit) return out
    if (slot === NONE) {
      if (!out.allowed) return out
      slot = this.insert(h)
    } else {
      this.touch(slot)
    }
    if (out.allowed) {
      this.tat[slot] = out.tat
      this.markDirty(slot)
    }
    return out
  }

  /**
   * Drops full buckets (TAT ≤ now) from the least recently used end, at most `budget` of them,
   * and gives storage back when the table is mostly empty. Stops at the first bucket not yet
   * full: anything used longer ago than burst × interval is full, so nothing waits for long.
   */
  expire (now: number, budget = 100_000): number {
    let removed = 0
    while (this.tail !== NONE && removed < budget && this.tat[this.tail]! <= now) {
      this.remove(this.tail)
      removed++
    }
    this.shrinkIfSparse()
    return removed
  }

  snapshot (): TableState {
    const now = this.clock.now()
    const keys: string[] = []
    const ahead: number[] = []
    for (let s = this.head; s !== NONE; s = this.next[s]!) {
      const a = this.tat[s]! - now
      if (a > 0) { keys.push(this.keyAt(s)); ahead.push(a) }
    }
    return { keys, ahead }
  }

  /**
   * The snapshot in slices of at most `max` keys, each taken when asked for: the caller yields
   * between them, so a large table never holds the event loop (a million keys take about 0.3 s
   * to turn into strings). A bucket changed meanwhile is dirty and follows with the changes; a
   * resize renumbers the slots, so the walk then starts over (a few times at most; a bucket sent
   * twice is harmless, apply() takes what comes last).
   */
  * slices (max: number): Generator<TableState> {
    let generation = this.generation
    let restarts = 0
    for (let from = 0; from < this.used;) {
      if (generation !== this.generation && restarts++ < 3) from = 0
      generation = this.generation
      const now = this.clock.now()
      const keys: string[] = []
      const ahead: number[] = []
      const end = Math.min(this.used, from + max)
      for (let s = from; s < end; s++) {
        if (this.keyLen[s] === FREE) continue
        const a = this.tat[s]! - now
        if (a > 0) { keys.push(this.keyAt(s)); ahead.push(a) }
      }
      from = end
      if (keys.length > 0) yield { keys, ahead }
    }
  }

  takeChanges (): TableState | undefined {
    if (this.dirtyCount === 0) return undefined
    const now = this.clock.now()
    const keys: string[] = []
    const ahead: number[] = []
    for (let w = 0; w < this.dirty.length; w++) {
      let bits = this.dirty[w]!
      if (bits === 0) continue
      this.dirty[w] = 0
      for (; bits !== 0; bits &= bits - 1) {
        const s = w * 32 + (31 - Math.clz32(bits & -bits))
        if (this.keyLen[s] === FREE) continue // evicted since
        keys.push(this.keyAt(s))
        ahead.push(Math.max(0, this.tat[s]! - now))
      }
    }
    this.dirtyCount = 0
    return keys.length === 0 ? undefined : { keys, ahead }
  }

  /**
   * Merges the peer's buckets, each to the later of the two TATs. A TAT only ever grows (nothing
   * is refunded), so the later one holds every request either node admitted: a standby takes the
   * active's buckets, and a new active keeps its own admissions when the old active's last
   * frames (sent after the hand-over, see PeerNode's tail) arrive. A full bucket (ahead 0) needs
   * no entry; one held here expires by itself.
   */
  apply (state: TableState): void {
    const now = this.clock.now()
    for (let i = 0; i < state.keys.length; i++) {
      const a = state.ahead[i] ?? 0
      if (!(a > 0)) continue
      const h = encodeKey(state.keys[i]!)
      let slot = this.find(h)
      const tat = now + Math.min(a, this.burst * this.intervalMs)
      if (slot === NONE) slot = this.insert(h)
      else {
        this.touch(slot)
        if (this.tat[slot]! >= tat) continue
      }
      this.tat[slot] = tat
    }
  }
}
