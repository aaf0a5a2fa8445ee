import type { IncomingMessage } from 'node:http'
import { http } from '../node-builtins.js'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { Clock } from '../clock.js'
import { TandemError, httpStatusFor, statusText, type ErrorCode } from '../errors.js'
import { channels, publishHttpEnd } from '../observability/events.js'
import { safeReason } from './headers.js'
import { accessFields, type ForwardRequest } from './forward-request.js'
import { isServerFailureStatus } from './retry-policy.js'
import type { Server } from './server.js'

const WEBSOCKET_ONLY: readonly string[] = ['websocket']
/** Bytes a client may send ahead of the 101 before it is cut off. */
const EARLY_LIMIT = 64 * 1024

/**
 * True when this Upgrade request may become a tunnel: every protocol it offers is in `allowed`
 * (default: WebSocket only, and only as RFC 6455 §4.1's GET). A tunnel is past every route
 * condition, so anything else (`h2c` …) is handled as a plain HTTP/1.1 request, its Upgrade
 * header dropped; offering one allowed protocol beside a refused one does not sneak it through.
 */
export function tunnelAllowed (req: IncomingMessage, allowed: readonly string[] = WEBSOCKET_ONLY): boolean {
  const upgrade = req.headers.upgrade
  if (upgrade === undefined) return false
  let any = false
  for (const raw of upgrade.split(',')) {
    const token = raw.trim().toLowerCase().split('/')[0] as string
    if (token === '') continue
    if (!allowed.includes(token) || (token === 'websocket' && req.method !== 'GET')) return false
    any = true
  }
  return any
}

/**
 * WebSocket pass-through. The handshake goes through node:http so a refusal (any status but
 * 101) is relayed as a normal response and both sides are closed; after a 101 the two sockets
 * are spliced and bytes flow unchanged. `connectTimeout` bounds the TCP connect only; the
 * listener's response timeout bounds the wait for the upstream's answer, as for any request.
 */
export class UpgradeForwarder {
  constructor (private readonly clock: Clock, private readonly idleMs: number, private readonly responseMs: number) {}

  /** One access line per upgrade, when the tunnel closes (or the upgrade is refused). */
  private log (req: IncomingMessage, fr: ForwardRequest, status: number, server: string | undefined, started: number, bytesIn: number, bytesOut: number, error?: ErrorCode): void {
    if (!channels.httpRequestEnd.hasSubscribers) return
    publishHttpEnd({ ...accessFields(req, fr, status, started, this.clock.now()), server, bytesIn, bytesOut, ...(error === undefined ? {} : { error }) })
  }

  /** Answers the client with `code`'s status and logs it (no server up, connect failed, timeout). */
  private refuse (req: IncomingMessage, client: Duplex, fr: ForwardRequest, code: ErrorCode, server: string | undefined, started: number): void {
    rejectUpgrade(client, code)
    this.log(req, fr, httpStatusFor(new TandemError(code)), server, started, 0, 0, code)
  }

