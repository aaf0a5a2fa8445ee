/**
 * Reads the server name from a TLS ClientHello without terminating TLS (what nginx's
 * `ssl_preread` and HAProxy's `req.ssl_sni` do). Pure: bytes in, verdict out. The caller keeps
 * the bytes and replays them to the upstream, so nothing here copies unless the handshake
 * message is split over several TLS records.
 */
export type ClientHello =
  | { kind: 'need-more' }
  | { kind: 'not-tls' }
  | { kind: 'tls', serverName?: string }

const NEED_MORE: ClientHello = { kind: 'need-more' }
const NOT_TLS: ClientHello = { kind: 'not-tls' }
const TLS_NO_NAME: ClientHello = { kind: 'tls' }

const RECORD_HANDSHAKE = 0x16
const HANDSHAKE_CLIENT_HELLO = 0x01
const EXT_SERVER_NAME = 0x0000
const NAME_TYPE_HOST = 0x00
/** RFC 8446 5.1: a plaintext record carries at most 2^14 bytes. */
const MAX_RECORD = 1 << 14
/** A record's header: type, version (2), length (2). */
export const RECORD_HEADER = 5
/**
 * Records one ClientHello may span. Real clients use one, or a few for a post-quantum key
 * share; many tiny records are only a way to make every re-parse walk them all.
 */
export const MAX_HELLO_RECORDS = 64

/**
 * Classifies the first bytes a client sent. `need-more` means a ClientHello has begun but is
 * not complete; the caller decides how long and how far to wait.
 */
export function parseClientHello (buf: Uint8Array): ClientHello {
  if (buf.length === 0) return NEED_MORE
  const first = buf[0] as number
  if (first !== RECORD_HANDSHAKE) return (first & 0x80) !== 0 ? sslv2Hello(buf) : NOT_TLS
  const hs = handshakeMessage(buf)
  return hs instanceof Uint8Array ? serverNameOf(hs) : hs
}

/** An SSLv2-compatible hello (old clients) is TLS but can carry no extension, so no name. */
function sslv2Hello (buf: Uint8Array): ClientHello {
  if (buf.length < 4) return NEED_MORE
  return buf[2] === HANDSHAKE_CLIENT_HELLO && (buf[3] === 0 || buf[3] === 3) ? TLS_NO_NAME : NOT_TLS
}

/**
 * The whole ClientHello handshake message (header included), reassembled from as many
 * handshake records as it spans; or a verdict when that is not possible yet or at all.
 */
