// Every limit of one Runtime, the store that decides them (this node's tables, or Redis with the
// tables as fallback) and the periodic expiry. One object per Runtime, carried over a reload: a
// limit whose definition did not change keeps its buckets. It is also the `ratelimits` entry of
// the pair's state sync (Replicated), covering all limits together.
import type { Clock } from '../clock.js'
import type { Config, RedisStoreConfig } from '../config/types.js'
import { channels } from '../observability/events.js'
import type { Replicated } from '../state/replicated.js'
import { emptyResult, type GcraResult } from './gcra.js'
import { RateLimit, tighter } from './limiter.js'
import { RedisStore } from './redis-store.js'
import type { TableState } from './table.js'

/** Buckets of every limit, by limit name; `sig` guards against a peer with another definition. */
export type RateLimitsState = Record<string, TableState & { readonly sig: string }>

/** The outcome of one request or connection against the limits that apply to it. */
export interface Verdict {
  allowed: boolean
  /** The limit reported to the client: the one that denied, else the tightest; undefined: none applied. */
  limit: RateLimit | undefined
  result: GcraResult
}

/** How often full buckets are swept, and how many at most per sweep (bounded pause). */
const EXPIRE_EVERY_MS = 1000
const EXPIRE_BUDGET = 100_000

export class RateLimiters implements Replicated<RateLimitsState> {
  private readonly limits = new Map<string, RateLimit>()
  readonly redis: RedisStore | undefined
  private readonly redisConfig: RedisStoreConfig | undefined
  private timer: NodeJS.Timeout | undefined
  // Scratch for the synchronous path: a local decision allocates nothing but its key.
  private readonly scratch = [emptyResult(), emptyResult()]
  private readonly verdict: Verdict = { allowed: true, limit: undefined, result: emptyResult() }

  constructor (config: Config, readonly clock: Clock, previous?: RateLimiters) {
    for (const [name, lc] of Object.entries(config.rateLimits)) {
      const fresh = new RateLimit(lc, clock)
      const old = previous?.limits.get(name)
      this.limits.set(name, old !== undefined && old.signature === fresh.signature ? new RateLimit(lc, clock, old.table) : fresh)
    }
    const rc = config.rateLimitStore?.redis
    const keep = rc !== undefined && previous?.redis !== undefined && sameRedis(previous.redis.config, rc)
    this.redis = rc === undefined ? undefined : keep ? previous!.redis! : new RedisStore(rc)
    this.redisConfig = rc
  }

  get (name: string | undefined): RateLimit | undefined {
    return name === undefined ? undefined : this.limits.get(name)
  }

  get size (): number { return this.limits.size }

  /** Starts the expiry sweep (unref'd). `previous` stops its own once this one runs. */
  start (previous?: RateLimiters): void {
    if (previous !== undefined) previous.stop(this.redis)
    // A kept connection takes the new prefix and onError only now that the reload commits: a
    // refused one must leave the running config's buckets and policy as they were.
    if (this.redis !== undefined && this.redisConfig !== undefined) this.redis.reuse(this.redisConfig)
    if (this.limits.size === 0 || this.timer !== undefined) return
    this.timer = setInterval(() => { this.expire() }, EXPIRE_EVERY_MS)
    this.timer.unref()
  }

