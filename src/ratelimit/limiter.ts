// One configured limit: which bucket a request or connection falls in (its key) and how the
// outcome is told to the client (response headers). The buckets themselves live in table.ts.
import type { IncomingHttpHeaders } from 'node:http'
import type { Clock } from '../clock.js'
import type { RateLimitConfig } from '../config/types.js'
import { resetSeconds, retryAfterSeconds, type GcraResult } from './gcra.js'
import { BucketTable } from './table.js'
import { sha256 } from '../node-builtins.js'

/** Keys longer than this are hashed, so a client cannot make one bucket cost kilobytes. */
const MAX_KEY_LENGTH = 128

export class RateLimit {
  readonly name: string
  readonly intervalMs: number
  readonly burst: number
  /** Same definition ⇒ same signature: a reload keeps the buckets, the peer accepts them. */
  readonly signature: string
  readonly table: BucketTable
  /** Header texts that never change, built once. */
  private readonly policy: string
  private readonly quotedName: string
  private readonly burstText: string

  constructor (readonly config: RateLimitConfig, clock: Clock, table?: BucketTable) {
    this.name = config.name
    this.intervalMs = 1000 / config.rate
    this.burst = config.burst
    this.signature = signatureOf(config)
    this.table = table ?? new BucketTable({ intervalMs: this.intervalMs, burst: this.burst, maxKeys: config.maxKeys }, clock)
    const window = Math.max(1, Math.ceil((this.burst * this.intervalMs) / 1000))
    this.quotedName = sfString(this.name)
    this.burstText = String(this.burst)
    this.policy = `${this.quotedName};q=${this.burst};w=${window}`
  }

  /**
   * The bucket key. `client` is the client address; `headers` absent on TCP; `route` the route's
   * name on `listener`. Route names repeat across listeners (route-1 on each), so a route's
   * bucket is named by both: the NUL cannot occur in a name.
   */
  keyOf (client: string, headers: IncomingHttpHeaders | undefined, route: string, listener = ''): string {
    const k = this.config.key
    switch (k.kind) {
      case 'client-ip': return client
      case 'global': return ''
      case 'route': return listener + '\0' + route
      case 'header': {
        const v = headers?.[k.header]
        // Requests without the header share one bucket (the empty key).
        const text = v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v
        return text.length > MAX_KEY_LENGTH ? '#' + sha256(text).toString('base64') : text
      }
    }
  }

  /** True when the key needs the route, so the listener's limit waits for routing. */
  get needsRoute (): boolean { return this.config.key.kind === 'route' }

  /** Response headers for `r` (allowed or denied) in this limit's style: flat name, value pairs. */
  headers (r: GcraResult): string[] {
    const reset = String(resetSeconds(r.resetMs))
    const out = r.allowed ? [] : ['retry-after', String(retryAfterSeconds(r.retryAfterMs))]
    switch (this.config.headers) {
      case 'draft-6':
        out.push('ratelimit-limit', this.burstText, 'ratelimit-remaining', String(r.remaining), 'ratelimit-reset', reset)
        break
      case 'draft-11':
        out.push('ratelimit-policy', this.policy, 'ratelimit', `${this.quotedName};r=${r.remaining};t=${reset}`)
        break
      case 'none':
        break
    }
    return out
  }
}

/** Of two outcomes, the one to report: a denial, else the fewer remaining, else the later reset. */
export function tighter (a: GcraResult, b: GcraResult): boolean {
  if (a.allowed !== b.allowed) return !a.allowed
  if (!a.allowed) return a.retryAfterMs >= b.retryAfterMs
  return a.remaining !== b.remaining ? a.remaining < b.remaining : a.resetMs >= b.resetMs
}

function signatureOf (c: RateLimitConfig): string {
  const key = c.key.kind === 'header' ? `header:${c.key.header}` : c.key.kind
  return `${key}|${c.rate}|${c.burst}|${c.maxKeys}`
}

/** An RFC 8941 sf-string: the policy name, quoted. Names are [A-Za-z0-9_.-], nothing to escape. */
function sfString (s: string): string {
  return `"${s}"`
}
