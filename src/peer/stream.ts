/*
 * The active node's side of state sync on the wire: a full snapshot when the state connection
 * comes up, then changes as they happen. Sources (Replicated) only batch their changes and say
 * stateChanged() at the first change after a take, so while active the changes go out
 * STATE_BATCH_MS after the first of them: a takeover (even after a SIGKILL) loses at most that
 * window, not a whole heartbeat, and an active node with nothing changing is not woken for it.
 * A hand-over flushes first (flush()), so a planned one loses nothing.
 */
import { onStateChanged } from '../state/changes.js'
import type { StateSync } from './sync.js'
import type { PeerTransport } from './transport.js'

/** Changes wait at most this long before they go out. */
export const STATE_BATCH_MS = 5

/** Beyond this many bytes queued on the state connection, changes wait (a snapshot follows a reconnect anyway). */
const MAX_BACKLOG = 64 * 1024 * 1024

export class StateStream {
  private sendingFullValue = false
  private lastKeepalive = 0
  private batchTimer: NodeJS.Timeout | undefined
  private unwatch: (() => void) | undefined

  constructor (private readonly transport: PeerTransport, private readonly sync: StateSync) {}

  /** A snapshot is still going out: changes must wait until its last slice is sent. */
  get sendingFull (): boolean { return this.sendingFullValue }

  /** Send changes a batch window after the first of them while `on` (this node is active), not otherwise. */
  batching (on: boolean): void {
    if (on && this.unwatch === undefined) {
      this.unwatch = onStateChanged(this.soon)
      // Changes made before this node became active have signalled already.
      this.soon()
    } else if (!on && this.unwatch !== undefined) {
      this.unwatch()
      this.unwatch = undefined
      clearTimeout(this.batchTimer)
      this.batchTimer = undefined
    }
  }

  /** Arms the batch window, once: later changes join the same batch. */
  private readonly soon = (): void => {
    if (this.batchTimer !== undefined) return
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined
      this.flush()
    }, STATE_BATCH_MS)
    this.batchTimer.unref()
  }

  /** Sends what changed since the last batch onto the state connection, if there is one. */
  flush (): void {
    if (this.transport.stateConnected) this.sendChanges()
  }

  /** Every heartbeat while active, connected or not: changes, or a keepalive that shows the connection alive. */
  beat (): void {
    // Taken even while disconnected, so they do not pile up: a reconnect sends a full snapshot anyway.
    if (this.sendingFullValue || this.sendChanges()) return
    const now = Date.now()
    if (now - this.lastKeepalive >= 1000 && this.transport.sendState({ k: 'state', full: false, parts: {} })) this.lastKeepalive = now
  }

  /** True when there were changes and they went out; none while a snapshot is going or the backlog is full. */
  private sendChanges (): boolean {
    if (this.sendingFullValue || this.transport.stateBacklog >= MAX_BACKLOG) return false
    const changes = this.sync.changes()
    if (changes === undefined) return false
    this.transport.sendState(changes)
    return true
  }

  /** Streams the full snapshot slice by slice, yielding to the event loop between slices. */
  async sendFull (): Promise<void> {
    this.sendingFullValue = true
    try {
      for (const m of this.sync.full()) {
        if (!this.transport.sendState(m)) return
        await new Promise((resolve) => setImmediate(resolve))
      }
    } finally {
      this.sendingFullValue = false
      // Changes made while the snapshot went out waited for it; they signalled then and will not again.
      if (this.unwatch !== undefined) this.soon()
    }
  }

  stop (): void { this.batching(false) }
}
