/**
 * The signal that a Replicated source has changes to take. The pair's state stream sends changes
 * within STATE_BATCH_MS of the first one, and this tells it when there is one: polling every
 * source every 5 ms woke an idle active node 200 times a second for nothing. Sources signal the
 * first change after a take (later ones ride in the same batch); the stream still takes at every
 * heartbeat, which catches whatever a source does not signal.
 */
const listeners = new Set<() => void>()

/** A source has something new for takeChanges(). */
export function stateChanged (): void {
  for (const l of listeners) l()
}

/** Calls `l` at every stateChanged() until the returned function is called. */
export function onStateChanged (l: () => void): () => void {
  listeners.add(l)
  return () => { listeners.delete(l) }
}
