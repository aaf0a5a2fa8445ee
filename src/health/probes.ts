/*
 * Health probes: the only I/O in health/. Each probe opens a fresh connection, bounds the whole
 * attempt by one timer, handles every socket error, destroys its socket before settling, and
 * never rejects: every outcome becomes a ProbeResult.
 */
import type { IncomingMessage } from 'node:http'
import { http } from '../node-builtins.js'
import net from 'node:net'
import { systemClock, type Clock } from '../clock.js'

/** Outcome of one probe. */
export interface ProbeResult {
  readonly ok: boolean
  /** Why it failed (error code, `status 500`, `timeout after 1000 ms`), or the status on success. */
  readonly detail?: string
  /** Time from the start of the probe to its verdict. */
  readonly ms: number
}

/** What an HTTP probe expects; the shape of HealthConfig's http fields. */
export interface HttpProbeConfig {
  readonly path: string
  /** Inclusive range of accepted statuses. */
  readonly expectStatus: readonly [number, number]
  /** Substring the first MAX_PROBE_BODY bytes of the body must contain. */
  readonly expectBody?: string
}

/** Optional extras: `signal` aborts the probe (its result is then `aborted`). */
export interface ProbeOptions {
  readonly signal?: AbortSignal
  readonly clock?: Clock
}

/** Bytes of body read when looking for expectBody; a health page bigger than this is a mistake. */
export const MAX_PROBE_BODY = 64 * 1024

type Finish = (ok: boolean, detail?: string) => void

/**
 * Runs `begin` under the shared probe rules: one timer for the whole probe, abort support,
 * `cleanup` (destroying the socket) before the promise settles, at most one verdict.
 * `begin` may throw synchronously (bad host or path): that becomes a failure.
 */
function runProbe (
  timeoutMs: number,
  opts: ProbeOptions,
  begin: (finish: Finish) => () => void,
): Promise<ProbeResult> {
  const clock = opts.clock ?? systemClock
  const start = clock.now()
  const signal = opts.signal
  return new Promise((resolve) => {
    let done = false
    let cleanup: (() => void) | undefined
    let timer: NodeJS.Timeout | undefined
    const onAbort = (): void => { finish(false, 'aborted') }
    function finish (ok: boolean, detail?: string): void {
      if (done) return
      done = true
      if (timer !== undefined) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      try { cleanup?.() } catch { /* destroying a socket must not turn into a rejection */ }
      const ms = clock.now() - start
      resolve(detail === undefined ? { ok, ms } : { ok, detail, ms })
    }
    if (signal?.aborted === true) { finish(false, 'aborted'); return }
    let extended = false
    const deadline = (): void => {
      // A stalled event loop (this process busy relaying) took the probe's time, not the server:
      // give that time back once, so tandem's own load does not take healthy servers down.
      const late = clock.now() - start - timeoutMs
      if (!extended && late > Math.max(10, timeoutMs / 10)) {
        extended = true
        timer = setTimeout(deadline, late)
        return
      }
      // One I/O turn first: an answer that arrived during a stall is read before the verdict.
      setImmediate(() => { finish(false, `timeout after ${timeoutMs} ms`) })
    }
    timer = setTimeout(deadline, timeoutMs)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const c = begin(finish)
      // begin() may have settled synchronously; its cleanup still has to run.
      if (done) c()
      else cleanup = c
    } catch (err) {
      finish(false, describeError(err))
    }
  })
}

/** Connects and closes. Passes when the TCP handshake completes within `timeoutMs`. */
export function tcpProbe (host: string, port: number, timeoutMs: number, opts: ProbeOptions = {}): Promise<ProbeResult> {
  return runProbe(timeoutMs, opts, (finish) => {
    const socket = net.connect({ host, port })
    socket.on('error', (err) => { finish(false, describeError(err)) })
    socket.once('connect', () => { finish(true) })
    return () => { socket.destroy() }
  })
}

/**
 * GET `cfg.path` on a fresh connection (no agent, `Connection: close`). Passes when the status is
 * within `cfg.expectStatus` and, if set, the first MAX_PROBE_BODY bytes contain `cfg.expectBody`.
 * `timeoutMs` covers connect, headers and body.
 */
export function httpProbe (
  host: string,
  port: number,
  cfg: HttpProbeConfig,
  timeoutMs: number,
  opts: ProbeOptions = {},
): Promise<ProbeResult> {
  return runProbe(timeoutMs, opts, (finish) => {
    const req = http.request({
      host,
      port,
      method: 'GET',
      path: cfg.path,
      agent: false,
      headers: {
        host: hostHeader(host, port),
        connection: 'close',
        'user-agent': 'tandem-health-check',
        accept: '*/*',
      },
    })
    req.on('error', (err) => { finish(false, describeError(err)) })
    // A 101 never emits 'response'; once upgraded the socket is ours, and req.destroy() leaves it.
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      finish(false, `status ${res.statusCode ?? 0}`)
    })
    req.on('response', (res) => {
      res.on('error', (err) => { finish(false, describeError(err)) })
      // After 'end' this is a no-op; before it, the upstream cut the body short.
      res.on('close', () => { finish(false, 'connection closed before the body ended') })
      const status = res.statusCode ?? 0
      const [lo, hi] = cfg.expectStatus
      if (status < lo || status > hi) { finish(false, `status ${status}`); return }
      if (cfg.expectBody === undefined) { finish(true, `status ${status}`); return }
      matchBody(res, cfg.expectBody, status, finish)
    })
    req.end()
    return () => { req.destroy() }
  })
}

/** Decides as soon as the expected text shows up, at the byte limit, or at the end of the body. */
function matchBody (res: IncomingMessage, expect: string, status: number, finish: Finish): void {
  const want = Buffer.from(expect, 'utf8')
  const body = Buffer.allocUnsafe(MAX_PROBE_BODY)
  let size = 0
  res.on('data', (chunk: Buffer) => {
    const n = chunk.copy(body, size, 0, Math.min(chunk.length, MAX_PROBE_BODY - size))
    // Only the new bytes, plus an overlap for a match spanning chunks, need searching.
    const from = Math.max(0, size - want.length + 1)
    size += n
    if (body.subarray(0, size).indexOf(want, from) !== -1) finish(true, `status ${status}`)
    else if (size >= MAX_PROBE_BODY) finish(false, `body lacks expected text in its first ${MAX_PROBE_BODY} bytes`)
  })
  res.on('end', () => {
    if (size === 0 && want.length === 0) finish(true, `status ${status}`)
    else finish(false, 'body lacks expected text')
  })
}

/** Host header value; IPv6 literals are stored without brackets and need them here. */
function hostHeader (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

function describeError (err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string') return code
    const message = (err as { message?: unknown }).message
    if (typeof message === 'string') return message
  }
  return String(err)
}
