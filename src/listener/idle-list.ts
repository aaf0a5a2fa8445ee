/**
 * Idle timeouts of many connections on one timer per duration, as Node's own timer lists keep
 * theirs, without what a Timeout costs each connection (the object, its argument array and a
 * boxed start time: about 200 bytes, 2 MiB at 10,000 idle clients). Entries stay in the order
 * of their last activity: touch() moves an entry to the tail, so the head is always the next to
 * expire and the timer only ever waits for the head.
 */

/** What a list keeps of a connection: fields of the connection itself, so membership allocates nothing. */
export interface IdleEntry {
  /** Time of the last activity (ms, see nowMs). */
  idleAt: number
  idlePrev: IdleEntry | undefined
  idleNext: IdleEntry | undefined
  /** No activity for the list's duration: the entry has left the list. */
  idleExpired: () => void
}

/**
 * Whole milliseconds, rounded up so that an entry never expires early. A small integer keeps the
 * field unboxed (V8 boxes doubles in object fields) for the first 12 days of uptime.
 */
export function nowMs (): number {
  return Math.ceil(performance.now())
}

export class IdleList {
  private head: IdleEntry | undefined
  private tail: IdleEntry | undefined
  private timer: NodeJS.Timeout | undefined

  constructor (readonly ms: number, private readonly now: () => number = nowMs) {}

  /** Records activity now: adds the entry, or moves it to the tail. */
  touch (e: IdleEntry): void {
    e.idleAt = this.now()
    if (e === this.tail) return
    if (this.has(e)) this.unlink(e)
    this.append(e)
  }

  /** Takes the entry out of the list (a no-op when it is not in it). */
  remove (e: IdleEntry): void {
    if (!this.has(e)) return
    this.unlink(e)
    if (this.head === undefined && this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  /** @internal The timer: expires every entry idle for the duration, then waits for the new head. */
  fire (): void {
    this.timer = undefined
    const now = this.now()
    for (let e = this.head; e !== undefined && e.idleAt + this.ms <= now; e = this.head) {
      this.unlink(e)
      e.idleExpired()
    }
    // An entry touched back in above armed a full period: the head may be due sooner.
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.head !== undefined) this.arm(this.head.idleAt + this.ms - now)
  }

  private has (e: IdleEntry): boolean {
    return e.idlePrev !== undefined || this.head === e
  }

  private append (e: IdleEntry): void {
    e.idlePrev = this.tail
    e.idleNext = undefined
    if (this.tail === undefined) this.head = e
    else this.tail.idleNext = e
    this.tail = e
    if (this.timer === undefined) this.arm(this.ms)
  }

  private unlink (e: IdleEntry): void {
    if (e.idlePrev === undefined) this.head = e.idleNext
    else e.idlePrev.idleNext = e.idleNext
    if (e.idleNext === undefined) this.tail = e.idlePrev
    else e.idleNext.idlePrev = e.idlePrev
    e.idlePrev = undefined
    e.idleNext = undefined
  }

  private arm (ms: number): void {
    // Unreferenced: the connections' own handles keep the process alive, not their timeouts.
    this.timer = setTimeout(fireList, Math.max(1, ms), this).unref()
  }
}

function fireList (list: IdleList): void {
  list.fire()
}

const shared = new Map<number, IdleList>()

/** The process's list for a duration, shared by every listener with that idle timeout. */
export function idleList (ms: number): IdleList {
  let list = shared.get(ms)
  if (list === undefined) shared.set(ms, list = new IdleList(ms))
  return list
}
