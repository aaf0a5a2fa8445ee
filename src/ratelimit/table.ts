// One limit's buckets: key → TAT, capped at `maxKeys` with least-recently-used eviction, full
// buckets expiring by themselves. Laid out for a million keys with no JS object or string per
// key, so the heap (and the GC's work) stays flat however many clients there are: a slot holds
// the TAT in a Float64Array, its LRU links in Int32Arrays and its key's bytes in one byte arena;
// an open-addressing hash table (linear probing, backward-shift deletion, no tombstones) maps
// the key's hash to its slot. About 60 bytes per key in all (bench/ratelimit-memory.ts).
// Decisions are synchronous and allocate nothing; time comes in as `now` (see gcra.ts).
import type { Clock } from '../clock.js'
import type { Replicated } from '../state/replicated.js'
import { gcraInto, type GcraResult } from './gcra.js'
import { encoded, encodeKey, IPV4_TAG } from './key-bytes.js'

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

const MIN_CAPACITY = 1024
const NONE = -1

export class BucketTable implements Replicated<TableState> {
  readonly intervalMs: number
  readonly burst: number
  readonly maxKeys: number
  private count = 0
  private capacity = 0
  /** Key bytes of slot s: arena[keyOff[s] .. keyOff[s] + keyLen[s]); keyLen 255 marks a free slot. */
  private arena = new Uint8Array(0)
  private arenaUsed = 0
  private arenaGarbage = 0
  private keyOff = new Int32Array(0)
  private keyLen = new Uint8Array(0)
  private tat = new Float64Array(0)
  private hashes = new Int32Array(0)
  private prev = new Int32Array(0)
  private next = new Int32Array(0)
  /** Hash table of slot + 1 (0 = empty), size a power of two ≥ 2 × capacity. */
  private table = new Int32Array(0)
  private mask = 0
  private head = NONE // most recently used
  private tail = NONE // least recently used
  private free = NONE // unused slots, chained through `next`
  private used = 0 // slots ever handed out (the rest of the arrays is untouched)
  /** Bumped by resize(), which renumbers the slots (a snapshot walking them starts over). */
  private generation = 0
  /** Slots changed since the last takeChanges, one bit each. */
  private dirty = new Int32Array(0)
  private dirtyCount = 0

  constructor (options: BucketTableOptions, private readonly clock: Clock) {
    this.intervalMs = options.intervalMs
    this.burst = options.burst
    this.maxKeys = options.maxKeys
    this.resize(Math.min(MIN_CAPACITY, this.maxKeys), 16 * 1024)
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
    if (this.capacity > MIN_CAPACITY && this.count * 4 < this.capacity) {
      const live = this.arenaUsed - this.arenaGarbage
      this.resize(Math.max(MIN_CAPACITY, this.count * 2), Math.max(1024, Math.ceil(live * 1.5)))
    }
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

  /** Takes the peer's buckets as they are (the active node is the authority). */
  apply (state: TableState): void {
    const now = this.clock.now()
    for (let i = 0; i < state.keys.length; i++) {
      const a = state.ahead[i] ?? 0
      const h = encodeKey(state.keys[i]!)
      let slot = this.find(h)
      if (!(a > 0)) {
        if (slot !== NONE) this.remove(slot)
        continue
      }
      if (slot === NONE) slot = this.insert(h)
      else this.touch(slot)
      this.tat[slot] = now + Math.min(a, this.burst * this.intervalMs)
    }
  }

  /** The slot of the key last encoded (hash `h`), or NONE. */
  private find (h: number): number {
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const e = this.table[i]!
      if (e === 0) return NONE
      const s = e - 1
      if (this.hashes[s] === h && this.keyIs(s)) return s
    }
  }

  private keyIs (s: number): boolean {
    const n = encoded.length
    if (this.keyLen[s] !== n) return false
    const off = this.keyOff[s]!
    const q = encoded.bytes
    for (let i = 0; i < n; i++) if (this.arena[off + i] !== q[i]) return false
    return true
  }

  private keyAt (s: number): string {
    const off = this.keyOff[s]!
    const a = this.arena
    if (this.keyLen[s] === 5 && a[off] === IPV4_TAG) return `${a[off + 1]!}.${a[off + 2]!}.${a[off + 3]!}.${a[off + 4]!}`
    return String.fromCharCode(...a.subarray(off, off + this.keyLen[s]!))
  }

  /** A new arena with the live keys packed (evicted keys leave garbage) and room for half as much again. */
  private repack (needed: number): void {
    const size = Math.max(1024, Math.ceil((this.arenaUsed - this.arenaGarbage + needed) * 1.5))
    const arena = new Uint8Array(size)
    let off = 0
    for (let s = 0; s < this.used; s++) {
      const len = this.keyLen[s]!
      if (len === FREE) continue
      const from = this.keyOff[s]!
      for (let i = 0; i < len; i++) arena[off + i] = this.arena[from + i]!
      this.keyOff[s] = off
      off += len
    }
    this.arena = arena
    this.arenaUsed = off
    this.arenaGarbage = 0
  }

