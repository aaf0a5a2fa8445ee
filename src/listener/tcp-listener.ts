import net, { type AddressInfo } from 'node:net'
import type { ListenerConfig, TcpListenerConfig, TcpRouteConfig } from '../config/types.js'
import { channels, reportError, type TcpEnd } from '../observability/events.js'
import { TcpLimit } from '../ratelimit/tcp.js'
import { TcpForward, type TcpForwardOptions } from '../upstream/tcp-forward.js'
import { acceptHandles, afterAcceptPoll, formatPeer, peerOf, type AcceptedHandle } from '../upstream/tcp-handle.js'
import type { Upstream } from '../upstream/upstream.js'
import { createSniMatcher, parseClientHello, RecordBoundaries, RECORD_HEADER } from './sni.js'
import type { Listener, ListenerDeps } from './types.js'

/**
 * How much of a TLS ClientHello is read to find the server name (nginx reads 16 KiB too): one
 * record of the largest size, header included.
 */
const PREREAD_LIMIT = 16 * 1024 + RECORD_HEADER

/** How long destroy() waits for the cut streams' handles to close. */
const CLOSE_WAIT_MS = 1000

/**
 * The `tcp` listener: accepts, enforces the listener's `maxConnections`, optionally routes by
 * the TLS ClientHello's server name, and hands each stream to a TcpForward.
 */
export class TcpListener implements Listener {
  readonly name: string
  readonly protocol = 'tcp' as const
  private readonly server: net.Server
  private readonly forwards = new Set<TcpForward>()
  private forwardOptions: TcpForwardOptions
  private fallback?: Upstream
  private routeFor: (serverName: string | undefined) => TcpRouteConfig | undefined
  private waiters: Array<() => void> = []
  private limit: TcpLimit | undefined
  /** Off while this node of a pair is not active and stays bound (Listener.serve). */
  private serving = true
  /** Connections waiting for a shared rate-limit decision (they count against maxConnections). */
  private deciding = 0

  constructor (private config: TcpListenerConfig, private deps: ListenerDeps) {
    this.name = config.name
    this.limit = TcpLimit.for(deps.limiters, config.rateLimit, config.name)
    this.fallback = config.upstream === undefined ? undefined : deps.upstreams.get(config.upstream)
    this.routeFor = createSniMatcher(config.routes)
    this.forwardOptions = this.optionsFor(config, deps)
    // pauseOnConnect: should Node wrap a connection itself (see acceptHandles), nothing is read
    // before we take its handle.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true })
    // After listen, errors are accept() failures (EMFILE, ENFILE): the server keeps listening,
    // as HAProxy and nginx do; there is no request to fail.
    this.server.on('error', (err) => { reportError('listener', err) })
  }

  private optionsFor (config: TcpListenerConfig, deps: ListenerDeps): TcpForwardOptions {
    return {
      listener: config.name,
      proxyProtocol: config.proxyProtocol,
      idleTimeout: config.idleTimeout,
      clock: deps.clock,
      onClose: (forward) => this.closed(forward),
    }
  }

  get listening (): boolean {
    return this.server.listening
  }

  update (config: ListenerConfig, deps: ListenerDeps): void {
    if (config.protocol !== 'tcp') throw new TypeError(`listener ${this.name}: cannot become ${config.protocol}`)
    this.config = config
    this.deps = deps
    this.limit = TcpLimit.for(deps.limiters, config.rateLimit, config.name)
    this.fallback = config.upstream === undefined ? undefined : deps.upstreams.get(config.upstream)
    this.routeFor = createSniMatcher(config.routes)
    this.forwardOptions = this.optionsFor(config, deps)
  }

