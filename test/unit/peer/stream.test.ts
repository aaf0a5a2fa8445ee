import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../../../src/clock.js'
import type { StateMessage } from '../../../src/peer/messages.js'
import { STATE_BATCH_MS, StateStream } from '../../../src/peer/stream.js'
import { StateSync } from '../../../src/peer/sync.js'
import type { PeerTransport } from '../../../src/peer/transport.js'
import { BucketTable } from '../../../src/ratelimit/table.js'
import type { Replicated } from '../../../src/state/replicated.js'
import { ServerStates } from '../../../src/upstream/replication.js'
import { Upstream } from '../../../src/upstream/upstream.js'

/** The state connection's side of PeerTransport, recording what went out. */
function transport (): { t: PeerTransport, sent: StateMessage[] } {
  const sent: StateMessage[] = []
  const t = { stateConnected: true, stateBacklog: 0, sendState: (m: StateMessage) => { sent.push(m); return true } }
  return { t: t as unknown as PeerTransport, sent }
}

describe('StateStream batching', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('an active node with nothing changing takes no changes between heartbeats (was: every 5 ms)', () => {
    const table = new BucketTable({ intervalMs: 100, burst: 5, maxKeys: 100 }, new ManualClock(0))
    const sync = new StateSync(() => new Map([['ratelimits', table as Replicated<unknown>]]))
    let takes = 0
    const changes = sync.changes.bind(sync)
    sync.changes = () => { takes++; return changes() }
    const { t, sent } = transport()
    const stream = new StateStream(t, sync)
    stream.batching(true)
    vi.advanceTimersByTime(1000)
    // One take for changes made before the node became active; none after.
    expect(takes).toBe(1)
    expect(sent).toEqual([])

    // A bucket's first change arms one batch window; the second joins it.
    table.decide('10.0.0.1', 0, { allowed: false, tat: 0, retryAfterMs: 0, remaining: 0, resetMs: 0 })
    table.decide('10.0.0.2', 0, { allowed: false, tat: 0, retryAfterMs: 0, remaining: 0, resetMs: 0 })
    vi.advanceTimersByTime(STATE_BATCH_MS - 1)
    expect(sent).toHaveLength(0)
    vi.advanceTimersByTime(1)
    expect(takes).toBe(2)
    expect(sent).toHaveLength(1)
    expect(Object.keys(sent[0]?.parts ?? {})).toEqual(['ratelimits'])
    vi.advanceTimersByTime(1000)
    expect(takes).toBe(2)

    // A standby (batching off) is not woken by changes.
    stream.batching(false)
    table.decide('10.0.0.3', 0, { allowed: false, tat: 0, retryAfterMs: 0, remaining: 0, resetMs: 0 })
    vi.advanceTimersByTime(1000)
    expect(takes).toBe(2)
    stream.stop()
  })

  it('a server going down goes out one batch window later, not at the next heartbeat', () => {
    const clock = new ManualClock(0)
    const upstream = new Upstream({
      name: 'web', balance: 'round-robin', connectTimeout: 1000, retries: 0, slowStart: 0,
      servers: [{ text: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, backup: false, maxConnections: 0 }],
    }, { clock, random: () => 0 })
    const servers = new ServerStates(() => [upstream], () => clock.now())
    const sync = new StateSync(() => new Map([['servers', servers as Replicated<unknown>]]))
    const { t, sent } = transport()
    const stream = new StateStream(t, sync)
    void [...sync.full()]
    stream.batching(true)
    vi.advanceTimersByTime(1000)
    expect(sent).toEqual([])
    upstream.setHealth(upstream.servers[0]!, false)
    vi.advanceTimersByTime(STATE_BATCH_MS)
    expect(sent).toEqual([{ k: 'state', full: false, parts: { servers: { web: { '10.0.0.1:80': { healthy: false, ejectedMs: 0, admin: 'enabled', weight: 1 } } } } }])
    stream.stop()
  })
})
