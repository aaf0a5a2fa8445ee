// GCRA, the Generic Cell Rate Algorithm (ATM Forum TM 4.0; Brandur Leach's "Rate limiting, cells
// and GCRA"): one number per key, the theoretical arrival time (TAT). Every admitted request
// pushes TAT one emission interval T = 1/rate further; a request passes while the new TAT stays
// within `burst × T` of now. Invariant: from a full bucket (TAT ≤ now) exactly `burst` requests
// pass at once, then one per T; a denied request leaves TAT unchanged. Pure: time is an argument.

/** What one decision found. `tat` is the bucket's TAT after the decision (unchanged when denied). */
export interface GcraResult {
  allowed: boolean
  tat: number
  /** Requests that would still pass at once after this one. */
  remaining: number
  /** ms until a request would pass (0 when allowed). */
  retryAfterMs: number
  /** ms until the bucket is full again. */
  resetMs: number
}

/**
 * Float slack for the admission test: T = 1000 / rate is rarely exact in binary, and a sum of k
 * intervals must still compare equal to k × T. Far below any clock's resolution.
 */
const EPSILON = 1e-6

/**
 * Decides one request into `out` (no allocation, for the hot path) and returns it.
 * Preconditions: intervalMs > 0, burst ≥ 1; `tat` ≤ now (or 0) means a full bucket.
 */
export function gcraInto (out: GcraResult, tat: number, now: number, intervalMs: number, burst: number): GcraResult {
  const base = tat > now ? tat : now
  const next = base + intervalMs
  const limit = burst * intervalMs
  const ahead = next - now
  if (ahead <= limit + EPSILON) {
    out.allowed = true
    out.tat = next
    out.remaining = Math.max(0, Math.floor((limit - ahead + EPSILON) / intervalMs))
    out.retryAfterMs = 0
    out.resetMs = ahead
  } else {
    out.allowed = false
    out.tat = tat
    out.remaining = 0
    out.retryAfterMs = ahead - limit
    out.resetMs = base - now
  }
  return out
}

/** The allocating form, for tests and cold paths. */
export function gcra (tat: number, now: number, intervalMs: number, burst: number): GcraResult {
  return gcraInto(emptyResult(), tat, now, intervalMs, burst)
}

export function emptyResult (): GcraResult {
  return { allowed: true, tat: 0, remaining: 0, retryAfterMs: 0, resetMs: 0 }
}

/** `Retry-After`: whole seconds until a request would pass, at least 1 (spec "Errors to clients"). */
export function retryAfterSeconds (ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000 - EPSILON))
}

/** `RateLimit-Reset` / draft-11 `t`: whole seconds until the bucket is full again. */
export function resetSeconds (ms: number): number {
  return ms <= EPSILON ? 0 : Math.ceil(ms / 1000 - EPSILON)
}
