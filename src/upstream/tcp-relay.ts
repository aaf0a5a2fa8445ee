import { UV_EOF, newHandle, readResult, shutdownHandle, writeHandle, type ShutdownReq, type TcpHandle, type WriteReq } from './tcp-handle.js'

/**
 * Every leg starts reading into this one buffer. That is safe because the read callback runs
 * synchronously and copies what it forwards: a chatty or idle stream holds no buffer of its own,
 * and a new connection allocates none (which matters for connections per second).
 */
const SHARED = Buffer.allocUnsafeSlow(64 * 1024)
/** A read this large means bulk data: the leg gets its own buffer and stops copying. */
const OWN_AT = 16 * 1024
const OWN_MIN = 64 * 1024
const OWN_MAX = 256 * 1024
/** Consecutive reads below OWN_AT after which a leg gives its own buffer back. */
const SHARE_AFTER = 16
/** ENOTCONN: the peer is already gone; a shutdown has nothing left to do. */
const UV_ENOTCONN = -107

const kConn = Symbol('tandem.conn')
const kLeg = Symbol('tandem.leg')

/** What a Conn reports to the stream it belongs to. Each is called once per Conn at most. */
export interface ConnOwner {
  /** Bytes read while the leg has no destination; the memory is reused, so copy. False pauses. */
  stash (chunk: Buffer): boolean
  /** The peer's FIN arrived. */
  connEof (conn: Conn): void
  /** A read or write failed (reset, EPIPE; `status` the libuv errno): the socket is unusable. */
  connFailed (conn: Conn, status: number): void
  /** The handle is closed (after close() or reset()). */
  connClosed (conn: Conn): void
}

/**
 * One socket of a stream, on a bare TCP handle. It follows net.Socket with `allowHalfOpen`:
 * reading stops at the peer's FIN; `end()` sends ours once pending writes are out; the handle
 * closes itself once both FINs are through, or at once on close() / reset().
 */
export class Conn {
  /** The peer's FIN has been read. */
  eof = false
  /** close() or reset() was called; no more I/O. */
  closed = false
  /** The close callback has run. */
  gone = false
  /** A write into this socket is pending (set by the leg that writes here). */
  writing = false
  /** The leg that reads from this socket. */
  readonly leg: Leg
  private reading = false
  private bufferSet = false
  private ending = false
  private finSent = false

  constructor (public handle: TcpHandle, readonly owner: ConnOwner) {
    handle[kConn] = this
    handle.onread = onHandleRead
    this.leg = new Leg(this)
  }

  /** Before a connect succeeds only: closes the handle quietly and takes a new one (the next address). */
  rehandle (): void {
    this.handle.close()
    this.handle = newHandle()
    this.handle[kConn] = this
    this.handle.onread = onHandleRead
  }

  resume (): void {
    if (this.reading || this.closed || this.eof) return
    if (!this.bufferSet) {
      this.bufferSet = true
      this.handle.useUserBuffer(this.leg.buf)
    }
    this.reading = true
    const err = this.handle.readStart()
    if (err < 0) this.owner.connFailed(this, err)
  }

  pause (): void {
    if (!this.reading || this.closed) return
    this.reading = false
    this.handle.readStop()
  }

  /**
   * Sends our FIN. When the peer has sent its own and nothing is pending, close() alone does it
   * (the kernel still delivers what it holds, then the FIN) and saves the shutdown() call.
   */
  end (): void {
    if (this.closed || this.ending) return
    this.ending = true
    if (this.eof && !this.writing) return this.close()
    const err = shutdownHandle(this.handle, onShutdown, kConn, this)
    if (err < 0) this.owner.connFailed(this, err)
  }

  /** True once end() was called: nothing more may be written. */
  get ended (): boolean {
    return this.ending
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.reading = false
    this.handle.close(onHandleClose)
  }

  /** Closes with a RST, so the peer sees the reset that ended the other side. */
  reset (): void {
    if (this.closed) return
    this.closed = true
    this.reading = false
    if (this.handle.reset(onHandleClose) < 0) this.handle.close(onHandleClose)
  }

  /** @internal */
  readEnded (n: number): void {
    this.reading = false
    if (n !== UV_EOF) return this.owner.connFailed(this, n)
    this.eof = true
    this.owner.connEof(this)
    if (this.finSent) this.close()
  }

  /** @internal */
  shutdownDone (status: number): void {
    if (this.closed) return
    if (status < 0 && status !== UV_ENOTCONN) return this.owner.connFailed(this, status)
    this.finSent = true
    if (this.eof) this.close()
  }
}

