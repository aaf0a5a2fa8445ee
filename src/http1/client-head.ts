// The response head the lean path sends its client, rebuilt from the upstream's (pure): the head's
// own lines copied in runs, hop-by-hop fields left out, then this hop's framing and connection fields.
import { http } from '../node-builtins.js'
import { safeReason } from '../upstream/headers.js'
import type { ResponseHead } from './response-head.js'

/** Connection tokens that name fields (not close, keep-alive or content-length, which frames this hop too). */
function namedHops (connection: readonly string[] | undefined): string[] | undefined {
  let out: string[] | undefined
  if (connection !== undefined) for (const t of connection) if (t !== 'close' && t !== 'keep-alive' && t !== 'content-length' && t !== '') (out ??= []).push(t)
  return out
}

/**
 * The response head for the client: the upstream's status (with a safe reason phrase) and
 * fields, hop-by-hop ones removed (those named in Connection too), `extra` appended (rate-limit
 * headers), then the framing and connection fields this hop needs.
 * `keepAliveSeconds` undefined: this response ends the client connection.
 * Fields sent as `Name: value` are copied as they came, consecutive ones as one slice of the
 * head; others are written so (one SP after the colon, no trailing whitespace).
 */
export function clientHead (r: ResponseHead, extra: readonly string[] | undefined, keepAliveSeconds: number | undefined, date: string): string {
  const { text, fields: f, hop } = r
  const reason = r.reason === '' ? (http.STATUS_CODES[r.status] ?? '') : safeReason(r.status, r.reason)
  const named = namedHops(r.connection)
  let out = `HTTP/1.1 ${r.status} ${reason}\r\n`
  /** Start of the run of lines copied as they are, or -1. */
  let run = -1
  for (let i = 0, n = 0; i < f.length; i += 4, n++) {
    const line = f[i] as number
    const vs = f[i + 1] as number
    const ve = f[i + 2] as number
    const e = f[i + 3] as number
    const colon = text.indexOf(':', line)
    const drop = ((hop[n >> 5] ?? 0) & (1 << (n & 31))) !== 0 ||
      (named !== undefined && named.includes(text.slice(line, colon).toLowerCase()))
    const plain = !drop && vs === colon + 2 && text.charCodeAt(colon + 1) === 32 && ve === e && ve > vs
    if (plain) {
      if (run === -1) run = line
      continue
    }
    if (run !== -1) {
      out += text.slice(run, line)
      run = -1
    }
    if (!drop) out += `${text.slice(line, colon)}: ${text.slice(vs, ve)}\r\n`
  }
  if (run !== -1) out += text.slice(run) + '\r\n'
  if (extra !== undefined) for (let i = 0; i < extra.length; i += 2) out += `${extra[i] as string}: ${extra[i + 1] as string}\r\n`
  if (!r.hasDate) out += `Date: ${date}\r\n`
  if (r.framing === 'chunked' || r.framing === 'close') out += 'Transfer-Encoding: chunked\r\n'
  out += keepAliveSeconds === undefined ? 'Connection: close\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveSeconds}\r\n`
  return out + '\r\n'
}
