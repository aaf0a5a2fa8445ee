// Key → slot storage for a bucket table, laid out for a million keys with no JS object or string
// per key, so the heap (and the GC's work) stays flat however many clients there are: a slot
// holds the TAT in a Float64Array, its LRU links in Int32Arrays and its key's bytes in one byte
// arena; an open-addressing hash table (linear probing, backward-shift deletion, no tombstones)
// maps the key's hash to its slot. About 60 bytes per key in all (bench/ratelimit-memory.ts).
// A base class rather than a member, so table.ts reads the arrays with no extra hop.
import { stateChanged } from '../state/changes.js'
import { encoded, IPV4_TAG } from './key-bytes.js'

const MIN_CAPACITY = 1024
/** No slot: the end of a list, or a key not found. */
export const NONE = -1
/** keyLen of a free slot. */
export const FREE = 255

export class KeySlots {
  /** Keys held. */
  protected count = 0
  private capacity = 0
  /** Key bytes of slot s: arena[keyOff[s] .. keyOff[s] + keyLen[s]); keyLen 255 marks a free slot. */
  private arena = new Uint8Array(0)
  private arenaUsed = 0
  private arenaGarbage = 0
  private keyOff = new Int32Array(0)
  protected keyLen = new Uint8Array(0)
  protected tat = new Float64Array(0)
  private hashes = new Int32Array(0)
  private prev = new Int32Array(0)
  protected next = new Int32Array(0)
  /** Hash table of slot + 1 (0 = empty), size a power of two ≥ 2 × capacity. */
  private table = new Int32Array(0)
  private mask = 0
  protected head = NONE // most recently used
  protected tail = NONE // least recently used
  private free = NONE // unused slots, chained through `next`
  protected used = 0 // slots ever handed out (the rest of the arrays is untouched)
  /** Bumped by resize(), which renumbers the slots (a snapshot walking them starts over). */
  protected generation = 0
  /** Slots changed since the last takeChanges, one bit each. */
  protected dirty = new Int32Array(0)
  protected dirtyCount = 0

  constructor (readonly maxKeys: number) {
    this.resize(Math.min(MIN_CAPACITY, this.maxKeys), 16 * 1024)
  }

  /** Gives storage back when the table is mostly empty. */
  protected shrinkIfSparse (): void {
    if (this.capacity > MIN_CAPACITY && this.count * 4 < this.capacity) {
      const live = this.arenaUsed - this.arenaGarbage
      this.resize(Math.max(MIN_CAPACITY, this.count * 2), Math.max(1024, Math.ceil(live * 1.5)))
    }
  }

  /** The slot of the key last encoded (hash `h`), or NONE. */
  protected find (h: number): number {
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

  protected keyAt (s: number): string {
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
  protected insert (h: number): number {
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

  protected remove (s: number): void {
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

  protected touch (s: number): void {
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

  protected markDirty (s: number): void {
    const w = s >>> 5
    const bit = 1 << (s & 31)
    if ((this.dirty[w]! & bit) !== 0) return
    this.dirty[w]! |= bit
    if (this.dirtyCount++ === 0) stateChanged()
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
