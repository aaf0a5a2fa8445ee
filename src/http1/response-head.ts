import { isTchar, responseHeadChars } from './chars.js'

/**
 * The lean path's upstream response-head parser (pure); client-head.ts builds the client's head from it.
 * Framing follows RFC 9112 §6.3 and is strict where a lenient reading could split one response
 * into two (the smuggling direction that matters for a proxy): two Content-Lengths, a malformed
 * one, Content-Length beside Transfer-Encoding, a transfer coding other than chunked, obs-fold,
 * control bytes and bare CR/LF are all errors (502), as undici's llhttp treats them.
 */

export const RESPONSE_INCOMPLETE = 0

export type Framing =
  /** No body: HEAD, 1xx, 204, 304. */
  | 'none'
  | 'length'
  | 'chunked'
  /** Until the upstream closes; relayed to the client chunked. */
  | 'close'

export interface ResponseHead {
  readonly status: number
  readonly reason: string
  /** The head as sent (latin1, one char per byte), without its blank line. */
  readonly text: string
  /**
   * Per field, four offsets into `text`: line start, value start, value end (OWS trimmed), line
   * end (its CR). A field's name ends at the colon, `value start` - 1 at the latest.
   */
  readonly fields: readonly number[]
  /** A bit per field (field i: bit i of word i >> 5): the field is hop-by-hop and not for the client. */
  readonly hop: readonly number[]
  /** Tokens of the Connection fields, lower case: fields named there are hop-by-hop too. */
  readonly connection: string[] | undefined
  readonly framing: Framing
  /** Body length for framing 'length'. */
  readonly length: number
  /** The upstream connection may carry another request after this response. */
  readonly reusable: boolean
  /** The backend's `Keep-Alive: timeout=N`, in ms; 0 when absent. */
  readonly keepAliveMs: number
  readonly hasDate: boolean
  /** Offset just past the head's blank line. */
  readonly end: number
}

/** Node's flat [name, value, …] form of a parsed head's fields (names as sent). */
export function rawHeadersOf (r: ResponseHead): string[] {
  const out: string[] = []
  const { text, fields: f } = r
  for (let i = 0; i < f.length; i += 4) out.push(text.slice(f[i], text.indexOf(':', f[i])), text.slice(f[i + 1], f[i + 2]))
  return out
}

export class ResponseHeadError extends Error {
  readonly code = 'HPE_INVALID_RESPONSE'
}

const CRLFCRLF = Buffer.from('\r\n\r\n')

/** An LF at or after `from` not preceded by a CR of the head that starts at `start`. */
function bareLf (buf: Buffer, start: number, from: number): boolean {
  for (let i = buf.indexOf(10, from); i !== -1; i = buf.indexOf(10, i + 1)) {
    if (i === start || buf[i - 1] !== 13) return true
  }
  return false
}
const DIGITS = /^\d{1,15}$/

/** `text[from, to)` is `name` in any case (`name`: lower case letters and '-'; the span a token). */
function named (text: string, from: number, to: number, name: string): boolean {
  if (to - from !== name.length) return false
  for (let i = 0; i < name.length; i++) if ((text.charCodeAt(from + i) | 0x20) !== name.charCodeAt(i)) return false
  return true
}

/** A non-empty run of tchar at `text[from, to)`. */
function tokenAt (text: string, from: number, to: number): boolean {
  if (to <= from) return false
  for (let i = from; i < to; i++) if (!isTchar(text.charCodeAt(i))) return false
  return true
}

/**
 * Parses the head at `buf[start…]`; `limit` bounds its size (a larger head is an error).
 * `headRequest`: the request was HEAD, so no body follows whatever the head says.
 * Fields are kept as offsets into the head's text, not as strings: only the few that frame the
 * response or name hop-by-hop fields are read as values, and clientHead() copies the others as
 * runs of lines. Per-field strings were most of a response's parse and rewrite cost.
 */
