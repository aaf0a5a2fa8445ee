// The shared store: the same GCRA as gcra.ts, run atomically inside Redis by one Lua script per
// request covering every limit that applies (one round trip however many match), on Redis's own
// clock (TIME) so the nodes' clocks never matter. TATs are integer microseconds; each key expires
// when its bucket would be full again. A breaker keeps an outage cheap: the first calls wait for
// `timeout`, then every call is answered at once (by the caller's onError) until a background
// check (the script with no keys), every CHECK_EVERY_MS, sees Redis back.
import type { Redis } from 'ioredis'
import type { RedisStoreConfig } from '../config/types.js'
import { channels, type RateLimitStoreError } from '../observability/events.js'
import { connectRedis } from '../redis/connect.js'
import type { GcraResult } from './gcra.js'
import type { RateLimit } from './limiter.js'

/** How often an open breaker asks Redis whether it is back (resume well within 1 s). */
const CHECK_EVERY_MS = 200

// KEYS: one per limit. ARGV: interval (µs) and burst per limit. All or nothing: when one limit
// denies, no bucket moves. Returns per limit: allowed (1/0), remaining, retry-after µs, reset µs.
const SCRIPT = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, tats, ttls, all = {}, {}, {}, 1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local limit = interval * tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat > now + limit then tat = now + limit end
  local base = math.max(tat, now)
  local ahead = base + interval - now
  if ahead <= limit then
    tats[i] = base + interval
    ttls[i] = math.ceil(ahead / 1000) + 1
    out[4 * i - 3], out[4 * i - 2], out[4 * i - 1], out[4 * i] = 1, math.floor((limit - ahead) / interval), 0, ahead
  else
    all = 0
    out[4 * i - 3], out[4 * i - 2], out[4 * i - 1], out[4 * i] = 0, 0, ahead - limit, base - now
  end
end
if all == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', ttls[i])
  end
