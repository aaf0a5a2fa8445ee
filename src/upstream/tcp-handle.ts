import type net from 'node:net'
import { unmapV4 } from '../listener/client-ip.js'

// The one module that touches Node's TCP and stream bindings (`tcp_wrap`, `stream_wrap`), the
// layer under net.Socket. The TCP relay works on these handles directly: a net.Socket is a Duplex
// stream with its state objects, listeners, a timer refreshed on every read and write, and
// nextTick hops for end and close; for a short connection that is most of the proxy's own CPU.
// Measured with redis-benchmark -k 0 on one pinned core: about 60 µs of user CPU per proxied
// connection with two Sockets, about 25 µs on the bare handles (the kernel's share is the same).
// Node is pinned (engines: 24); these bindings have kept this shape since Node 12, and the TCP
// integration tests exercise every call used here. Loading fails loudly if one is missing.

/** Where getpeername / getsockname write. */
export interface SockName { address?: string, port?: number, family?: string }

/** The request objects the bindings take; `oncomplete` is called unless the call finished at once. */
export interface WriteReq { handle?: TcpHandle, oncomplete?: (status: number) => void, [key: symbol]: unknown }
export interface ShutdownReq { handle?: TcpHandle, oncomplete?: (status: number) => void, [key: symbol]: unknown }
interface ConnectReq { oncomplete?: (status: number, handle: TcpHandle) => void, address?: string, port?: number }

/** Node's TCPWrap as far as the relay uses it. Methods return 0 or a negative libuv errno. */
export interface TcpHandle {
  /**
   * Called with `this` the handle; with a user buffer the result, if a Buffer, is where the next
   * read lands; without one the read's memory is the argument (see readBytes).
   */
  onread: ((this: TcpHandle, memory?: ArrayBuffer) => Buffer | undefined) | null
  /** net.Socket's flag: whether it started reading (a Socket made from the handle reads it). */
  reading?: boolean
  readStart (): number
  readStop (): number
  useUserBuffer (buf: Buffer): void
  writeBuffer (req: WriteReq, buf: Buffer): number
  /** The string's bytes are copied when the write stays pending: nothing to keep alive. */
  writeLatin1String (req: WriteReq, text: string): number
  shutdown (req: ShutdownReq): number
  close (cb?: (this: TcpHandle) => void): void
  /** Closes with a RST (SO_LINGER 0), as Socket.resetAndDestroy(). */
  reset (cb?: (this: TcpHandle) => void): number
  setNoDelay (on: boolean): number
  getpeername (out: SockName): number
  getsockname (out: SockName): number
  connect (req: ConnectReq, address: string, port: number): number
  connect6 (req: ConnectReq, address: string, port: number): number
  [key: symbol]: unknown
}

interface TcpWrapBinding { TCP: new (type: number) => TcpHandle, TCPConnectWrap: new () => ConnectReq, constants: { SOCKET: number } }
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq
  ShutdownWrap: new () => ShutdownReq
  streamBaseState: Int32Array
  kReadBytesOrError: number
  kArrayBufferOffset: number
  kLastWriteWasAsync: number
}

const binding = (process as unknown as { binding: (name: string) => unknown }).binding
const tcpWrap = binding('tcp_wrap') as TcpWrapBinding
const streamWrap = binding('stream_wrap') as StreamWrapBinding
if (typeof tcpWrap?.TCP !== 'function' || typeof streamWrap?.WriteWrap !== 'function' || !(streamWrap.streamBaseState instanceof Int32Array)) {
  throw new Error(`tandem's TCP relay needs Node's tcp_wrap and stream_wrap bindings (Node 24); ${process.version} lacks them`)
}
const { TCP, TCPConnectWrap, constants } = tcpWrap
const { WriteWrap, ShutdownWrap, streamBaseState, kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync } = streamWrap

/** libuv's end of stream, as a read result. */
export const UV_EOF = -4095

/** The result of the read that is calling `onread`: bytes (> 0), 0 (nothing yet), or an errno. */
export function readResult (): number {
  return streamBaseState[kReadBytesOrError] as number
}

/**
 * The bytes of a read into Node's own memory (a handle without useUserBuffer): `onread` is then
 * called with the ArrayBuffer, made for this read alone, so the view can be kept.
 */
export function readBytes (memory: ArrayBuffer, n: number): Buffer {
  return Buffer.from(memory, streamBaseState[kArrayBufferOffset] as number, n)
}

/** A new, unconnected TCP handle. */
export function newHandle (): TcpHandle {
  return new TCP(constants.SOCKET)
}

