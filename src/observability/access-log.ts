import type { HttpRequestEnd, TcpConnectionEnd } from './events.js'

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

/**
 * str() for the names a line repeats from the config (listener, route, upstream, server): the
 * same string objects request after request, so a Map finds them by the hash V8 keeps in each.
 */
const named = new Map<string, string>()

function name (v: string): string {
  let q = named.get(v)
  if (q === undefined) {
    // Bounded: names come from the config, but a reload may bring new ones.
    if (named.size >= 4096) named.clear()
    named.set(v, q = str(v))
  }
  return q
}

/** Milliseconds rounded to 0.01 as JSON writes them (1.5, not 1.50), by integer arithmetic. */
function ms (v: number): string | number {
  if (!(v >= 0 && v < 1e9)) return Number.isFinite(v) ? Math.round(v * 100) / 100 : 'null'
  const c = Math.round(v * 100)
  const whole = (c - (c % 100)) / 100
  const frac = c % 100
  if (frac === 0) return whole
  return frac % 10 === 0 ? `${whole}.${frac / 10}` : `${whole}.${frac < 10 ? '0' : ''}${frac}`
}

function num (v: number): string | number {
  return Number.isFinite(v) ? v : 'null'
}

/**
 * The HTTP line, field by field in the event's own order (events.ts publishHttpEnd), which is
 * what the generic loop below writes too, for a third of its cost: one line per request is the
 * access log's whole cost under load.
 */
function httpLine (e: HttpRequestEnd, time: string, pid: number): string {
  let line = `{"level":"info","time":"${time}","pid":${pid},"component":"access","type":"http","listener":${name(e.listener)},"route":${name(e.route)},` +
    `"method":${name(e.method)},"host":${str(e.host)},"path":${str(e.path)},"status":${num(e.status)},"client":${str(e.client)}`
  if (e.upstream !== undefined) line += `,"upstream":${name(e.upstream)}`
  if (e.server !== undefined) line += `,"server":${name(e.server)}`
  line += `,"bytesIn":${num(e.bytesIn)},"bytesOut":${num(e.bytesOut)}`
  if (e.upstreamMs !== undefined) line += `,"upstreamMs":${ms(e.upstreamMs)}`
  line += `,"totalMs":${ms(e.totalMs)}`
  if (e.error !== undefined) line += `,"error":${str(e.error)}`
  if (e.limit !== undefined) line += `,"limit":${str(e.limit)}`
  if (e.retries !== 0) line += `,"retries":${num(e.retries)}`
  return line + '}\n'
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
