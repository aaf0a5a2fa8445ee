import type { ClientRequest, IncomingMessage } from 'node:http'
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
import { refusedHead, switchesToOffered, upgradeProtocols } from './upgrade-heads.js'
import type { Outcome } from './upstream.js'

/** Bytes a client may send ahead of the 101 before it is cut off. */
const EARLY_LIMIT = 64 * 1024

/**
 * WebSocket pass-through. The handshake goes through node:http so a refusal (any status but
 * 101) is relayed as a normal response and both sides are closed; after a 101 the two sockets
 * are spliced and bytes flow unchanged. `connectTimeout` bounds the TCP connect only; the
 * listener's response timeout bounds the wait for the upstream's answer, as for any request.
 * The server's response time is the handshake's (to the 101 or the refusal's head); a tunnel's
 * lifetime says nothing about it.
 */
export class UpgradeForwarder {
  constructor (private readonly clock: Clock, private readonly idleMs: number, private readonly responseMs: number) {}

  /** One access line per upgrade, when the tunnel closes (or the upgrade is refused, or the client leaves). */
  private log (req: IncomingMessage, fr: ForwardRequest, status: number, server: string | undefined, started: number, bytesIn: number, bytesOut: number, error?: ErrorCode | 'CLIENT_CLOSED'): void {
    if (!channels.httpRequestEnd.hasSubscribers) return
    publishHttpEnd({ ...accessFields(req, fr, status, started, this.clock.now()), server, bytesIn, bytesOut, ...(error === undefined ? {} : { error }) })
  }

  /** Answers the client with `code`'s status and logs it (no server up, connect failed, timeout). */
  private refuse (req: IncomingMessage, client: Duplex, fr: ForwardRequest, code: ErrorCode, server: string | undefined, started: number): void {
    rejectUpgrade(client, code)
    this.log(req, fr, httpStatusFor(new TandemError(code)), server, started, 0, 0, code)
  }