/** Starts a connect to a numeric address; `done(status)` follows unless this returns an errno. */
export function connectHandle (handle: TcpHandle, address: string, port: number, ipv6: boolean, done: (status: number, handle: TcpHandle) => void): number {
  const req = new TCPConnectWrap()
  req.oncomplete = done
  req.address = address
  req.port = port
  return ipv6 ? handle.connect6(req, address, port) : handle.connect(req, address, port)
}

// A write the kernel takes at once never touches its request object, so one spare serves every
// such write; only a write that stays pending keeps its request, and a new spare is made.
let spareWrite = new WriteWrap()

/**
 * Writes `buf`: 0 when the kernel took all of it, 1 when the rest is pending (then `done(status)`
 * follows and `buf` must stay untouched until it does), or a negative errno.
 */
export function writeHandle (handle: TcpHandle, buf: Buffer, done: (this: WriteReq, status: number) => void, tag: symbol, owner: unknown): number {
  return settle(handle, handle.writeBuffer(spareWrite, buf), done, tag, owner)
}

/** As writeHandle, for a latin1 string (an HTTP head): no Buffer is made for it. */
export function writeLatin1 (handle: TcpHandle, text: string, done: (this: WriteReq, status: number) => void, tag: symbol, owner: unknown): number {
  return settle(handle, handle.writeLatin1String(spareWrite, text), done, tag, owner)
}

/** After a write with the spare request: it stays with a pending write, and a new spare is made. */
function settle (handle: TcpHandle, err: number, done: (this: WriteReq, status: number) => void, tag: symbol, owner: unknown): number {
  if (err !== 0) return err
  if (streamBaseState[kLastWriteWasAsync] === 0) return 0
  const req = spareWrite
  spareWrite = new WriteWrap()
  req.handle = handle
  req.oncomplete = done
  req[tag] = owner
  return 1
}

/** Sends FIN once pending writes are out; `done(status)` follows unless this returns an errno. */
export function shutdownHandle (handle: TcpHandle, done: (this: ShutdownReq, status: number) => void, tag: symbol, owner: unknown): number {
  const req = new ShutdownWrap()
  req.handle = handle
  req.oncomplete = done
  req[tag] = owner
  return handle.shutdown(req)
}

const sockName: SockName = {}

/** The peer's address and port, or undefined (not connected, already reset). */
export function peerOf (handle: TcpHandle): { address: string, port: number } | undefined {
  return nameOf(handle, true)
}

export function localOf (handle: TcpHandle): { address: string, port: number } | undefined {
  return nameOf(handle, false)
}

/**
 * `host:port`, `[v6]:port`, or `unknown`: the access line's `client`. An IPv4 client of a
 * dual-stack (`[::]`) listener is shown plain, as HTTP lines show it.
 */
export function formatPeer (host: string | undefined, port: number | undefined): string {
  if (host === undefined) return 'unknown'
  const plain = unmapV4(host)
  return plain.includes(':') ? `[${plain}]:${port ?? 0}` : `${plain}:${port ?? 0}`
}

function nameOf (handle: TcpHandle, peer: boolean): { address: string, port: number } | undefined {
  sockName.address = undefined
  sockName.port = undefined
  const err = peer ? handle.getpeername(sockName) : handle.getsockname(sockName)
  if (err !== 0 || sockName.address === undefined) return undefined
  return { address: sockName.address, port: sockName.port ?? 0 }
}

/** A TCP handle of an accepted connection, never wrapped in a Socket. */
export type AcceptedHandle = TcpHandle

interface ListenHandle { onconnection?: (err: number, handle?: AcceptedHandle) => void }
interface WithHandle { _handle: ListenHandle | AcceptedHandle | null }

/** Servers whose 'connection' fallback is in place (a server may be bound more than once). */
const withFallback = new WeakSet<net.Server>()

/**
 * Makes `server` hand over each accepted connection as a bare TCP handle: the relay works on
 * handles, and net.Server would wrap every connection in a Socket first, which costs as much as
 * the relay itself. Node calls the listen handle's `onconnection` for every accepted connection,
 * so that is where we step in; call once `server` listens.
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
  server.on('connection', (socket: net.Socket) => {
    const internal = socket as unknown as WithHandle
    const handle = internal._handle
    internal._handle = null
    socket.destroy()
    if (handle !== null) onHandle(handle as AcceptedHandle)
  })
}

/**
 * Resolves after the event loop has polled for I/O once, so that a listening socket has
 * accepted what the kernel queued. One setImmediate is not enough: called from an I/O callback
 * it runs in the same turn's check phase, before any poll; the second one runs after the next poll.
 */
export async function afterAcceptPoll (): Promise<void> {
  await new Promise<void>((resolve) => { setImmediate(() => { setImmediate(resolve) }) })
}
