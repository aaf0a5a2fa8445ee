import net from 'node:net'
import { UV_EOF, peerOf, readBytes, readResult, shutdownHandle, writeHandle, writeLatin1, type ShutdownReq, type TcpHandle, type WriteReq } from '../upstream/tcp-handle.js'
import { unmapV4 } from './client-ip.js'
import { idleList, type IdleEntry, type IdleList } from './idle-list.js'

/**
 * How long a connection closed after an error answer keeps reading (and discarding) what the
 * client still sends. Closing with unread input sends a reset, which can destroy the answer
 * before the client reads it: a silent close after all (nginx's lingering_close, same bound).
 */
export const LINGER_MS = 5000

/** Pending bytes beyond which write() asks the writer to wait for onDrain (net.Socket's default). */
const HIGH_WATER = 16 * 1024

const kClient = Symbol('tandem.clientConn')

/** What a client connection reports to its HTTP session. */
export interface ClientConnOwner {
  /** Bytes read; the Buffer is the owner's to keep (each read has memory of its own). */
  onData: (chunk: Buffer) => void
  /** The client's FIN arrived. */
  onEnd: () => void
  /** Every pending write is out (called only after a write stayed pending). */
  onDrain: () => void
  /** Nothing was read or written for the idle time: true closes the connection. */
  onIdle: () => boolean
  /** The handle is closed; nothing more happens. */
  onClose: () => void
}

/**
 * An accepted client connection of the lean HTTP path, on its bare TCP handle (tcp-handle.ts):
 * the few things the path needs of net.Socket (ordered writes with backpressure, FIN after the
 * last write, lingering close, an idle timeout) without the stream machinery, whose events and
 * timer refreshes cost more per request than the proxying itself. The idle timeout is an entry in
 * the process's list for its duration (idle-list.ts): no timer of its own. At a request only
 * node:http can serve, toSocket() gives the handle to a net.Socket for good.
 */
export class ClientConn implements IdleEntry {
  /** destroy() was called, the handle failed, or it went to a net.Socket: no more I/O here. */
  destroyed = false
  /** The client's FIN has been read. */
  readableEnded = false
  /** end() was called: nothing more may be written. */
  writableEnded = false
  private reading = false
  /** Write requests still pending, and their bytes (counted whole: an upper bound). */
  private writes = 0
  private pendingBytes = 0
  private parts: Buffer[] | undefined
  private closeAfterFin = false
  /** Set while lingering (see linger): the idle timeout no longer applies. */
  private lingerTimer: NodeJS.Timeout | undefined
  private peerAddress: string | undefined
  private readonly idle: IdleList
  /** @internal IdleEntry */
  idleAt = 0
  /** @internal IdleEntry */
  idlePrev: IdleEntry | undefined = undefined
  /** @internal IdleEntry */
  idleNext: IdleEntry | undefined = undefined

  constructor (readonly handle: TcpHandle, private readonly owner: ClientConnOwner, idleMs: number) {
    handle[kClient] = this
    handle.onread = onClientRead
    handle.setNoDelay(true)
    this.idle = idleList(idleMs)
    this.idle.touch(this)
  }

  /** The client's address (IPv4-mapped form unmapped), read once per connection. */
  get peer (): string {
    return this.peerAddress ??= unmapV4(peerOf(this.handle)?.address ?? '')
  }

  /** Whether pending writes exceed the high-water mark (net.Socket's writableNeedDrain). */
  get needsDrain (): boolean {
    return this.pendingBytes >= HIGH_WATER
  }

  /** Whether every write so far is out (net.Socket's writableFinished, once ended). */
  get flushed (): boolean {
    return this.writes === 0
  }

  resume (): void {
    if (this.reading || this.destroyed || this.readableEnded) return
    this.reading = true
    const err = this.handle.readStart()
    if (err < 0) this.destroy()
  }

  pause (): void {
    if (!this.reading || this.destroyed) return
    this.reading = false
    this.handle.readStop()
  }

