import { http } from '../node-builtins.js'

/**
 * Header rewriting between client and upstream (pure). Works on Node's flat rawHeaders arrays so
 * repeated headers (Set-Cookie) stay repeated and the client's spelling is kept.
 */

/** RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies also drop. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
])

export interface ForwardedInfo {
  /** Address appended to X-Forwarded-For (the socket peer). */
  readonly peer: string
  readonly proto: 'http' | 'https'
  /**
   * True when the peer is a trusted proxy: its X-Forwarded-Proto/-Host, Forwarded and X-Real-IP
   * are kept. From anyone else Forwarded and X-Real-IP are dropped, so an upstream that believes
   * them cannot be told a made-up client address.
   */
  readonly trusted: boolean
  /** Replaces Host (the authority of an absolute-form target, RFC 9112 §3.2.2). */
  readonly host?: string
}

/** The fields this proxy writes or vets, whose underscore spellings are dropped. */
const FORWARDING: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip'])

/**
 * Fields a Connection token may not remove: what routing used and what frames the message.
 * `Connection: host` would otherwise send the upstream no Host (or undici's own), after routing
 * on the client's.
 */
const NOT_HOP_BY_HOP: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding'])

/** Names listed in Connection are hop-by-hop too (RFC 9110 §7.6.1), but NOT_HOP_BY_HOP. */
function connectionTokens (raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      for (const t of (raw[i + 1] as string).split(',')) {
        const token = t.trim().toLowerCase()
        if (token !== '' && token !== 'close' && token !== 'keep-alive' && !NOT_HOP_BY_HOP.has(token)) (tokens ??= new Set()).add(token)
      }
    }
  }
  return tokens
}

/**
 * Request headers for the upstream: hop-by-hop removed, Host kept as the client sent it,
 * X-Forwarded-For appended, X-Forwarded-Proto and X-Forwarded-Host set.
 * `keepUpgrade` keeps Connection/Upgrade for WebSocket handshakes.
 */
export function upstreamRequestHeaders (raw: readonly string[], info: ForwardedInfo, keepUpgrade = false): string[] {
  const extra = connectionTokens(raw)
  const out: string[] = []
  let xff: string | undefined
  let host: string | undefined
  let proto: string | undefined
  let fwdHost: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || extra?.has(lower) === true) {
      if (keepUpgrade && (lower === 'upgrade' || lower === 'connection')) out.push(name, value)
      else if (lower === 'te' && /(^|,)\s*trailers\s*(,|$)/i.test(value)) out.push(name, 'trailers')
      continue
    }
    switch (lower) {
      case 'x-forwarded-for': xff = xff === undefined ? value : `${xff}, ${value}`; continue
      case 'x-forwarded-proto': proto = value; continue
      case 'x-forwarded-host': fwdHost = value; continue
      case 'forwarded': case 'x-real-ip': if (!info.trusted) continue; break
      case 'host':
        host = info.host ?? value
        out.push(name, host)
        continue
      // The proxy answers 100-continue itself (nginx does the same); undici cannot send Expect.
      case 'expect': continue
    }
    // `X_Forwarded_For` reaches CGI, WSGI and Rack upstreams as HTTP_X_FORWARDED_FOR, the same
    // variable as the real one: a client could name its own address (nginx drops such names).
    if (lower.includes('_') && FORWARDING.has(lower.replaceAll('_', '-'))) continue
    out.push(name, value)
  }
  if (host === undefined && info.host !== undefined) out.push('host', host = info.host)
  out.push('x-forwarded-for', xff === undefined ? info.peer : `${xff}, ${info.peer}`)
  out.push('x-forwarded-proto', info.trusted && proto !== undefined ? proto : info.proto)
  const forwardedHost = info.trusted && fwdHost !== undefined ? fwdHost : host
  if (forwardedHost !== undefined) out.push('x-forwarded-host', forwardedHost)
  return out
}

/**
 * The reason phrase to send for an upstream's status line. RFC 9112 allows obs-text there
 * (`200 Успешно`), which node:http refuses to write; anything but visible ASCII, space and tab
 * is replaced by the standard phrase, so the response is still relayed.
 */
export function safeReason (status: number, reason: string | undefined): string {
  if (reason !== undefined && /^[\t\x20-\x7e]*$/.test(reason)) return reason
  return http.STATUS_CODES[status] ?? ''
}

/**
 * Response headers for the client from undici's raw header buffers: hop-by-hop removed,
 * repeated fields kept. Returns a flat [name, value, ...] list for res.writeHead(). Throws for a
 * transfer coding other than chunked: undici removes only the chunking, and the body would reach
 * the client still coded with nothing saying so (the lean path refuses it too).
 */
export function clientResponseHeaders (raw: readonly Buffer[]): string[] {
  const out: string[] = []
  let extra: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'connection') {
      extra = new Set((raw[i + 1] as Buffer).toString('latin1').split(',').map((t) => t.trim().toLowerCase()))
      continue
    }
    if (lower === 'transfer-encoding' && (raw[i + 1] as Buffer).toString('latin1').trim().toLowerCase() !== 'chunked') {
      throw new Error('unsupported transfer coding in the response')
    }
    if (HOP_BY_HOP.has(lower)) continue
    out.push(name, (raw[i + 1] as Buffer).toString('latin1'))
  }
  if (extra === undefined) return out
  const kept: string[] = []
  for (let i = 0; i < out.length; i += 2) {
    if (!extra.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string)
  }
  return kept
}