/** The Conn a handle belongs to. */
export function connOf (handle: TcpHandle): Conn {
  return handle[kConn] as Conn
}

function onHandleRead (this: TcpHandle): Buffer | undefined {
  const conn = this[kConn] as Conn
  const n = readResult()
  if (n > 0) return conn.leg.data(n)
  // 0 is libuv's EAGAIN after a read that filled the buffer: nothing happened.
  if (n < 0) conn.readEnded(n)
  return undefined
}

function onShutdown (this: ShutdownReq, status: number): void {
  (this[kConn] as Conn).shutdownDone(status)
}

/** Node calls a handle's close callback with the handle as `this`. */
function onHandleClose (this: TcpHandle): void {
  const conn = this[kConn] as Conn
  conn.gone = true
  conn.owner.connClosed(conn)
}

/**
 * One direction of a TCP relay, reading through the handle's user buffer (no stream machinery,
 * no allocation per read). Each chunk is written straight to the other socket; a write the kernel
 * does not take at once pauses the reading side until it completes, which is the backpressure
 * and bounds the memory to one chunk in flight per direction.
 *
 * Buffers: reads land in SHARED and are copied (small chunks come from Node's pool) until one
 * read reaches OWN_AT; from then on the leg reads into its own buffer (64 KiB, growing to 256 KiB
 * while reads fill it) and writes it without a copy; while a write from it is pending, reading
 * is paused, so the buffer is not reused early. Measured: about half the CPU per byte of
 * `socket.pipe()`, and no buffer held by idle streams.
 *
 * Precondition: nothing else writes to `to` while it is set.
 */
export class Leg {
  /** Undefined while reads go to the owner's `stash` (before the upstream is connected). */
  to?: Conn
  /** Bytes written to `to` (replayed bytes included, counted by the owner). */
  bytes = 0
  /** performance.now() of the last read or completed write: the idle timeout's reference. */
  at = performance.now()
  /** The buffer the next read lands in. */
  buf = SHARED
  private inflight?: Buffer
  private smallReads = 0

  constructor (readonly from: Conn) {}

  /** Writes what was read before `to` existed (PROXY header, early bytes), then lets `from` flow. */
  replay (head: Buffer | undefined): void {
    if (head !== undefined && head.length > 0 && !this.send(head)) return
    this.from.resume()
  }

  /** @internal `n` bytes were read into `buf`; returns the buffer for the next read if it changes. */
  data (n: number): Buffer | undefined {
    this.at = performance.now()
    const buf = this.buf
    let chunk = n === buf.length ? buf : buf.subarray(0, n)
    const to = this.to
    if (to === undefined) {
      if (!this.from.owner.stash(chunk)) this.from.pause()
      return undefined
    }
    if (to.closed || to.ended) {
      this.from.pause()
      return undefined
    }
    if (buf === SHARED) chunk = Buffer.from(chunk)
    this.bytes += n
    this.send(chunk)
    return this.adapt(n)
  }

  /** Writes `chunk` to `to`; false if it is pending (reading paused) or failed. */
  private send (chunk: Buffer): boolean {
    const to = this.to as Conn
    const r = writeHandle(to.handle, chunk, onWritten, kLeg, this)
    if (r === 0) return true
    if (r < 0) {
      to.owner.connFailed(to, r)
      return false
    }
    // The kernel took only part of the chunk: its memory must stay untouched until written.
    this.inflight = chunk
    to.writing = true
    this.from.pause()
    return false
  }

  /** A write the kernel did not take at once is still in flight. */
  get pending (): boolean { return this.inflight !== undefined }

  /** @internal */
  written (status: number): void {
    // A slow reader that still takes bytes keeps the stream alive.
    this.at = performance.now()
    this.inflight = undefined
    const to = this.to as Conn
    to.writing = false
    if (to.closed) return
    if (status < 0) return to.owner.connFailed(to, status)
    this.from.resume()
  }

  private adapt (n: number): Buffer | undefined {
    const size = this.buf.length
    let next = this.buf
    if (next === SHARED) {
      if (n >= OWN_AT) next = Buffer.allocUnsafeSlow(OWN_MIN)
    } else if (n === size) {
      this.smallReads = 0
      if (size < OWN_MAX) next = Buffer.allocUnsafeSlow(Math.min(size * 4, OWN_MAX))
    } else if (n < OWN_AT) {
      if (++this.smallReads >= SHARE_AFTER) {
        this.smallReads = 0
        next = SHARED
      }
    } else {
      this.smallReads = 0
    }
    if (next === this.buf) return undefined
    this.buf = next
    return next
  }
}

function onWritten (this: WriteReq, status: number): void {
  (this[kLeg] as Leg).written(status)
}
