/**
 * A JSON line written straight into a byte buffer: keys, numbers and plain strings go in byte by
 * byte, with no string built, joined, flattened and encoded on the way. One access line per
 * request made that string work the access log's largest cost (about 10% of a request's CPU in
 * the default config, bench/http.ts tandem vs tandem-quiet); written this way it leaves no
 * garbage. The caller makes sure the buffer has room (`strBound` estimates). Keys and the
 * punctuation around values go in with codes(), encoded once (keyCodes); the value writers write
 * the value alone.
 */
export class JsonBytes {
  constructor (public buf: Buffer, public pos = 0) {}

  /** ASCII that needs no escaping (a number's text). */
  private ascii (s: string): void {
    const b = this.buf
    let p = this.pos
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i)
    this.pos = p
  }

  /** Bytes given as an array of small integers (a key encoded once by keyCodes): no string to read char by char. */
  codes (src: readonly number[]): void {
    const b = this.buf
    let p = this.pos
    for (let i = 0; i < src.length; i++) b[p++] = src[i] as number
    this.pos = p
  }

  bytes (src: Uint8Array): void {
    this.buf.set(src, this.pos)
    this.pos += src.length
  }

  /** A JSON string: printable ASCII is copied as it is; anything else goes through JSON.stringify. */
  str (s: string): void {
    const b = this.buf
    const start = this.pos
    let p = start
    b[p++] = 0x22
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.pos = start + b.write(JSON.stringify(s), start, 'utf8')
        return
      }
      b[p++] = c
    }
    b[p++] = 0x22
    this.pos = p
  }

  /** A number as JSON writes it (non-finite: null); integers digit by digit. */
  num (v: number): void {
    if (!(v >= 0 && v <= 0xffffffff && v === Math.floor(v))) {
      this.ascii(Number.isFinite(v) ? String(v) : 'null')
      return
    }
    let digits = 1
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++
    const b = this.buf
    let p = this.pos + digits
    this.pos = p
    let x = v
    do {
      b[--p] = 0x30 + (x % 10)
      x = Math.floor(x / 10)
    } while (x > 0)
  }

  /** Milliseconds rounded to 0.01 as JSON writes them (1.5, not 1.50). */
  ms (v: number): void {
    if (!(v >= 0 && v < 1e9)) {
      this.ascii(Number.isFinite(v) ? String(Math.round(v * 100) / 100) : 'null')
      return
    }
    const c = Math.round(v * 100)
    const frac = c % 100
    this.num((c - frac) / 100)
    if (frac === 0) return
    const b = this.buf
    b[this.pos++] = 0x2e
    if (frac % 10 === 0) {
      b[this.pos++] = 0x30 + frac / 10
      return
    }
    b[this.pos++] = 0x30 + Math.floor(frac / 10)
    b[this.pos++] = 0x30 + (frac % 10)
  }

  /** `s` (ASCII) as the array codes() takes. */
  static keyCodes (s: string): number[] {
    return Array.from(s, (c) => c.charCodeAt(0))
  }

  /** Bytes a str() of `s` may take at most (an escape is 6 bytes; a UTF-16 unit at most 3 in UTF-8). */
  static strBound (s: string | undefined): number {
    return s === undefined ? 0 : 6 * s.length + 2
  }
}