  private storeKey (s: number): void {
    const off = this.arenaUsed
    const { bytes, length } = encoded
    for (let i = 0; i < length; i++) this.arena[off + i] = bytes[i]!
    this.keyOff[s] = off
    this.keyLen[s] = length
    this.arenaUsed += length
  }

  /** Inserts the key last encoded, with hash `h`. */
  private insert (h: number): number {
    if (this.count >= this.maxKeys) this.remove(this.tail)
    if (this.count >= this.capacity) this.resize(Math.min(this.maxKeys, this.capacity * 2), this.arena.length)
    if (this.arenaUsed + encoded.length > this.arena.length) this.repack(encoded.length)
    let s: number
    if (this.free !== NONE) {
      s = this.free
      this.free = this.next[s]!
    } else {
      s = this.used++
    }
    this.storeKey(s)
    this.hashes[s] = h
    this.tat[s] = 0
    this.count++
    this.linkHead(s)
    let i = h & this.mask
    while (this.table[i] !== 0) i = (i + 1) & this.mask
    this.table[i] = s + 1
    return s
  }

  private remove (s: number): void {
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    let i = this.hashes[s]! & this.mask
    while (this.table[i] !== s + 1) i = (i + 1) & this.mask
    this.table[i] = 0
    for (let j = (i + 1) & this.mask; this.table[j] !== 0; j = (j + 1) & this.mask) {
      const k = this.hashes[this.table[j]! - 1]! & this.mask
      const stays = i <= j ? i < k && k <= j : i < k || k <= j
      if (stays) continue
      this.table[i] = this.table[j]!
      this.table[j] = 0
      i = j
    }
    this.unlink(s)
    this.arenaGarbage += this.keyLen[s]!
    this.keyLen[s] = FREE
    this.next[s] = this.free
    this.free = s
    this.count--
  }

  private touch (s: number): void {
    if (this.head === s) return
    this.unlink(s)
    this.linkHead(s)
  }

  private linkHead (s: number): void {
    this.prev[s] = NONE
    this.next[s] = this.head
    if (this.head !== NONE) this.prev[this.head] = s
    this.head = s
    if (this.tail === NONE) this.tail = s
  }

  private unlink (s: number): void {
    const p = this.prev[s]!
    const n = this.next[s]!
    if (p !== NONE) this.next[p] = n
    else this.head = n
    if (n !== NONE) this.prev[n] = p
    else this.tail = p
  }

  private markDirty (s: number): void {
    const w = s >>> 5
    const bit = 1 << (s & 31)
    if ((this.dirty[w]! & bit) !== 0) return
    this.dirty[w]! |= bit
    this.dirtyCount++
  }

  /**
   * New arrays of `capacity` slots (≥ count) and an arena of `arenaBytes` holding the live keys
   * in LRU order (slots renumbered 0..count-1, key bytes packed), and a hash table to match.
   * Used to grow, to compact the arena and to give memory back.
   */
  private resize (capacity: number, arenaBytes: number): void {
    this.generation++
    const old = { arena: this.arena, keyOff: this.keyOff, keyLen: this.keyLen, tat: this.tat, hashes: this.hashes, dirty: this.dirty, next: this.next }
    const oldHead = this.head
    this.capacity = capacity
    this.arena = new Uint8Array(arenaBytes)
    this.keyOff = new Int32Array(capacity)
    this.keyLen = new Uint8Array(capacity)
    this.tat = new Float64Array(capacity)
    this.hashes = new Int32Array(capacity)
    this.prev = new Int32Array(capacity)
    this.next = new Int32Array(capacity)
    this.dirty = new Int32Array((capacity + 31) >>> 5)
    let size = 16
    while (size < capacity * 2) size *= 2
    this.table = new Int32Array(size)
    this.mask = size - 1
    this.head = this.tail = this.free = NONE
    this.count = this.used = this.dirtyCount = 0
    this.arenaUsed = this.arenaGarbage = 0
    // Walk from the most recent and append at the tail, so the order survives.
    let n = 0
    for (let s = oldHead; s !== NONE; s = old.next[s]!) {
      const t = n++
      const len = old.keyLen[s]!
      const off = old.keyOff[s]!
      for (let i = 0; i < len; i++) this.arena[this.arenaUsed + i] = old.arena[off + i]!
      this.keyOff[t] = this.arenaUsed
      this.keyLen[t] = len
      this.arenaUsed += len
      this.tat[t] = old.tat[s]!
      this.hashes[t] = old.hashes[s]!
      this.prev[t] = t - 1
      this.next[t] = NONE
      if (t > 0) this.next[t - 1] = t
      if ((old.dirty[s >>> 5]! & (1 << (s & 31))) !== 0) { this.dirty[t >>> 5]! |= 1 << (t & 31); this.dirtyCount++ }
      let i = old.hashes[s]! & this.mask
      while (this.table[i] !== 0) i = (i + 1) & this.mask
      this.table[i] = t + 1
    }
    this.count = this.used = n
    if (n > 0) { this.head = 0; this.tail = n - 1 }
  }
}

const FREE = 255