  listen (): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      this.server.once('error', onError)
      this.server.listen({ host: this.config.listen.host, port: this.config.listen.port }, () => {
        this.server.off('error', onError)
        acceptHandles(this.server, (handle) => { this.accept(handle) })
        resolve()
      })
    })
  }

  address (): { host: string, port: number } {
    const a = this.server.address() as AddressInfo | null
    return a === null ? { host: this.config.listen.host, port: this.config.listen.port } : { host: a.address, port: a.port }
  }

  activeConnections (): number {
    return this.forwards.size
  }

  async stopAccepting (now = false): Promise<void> {
    // As the HTTP listener: one poll accepts what the kernel queued, which the close would reset.
    if (!now) await afterAcceptPoll()
    if (this.server.listening) this.server.close()
  }

  serve (on: boolean): void {
    this.serving = on
  }

  drained (): Promise<void> {
    if (this.forwards.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /**
   * Cuts every stream. Their ends are published as their handles close, a turn of the loop
   * later: the promise resolves then, so shutdown logs and counts them before it detaches the
   * log; bounded by CLOSE_WAIT_MS, so it never holds a shutdown. Calling it again only waits.
   */
  async destroy (): Promise<void> {
    if (this.server.listening) this.server.close()
    for (const forward of [...this.forwards]) forward.destroy('shutdown')
    if (this.forwards.size === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.drained(), new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS) })])
    clearTimeout(timer)
  }

  private accept (handle: AcceptedHandle): void {
    if (!this.serving) return this.refuse(handle, 'not-active')
    const max = this.config.maxConnections
    if (max > 0 && this.forwards.size + this.deciding >= max) return this.refuse(handle)
    // The rate limit decides before anything else happens to the connection (no upstream connect).
    const limit = this.limit
    const admitted = limit?.admit(handle) ?? true
    if (admitted === false) return this.refuse(handle, 'rate-limited', limit?.name)
    if (admitted !== true) {
      // A shared (Redis) decision; the listener may have stopped meanwhile. The connection holds
      // its maxConnections slot while it waits, or a burst would all pass the check above.
      this.deciding++
      void admitted.then((ok) => {
        this.deciding--
        if (!ok) this.refuse(handle, 'rate-limited', limit?.name)
        else if (!this.server.listening) this.refuse(handle, 'shutdown')
        else if (!this.serving) this.refuse(handle, 'not-active')
        else this.start(handle)
      })
      return
    }
    this.start(handle)
  }

  private start (handle: AcceptedHandle): void {
    const forward = new TcpForward(handle, this.forwardOptions)
    this.forwards.add(forward)
    if (this.config.routes.length === 0) this.toFallback(forward, 'no-server')
    else forward.preread(this.config.prereadTimeout, this.onEarly, new RecordBoundaries())
  }

  /** Existing streams are untouched; the newcomer is closed at once and counted. */
  private refuse (handle: AcceptedHandle, end: TcpEnd = 'rejected', limit?: string): void {
    if (channels.tcpConnectionEnd.hasSubscribers) {
      const peer = peerOf(handle)
      channels.tcpConnectionEnd.publish({
        listener: this.name,
        client: formatPeer(peer?.address, peer?.port),
        bytesIn: 0,
        bytesOut: 0,
        durationMs: 0,
        end,
        ...(limit === undefined ? {} : { limit }),
      })
    }
    handle.close()
  }

  /**
   * Decides the upstream once the ClientHello is complete, or cannot come: not TLS, the client
   * ended, the preread timeout passed, PREREAD_LIMIT bytes or MAX_HELLO_RECORDS records did not
   * hold it. Called when a record completes (RecordBoundaries), not per chunk. Like nginx's
   * `ssl_preread` with a `map` default: no matching name, or no name at all, goes to the
   * listener's `upstream`; without one the stream is closed.
   */
  private readonly onEarly = (forward: TcpForward, timedOut: boolean): void => {
    const bytes = forward.earlyBytes()
    const hello = parseClientHello(bytes)
    if (hello.kind === 'need-more' && !timedOut && !forward.clientHasEnded && bytes.length < PREREAD_LIMIT) return
    if (hello.kind !== 'tls') return this.toFallback(forward, 'preread-failed')
    forward.sni = hello.serverName
    const route = this.routeFor(hello.serverName)
    if (route === undefined) return this.toFallback(forward, 'no-server')
    const upstream = this.deps.upstreams.get(route.upstream)
    if (upstream === undefined) forward.reject('no-server')
    else forward.connect(upstream)
  }

  private toFallback (forward: TcpForward, otherwise: 'no-server' | 'preread-failed'): void {
    if (this.fallback === undefined) forward.reject(otherwise)
    else forward.connect(this.fallback)
  }

  private closed (forward: TcpForward): void {
    this.forwards.delete(forward)
    if (this.forwards.size > 0 || this.waiters.length === 0) return
    const waiters = this.waiters
    this.waiters = []
    for (const resolve of waiters) resolve()
  }
}
