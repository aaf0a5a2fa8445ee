/**
 * The lean path's request-head parser (pure). It accepts only the common, unambiguous case: a
 * bodiless GET or HEAD in origin form, HTTP/1.1, CRLF line ends, visible ASCII, token header
 * names, exactly one Host, and no header that changes framing or protocol (Content-Length,
 * Transfer-Encoding, Upgrade, Expect). Everything else is UNSUPPORTED: the connection is handed
 * to node:http, whose llhttp parser and the listener's existing defences decide. So this parser
 * never has to produce an error answer, and a request it would misread cannot exist: anything it
 * is unsure of goes to the stricter general path.
 */
import { isToken, requestHeadChars } from './chars.js'

/** More bytes are needed. */
export const INCOMPLETE = 0
/** Not for the lean path: hand the connection to node:http. */
export const UNSUPPORTED = 1

/** A parsed head. `headers` (lower-case names, repeats joined as node:http joins them) is built on first use. */
export class RequestHead {
  readonly httpVersionMajor = 1
  readonly httpVersionMinor = 1
  private joined: Record<string, string> | undefined

  constructor (
    readonly method: 'GET' | 'HEAD',
    /** The request target as sent (origin form). */
    readonly url: string,
    /** Node's flat [name, value, …] form: names as sent, values without surrounding whitespace. */
    readonly rawHeaders: string[],
    /** The client asked to close after this request (`Connection: close`). */
    readonly close: boolean,
    /** Offset just past the head's blank line. */
    readonly end: number,
  ) {}

  get headers (): Record<string, string> {
    if (this.joined !== undefined) return this.joined
    const out: Record<string, string> = {}
    const raw = this.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const lower = (raw[i] as string).toLowerCase()
      const value = raw[i + 1] as string
      const prev = out[lower]
      if (prev === undefined) out[lower] = value
      else if (!FIRST_WINS.has(lower)) out[lower] = prev + (lower === 'cookie' ? '; ' : ', ') + value
    }
    return (this.joined = out)
  }
}

const CRLFCRLF = Buffer.from('\r\n\r\n')
/** Framing and protocol switches: the general path owns them. */
const NOT_LEAN = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect'])
/** node:http keeps the first of these when repeated (IncomingMessage#_addHeaderLine). */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization',
  'referer', 'retry-after', 'server', 'user-agent',
])

/**
 * Finds the head's end in `buf` from `start`. `scanFrom` (≥ start) is where the search for the
 * blank line may begin (bytes before it were searched already). Returns the offset past the
 * blank line, or -1.
 */
export function headEnd (buf: Buffer, start: number, scanFrom = start): number {
  const at = buf.indexOf(CRLFCRLF, Math.max(start, scanFrom - 3))
  return at === -1 ? -1 : at + 4
}

/**
 * A partial head that can already be seen not to be lean: another method, a byte the parser
 * refuses, or a bare LF (which would never end a head here). Handing it over at once lets
 * node:http answer without waiting for the rest, as it would have.
 */
function visiblyUnsupported (buf: Buffer, start: number, scanFrom: number): boolean {
  const n = Math.min(buf.length - start, 5)
  for (let i = 0; i < n; i++) if (buf[start + i] !== (buf[start] === 72 /* H */ ? HEAD_ : GET_)[i]) return true
  for (let i = Math.max(start, scanFrom); i < buf.length; i++) {
    const c = buf[i] as number
    if (c === 10 ? buf[i - 1] !== 13 : (c < 32 && c !== 9 && c !== 13) || c > 126) return true
  }
  return false
}

/** Fields a lean request may carry; a browser sends about 20. */
export const MAX_LEAN_HEADERS = 256

const GET_ = [71, 69, 84, 32, 47] // 'GET /'
const HEAD_ = [72, 69, 65, 68, 32] // 'HEAD '

/**
 * Parses the request head at `buf[start…]`. `limit` is the listener's maxHeaderSize: a head
 * longer than that is UNSUPPORTED, so node:http answers it (431).
 */
export function parseRequestHead (buf: Buffer, start: number, limit: number, scanFrom = start): RequestHead | typeof INCOMPLETE | typeof UNSUPPORTED {
  const end = headEnd(buf, start, scanFrom)
  if (end === -1) return buf.length - start > limit || visiblyUnsupported(buf, start, scanFrom) ? UNSUPPORTED : INCOMPLETE
  if (end - start > limit) return UNSUPPORTED
  const head = buf.toString('latin1', start, end - 4)
  if (!requestHeadChars(head)) return UNSUPPORTED
  let eol = head.indexOf('\r\n')
  if (eol === -1) eol = head.length
  const sp1 = head.indexOf(' ')
  const method = head.slice(0, sp1)
  if (method !== 'GET' && method !== 'HEAD') return UNSUPPORTED
  const sp2 = head.indexOf(' ', sp1 + 1)
  if (sp2 === -1 || sp2 > eol || head.charCodeAt(sp1 + 1) !== 47 /* / */) return UNSUPPORTED
  if (eol - sp2 !== 9 || !head.startsWith('HTTP/1.1', sp2 + 1)) return UNSUPPORTED
  const url = head.slice(sp1 + 1, sp2)
  // HTAB passes the head's character check (header values may hold it), never a target: an
  // upstream may read it as the space before the version (node:http answers 400).
  if (url.includes('\t')) return UNSUPPORTED
  const rawHeaders: string[] = []
  let close = false
  let hosts = 0
  let pos = eol + 2
  while (pos < head.length) {
    let e = head.indexOf('\r\n', pos)
    if (e === -1) e = head.length
    const colon = head.indexOf(':', pos)
    if (colon === -1 || colon > e) return UNSUPPORTED
    const name = head.slice(pos, colon)
    // Also refuses obs-fold (a line starting with whitespace) and space before the colon.
    if (!isToken(name)) return UNSUPPORTED
    const value = head.slice(colon + 1, e).trim()
    switch (name.length) {
      // Only these lengths can name a field this parser must look at.
      case 4: case 6: case 7: case 10: case 14: case 17: {
        const lower = name.toLowerCase()
        if (NOT_LEAN.has(lower)) return UNSUPPORTED
        if (lower === 'host') hosts++
        else if (lower === 'connection' && /(?:^|,)\s*close\s*(?:,|$)/i.test(value)) close = true
      }
    }
    rawHeaders.push(name, value)
    // Past this many fields node:http's own limits decide (as they would on the general path).
    if (rawHeaders.length > 2 * MAX_LEAN_HEADERS) return UNSUPPORTED
    pos = e + 2
  }
  // No Host, or two: the general path refuses these (400) with its own checks.
  if (hosts !== 1) return UNSUPPORTED
  return new RequestHead(method, url, rawHeaders, close, end)
}
