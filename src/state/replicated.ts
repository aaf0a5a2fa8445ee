/**
 * State that must survive a reload or move to the peer of an active/standby pair lives behind this
 * interface: server health and admin state (upstream), rate-limit buckets (ratelimit).
 *
 * Nothing in `S` may carry a process-local time (`performance.now()` means nothing on the other
 * node, and wall clocks need not agree): times travel as durations or remaining times, and
 * `apply` turns them back into this process's clock.
 */
export interface Replicated<S> {
  /** The full state, for a peer that (re)connects or a standby that must catch up. */
  snapshot (): S
  /** What changed since the last call, batched (the pair sends it every heartbeat); undefined when nothing did. */
  takeChanges (): S | undefined
  /** Merges state from the peer: a snapshot or a batch of changes. */
  apply (state: S): void
  /**
   * The full state in parts of at most `max` entries, each taken when the caller asks for it
   * (it yields to the event loop between them) and merged by apply() like changes, so a large
   * state never holds the process. Optional: without it the snapshot is taken at once and, when
   * it is a record, cut by its keys.
   */
  slices? (max: number): Iterable<S>
}
