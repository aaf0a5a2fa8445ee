/**
 * Chunked framing scanner (pure, incremental). The lean path relays a chunked body's bytes
 * unchanged; this only finds where the body ends (so the upstream connection can be reused and
 * nothing after the end reaches the client) and counts payload bytes for the access log. Data
 * runs are skipped in O(1); only size lines and trailers are read byte by byte. Strict as llhttp:
 * a size line is hex digits (leading zeros allowed), then `;extensions` after optional
 * whitespace, then CRLF; data ends in CRLF; a trailer line is a field (it has a colon).
 */

export const CHUNKED_MORE = -1
export const CHUNKED_BAD = -2

/** Significant size-line digits before the value could pass 2^53. */
const MAX_DIGITS = 13
/** Bytes of extensions on one size line plus all trailer fields. */
const MAX_META = 64 * 1024

const enum S { Size, SizeWs, Ext, SizeLf, Data, DataCr, DataLf, TrailerStart, Trailer, TrailerLf, FinalLf }

export class ChunkedScanner {
  /** Payload bytes seen so far (framing excluded). */
  data = 0
  private s = S.Size
  private digits = 0
  private sig = 0
  private size = 0
  private meta = 0
  /** The trailer line being read has its colon. */
  private colon = false

  /**
   * Scans `buf[from…to)`. Returns the offset just past the body's last byte when the body ends
   * in this range, CHUNKED_MORE when it goes on, CHUNKED_BAD on a framing error.
   */
  scan (buf: Uint8Array, from: number, to: number): number {
    let i = from
    while (i < to) {
      const c = buf[i] as number
      switch (this.s) {
        case S.Size: {
          const v = hex(c)
          if (v >= 0) {
            this.digits++
            // `chunk-size = 1*HEXDIG`: leading zeros are valid and do not count toward the cap.
            if ((this.size > 0 || v > 0) && ++this.sig > MAX_DIGITS) return CHUNKED_BAD
            this.size = this.size * 16 + v
            break
          }
          if (this.digits === 0) return CHUNKED_BAD
          if (c === 13) this.s = S.SizeLf
          else if (c === 59 /* ; */) this.s = S.Ext
          else if (c === 32 || c === 9) this.s = S.SizeWs
          else return CHUNKED_BAD
          break
        }
        case S.SizeWs:
          // Whitespace only before an extension (RFC 9112 §7.1.1's BWS): `5 \r\n` is refused.
          if (c === 59) this.s = S.Ext
          else if (c !== 32 && c !== 9) return CHUNKED_BAD
          break
        case S.Ext:
          if (c === 13) this.s = S.SizeLf
          else if ((c < 32 && c !== 9) || c === 127 || ++this.meta > MAX_META) return CHUNKED_BAD
          break
        case S.SizeLf:
          if (c !== 10) return CHUNKED_BAD
          this.digits = 0
          this.sig = 0
          if (this.size === 0) {
            this.s = S.TrailerStart
          } else {
            this.s = S.Data
          }
          break
        case S.Data: {
          const n = Math.min(this.size, to - i)
          this.size -= n
          this.data += n
          i += n
          if (this.size === 0) this.s = S.DataCr
          continue
        }
        case S.DataCr:
          if (c !== 13) return CHUNKED_BAD
          this.s = S.DataLf
          break
        case S.DataLf:
          if (c !== 10) return CHUNKED_BAD
          this.s = S.Size
          break
        case S.TrailerStart:
          if (c === 13) this.s = S.FinalLf
          else if (c === 10 || c < 32 || c === 127 || c === 58 /* : */) return CHUNKED_BAD
          else {
            this.s = S.Trailer
            this.colon = false
          }
          break
        case S.Trailer:
          if (c === 13) {
            if (!this.colon) return CHUNKED_BAD
            this.s = S.TrailerLf
          } else if ((c < 32 && c !== 9) || c === 127 || ++this.meta > MAX_META) return CHUNKED_BAD
          else if (c === 58) this.colon = true
          break
        case S.TrailerLf:
          if (c !== 10) return CHUNKED_BAD
          this.s = S.TrailerStart
          break
        case S.FinalLf:
          if (c !== 10) return CHUNKED_BAD
          return i + 1
      }
      i++
    }
    return CHUNKED_MORE
  }
}

function hex (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 0x20
  return l >= 97 && l <= 102 ? l - 87 : -1
}
