import { fstatSync, writeSync } from 'node:fs'
import net from 'node:net'
import type pino from 'pino'
import type { LineBytes } from './access-log.js'
import { JsonBytes } from './json-bytes.js'

/** Bytes of log lines that may wait for stdout before new lines are dropped. */
export const MAX_PENDING = 16 * 1024 * 1024
/** A batch this large is written at once; smaller ones wait up to FLUSH_MS (nginx's buffer=64k). */
const BATCH = 64 * 1024
const FLUSH_MS = 100
/** Room for a batch and the longest line that may still join it. */
const SLAB = BATCH + 16 * 1024
/** Slabs whose writes are done wait here for the next batches: a fresh one per batch cost more than its write. */
const SPARE_SLABS = 2

export interface LogSink extends pino.DestinationStream {
  flush: (cb?: (err?: Error) => void) => void
}

/** Where BatchSink writes its batches: a net.Socket on a pipe, or syncOut() for a file or terminal. */
export interface BatchOut {
  /** Bytes handed to write() and not yet taken by the kernel. */
  readonly writableLength: number
  /** `done` once the kernel has the bytes (or they are lost): the buffer may then be reused. */
  write: (batch: Buffer, done: () => void) => unknown
  on: (event: 'error', listener: () => void) => unknown
  once: (event: 'drain' | 'close', listener: () => void) => unknown
}

/**
 * The log's lines on stdout (a pipe or socket under a container runtime, systemd or a log
 * shipper; or a file or terminal, through syncOut): lines gather up to BATCH or FLUSH_MS
 * (nginx's `access_log … buffer= flush=`) and are written together on the main thread, without
 * the thread-pool round trip that each of sonic-boom's writes makes. Writing at every event-loop
 * turn instead cost a pipe write per handful of requests: about 2 µs of the 45 µs a request costs under load on one core. Each line
 * is encoded into the batch's buffer as it comes, while it is still in the cache: a batch kept
 * as one long string was flattened and encoded only at the write, which profiled at three times
 * the cost, and its parts outlived young-generation collections.
 * A reader that stops reading cannot stall the proxy or grow it without bound: past
 * MAX_PENDING, lines are dropped.
 */
export class BatchSink implements LogSink, LineBytes {
  /** Lines are encoded into this as they come; it goes with its batch to the write, then to `spare`. */
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB)
  private readonly spare: Buffer[] = []
  private used = 0
  /** What reserve() hands out: the slab from `used` on. */
  private readonly line = new JsonBytes(this.slab)
  private timer: NodeJS.Timeout | undefined
  private broken = false

  constructor (private readonly out: BatchOut, private readonly onDrop: () => void) {
    // The reader went away (EPIPE): nothing more can be written; lines are dropped from now on.
    out.on('error', () => { this.broken = true })
  }

  /**
   * Room for a line of at most `bound` bytes, written in place (json-bytes.ts) and then handed
   * to commit(); undefined when the line is to be dropped (as write() drops it).
   */
  reserve (bound: number): JsonBytes | undefined {
    if (this.broken || this.out.writableLength + this.used > MAX_PENDING) {
      this.onDrop()
      return undefined
    }
    if (bound > SLAB - this.used) this.flushNow()
    // Longer than a batch: a buffer of its own, written by commit() after the batch.
    if (bound > SLAB) return new JsonBytes(Buffer.allocUnsafe(bound))
    this.line.buf = this.slab
    this.line.pos = this.used
    return this.line
  }

  commit (w: JsonBytes): void {
    if (w !== this.line) {
      this.out.write(w.buf.subarray(0, w.pos), noop)
      return
    }
    this.used = w.pos
    this.batched()
  }

  write (line: string): boolean {
    if (this.broken || this.out.writableLength + this.used > MAX_PENDING) {
      this.onDrop()
      return true
    }
    // A UTF-8 byte per UTF-16 unit is at most three.
    if (line.length * 3 > SLAB - this.used) {
      this.flushNow()
      if (line.length * 3 > SLAB) {
        this.out.write(Buffer.from(line, 'utf8'), noop)
        return true
      }
    }
    this.used += this.slab.write(line, this.used, 'utf8')
    this.batched()
    return true
  }

  private batched (): void {
    if (this.used >= BATCH) this.flushNow()
    else if (this.timer === undefined) {
      this.timer = setTimeout(this.flushNow, FLUSH_MS)
      // A pending flush must not keep the process alive; shutdown flushes explicitly.
      this.timer.unref()
    }
  }

  /** Writes what is pending; `cb` once the kernel has taken everything (or the pipe broke). */
  flush (cb?: (err?: Error) => void): void {
    this.flushNow()
    if (cb === undefined) return
    if (this.broken || this.out.writableLength === 0) {
      cb()
      return
    }
    let called = false
    const done = (): void => { if (!called) { called = true; cb() } }
    this.out.once('drain', done)
    this.out.once('close', done)
  }

  private readonly flushNow = (): void => {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.used === 0 || this.broken) return
    const slab = this.slab
    const batch = slab.subarray(0, this.used)
    this.slab = this.spare.pop() ?? Buffer.allocUnsafeSlow(SLAB)
    this.used = 0
    // The kernel has the bytes once the write's callback runs; only then may the slab be reused.
    this.out.write(batch, () => { if (this.spare.length < SPARE_SLABS) this.spare.push(slab) })
  }
}

