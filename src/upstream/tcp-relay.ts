import net, { type Socket } from 'node:net'

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

/**
 * One direction of a TCP relay, reading through Node's `onread` (no stream machinery, no
 * allocation per read). Each chunk is written straight to the other socket; a write the kernel
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
  from?: Socket
  /** Undefined while reads go to `stash` (before the upstream is connected). */
  to?: Socket
  /** Bytes written to `to` (replayed bytes included). */
  bytes = 0
  readonly onread: net.OnReadOpts
  private buf = SHARED
  private waiting = false
  private smallReads = 0
  private readonly written: (err?: Error | null) => void

  /**
   * `stash` takes chunks read while `to` is unset and must copy them (the memory is reused);
   * it returns false to pause the reader.
   */
  constructor (private readonly stash?: (chunk: Buffer) => boolean) {
    this.onread = {
      buffer: () => this.buf,
      callback: (n, buf) => this.read(n, buf as Buffer),
    }
    this.written = (err) => {
      // Writable defers the callbacks of synchronous writes to the next tick, so a stale one
      // can arrive while a later write is still pending: resume only once nothing is queued.
      const to = this.to
      if (!this.waiting || err != null || to === undefined || to.writableLength > 0) return
      this.waiting = false
      this.from?.resume()
    }
  }

  /** Writes what was read before `to` existed (PROXY header, early bytes), then lets `from` flow. */
  replay (head: Buffer | undefined): void {
    const to = this.to as Socket
    if (head !== undefined && head.length > 0) {
      to.write(head, this.written)
      if (to.writableLength > 0) {
        this.waiting = true
        this.from?.pause()
        return
      }
    }
    this.from?.resume()
  }

  private read (n: number, buf: Buffer): boolean {
    let chunk = n === buf.length ? buf : buf.subarray(0, n)
    const to = this.to
    if (to === undefined) return this.stash?.(chunk) ?? false
    if (to.destroyed || to.writableEnded) return false
    if (buf === SHARED) chunk = Buffer.from(chunk)
    this.bytes += n
    to.write(chunk, this.written)
    this.adapt(n)
    if (to.writableLength === 0) return true
    // The kernel took only part of the chunk: its memory must stay untouched until written.
    this.waiting = true
    return false
  }

  private adapt (n: number): void {
    const size = this.buf.length
    if (this.buf === SHARED) {
      if (n >= OWN_AT) this.buf = Buffer.allocUnsafeSlow(OWN_MIN)
    } else if (n === size) {
      this.smallReads = 0
      if (size < OWN_MAX) this.buf = Buffer.allocUnsafeSlow(Math.min(size * 4, OWN_MAX))
    } else if (n < OWN_AT) {
      if (++this.smallReads < SHARE_AFTER) return
      this.smallReads = 0
      this.buf = SHARED
    } else {
      this.smallReads = 0
    }
  }
}

/** A TCP handle of an accepted connection, not yet wrapped in a Socket. */
export type AcceptedHandle = object

interface ListenHandle { onconnection?: (err: number, handle?: AcceptedHandle) => void }
interface WithHandle { _handle: ListenHandle | AcceptedHandle | null }

/** Servers whose 'connection' fallback is in place (a server may be bound more than once). */
const withFallback = new WeakSet<net.Server>()

/**
 * Makes `server` hand over each accepted connection as a bare TCP handle, so that it becomes
 * exactly one Socket, one that reads through `onread` (see socketFor). net.Server offers
 * neither: it wraps every connection in a Socket of its own, and wrapping that one's handle again
 * costs about 7% CPU per connection (measured). Node calls the listen handle's `onconnection`
 * for every accepted connection, so that is where we step in; call once `server` listens.
 * A connection Node still wraps itself (should one come first) is unwrapped and handed over too.
 * Relies on `_handle`, stable across Node 12..24; the TCP integration tests exercise it. Where
 * the hook is missing, connections arrive through 'connection' and are unwrapped there.
 */
export function acceptHandles (server: net.Server, onHandle: (handle: AcceptedHandle) => void): void {
  const listen = (server as unknown as WithHandle)._handle as ListenHandle | null
  // Without the hook (a future Node), every connection takes the public path below instead.
  if (listen !== null && typeof listen.onconnection === 'function') {
    const nodeDefault = listen.onconnection
    listen.onconnection = (err, handle) => {
      // Errors (EMFILE, ENFILE) go Node's way: an 'error' event on the server, which keeps listening.
      if (err !== 0 || handle === undefined) nodeDefault.call(listen, err, handle)
      else onHandle(handle)
    }
  }
  // A server bound again (a pair node that becomes active once more) gets a new listen handle,
  // hooked above, but keeps its 'connection' listener: add that one once.
  if (withFallback.has(server)) return
  withFallback.add(server)
  server.on('connection', (socket: Socket) => {
    const internal = socket as unknown as WithHandle
    const handle = internal._handle
    internal._handle = null
    socket.destroy()
    if (handle !== null) onHandle(handle)
  })
}

/** The Socket for an accepted handle: half-open allowed, Nagle off, reading through `onread`. */
export function socketFor (handle: AcceptedHandle, onread?: net.OnReadOpts): Socket {
  const options = { handle, allowHalfOpen: true, readable: true, writable: true, ...(onread === undefined ? {} : { onread }) }
  const socket = new net.Socket(options as net.SocketConstructorOpts)
  socket.setNoDelay(true)
  return socket
}
