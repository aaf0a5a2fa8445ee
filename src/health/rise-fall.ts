/*
 * Rise/fall hysteresis for active health checks (HAProxy `rise` / `fall`).
 *
 * Invariant: `up` flips only after `fall` consecutive failures while up, or `rise` consecutive
 * passes while down; any result that agrees with the current state resets the streak.
 *
 * Start state: up with no failure counted, so a server dead from the start goes down after
 * exactly `fall` failed checks, as `fall` says ("consecutive failures to go down"). HAProxy
 * instead starts one failure from down; the spec's contract is the count. Until then passive
 * ejection and retries keep requests off a server that refuses them.
 */

/** Rise/fall state of one server. */
export interface RiseFallState {
  /** Current verdict of the checks. */
  readonly up: boolean
  /** Consecutive results contrary to `up` seen so far (failures while up, passes while down). */
  readonly count: number
}

/** Consecutive results needed to change state; both at least 1. */
export interface RiseFallConfig {
  readonly rise: number
  readonly fall: number
}

/** Up with no failure counted: a new server, or one checked and healthy (carried over a reload). */
export const UP: RiseFallState = Object.freeze({ up: true, count: 0 })

/** Down with no streak: used when a server is already known unhealthy (e.g. carried over a reload). */
export const DOWN: RiseFallState = Object.freeze({ up: false, count: 0 })

/**
 * Feeds one check result. `changed` is true exactly when `state.up` flipped.
 * Precondition: cfg.rise >= 1 and cfg.fall >= 1 (validation guarantees it).
 */
export function riseFall (
  state: RiseFallState,
  pass: boolean,
  cfg: RiseFallConfig,
): { state: RiseFallState, changed: boolean } {
  if (pass === state.up) {
    return { state: state.count === 0 ? state : { up: state.up, count: 0 }, changed: false }
  }
  const count = state.count + 1
  const needed = state.up ? cfg.fall : cfg.rise
  if (count >= needed) return { state: { up: !state.up, count: 0 }, changed: true }
  return { state: { up: state.up, count }, changed: false }
}
