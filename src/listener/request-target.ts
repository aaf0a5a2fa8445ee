import type { ErrorCode } from '../errors.js'
import { hasDotSegment, normalizePath } from '../router/path.js'

/**
 * What a request line and its Host header say about where a request goes (pure).
 *
 * RFC 9112 §3.2: origin form (`/p?q`) takes its host from the single Host header; absolute form
 * (`http://a.example/p`) takes it from the target's authority, and Host is then replaced by it
 * (§3.2.2), so routing and the upstream see one host, never two. Asterisk form (`OPTIONS *`)
 * and anything undici could not send are refused here, before a server is picked, so a request
 * tandem cannot build is never counted against a server or retried. The path is given with its
 * percent-encoded unreserved characters decoded (router/path.ts), as routed and forwarded.
 */
export type RequestTarget =
  | { readonly ok: true, readonly path: string, readonly host: string, readonly absolute: boolean }
  | { readonly ok: false, readonly code: ErrorCode, readonly reason: string }

type Refused = Extract<RequestTarget, { ok: false }>

const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)$/i
const LABEL = "[a-z0-9_~!$&'()*+,;=%-]+"
/**
 * reg-name / IPv4 / [IPv6] with an optional port: what Host and an authority may hold. No empty
 * label (`.example.com`, `a..example.com`: a wildcard would take them for subdomains; nginx
 * refuses `..`), though one trailing dot may end a name.
 */
const AUTHORITY = new RegExp(`^(?:\\[[0-9a-f:.]+\\]|${LABEL}(?:\\.${LABEL})*\\.?)(?::\\d{0,5})?$`, 'i')
const FRAGMENT_OR_DOT: Refused = { ok: false, code: 'BAD_REQUEST', reason: 'fragment or dot-segment' }
const BACKSLASH: Refused = { ok: false, code: 'BAD_REQUEST', reason: 'backslash in path' }

/**
 * Precondition: `rawHeaders` is Node's flat [name, value, …] list for the request.
 *
 * Also refused here, for both paths: Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1: faulty
 * framing, which another hop may read differently), a transfer coding other than chunked (501:
 * it would reach the upstream chunked and undeclared), an HTTP/1.1 request without Host, in
 * either form, and an empty Host (§3.2; RFC 9110 §4.2.1: an http URI with an empty host is
 * invalid), a fragment, a `\` in the path (not a URI character; WHATWG URL parsers, Node's and
 * Fetch-API servers', read it as `/`), and dot-segments in the path (`/v1/../admin` would match
 * `pathPrefix: /v1/` and, stripped, reach the upstream as `/../admin`).
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
  if (host === undefined) {
    if (versionMinor >= 1) return { ok: false, code: 'BAD_REQUEST', reason: 'missing Host' }
  } else if (!AUTHORITY.test(host)) return { ok: false, code: 'BAD_REQUEST', reason: 'invalid Host' }
  if (rawUrl.charCodeAt(0) === 47 /* / */) {
    const path = targetPath(rawUrl)
    if (typeof path !== 'string') return path
    return { ok: true, path, host: host ?? '', absolute: false }
  }
  const m = ABSOLUTE.exec(rawUrl)
  if (m === null) return { ok: false, code: 'BAD_REQUEST', reason: rawUrl === '*' ? 'asterisk form' : 'request target' }
  const authority = (m[2] as string).toLowerCase()
  if (authority === '' || !AUTHORITY.test(authority)) return { ok: false, code: 'BAD_REQUEST', reason: 'absolute-form authority' }
  const rest = m[3] as string
  const path = targetPath(rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? '/' + rest : rest)
  if (typeof path !== 'string') return path
  return { ok: true, path, host: authority, absolute: true }
}

/**
 * The path as routed and forwarded, or why it is refused. Precondition: `target` starts with `/`.
 * A plain `/app/hello` costs five scans and no allocation; the dot-segment check and the
 * decoding run only when the path holds a `.` or a `%`.
 */
function targetPath (target: string): string | Refused {
  if (target.includes('#')) return FRAGMENT_OR_DOT
  const q = target.indexOf('?')
  const end = q === -1 ? target.length : q
  const bs = target.indexOf('\\')
  if (bs !== -1 && bs < end) return BACKSLASH
  const dot = target.indexOf('.')
  const pct = target.indexOf('%')
  const escaped = pct !== -1 && pct < end
  // Checked before decoding: `%2e` counts as a dot there, and no other decoded character can
  // make or unmake a dot-segment.
  if ((escaped || (dot !== -1 && dot < end)) && hasDotSegment(target)) return FRAGMENT_OR_DOT
  return escaped ? normalizePath(target) : target
}
