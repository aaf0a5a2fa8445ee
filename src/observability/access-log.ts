import type { HttpRequestEnd, TcpConnectionEnd } from './events.js'
import { JsonBytes } from './json-bytes.js'
import { TupleMap } from './tuple-map.js'

/**
 * Access lines, written by hand rather than through pino's object path: one line per request is
 * the hottest thing a logger does here, and pino's generic serialisation (spread, redaction
 * wildcards, child bindings) cost about 6 µs a line against about 1 µs for this. The line is the
 * same JSON a pino child would write (`level`, `time`, `pid`, `component`, then the event's
 * fields in their order); it carries nothing secret (no headers), so nothing needs redacting.
 * Keys are the event's own (code-defined) names; every string value goes through JSON.stringify.
 */

/** Fields in milliseconds, rounded to 0.01 ms. */
const MS_FIELDS = new Set(['upstreamMs', 'totalMs', 'durationMs'])

export interface LineSink { write (line: string): unknown }

/** `{"level":"info",...}` for one event; `type` is `http` or `tcp`. */
export function accessLine (type: 'http' | 'tcp', e: HttpRequestEnd | TcpConnectionEnd, time: string, pid: number): string {
  if (type === 'http') return httpLine(e as HttpRequestEnd, time, pid)
  let line = `{"level":"info","time":"${time}","pid":${pid},"component":"access","type":"${type}"`
  const fields = e as unknown as Record<string, unknown>
  for (const key in fields) {
    const v = fields[key]
    switch (typeof v) {
      case 'string': line += `,"${key}":${JSON.stringify(v)}`; break
      case 'number':
        if (key === 'retries' && v === 0) break
        line += `,"${key}":${MS_FIELDS.has(key) ? Math.round(v * 100) / 100 : Number.isFinite(v) ? v : 'null'}`
        break
      case 'boolean': line += `,"${key}":${v}`; break
      default: if (v !== undefined && v !== null) line += `,"${key}":${JSON.stringify(v)}`
    }
  }
  return line + '}\n'
}

/** No quote, backslash, control or non-ASCII character: the string is its own JSON body. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

function str (v: string): string {
  return PLAIN.test(v) ? `"${v}"` : JSON.stringify(v)
}

/** Stands for an absent name in the runs' keys (no config name is empty of everything but NUL). */
const NONE = '\0'

/**
 * The runs of a line that repeat request after request, each quoted and encoded once per tuple
 * of the names in it and copied whole: `"<listener>","route":"<route>","method":"<method>","host":`
 * and `,"upstream":"<upstream>","server":"<server>","bytesIn":`. Copied key by key and name by
 * name, they were a third of a line's cost. Bounded: names come from the config (reloads may
 * bring new ones), methods from clients.
 */
function runs (text: (a: string, b: string, c: string) => string): TupleMap<Buffer> {
  return new TupleMap((a, b, c) => Buffer.from(text(a, b, c), 'utf8'), 4096)
}

const routeRuns = runs((listener, route, method) => `${str(listener)},"route":${str(route)},"method":${str(method)},"host":`)
const serverRuns = runs((upstream, server) =>
  `${upstream === NONE ? '' : `,"upstream":${str(upstream)}`}${server === NONE ? '' : `,"server":${str(server)}`},"bytesIn":`)

/** The keys between a line's values, and its end, as codes (JsonBytes.codes). */
const K_PATH = JsonBytes.keyCodes(',"path":')
const K_STATUS = JsonBytes.keyCodes(',"status":')
const K_CLIENT = JsonBytes.keyCodes(',"client":')
const K_BYTES_OUT = JsonBytes.keyCodes(',"bytesOut":')
const K_UPSTREAM_MS = JsonBytes.keyCodes(',"upstreamMs":')
const K_TOTAL_MS = JsonBytes.keyCodes(',"totalMs":')
const K_ERROR = JsonBytes.keyCodes(',"error":')
const K_LIMIT = JsonBytes.keyCodes(',"limit":')
const K_RETRIES = JsonBytes.keyCodes(',"retries":')
const K_END = JsonBytes.keyCodes('}\n')

/** `{"level":"info","time":"<time>",...,"listener":`: everything before the listener's name. */
function prefixText (time: string, pid: number): string {
  return `{"level":"info","time":"${time}","pid":${pid},"component":"access","type":"http","listener":`
}

/**
 * The HTTP line's prefix for the current millisecond, kept in one buffer: within a second only
 * the three millisecond digits change, and they are written in place. Formatting the time and
 * encoding the prefix afresh every millisecond was a seventh of the line's cost under load.
 */
