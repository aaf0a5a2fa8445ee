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
 */
export function requestTarget (rawUrl: string, rawHeaders: readonly string[], versionMajor: number): RequestTarget {
  if (versionMajor !== 1) return { ok: false, code: 'VERSION_NOT_SUPPORTED', reason: 'HTTP version' }
  let host: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue
    // Two Host headers: which one a server believes is exactly what smuggling relies on.
    if (host !== undefined) return { ok: false, code: 'BAD_REQUEST', reason: 'repeated Host' }
    host = rawHeaders[i + 1] as string
  }
  if (host !== undefined && host !== '' && !AUTHORITY.test(host)) return { ok: false, code: 'BAD_REQUEST', reason: 'invalid Host' }
  if (rawUrl.charCodeAt(0) === 47 /* / */) return { ok: true, path: rawUrl, host: host ?? '', absolute: false }
  const m = ABSOLUTE.exec(rawUrl)
  if (m === null) return { ok: false, code: 'BAD_REQUEST', reason: rawUrl === '*' ? 'asterisk form' : 'request target' }
  const authority = (m[2] as string).toLowerCase()
  if (authority === '' || !AUTHORITY.test(authority)) return { ok: false, code: 'BAD_REQUEST', reason: 'absolute-form authority' }
  const rest = m[3] as string
  const path = rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? '/' + rest : rest
  return { ok: true, path, host: authority, absolute: true }
}
