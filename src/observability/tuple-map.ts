/**
 * Values by three strings, for what the request path counts or writes per (listener, route, …):
 * nested Maps, because the names are the config's own string objects and V8 keeps each one's
 * hash, so no key is joined and hashed per request; and the last tuple asked for is kept, because
 * requests in a row mostly share one (a client's method string is new each time, and a Map would
 * hash it afresh). A value is made on first use; past `max` values the map starts over (names
 * from clients must not grow it without bound).
 */
export class TupleMap<V> {
  private readonly byFirst = new Map<string, Map<string, Map<string, V>>>()
  private size = 0
  private lastA: string | undefined
  private lastB: string | undefined
  private lastC: string | undefined
  private last: V | undefined

  constructor (private readonly make: (a: string, b: string, c: string) => V, private readonly max = Number.POSITIVE_INFINITY) {}

  get (a: string, b: string, c: string): V {
    if (a === this.lastA && b === this.lastB && c === this.lastC) return this.last as V
    const v = this.byFirst.get(a)?.get(b)?.get(c) ?? this.add(a, b, c)
    this.lastA = a
    this.lastB = b
    this.lastC = c
    this.last = v
    return v
  }

  * values (): Generator<V> {
    for (const byB of this.byFirst.values()) for (const byC of byB.values()) yield * byC.values()
  }

  private add (a: string, b: string, c: string): V {
    if (this.size >= this.max) {
      this.byFirst.clear()
      this.size = 0
    }
    let byB = this.byFirst.get(a)
    if (byB === undefined) this.byFirst.set(a, byB = new Map())
    let byC = byB.get(b)
    if (byC === undefined) byB.set(b, byC = new Map())
    const v = this.make(a, b, c)
    byC.set(c, v)
    this.size++
    return v
  }
}
