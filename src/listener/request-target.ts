import type { ErrorCode } from '../errors.js'

/**
 * What a request line and its Host header say about where a request goes (pure).
 *
 * RFC 9112 §3.2: origin form (`/p?q`) takes its host from the single Host header; absolute form
 * (`http://a.example/p`) takes it from the target's authority, and Host is then replaced by it
 * (§3.2.2), so routing and the upstream see one host, never two. Asterisk form (`OPTIONS *`)
 * and anything undici could not send are refused here, before a server is picked, so a request
 * tandem cannot build is never counted against a server or retried.
 */
export type RequestTarget =
  | { readonly ok: true, readonly path: string, readonly host: string, readonly absolute: boolean }
  | { readonly ok: false, readonly code: ErrorCode, readonly reason: string }

const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)$/i
/** reg-name / IPv4 / [IPv6] with an optional port: what Host and an authority may hold. */
const AUTHORITY = /^(?:\[[0-9a-f:.]+\]|[a-z0-9._~!$&'()*+,;=%-]+)(?::\d{0,5})?$/i

/**
 * Precondition: `rawHeaders` is Node's flat [name, value, …] list for the request.
 *
 * Also refused here, for both paths: Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1: faulty
 * framing, which another hop may read differently), a transfer coding other than chunked (501:
 * it would reach the upstream chunked and undeclared), an HTTP/1.1 request without Host (§3.2),
 * a fragment, and dot-segments in the path (`/v1/../admin` would match `pathPrefix: /v1/` and,
 * stripped, reach the upstream as `/../admin`).
 */
export function requestTarget (rawUrl: string, rawHeaders: readonly string[], versionMajor: number, versionMinor = 1): RequestTarget {
  if (versionMajor !== 1) return { ok: false, code: 'VERSION_NOT_SUPPORTED', reason: 'HTTP version' }
  let host: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      if (versionMinor === 0) return { ok: false, code: 'BAD_REQUEST', reason: 'Transfer-Encoding in HTTP/1.0' }
      if ((rawHeaders[i + 1] as string).trim().toLowerCase() !== 'chunked') return { ok: false, code: 'NOT_IMPLEMENTED', reason: 'transfer coding' }
      continue
    }
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue
    // Two Host headers: which one a server believes is exactly what smuggling relies on.
    if (host !== undefined) return { ok: false, code: 'BAD_REQUEST', reason: 'repeated Host' }
    host = rawHeaders[i + 1] as string
  }
  if (host !== undefined && host !== '' && !AUTHORITY.test(host)) return { ok: false, code: 'BAD_REQUEST', reason: 'invalid Host' }
  if (rawUrl.charCodeAt(0) === 47 /* / */) {
    if (host === undefined && versionMinor >= 1) return { ok: false, code: 'BAD_REQUEST', reason: 'missing Host' }
    if (!plainPath(rawUrl)) return { ok: false, code: 'BAD_REQUEST', reason: 'fragment or dot-segment' }
    return { ok: true, path: rawUrl, host: host ?? '', absolute: false }
  }
  const m = ABSOLUTE.exec(rawUrl)
  if (m === null) return { ok: false, code: 'BAD_REQUEST', reason: rawUrl === '*' ? 'asterisk form' : 'request target' }
  const authority = (m[2] as string).toLowerCase()
  if (authority === '' || !AUTHORITY.test(authority)) return { ok: false, code: 'BAD_REQUEST', reason: 'absolute-form authority' }
  const rest = m[3] as string
  const path = rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? '/' + rest : rest
  if (!plainPath(path)) return { ok: false, code: 'BAD_REQUEST', reason: 'fragment or dot-segment' }
  return { ok: true, path, host: authority, absolute: true }
}

/** A `.` or `..` segment, plain or percent-encoded, before any query. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i

/** No fragment (origin form has none, RFC 9112 §3.2.1) and no dot-segment in the path. */
function plainPath (target: string): boolean {
  if (target.includes('#')) return false
  const q = target.indexOf('?')
  const end = q === -1 ? target.length : q
  // Most paths hold neither `.` nor `%`: a scan each, no slice, no regular expression.
  const dot = target.indexOf('.')
  const pct = target.indexOf('%')
  if ((dot === -1 || dot >= end) && (pct === -1 || pct >= end)) return true
  return !DOT_SEGMENT.test(q === -1 ? target : target.slice(0, q))
}
