/**
 * Character classes of HTTP/1 heads, checked on the latin1 string of a head (one char per
 * byte): a one-class regular expression scans it in native code, where a byte loop in JS cost
 * a fifth of the parse; field names by a table rather than a regular expression each.
 */

/** tchar (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1

export function isTchar (c: number): boolean {
  return c < 128 && TCHAR[c] === 1
}

/** A non-empty run of tchar: a field name or a method. */
export function isToken (s: string): boolean {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 127 || TCHAR[c] === 0) return false
  }
  return true
}

/** A CTL other than HTAB, CR and LF (DEL too); obs-text is allowed. */
const CTL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/
/** As CTL, and anything outside visible ASCII (the lean request parser's rule). */
const NOT_PLAIN = /[^\t\x20-\x7e\r\n]/

/** No control byte but HTAB, and every CR and LF part of one CRLF. */
export function responseHeadChars (head: string): boolean {
  return !CTL.test(head) && crlfOnly(head)
}

/** As responseHeadChars, and nothing outside visible ASCII. */
export function requestHeadChars (head: string): boolean {
  return !NOT_PLAIN.test(head) && crlfOnly(head)
}

/**
 * Every CR is followed by an LF, and there are as many LFs as CRs: so no bare CR, no bare LF.
 * (One regular expression with look-arounds for this scanned at every position: slower than the rest of the parse.)
 */
function crlfOnly (head: string): boolean {
  let crs = 0
  for (let i = head.indexOf('\r'); i !== -1; i = head.indexOf('\r', i + 2)) {
    if (head.charCodeAt(i + 1) !== 10) return false
    crs++
  }
  let lfs = 0
  for (let i = head.indexOf('\n'); i !== -1; i = head.indexOf('\n', i + 1)) lfs++
  return crs === lfs
}