  /** Queues `data` (a string is latin1) in order; false when the writer should wait for onDrain. */
  write (data: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false
    if (this.parts !== undefined) {
      this.parts.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)
      return true
    }
    this.active()
    const r = typeof data === 'string'
      ? writeLatin1(this.handle, data, onWritten, kClient, this)
      : writeHandle(this.handle, data, onWritten, kClient, this)
    if (r < 0) {
      this.destroy()
      return false
    }
    if (r === 1) {
      this.writes++
      this.pendingBytes += data.length
    }
    return this.pendingBytes < HIGH_WATER
  }

  get corked (): boolean {
    return this.parts !== undefined
  }

  /** Collects writes until uncork(), which sends them as one. */
  cork (): void {
    this.parts ??= []
  }

  /** Drops what was collected since cork() and uncorks; true when anything was dropped. */
  discardCorked (): boolean {
    const dropped = this.parts !== undefined && this.parts.length > 0
    this.parts = undefined
    return dropped
  }

  /** As write() for what was collected. */
  uncork (): boolean {
    const parts = this.parts
    this.parts = undefined
    if (parts === undefined || parts.length === 0) return this.pendingBytes < HIGH_WATER
    return this.write(parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts))
  }

  /** Sends our FIN once pending writes are out (the kernel keeps the order). */
  end (): void {
    if (this.destroyed || this.writableEnded) return
    // A response that ends the connection may end while its writes are still collected.
    if (this.parts !== undefined) this.uncork()
    this.writableEnded = true
    const err = shutdownHandle(this.handle, onShutdown, kClient, this)
    if (err < 0) this.destroy()
  }

  /** Closes once the FIN is sent: after the last response (node:http's destroySoon). */
  destroySoon (): void {
    if (this.destroyed) return
    this.closeAfterFin = true
    if (this.writableEnded) return
    if (this.readableEnded && this.writes === 0) this.destroy()
    else this.end()
  }

  /**
   * Half-closes after the last bytes and discards input until the client closes its side or
   * LINGER_MS passes, then closes (see LINGER_MS). Precondition: everything to send is written.
   */
  linger (): void {
    if (this.destroyed) return
    this.end()
    if (this.readableEnded) return this.destroy()
    this.idle.remove(this)
    this.lingerTimer = setTimeout(onLingerOver, LINGER_MS, this)
    this.resume()
  }

  /** Writes tandem's last bytes on this connection (an answer of its own) and lingers. */
  sendLast (text: string): void {
    if (this.destroyed || this.writableEnded) return
    this.write(text)
    this.linger()
  }

  destroy (): void {
    if (this.destroyed) return
    this.destroyed = true
    this.reading = false
    this.stopTimers()
    this.handle.close(onClientClose)
  }

  /**
   * Gives the handle to a net.Socket, paused, for node:http: this object is done with it. Writes
   * still pending stay in the kernel's order ahead of the Socket's own.
   */
  toSocket (): net.Socket {
    // Destroyed as far as this object goes: every later call is a no-op.
    this.reading = false
    this.destroyed = true
    this.stopTimers()
    this.handle.readStop()
    this.handle.reading = false
    // As net.Server makes a connection's Socket with pauseOnConnect (node:http's allow half-open).
    const options = { handle: this.handle, allowHalfOpen: true, pauseOnCreate: true, readable: true, writable: true }
    return new net.Socket(options as unknown as net.SocketConstructorOpts)
  }

  /** @internal */
  read (n: number, memory: ArrayBuffer | undefined): void {
    if (this.destroyed) return
    if (n > 0) {
      this.active()
      if (this.lingerTimer === undefined && memory !== undefined) this.owner.onData(readBytes(memory, n))
      return
    }
    if (n === 0) return
    this.reading = false
    if (n !== UV_EOF) return this.destroy()
    this.readableEnded = true
    if (this.lingerTimer !== undefined || (this.closeAfterFin && this.writes === 0)) return this.destroy()
    this.owner.onEnd()
  }

  /** @internal */
  written (status: number): void {
    if (--this.writes === 0) this.pendingBytes = 0
    if (this.destroyed) return
    if (status < 0) return this.destroy()
    this.active()
    if (this.writes === 0) this.owner.onDrain()
  }

  /** @internal */
  finSent (status: number): void {
    if (this.destroyed) return
    // A client that reset meanwhile has nothing left to read: close either way.
    if (status < 0 || this.closeAfterFin) this.destroy()
  }

  /** @internal */
  closed (): void {
    this.owner.onClose()
  }

  /** A read or a write: the idle time starts again (a lingering connection has none). */
  private active (): void {
    if (this.lingerTimer === undefined) this.idle.touch(this)
  }

  private stopTimers (): void {
    this.idle.remove(this)
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer)
  }

  /** @internal IdleEntry: nothing was read or written for the idle time. */
  idleExpired (): void {
    if (this.destroyed) return
    if (this.owner.onIdle()) this.destroy()
    else this.idle.touch(this)
  }
}

function onLingerOver (conn: ClientConn): void {
  conn.destroy()
}

function onClientRead (this: TcpHandle, memory?: ArrayBuffer): undefined {
  (this[kClient] as ClientConn).read(readResult(), memory)
  return undefined
}

function onWritten (this: WriteReq, status: number): void {
  (this[kClient] as ClientConn).written(status)
}

function onShutdown (this: ShutdownReq, status: number): void {
  (this[kClient] as ClientConn).finSent(status)
}

function onClientClose (this: TcpHandle): void {
  (this[kClient] as ClientConn).closed()
}