  /** Stops the sweep and closes the Redis client unless `keep` is that client (a reload kept it). */
  stop (keep?: RedisStore): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    if (this.redis !== undefined && this.redis !== keep) this.redis.close()
  }

  /** Drops full buckets; returns how many. */
  expire (): number {
    const now = this.clock.now()
    let n = 0
    for (const l of this.limits.values()) n += l.table.expire(now, EXPIRE_BUDGET)
    return n
  }

  /**
   * Peeks one limit in this node's table without changing it (the listener's limit before
   * routing). The verdict is scratch: read it before the next decision.
   */
  peekLocal (limit: RateLimit, key: string): Verdict {
    const now = this.clock.now()
    let r = limit.table.decide(key, now, this.verdict.result, false)
    // A denial is final: commit it, which changes no TAT but marks the key recently used.
    if (!r.allowed) r = limit.table.decide(key, now, r, true)
    this.verdict.result = r
    this.verdict.allowed = r.allowed
    this.verdict.limit = limit
    return this.verdict
  }

  /**
   * Decides up to two limits in this node's tables, all or nothing: when one denies, no bucket
   * moves. Synchronous; the verdict is scratch (read it before the next decision).
   */
  decideLocal (a: RateLimit | undefined, keyA: string, b: RateLimit | undefined, keyB: string): Verdict {
    const v = this.verdict
    const now = this.clock.now()
    const [ra, rb] = this.scratch as [GcraResult, GcraResult]
    v.allowed = true
    v.limit = undefined
    if (a !== undefined) a.table.decide(keyA, now, ra, b === undefined)
    if (b !== undefined) b.table.decide(keyB, now, rb, a === undefined)
    if (a !== undefined && b !== undefined && ra.allowed && rb.allowed) {
      a.table.decide(keyA, now, ra, true)
      b.table.decide(keyB, now, rb, true)
    }
    if (a !== undefined) pick(v, a, ra)
    if (b !== undefined && (v.limit === undefined || tighter(rb, v.result))) pick(v, b, rb)
    if (v.limit !== undefined) v.allowed = v.result.allowed && (a === undefined || ra.allowed) && (b === undefined || rb.allowed)
    return v
  }

  /**
   * Decides the limits of one request or connection, in Redis when configured (one round trip
   * for all of them, answered by `onError` when Redis fails or the breaker is open), else here.
   * The result of a local decision is scratch; a Redis one is the caller's.
   */
  decide (a: RateLimit | undefined, keyA: string, b: RateLimit | undefined, keyB: string): Verdict | Promise<Verdict> {
    // One limit named on the listener and on the route, keyed alike, is one bucket: charged once.
    if (a !== undefined && a === b && keyA === keyB) b = undefined
    if (a === undefined && b === undefined) return this.decideLocal(undefined, '', undefined, '')
    const redis = this.redis
    if (redis === undefined) return this.decideLocal(a, keyA, b, keyB)
    const limits = a === undefined ? [b!] : b === undefined ? [a] : [a, b]
    const keys = a === undefined ? [keyB] : b === undefined ? [keyA] : [keyA, keyB]
    const pending = redis.decide(limits, keys)
    if (pending === undefined) return this.fallback(redis, a, keyA, b, keyB)
    return pending.then((results) => {
      const v: Verdict = { allowed: true, limit: undefined, result: emptyResult() }
      results.forEach((r, i) => { if (v.limit === undefined || tighter(r, v.result)) { v.limit = limits[i]; v.result = r } })
      v.allowed = results.every((r) => r.allowed)
      return v
    }, () => this.copy(this.fallback(redis, a, keyA, b, keyB)))
  }

  /** `onError` while Redis cannot decide: this node's buckets, let everything through, or deny. */
  private fallback (redis: RedisStore, a: RateLimit | undefined, keyA: string, b: RateLimit | undefined, keyB: string): Verdict {
    switch (redis.config.onError) {
      case 'local': return this.decideLocal(a, keyA, b, keyB)
      case 'allow': return { allowed: true, limit: undefined, result: emptyResult() }
      case 'deny': {
        const limit = (a ?? b)!
        const result: GcraResult = { allowed: false, tat: 0, remaining: 0, retryAfterMs: 1000, resetMs: limit.burst * limit.intervalMs }
        return { allowed: false, limit, result }
      }
    }
  }

  private copy (v: Verdict): Verdict {
    return { allowed: v.allowed, limit: v.limit, result: { ...v.result } }
  }

  snapshot (): RateLimitsState {
    const out: RateLimitsState = {}
    for (const [name, l] of this.limits) out[name] = { sig: l.signature, ...l.table.snapshot() }
    return out
  }

  /** The buckets in slices of at most `max`, each taken when asked for (Replicated.slices). */
  * slices (max: number): Generator<RateLimitsState> {
    for (const [name, l] of this.limits) {
      for (const t of l.table.slices(max)) yield { [name]: { sig: l.signature, ...t } }
    }
  }

  takeChanges (): RateLimitsState | undefined {
    let out: RateLimitsState | undefined
    for (const [name, l] of this.limits) {
      const c = l.table.takeChanges()
      if (c !== undefined) (out ??= {})[name] = { sig: l.signature, ...c }
    }
    return out
  }

  /** Merges the peer's buckets; a limit unknown here or defined differently is skipped. */
  apply (state: RateLimitsState): void {
    for (const [name, s] of Object.entries(state)) {
      const l = this.limits.get(name)
      if (l !== undefined && l.signature === s.sig) l.table.apply(s)
    }
  }
}

function pick (v: Verdict, limit: RateLimit, r: GcraResult): void {
  v.limit = limit
  v.result = r
}

function sameRedis (a: RedisStoreConfig, b: RedisStoreConfig): boolean {
  return a.url === b.url && a.timeout === b.timeout
}

/** Publishes a denial for metrics, logs and the dashboard (no client address in metrics). */
export function publishDenied (listener: string, limit: string): void {
  if (channels.rateLimitDenied.hasSubscribers) channels.rateLimitDenied.publish({ listener, limit })
}
