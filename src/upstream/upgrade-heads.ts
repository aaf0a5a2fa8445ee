import type { IncomingMessage } from 'node:http'
import { clientResponseHeaders, safeReason } from './headers.js'

// What an Upgrade handshake may become, and the heads the proxy writes for it (pure).

const WEBSOCKET_ONLY: readonly string[] = ['websocket']

/** The protocol names an Upgrade field lists, lower-case, versions dropped (`websocket`, `h2c`). */
export function upgradeProtocols (field: string | undefined): string[] {
  const out: string[] = []
  if (field === undefined) return out
  for (const raw of field.split(',')) {
    const token = raw.trim().toLowerCase().split('/')[0] as string
    if (token !== '') out.push(token)
  }
  return out
}

/**
 * True when this Upgrade request may become a tunnel: every protocol it offers is in `allowed`
 * (default: WebSocket only, and only as RFC 6455 §4.1's GET). A tunnel is past every route
 * condition, so anything else (`h2c` …) is handled as a plain HTTP/1.1 request, its Upgrade
 * header dropped; offering one allowed protocol beside a refused one does not sneak it through.
 * So is an HTTP/1.0 request, whose Upgrade a server must ignore (RFC 9110 §7.8), and one with a
 * body: node:http would leave the body unread as the new protocol's first bytes, while a server
 * that ignores Upgrade (as it may) waits for the body its Content-Length announced.
 */
export function tunnelAllowed (req: IncomingMessage, allowed: readonly string[] = WEBSOCKET_ONLY): boolean {
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return false
  const length = req.headers['content-length']
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0)) return false
  const offered = upgradeProtocols(req.headers.upgrade)
  return offered.length > 0 && offered.every((p) => allowed.includes(p) && (p !== 'websocket' || req.method === 'GET'))
}

/** True when a 101 switches only to protocols the client offered: a server may not pick another (RFC 9110 §7.8). */
export function switchesToOffered (res: IncomingMessage, offered: readonly string[]): boolean {
  const chosen = upgradeProtocols(res.headers.upgrade)
  return chosen.length > 0 && chosen.every((p) => offered.includes(p))
}

/**
 * The head of a refused handshake's answer (any status but 101) for the client: the fields a
 * plain response keeps (clientResponseHeaders), Date if the server sent none, and
 * `connection: close`, as both sides close after the body. That body goes as it was framed
 * or until the close, never chunked, so a Trailer field (whose trailers cannot follow) is
 * dropped. Throws for a transfer coding node:http does not undo, as clientResponseHeaders does.
 */
export function refusedHead (res: IncomingMessage, date: string): string {
  const status = res.statusCode ?? 502
  const fields = clientResponseHeaders(res.rawHeaders.map((h) => Buffer.from(h, 'latin1')))
  let head = `HTTP/1.1 ${status} ${safeReason(status, res.statusMessage)}\r\n`
  let dated = false
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string
    const lower = name.toLowerCase()
    if (lower === 'trailer') continue
    if (lower === 'date') dated = true
    head += `${name}: ${fields[i + 1] as string}\r\n`
  }
  if (!dated) head += `Date: ${date}\r\n`
  return head + 'connection: close\r\n\r\n'
}
