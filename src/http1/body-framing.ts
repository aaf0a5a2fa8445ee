import { CHUNKED_BAD, CHUNKED_MORE, ChunkedScanner } from './chunked.js'
import type { Framing } from './response-head.js'

/**
 * Where one response body ends in the bytes as they arrive (pure): a Content-Length counted
 * down, chunked framing scanned, nothing (HEAD, 204, 304), or everything until the upstream
 * closes. The bytes themselves are not touched; the caller relays `[offset, end)`.
 */
export class BodyFraming {
  /** Payload bytes so far (chunked framing excluded). */
  payload = 0
  /** The body's last byte has been seen. */
  done: boolean
  private remaining: number
  private readonly chunked: ChunkedScanner | undefined

  constructor (readonly framing: Framing, length: number) {
    this.remaining = length
    this.done = framing === 'none' || (framing === 'length' && length === 0)
    this.chunked = framing === 'chunked' ? new ChunkedScanner() : undefined
  }

  /**
   * Takes `buf[offset…]`: returns the offset where this body's bytes end in it (bytes past it
   * belong to no response), or -1 on bad chunked framing. Sets `done` at the body's end.
   */
  take (buf: Uint8Array, offset: number): number {
    if (this.done) return offset
    switch (this.framing) {
      case 'length': {
        const n = Math.min(this.remaining, buf.length - offset)
        this.remaining -= n
        this.payload += n
        this.done = this.remaining === 0
        return offset + n
      }
      case 'chunked': {
        const scanner = this.chunked as ChunkedScanner
        const at = scanner.scan(buf, offset, buf.length)
        this.payload = scanner.data
        if (at === CHUNKED_BAD) return -1
        if (at === CHUNKED_MORE) return buf.length
        this.done = true
        return at
      }
      default:
        this.payload += buf.length - offset
        return buf.length
    }
  }
}