function noop (): void {}

/** How long a write to a terminal that is not taking bytes (EAGAIN) may wait before its batch is dropped. */
const STALLED_MS = 100

/**
 * fd 1 as a file or terminal, which takes a write at once (page cache, tty): each batch is
 * written synchronously, as nginx writes its logs, with no thread-pool round trip. A batch that
 * cannot be written (a full disk, a terminal stalled past STALLED_MS) is dropped and counted.
 */
export function syncOut (fd: number, onDrop: () => void): BatchOut {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  return {
    writableLength: 0,
    write (batch, done) {
      let off = 0
      for (let waited = 0; off < batch.length;) {
        try {
          off += writeSync(fd, batch, off)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || waited++ >= STALLED_MS) {
            onDrop()
            break
          }
          Atomics.wait(pause, 0, 0, 1)
        }
      }
      done()
    },
    on: noop,
    once: noop,
  }
}

/**
 * A pipe or socket (made non-blocking by `socket`): a batch goes to the kernel with one write(2)
 * there and then, as long as nothing waits in the socket; what the kernel does not take (a full
 * pipe: EAGAIN or a short write) waits in the socket, in order, and is written by libuv when the
 * reader makes room. A batch through the stream machinery alone cost about as much in JS as the
 * kernel spent on its bytes.
 */
export function pipeOut (fd: number, socket: net.Socket): BatchOut {
  return {
    get writableLength () { return socket.writableLength },
    write (batch, done) {
      let rest = batch
      if (socket.writableLength === 0 && !socket.destroyed) {
        try {
          const n = writeSync(fd, batch)
          if (n === batch.length) {
            done()
            return true
          }
          rest = batch.subarray(n)
        } catch {
          // EAGAIN: the pipe is full. Anything else (EPIPE): the socket's own write meets it too
          // and reports it ('error'), which is how BatchSink learns the reader is gone.
        }
      }
      return socket.write(rest, () => { done() })
    },
    on: (event, listener) => socket.on(event, listener),
    once: (event, listener) => socket.once(event, listener),
  }
}

/**
 * The log's destination on fd 1, batched either way: written by libuv without blocking to a
 * pipe or socket (Docker, systemd, a log shipper), synchronously to a file or terminal.
 */
export function stdoutSink (onDrop: () => void): LogSink {
  let stat: ReturnType<typeof fstatSync> | undefined
  try { stat = fstatSync(1) } catch { stat = undefined }
  if (stat !== undefined && (stat.isFIFO() || stat.isSocket())) {
    const out = new net.Socket({ fd: 1, readable: false, writable: true })
    // The process's lifetime is not the log's to decide; shutdown flushes explicitly.
    out.unref()
    return new BatchSink(pipeOut(1, out), onDrop)
  }
  return new BatchSink(syncOut(1, onDrop), onDrop)
}