  forward (req: IncomingMessage, client: Duplex, head: Buffer, fr: ForwardRequest): void {
    const started = this.clock.now()
    const upstream = fr.upstream
    const first = upstream.pick()
    if (first === undefined) return this.refuse(req, client, fr, 'NO_SERVER_UP', undefined, started)
    const offered = upgradeProtocols(req.headers.upgrade)
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
    /**
     * The attempt under way: a connect failure moves to the next server (`retries`). A client
     * that leaves abandons it, which is logged (499) and says nothing about the server.
     */
    let current: { abandon: () => void, stop: () => void } | undefined
    const onClientGone = (): void => {
      if (handshakeDone) return
      handshakeDone = true
      current?.abandon()
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
    // A FIN during the handshake is a client that left, as nginx takes it (499): a close and a
    // half-close look alike from here, and a tunnel is no use to a client that cannot send.
    client.once('end', onClientGone)
    client.once('close', onClientGone)
    client.on('error', () => { client.destroy() })

    const tried = new Set<Server>()
    const attempt = (server: Server): void => {
      upstream.acquire(server)
      const attemptStarted = this.clock.now()
      let held = true
      /** Ends what acquire() started; no outcome once the handshake's is recorded, or when the client left. */
      const release = (outcome?: Outcome): void => {
        if (!held) return
        held = false
        upstream.release(server, outcome)
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
      current = {
        abandon: () => {
          release()
          up.destroy()
          this.log(req, fr, 499, server.address, started, 0, 0, 'CLIENT_CLOSED')
        },
        stop: stopTimer,
      }
      const arm = (ms: number, code: ErrorCode): void => {
        clearTimeout(timer)
        if (ms > 0) timer = setTimeout(() => { up.destroy(new TandemError(code)) }, ms)
      }
      /** The server answered what cannot be relayed: 502, held against it. */
      const badAnswer = (ms: number): void => {
        up.destroy()
        release({ ok: false, reason: 'reset', ms })
        this.refuse(req, client, fr, 'UPSTREAM_FAILED', server.address, started)
      }
      arm(upstream.config.connectTimeout, 'UPSTREAM_CONNECT_TIMEOUT')
      up.on('socket', (s: Socket) => {
        s.setNoDelay(true)
        s.once('connect', () => { connected = true; arm(this.responseMs, 'UPSTREAM_TIMEOUT') })
      })
      up.on('close', stopTimer)
      up.on('error', (err: Error & { code?: string }) => {
        stopTimer()
        // After the answer's head its relay sees the failure; after a client left, nobody cares.
        if (handshakeDone || !held) return
        const code: ErrorCode = err instanceof TandemError ? err.code : err.code === 'ECONNREFUSED' ? 'UPSTREAM_CONNECT_FAILED' : 'UPSTREAM_FAILED'
        release({ ok: false, reason: err.code === 'ECONNREFUSED' ? 'connect' : err instanceof TandemError ? 'timeout' : 'reset' })
        // Nothing reached that server: the next one may take the handshake, as for requests.
        tried.add(server)
        const next = !connected && !client.destroyed && tried.size <= upstream.config.retries ? upstream.pick(tried) : undefined
        if (next !== undefined) return attempt(next)
        endHandshake()
        this.refuse(req, client, fr, code, server.address, started)
      })
      up.on('response', (res) => {
        endHandshake()
        const ms = this.clock.now() - attemptStarted
        const status = res.statusCode ?? 502
        // node:http takes a 101 for an upgrade only with Upgrade and Connection: nothing to switch to.
        if (status === 101) return badAnswer(ms)
        let answer: string
        try {
          answer = refusedHead(res, new Date().toUTCString())
        } catch {
          return badAnswer(ms)
        }
        upstream.record(server, isServerFailureStatus(status) ? { ok: false, reason: 'status', ms } : { ok: true, ms })
        relayRefusal(client, res, up, answer, this.idleMs, (bytesOut) => {
          release()
          this.log(req, fr, status, server.address, started, 0, bytesOut)
        })
      })
      up.on('upgrade', (res, upSocket, upHead) => {
        endHandshake()
        const ms = this.clock.now() - attemptStarted
        if (!switchesToOffered(res, offered)) {
          upSocket.destroy()
          return badAnswer(ms)
        }
        upstream.record(server, { ok: true, ms })
        // The access line counts the tunnel's bytes, as a request's counts its body: not the heads.
        const headWritten = upSocket.bytesWritten
        const headRead = upSocket.bytesRead - upHead.length
        for (const chunk of early) upSocket.write(chunk)
        const lines = [`HTTP/1.1 101 ${safeReason(101, res.statusMessage)}`]
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i] as string}: ${res.rawHeaders[i + 1] as string}`)
        lines.push('', '')
        client.write(lines.join('\r\n'))
        if (upHead.length > 0) client.write(upHead)
        splice(client, upSocket, this.idleMs, () => {
          release()
          this.log(req, fr, 101, server.address, started, upSocket.bytesWritten - headWritten, upSocket.bytesRead - headRead)
        })
      })
      up.end()
    }
    attempt(first)
  }
}

/**
 * Relays a refused handshake's answer (`head` is its head) and closes both sides. The body
 * moves only as fast as the client reads it, and `onEnd` (the server given back, the access
 * line) runs once, when the server's part is over: its body read, or either side gone. A server
 * that stalls the body and a client that stops reading it are both cut at the idle timeout.
 */
function relayRefusal (client: Duplex, res: IncomingMessage, up: ClientRequest, head: string, idleMs: number, onEnd: (bytesOut: number) => void): void {
  let bytesOut = 0
  let over = false
  const finish = (): void => {
    if (over) return
    over = true
    up.destroy()
    onEnd(bytesOut)
  }
  const cut = (): void => {
    client.destroy()
    finish()
  }
  if (idleMs > 0) {
    res.socket.setTimeout(idleMs, cut)
    const sock = client as Socket
    if (typeof sock.setTimeout === 'function') sock.setTimeout(idleMs, cut)
  }
  client.once('close', finish)
  client.write(head)
  res.on('data', (chunk: Buffer) => { bytesOut += chunk.length })
  res.pipe(client, { end: false })
  res.once('end', () => {
    finish()
    client.end(() => { client.destroy() })
  })
  // Cut short (a reset, a premature close): the client must not take what it got for the whole.
  res.on('error', cut)
  res.once('close', () => { if (!res.complete) cut() })
}

/** Pipes two sockets both ways; closing or resetting one closes the other. */
function splice (a: Duplex, b: Duplex, idleMs: number, onClose: () => void): void {
  // A FIN ends one direction only, as on TCP listeners: the tunnel is over once both sockets
  // closed cleanly (each read its FIN and flushed its writes), or at once on an error, a socket
  // closed with a direction still open, or the idle timeout.
  const sockets = [a, b] as Socket[]
  for (const s of sockets) s.allowHalfOpen = true
  let open = 2
  let over = false
  const finish = (): void => {
    if (over) return
    over = true
    onClose()
  }
  const cut = (): void => {
    a.destroy()
    b.destroy()
    finish()
  }
  a.pipe(b)
  b.pipe(a)
  for (const s of sockets) {
    s.on('error', cut)
    s.on('close', () => {
      if (!s.readableEnded || !s.writableFinished) cut()
      else if (--open === 0) finish()
    })
    if (idleMs > 0 && typeof s.setTimeout === 'function') {
      s.setTimeout(idleMs)
      s.on('timeout', cut)
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