export class HttpPrefix {
  private buf = Buffer.alloc(0)
  private second = Number.NaN
  private ms = -1
  /** Where the millisecond digits are in `buf` (ISO times end `.mmmZ`). */
  private msAt = 0

  constructor (private readonly pid: number) {}

  /** The prefix for wall time `t` (ms); valid until the next call. */
  at (t: number): Buffer {
    const second = Math.floor(t / 1000)
    const ms = t - second * 1000
    if (second !== this.second) {
      const time = new Date(t).toISOString()
      this.buf = Buffer.from(prefixText(time, this.pid), 'latin1')
      this.msAt = this.buf.indexOf(time, 0, 'latin1') + time.length - 4
      this.second = second
      this.ms = ms
    } else if (ms !== this.ms) {
      const b = this.buf
      const at = this.msAt
      b[at] = 0x30 + Math.floor(ms / 100)
      b[at + 1] = 0x30 + (Math.floor(ms / 10) % 10)
      b[at + 2] = 0x30 + (ms % 10)
      this.ms = ms
    }
    return this.buf
  }
}

/** Bytes writeHttpLine may take at most for `e`. */
export function httpLineBound (e: HttpRequestEnd): number {
  const s = JsonBytes.strBound
  return 512 + s(e.listener) + s(e.route) + s(e.method) + s(e.host) + s(e.path) + s(e.client) + s(e.upstream) + s(e.server) + s(e.error) + s(e.limit)
}

/**
 * The HTTP line, in the event's own field order (events.ts publishHttpEnd), which is
 * what the generic loop in accessLine writes too: one line per request is the access log's whole
 * cost under load, so it goes into `w` byte by byte (json-bytes.ts). `w` has httpLineBound(e) of room;
 * `prefix` is the line's start (HttpPrefix, or prefixText encoded).
 */
export function writeHttpLine (w: JsonBytes, e: HttpRequestEnd, prefix: Uint8Array): void {
  w.bytes(prefix)
  w.bytes(routeRuns.get(e.listener, e.route, e.method))
  w.str(e.host)
  w.codes(K_PATH)
  w.str(e.path)
  w.codes(K_STATUS)
  w.num(e.status)
  w.codes(K_CLIENT)
  w.str(e.client)
  w.bytes(serverRuns.get(e.upstream ?? NONE, e.server ?? NONE, ''))
  w.num(e.bytesIn)
  w.codes(K_BYTES_OUT)
  w.num(e.bytesOut)
  if (e.upstreamMs !== undefined) {
    w.codes(K_UPSTREAM_MS)
    w.ms(e.upstreamMs)
  }
  w.codes(K_TOTAL_MS)
  w.ms(e.totalMs)
  if (e.error !== undefined) {
    w.codes(K_ERROR)
    w.str(e.error)
  }
  if (e.limit !== undefined) {
    w.codes(K_LIMIT)
    w.str(e.limit)
  }
  if (e.retries !== 0) {
    w.codes(K_RETRIES)
    w.num(e.retries)
  }
  w.codes(K_END)
}

/** Where access lines are written in place: room for one line, then the line handed back. */
export interface LineBytes {
  /** Room for `bound` bytes; undefined when the line is to be dropped. */
  reserve (bound: number): JsonBytes | undefined
  commit (w: JsonBytes): void
}

/** LineBytes for a sink that takes strings (a stream given to createLogger): each line decoded from scratch bytes. */
export class StringLines implements LineBytes {
  private readonly scratch = new JsonBytes(Buffer.allocUnsafeSlow(16 * 1024))

  constructor (private readonly sink: LineSink) {}

  reserve (bound: number): JsonBytes {
    const w = bound <= this.scratch.buf.length ? this.scratch : new JsonBytes(Buffer.allocUnsafe(bound))
    w.pos = 0
    return w
  }

  commit (w: JsonBytes): void {
    this.sink.write(w.buf.toString('utf8', 0, w.pos))
  }
}

let decoded = ''
const asString = new StringLines({ write: (line) => { decoded = line } })

function httpLine (e: HttpRequestEnd, time: string, pid: number): string {
  const prefix = Buffer.from(prefixText(time, pid), 'utf8')
  const w = asString.reserve(httpLineBound(e) + prefix.length)
  writeHttpLine(w, e, prefix)
  asString.commit(w)
  return decoded
}

/**
 * ISO time of the current millisecond, computed at most once per millisecond: under load many
 * lines share one, and `toISOString()` is a good part of a line's cost.
 */
export function isoClock (now: () => number = Date.now): () => string {
  let last = -1
  let text = ''
  return () => {
    const t = now()
    if (t !== last) { last = t; text = new Date(t).toISOString() }
    return text
  }
}
