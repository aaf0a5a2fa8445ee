/**
 * Request paths as routing compares them (pure), for request targets and configured paths alike.
 *
 * RFC 3986 §6.2.2.2: a percent-encoded unreserved character (ALPHA, DIGIT, `-`, `.`, `_`, `~`)
 * is the same URI as the character itself, so `/%61dmin/x` is `/admin/x` to any compliant
 * server (nginx matches and forwards its decoded URI). Decoding them before routing keeps a
 * route from being sidestepped by spelling. Every other escape stays as sent, hex case too:
 * `%2F` in `group%2Fproject` is data, not a separator, to an upstream that does not decode it.
 * Slashes are not merged and case is kept, as HAProxy and Envoy do by default.
 */

/** RFC 3986 §2.3, by char code. */
const UNRESERVED = new Uint8Array(128)
for (const c of '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') UNRESERVED[c.charCodeAt(0)] = 1

/**
 * `target` with every percent-encoded unreserved character before its first `?` decoded, and
 * its query and other escapes as sent. Returns `target` itself when there is nothing to decode
 * (no `%`: one scan, no allocation), so callers may compare by identity.
 */
export function normalizePath (target: string): string {
  let at = target.indexOf('%')
  if (at === -1) return target
  const q = target.indexOf('?')
  const end = q === -1 ? target.length : q
  let out = ''
  let kept = 0
  for (; at !== -1 && at + 2 < end; at = target.indexOf('%', at + 1)) {
    const hi = hexDigit(target.charCodeAt(at + 1))
    const lo = hexDigit(target.charCodeAt(at + 2))
    if (hi < 0 || lo < 0) continue
    const c = hi * 16 + lo
    if (c >= 128 || UNRESERVED[c] === 0) continue
    out += target.slice(kept, at) + String.fromCharCode(c)
    kept = at + 3
  }
  return kept === 0 ? target : out + target.slice(kept)
}

function hexDigit (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 32
  return l >= 97 && l <= 102 ? l - 87 : -1
}

/**
 * A `.` or `..` segment, its dots plain or `%2e`, between `/`, `%2F` or `%5C` (separators to an
 * upstream that decodes before it resolves dots, as nginx does) or the ends.
 */
const DOT_SEGMENT = /(?:^|\/|%2f|%5c)(?:\.|%2e){1,2}(?:\/|%2f|%5c|$)/i

/**
 * Whether the path of `target` (before any `?`) holds a dot-segment. Such a path may match one
 * route (`pathPrefix: /public/`) and resolve, upstream, into another's (`/public/..%2fadmin`).
 */
export function hasDotSegment (target: string): boolean {
  const q = target.indexOf('?')
  const end = q === -1 ? target.length : q
  // Most paths hold neither `.` nor `%`: a scan each, no slice, no regular expression.
  const dot = target.indexOf('.')
  const pct = target.indexOf('%')
  if ((dot === -1 || dot >= end) && (pct === -1 || pct >= end)) return false
  return DOT_SEGMENT.test(q === -1 ? target : target.slice(0, q))
}