end
return out
`

type GcraCommand = (numKeys: number, ...args: Array<string | number>) => Promise<number[]>

export class RedisStore {
  private readonly client: Redis & { tandemGcra: GcraCommand }
  /**
   * connecting: before the first connection, calls wait for it (within `timeout`), so a start or
   * a reload does not answer by onError while Redis is fine; down: calls are refused at once.
   */
  private state: 'connecting' | 'up' | 'down' = 'connecting'
  private readyWaiters: Array<(ok: boolean) => void> = []
  /** Whether the current outage was reported (one warning per outage). */
  private warned = false
  private checker: NodeJS.Timeout | undefined
  private closed = false

  constructor (public config: RedisStoreConfig) {
    const client = connectRedis(config.url, { commandTimeout: config.timeout }) as Redis & { tandemGcra: GcraCommand }
    client.defineCommand('tandemGcra', { lua: SCRIPT })
    client.on('ready', () => { this.up() })
    // Unreachable from the start: an outage from now on, reported once.
    client.on('error', (err: unknown) => {
      if (this.state === 'connecting') this.settleWaiters(false, 'down')
      if (this.state === 'down' && !this.warned) this.report(classify(err))
    })
    this.client = client
    this.startChecks()
  }

  /** A reload that keeps url and timeout keeps the connection; prefix and onError may change. */
  reuse (config: RedisStoreConfig): this {
    this.config = config
    return this
  }

  get available (): boolean { return this.state === 'up' }

  /**
   * One round trip deciding `limits` for `keys` (same order). Undefined while the breaker is
   * open: the caller answers by onError without waiting. Rejects on a Redis error or timeout.
   */
  decide (limits: readonly RateLimit[], keys: readonly string[]): Promise<GcraResult[]> | undefined {
    if (this.state === 'down') {
      // Answered by onError without asking: counted, so an outage shows for as long as it lasts.
      if (channels.rateLimitStoreError.hasSubscribers) channels.rateLimitStoreError.publish({ reason: 'unavailable', message: 'breaker open' })
      return undefined
    }
    if (this.state === 'connecting') return this.firstConnection().then(() => this.run(limits, keys))
    return this.run(limits, keys)
  }

  /** Resolves once connected; rejects (a timeout, counted as one) when `timeout` passes first. */
  private async firstConnection (): Promise<void> {
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { resolve(false) }, this.config.timeout)
      this.readyWaiters.push((connected) => { clearTimeout(timer); resolve(connected) })
    })
    if (ok) return
    const err = new Error(`Redis not connected within ${this.config.timeout} ms (timed out)`)
    this.failed(err)
    throw err
  }

  private settleWaiters (connected: boolean, state: 'up' | 'down'): void {
    this.state = state
    const waiters = this.readyWaiters
    this.readyWaiters = []
    for (const w of waiters) w(connected)
  }

  private run (limits: readonly RateLimit[], keys: readonly string[]): Promise<GcraResult[]> {
    const args: Array<string | number> = []
    for (let i = 0; i < limits.length; i++) args.push(this.config.prefix + limits[i]!.name + ':' + keys[i]!)
    for (const l of limits) args.push(Math.max(1, Math.round(l.intervalMs * 1000)), l.burst)
    return this.client.tandemGcra(limits.length, ...args).then((raw) => {
      const results: GcraResult[] = []
      for (let i = 0; i < limits.length; i++) {
        results.push({
          allowed: raw[4 * i] === 1,
          tat: 0,
          remaining: Number(raw[4 * i + 1]),
          retryAfterMs: Number(raw[4 * i + 2]) / 1000,
          resetMs: Number(raw[4 * i + 3]) / 1000,
        })
      }
      return results
    }, (err: unknown) => {
      this.failed(err)
      throw err
    })
  }

  close (): void {
    this.closed = true
    this.settleWaiters(false, 'down')
    if (this.checker !== undefined) clearInterval(this.checker)
    this.checker = undefined
    this.client.disconnect()
  }

  private failed (err: unknown): void {
    const e = classify(err)
    if (channels.rateLimitStoreError.hasSubscribers) channels.rateLimitStoreError.publish(e)
    // One key of the wrong type (written by something else) fails its own decisions only: the
    // store is fine for every other client, so the breaker stays closed.
    if (e.reason === 'error' && /^WRONGTYPE/.test(e.message)) return
    if (this.state === 'down') return
    this.settleWaiters(false, 'down')
    if (!this.warned) this.report(e)
    this.startChecks()
  }

  private report (e: RateLimitStoreError): void {
    this.warned = true
    channels.rateLimitStoreState.publish({ state: 'down', reason: e.reason, message: e.message })
  }

  private up (): void {
    if (this.closed || this.state === 'up') return
    this.settleWaiters(true, 'up')
    if (this.checker !== undefined) clearInterval(this.checker)
    this.checker = undefined
    // Only an outage that was reported gets its "back" line.
    if (this.warned) channels.rateLimitStoreState.publish({ state: 'up' })
    this.warned = false
  }

  private startChecks (): void {
    if (this.checker !== undefined || this.closed) return
    let inFlight = false
    this.checker = setInterval(() => {
      if (inFlight || this.client.status !== 'ready') return
      inFlight = true
      // The script itself with no keys (TIME only) proves scripts run and reloads it after a
      // restart; a write proves Redis takes writes (out of memory, a read-only replica refuse).
      Promise.all([this.client.tandemGcra(0), this.client.set(this.config.prefix + 'probe', '1', 'PX', 1000)])
        .then(() => { this.up() }, () => {}).finally(() => { inFlight = false })
    }, CHECK_EVERY_MS)
    this.checker.unref()
  }
}

function classify (err: unknown): RateLimitStoreError {
  const message = err instanceof Error ? err.message : String(err)
  if (/timed out/i.test(message)) return { reason: 'timeout', message }
  if (/writeable|closed|ECONNREFUSED|ECONNRESET|EPIPE|connect|offline|MaxRetries/i.test(message)) return { reason: 'unavailable', message }
  return { reason: 'error', message }
}