  forward (req: IncomingMessage, client: Duplex, head: Buffer, fr: ForwardRequest): void {
    const upstream = fr.upstream
    const first = upstream.pick()
    if (first === undefined) return this.refuse(req, client, fr, 'NO_SERVER_UP', undefined, this.clock.now())
    const started = this.clock.now()
    let handshakeDone = false
    // Bytes the client sends before the 101 belong to the new protocol: held, then sent after
    // it. Reading them also notices a client that leaves during the handshake.
    const early: Buffer[] = head.length > 0 ? [head] : []
    let earlyBytes = head.length
    const onEarly = (chunk: Buffer): void => {
      early.push(chunk)
      earlyBytes += chunk.length
      if (earlyBytes > EARLY_LIMIT) client.destroy()
    }
    /** The attempt under way: a connect failure moves to the next server (`retries`). */
    let current: { up: ReturnType<typeof http.request>, release: (ok: boolean | undefined) => void, stop: () => void } | undefined
    const onClientGone = (): void => {
      if (handshakeDone) return
      current?.release(undefined)
      current?.up.destroy()
      client.destroy()
    }
    const endHandshake = (): void => {
      handshakeDone = true
      current?.stop()
      client.off('data', onEarly)
      client.off('end', onClientGone)
      client.pause()
    }
    client.on('data', onEarly)
    client.once('end', onClientGone)
    client.once('close', onClientGone)
    client.on('error', () => { client.destroy() })

    const tried = new Set<Server>()
    const attempt = (server: Server): void => {
      upstream.acquire(server)
      let released = false
      /** `ok` undefined: the client left during the handshake, which says nothing about the server. */
      const release = (ok: boolean | undefined, reason: 'connect' | 'reset' | 'timeout' = 'reset'): void => {
        if (released) return
        released = true
        upstream.release(server, ok === undefined ? undefined : ok ? { ok: true, ms: this.clock.now() - started } : { ok: false, reason })
      }
      const up = http.request({
        host: server.host,
        port: server.port,
        method: req.method,
        path: fr.path,
        headers: fr.headers,
        agent: false,
      })
      let timer: NodeJS.Timeout | undefined
      let connected = false
      const stopTimer = (): void => { clearTimeout(timer) }
      current = { up, release, stop: stopTimer }
      const arm = (ms: number, code: ErrorCode): void => {
        clearTimeout(timer)
        if (ms > 0) timer = setTimeout(() => { up.destroy(new TandemError(code)) }, ms)
      }
      arm(upstream.config.connectTimeout, 'UPSTREAM_CONNECT_TIMEOUT')
      up.on('socket', (s: Socket) => {
        s.setNoDelay(true)
        s.once('connect', () => { connected = true; arm(this.responseMs, 'UPSTREAM_TIMEOUT') })
      })
      up.on('close', stopTimer)
      up.on('error', (err: Error & { code?: string }) => {
        stopTimer()
        if (released) return
        const code: ErrorCode = err instanceof TandemError ? err.code : err.code === 'ECONNREFUSED' ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_FAILED'
        release(false, err.code === 'ECONNREFUSED' ? 'connect' : err instanceof TandemError ? 'timeout' : 'reset')
        // Nothing reached that server: the next one may take the handshake, as for requests.
        tried.add(server)
        const next = !connected && !client.destroyed && tried.size <= upstream.config.retries ? upstream.pick(tried) : undefined
        if (next !== undefined) return attempt(next)
        this.refuse(req, client, fr, code, server.address, started)
      })
      up.on('response', (res) => {
        endHandshake()
        // Refused upgrade: relay the answer, then close both sides.
        release(!isServerFailureStatus(res.statusCode ?? 502))
        let bytesOut = 0
        let logged = false
        const done = (): void => {
          if (logged) return
          logged = true
          this.log(req, fr, res.statusCode ?? 502, server.address, started, 0, bytesOut)
        }
        // The answer's body has the tunnel's idle timeout too: a server that stalls it must not
        // hold both sockets (and a drain) for ever.
        if (this.idleMs > 0) res.socket.setTimeout(this.idleMs, () => { up.destroy(); client.destroy() })
        const lines = [`HTTP/1.1 ${res.statusCode ?? 502} ${safeReason(res.statusCode ?? 502, res.statusMessage)}`]
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i] as string
          if (/^(connection|keep-alive|transfer-encoding)$/i.test(name)) continue
          lines.push(`${name}: ${res.rawHeaders[i + 1] as string}`)
        }
        lines.push('connection: close', '', '')
        client.write(lines.join('\r\n'))
        res.on('data', (chunk: Buffer) => { bytesOut += chunk.length; client.write(chunk) })
        res.on('end', () => { done(); client.end(() => { client.destroy() }); up.destroy() })
        res.on('error', () => { client.destroy() })
        res.on('close', done)
      })
      up.on('upgrade', (res, upSocket, upHead) => {
        endHandshake()
        for (const chunk of early) upSocket.write(chunk)
        const lines = [`HTTP/1.1 101 ${safeReason(101, res.statusMessage)}`]
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i] as string}: ${res.rawHeaders[i + 1] as string}`)
        lines.push('', '')
        client.write(lines.join('\r\n'))
        if (upHead.length > 0) client.write(upHead)
        splice(client, upSocket, this.idleMs, () => {
          release(true)
          this.log(req, fr, 101, server.address, started, upSocket.bytesWritten, upSocket.bytesRead)
        })
      })
      up.end()
    }
    attempt(first)
  }
}

/** Pipes two sockets both ways; closing or resetting one closes the other. */
function splice (a: Duplex, b: Duplex, idleMs: number, onClose: () => void): void {
  let closed = 0
  const closeBoth = (): void => {
    if (++closed === 1) onClose()
    a.destroy()
    b.destroy()
  }
  a.pipe(b)
  b.pipe(a)
  a.on('close', closeBoth)
  b.on('close', closeBoth)
  a.on('error', closeBoth)
  b.on('error', closeBoth)
  if (idleMs > 0) {
    const sock = a as Socket
    if (typeof sock.setTimeout === 'function') {
      sock.setTimeout(idleMs)
      sock.on('timeout', closeBoth)
    }
  }
}

function rejectUpgrade (client: Duplex, code: ErrorCode): void {
  if (client.destroyed) return
  const status = httpStatusFor(new TandemError(code))
  const body = statusText(status) + '\n'
  const head = `HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`
  client.end(head + body, () => { client.destroy() })
}