export function parseResponseHead (buf: Buffer, start: number, limit: number, headRequest: boolean, scanFrom = start): ResponseHead | typeof RESPONSE_INCOMPLETE {
  const at = buf.indexOf(CRLFCRLF, Math.max(start, scanFrom - 3))
  if (at === -1) {
    if (buf.length - start > limit) throw new ResponseHeadError('response head too large')
    // A head of bare-LF lines never ends in CRLFCRLF: refuse it now, not at the response timeout.
    if (bareLf(buf, start, Math.max(start, scanFrom - 1))) throw new ResponseHeadError('bare LF in response head')
    return RESPONSE_INCOMPLETE
  }
  if (at + 4 - start > limit) throw new ResponseHeadError('response head too large')
  const head = buf.toString('latin1', start, at)
  if (!responseHeadChars(head)) throw new ResponseHeadError('invalid byte in response head')
  let eol = head.indexOf('\r\n')
  if (eol === -1) eol = head.length
  const status = statusOf(head, eol)
  if (status < 100) throw new ResponseHeadError(status === -1 ? 'invalid status line' : 'invalid status')
  const minor = head.charCodeAt(7) - 48
  const reason = eol > 12 ? head.slice(13, eol) : ''
  const fields: number[] = []
  const hop: number[] = []
  let connection: string[] | undefined
  let length = -1
  let chunked = false
  let te = false
  let close = minor === 0
  let keepAliveMs = 0
  let hasDate = false
  let pos = eol + 2
  for (let n = 0; pos < head.length; n++) {
    let e = head.indexOf('\r\n', pos)
    if (e === -1) e = head.length
    const colon = head.indexOf(':', pos)
    if (colon === -1 || colon > e) throw new ResponseHeadError('invalid header line')
    // Also refuses obs-fold (a line starting with whitespace) and space before the colon.
    if (!tokenAt(head, pos, colon)) throw new ResponseHeadError('invalid header name')
    let vs = colon + 1
    let ve = e
    while (vs < ve && isOws(head.charCodeAt(vs))) vs++
    while (ve > vs && isOws(head.charCodeAt(ve - 1))) ve--
    fields.push(pos, vs, ve, e)
    let dropped = false
    switch (colon - pos) {
      // Only these lengths can name a field read here or hop-by-hop (HOP_BY_HOP).
      case 2: dropped = named(head, pos, colon, 'te'); break
      case 4:
        if (named(head, pos, colon, 'date')) hasDate = true
        break
      case 7: dropped = named(head, pos, colon, 'upgrade'); break
      case 10:
        if (named(head, pos, colon, 'keep-alive')) {
          dropped = true
          const hint = /(?:^|[,\s])timeout=(\d+)/i.exec(head.slice(vs, ve))
          if (hint !== null) keepAliveMs = Number(hint[1]) * 1000
        } else if (named(head, pos, colon, 'connection')) {
          dropped = true
          const v = head.slice(vs, ve).toLowerCase()
          // The common values, without a split.
          if (v === 'keep-alive' || v === 'close') {
            if (v === 'close') close = true
            else if (minor === 0) close = false
            ;(connection ??= []).push(v)
            break
          }
          for (const t of v.split(',')) {
            const token = t.trim()
            if (token === 'close') close = true
            else if (token === 'keep-alive' && minor === 0) close = false
            ;(connection ??= []).push(token)
          }
        }
        break
      case 14:
        if (named(head, pos, colon, 'content-length')) {
          const value = head.slice(vs, ve)
          if (length !== -1 || !DIGITS.test(value)) throw new ResponseHeadError('invalid content-length')
          length = Number(value)
        }
        break
      case 16: dropped = named(head, pos, colon, 'proxy-connection'); break
      case 17:
        if (named(head, pos, colon, 'transfer-encoding')) {
          dropped = true
          if (te) throw new ResponseHeadError('repeated transfer-encoding')
          te = true
          chunked = head.slice(vs, ve).toLowerCase() === 'chunked'
          if (!chunked) throw new ResponseHeadError('unsupported transfer coding')
        }
        break
      case 18: dropped = named(head, pos, colon, 'proxy-authenticate'); break
      case 19: dropped = named(head, pos, colon, 'proxy-authorization'); break
    }
    if (dropped) hop[n >> 5] = (hop[n >> 5] ?? 0) | (1 << (n & 31))
    pos = e + 2
  }
  if (te && length !== -1) throw new ResponseHeadError('content-length with transfer-encoding')
  let framing: Framing
  if (headRequest || status < 200 || status === 204 || status === 304) framing = 'none'
  else if (chunked) framing = 'chunked'
  else if (length !== -1) framing = 'length'
  else framing = 'close'
  return {
    status,
    reason,
    text: head,
    fields,
    hop,
    connection,
    framing,
    length: framing === 'length' ? length : 0,
    // Not after HEAD: a server that writes a body anyway (a common framework bug) would have it
    // read as the next request's response, another client's; undici closes after HEAD too. Nor
    // after a 204 that announces a body (`Content-Length: 42`, which RFC 9110 §8.6 forbids it):
    // what follows it is that body, not a response. A 304 may carry the length of what it
    // stands for (RFC 9110 §8.6, RFC 9112 §6.1), so it alone says nothing.
    reusable: !close && framing !== 'close' && !headRequest && !(status === 204 && (te || length > 0)),
    keepAliveMs,
    hasDate,
    end: at + 4,
  }
}

/** SP or HTAB: the optional whitespace around a field value (RFC 9110 §5.6.3). */
function isOws (c: number): boolean {
  return c === 32 || c === 9
}

/** What readFinalHead found: the final (non-1xx) head and the bytes it was parsed from. */
export interface FinalHead {
  readonly head: ResponseHead
  readonly buf: Buffer
}

/**
 * Adds `chunk` to what was read of a response head so far (`pending`) and parses past any 1xx
 * interim answers (100, 103: not relayed, as on the general path). Returns the final head, or
 * the bytes to keep while it is incomplete. Throws ResponseHeadError on a bad head, a head over
 * `limit`, or a 101 (no request on this path asked to switch protocols).
 */
export function readFinalHead (pending: Buffer | undefined, chunk: Buffer, limit: number, headRequest: boolean): FinalHead | Buffer {
  const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
  let start = 0
  let scanFrom = pending?.length ?? 0
  for (;;) {
    const r = parseResponseHead(buf, start, limit, headRequest, scanFrom)
    if (r === RESPONSE_INCOMPLETE) return start === 0 ? buf : buf.subarray(start)
    if (r.status >= 200) return { head: r, buf }
    if (r.status === 101) throw new ResponseHeadError('101 to a request without Upgrade')
    start = r.end
    scanFrom = start
  }
}

/**
 * The status of a status line `HTTP/1.0|1 DDD[ reason]` (the first `eol` chars of `head`), or -1
 * when the line is not one.
 */
function statusOf (head: string, eol: number): number {
  if (eol < 12 || !head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32) return -1
  const minor = head.charCodeAt(7)
  if (minor !== 48 && minor !== 49) return -1
  if (eol > 12 && head.charCodeAt(12) !== 32) return -1
  let status = 0
  for (let i = 9; i < 12; i++) {
    const d = head.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    status = status * 10 + d
  }
  return status
}