function handshakeMessage (buf: Uint8Array): Uint8Array | ClientHello {
  let off = 0
  let parts: Uint8Array[] | undefined
  let have = 0
  let need = -1 // handshake message length incl. its 4-byte header, once known
  for (let records = 1; ; records++) {
    if (buf.length - off < 5) return NEED_MORE
    if (records > MAX_HELLO_RECORDS) return NOT_TLS
    if (buf[off] !== RECORD_HANDSHAKE || buf[off + 1] !== 3) return NOT_TLS
    const len = ((buf[off + 3] as number) << 8) | (buf[off + 4] as number)
    if (len === 0 || len > MAX_RECORD) return NOT_TLS
    const start = off + 5
    const end = start + len
    const fragment = buf.subarray(start, Math.min(end, buf.length))
    if (parts === undefined && need < 0 && fragment.length >= 4) {
      if (fragment[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS
      need = 4 + u24(fragment, 1)
      // The common case: the message sits in the first record; no copy.
      if (fragment.length >= need) return fragment.subarray(0, need)
    }
    if (end > buf.length) {
      // Mid-record. Checking the type early lets a non-hello fail fast.
      if (parts === undefined && fragment.length > 0 && fragment[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS
      return NEED_MORE
    }
    parts ??= []
    parts.push(fragment)
    have += fragment.length
    if (need < 0 && have >= 4) {
      const head = concat(parts, have)
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS
      need = 4 + u24(head, 1)
    }
    if (need >= 0 && have >= need) return concat(parts, have).subarray(0, need)
    off = end
  }
}

/**
 * Follows record boundaries chunk by chunk (constant work per chunk, plus five steps per record
 * header), so that the caller re-parses the held bytes only when a record has completed, not on
 * every chunk: a hello sent a byte at a time would otherwise cost time quadratic in its length.
 */
export class RecordBoundaries {
  private headerLeft = RECORD_HEADER
  private length = 0
  private bodyLeft = 0
  /** Not TLS records (another protocol, SSLv2, a bad header): any chunk may decide. */
  private open = false

  /** True when `chunk` completed a record or showed the bytes are not well-formed records. */
  push (chunk: Uint8Array): boolean {
    if (this.open) return true
    let completed = false
    let i = 0
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, chunk.length - i)
        i += take
        this.bodyLeft -= take
        if (this.bodyLeft === 0) completed = true
        continue
      }
      const b = chunk[i++] as number
      const at = RECORD_HEADER - this.headerLeft--
      if ((at === 0 && b !== RECORD_HANDSHAKE) || (at === 1 && b !== 3)) return (this.open = true)
      if (at === 3) this.length = b << 8
      if (at === 4) {
        this.length |= b
        if (this.length === 0 || this.length > MAX_RECORD) return (this.open = true)
        this.bodyLeft = this.length
        this.headerLeft = RECORD_HEADER
      }
    }
    return completed
  }
}

function serverNameOf (hs: Uint8Array): ClientHello {
  // ClientHello body: version(2) random(32) session_id<1> cipher_suites<2> compression<1> extensions<2>
  let p = 4 + 2 + 32
  if (p + 1 > hs.length) return NOT_TLS
  p += 1 + (hs[p] as number)
  if (p + 2 > hs.length) return NOT_TLS
  p += 2 + u16(hs, p)
  if (p + 1 > hs.length) return NOT_TLS
  p += 1 + (hs[p] as number)
  if (p === hs.length) return TLS_NO_NAME // no extensions at all (legal before TLS 1.2)
  if (p + 2 > hs.length) return NOT_TLS
  const extEnd = p + 2 + u16(hs, p)
  if (extEnd > hs.length) return NOT_TLS
  p += 2
  while (p + 4 <= extEnd) {
    const type = u16(hs, p)
    const len = u16(hs, p + 2)
    p += 4
    if (p + len > extEnd) return NOT_TLS
    if (type === EXT_SERVER_NAME) return hostName(hs, p, p + len)
    p += len
  }
  return p === extEnd ? TLS_NO_NAME : NOT_TLS
}

/** RFC 6066 3: a list of (type, name); the first host_name entry counts. */
function hostName (hs: Uint8Array, p: number, end: number): ClientHello {
  if (p + 2 > end) return NOT_TLS
  const listEnd = p + 2 + u16(hs, p)
  if (listEnd > end) return NOT_TLS
  p += 2
  while (p + 3 <= listEnd) {
    const type = hs[p] as number
    const len = u16(hs, p + 1)
    p += 3
    if (p + len > listEnd) return NOT_TLS
    if (type === NAME_TYPE_HOST) {
      const name = ascii(hs, p, p + len)
      // A name that is not a printable ASCII label sequence is ignored, not trusted.
      return name === undefined ? TLS_NO_NAME : { kind: 'tls', serverName: name }
    }
    p += len
  }
  return TLS_NO_NAME
}

/** Lower-cased ASCII, or undefined for an empty name or one with bytes outside 0x21..0x7e. */
function ascii (b: Uint8Array, start: number, end: number): string | undefined {
  if (end === start) return undefined
  let s = ''
  for (let i = start; i < end; i++) {
    let c = b[i] as number
    if (c < 0x21 || c > 0x7e) return undefined
    if (c >= 0x41 && c <= 0x5a) c += 0x20
    s += String.fromCharCode(c)
  }
  return s
}

function u16 (b: Uint8Array, p: number): number {
  return ((b[p] as number) << 8) | (b[p + 1] as number)
}

function u24 (b: Uint8Array, p: number): number {
  return ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number)
}

function concat (parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let o = 0
  for (const part of parts) {
    out.set(part, o)
    o += part.length
  }
  return out
}

/**
 * Builds the route lookup for `routes[].match.sni`: exact names and leading `*.` wildcards,
 * case-insensitive, first match wins. A wildcard matches any depth below its suffix
 * (`*.example.com` takes `a.example.com` and `a.b.example.com`, not `example.com`), as nginx's
 * `server_name` and map `hostnames` do.
 */
export function createSniMatcher<R extends { readonly match: { readonly sni: string } }> (
  routes: readonly R[],
): (serverName: string | undefined) => R | undefined {
  const compiled = routes.map((route) => {
    const pattern = route.match.sni.toLowerCase()
    return pattern.startsWith('*.')
      ? { route, exact: undefined, suffix: pattern.slice(1) }
      : { route, exact: pattern, suffix: undefined }
  })
  return (serverName) => {
    if (serverName === undefined) return undefined
    const name = serverName.toLowerCase()
    for (const c of compiled) {
      if (c.exact !== undefined ? name === c.exact : name.length > c.suffix.length && name.endsWith(c.suffix)) {
        return c.route
      }
    }
    return undefined
  }
}
