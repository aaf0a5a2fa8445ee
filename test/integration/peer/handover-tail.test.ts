// A node that steps down still admits a few requests: the connections the kernel had queued for
// it are accepted and answered (Runtime.standDown, 'queued'). What they spent of their buckets
// went nowhere: the step-down flushed the batch before them, and the node stopped streaming and
// closed the state connection on its next beat, so the new active gave those clients buckets
// without those requests. Now the old active streams for a dead time after its step-down, and
// the new active merges what arrives (the later TAT wins). Two PeerNodes in this process, each
// with a real rate-limit table, over their real transports on loopback.
import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../../../src/clock.js'
import type { PeerConfig } from '../../../src/config/types.js'
import { PeerNode } from '../../../src/peer/node.js'
import { emptyResult } from '../../../src/ratelimit/gcra.js'
import { BucketTable } from '../../../src/ratelimit/table.js'
import type { Replicated } from '../../../src/state/replicated.js'
import { reservePort } from '../../helpers/ports.js'
import { waitFor } from '../../helpers/wait.js'

const SECRET = 'handover-tail-secret-0123456789'
const HEARTBEAT = 100
const MINUTE = 60_000
const quiet = { debug () {}, info () {}, warn () {}, error () {} }
const nodes: PeerNode[] = []
afterEach(async () => { await Promise.all(nodes.splice(0).map(async (n) => { await n.close() })) })

interface Node { peer: PeerNode, table: BucketTable, hit: () => boolean, ahead: () => number }

/** A pair node with one limit of burst 5 at 1/min on key `k` (a client's address, say). */
function node (id: string, priority: number, port: number, peerPort: number): Node {
  const hp = (p: number): PeerConfig['listen'] => ({ host: '127.0.0.1', port: p, text: `127.0.0.1:${p}` })
  const cfg: PeerConfig = {
    id, listen: hp(port), peers: [hp(peerPort)], secret: SECRET, priority, preempt: false,
    heartbeat: HEARTBEAT, deadAfter: 3, standby: 'closed', onChangeTimeout: 30_000,
  }
  const table = new BucketTable({ intervalMs: MINUTE, burst: 5, maxKeys: 100 }, systemClock)
  const sources = new Map([['ratelimits', table as Replicated<unknown>]])
  const peer = new PeerNode(cfg, () => sources, { async apply () {} }, quiet, systemClock)
  nodes.push(peer)
  const out = emptyResult()
  return {
    peer,
    table,
    hit: () => table.decide('k', systemClock.now(), out).allowed,
    ahead: () => { const s = table.snapshot(); return s.ahead[s.keys.indexOf('k')] ?? 0 },
  }
}

describe('the hand-over tail', () => {
  it('requests the old active admits after its step-down count at the new active: 5 of burst 5 spent, not 2', async () => {
    const [pa, pb] = [await reservePort(), await reservePort()]
    const a = node('lb-a', 200, pa, pb)
    const b = node('lb-b', 100, pb, pa)
    await Promise.all([a.peer.start(), b.peer.start()])
    await waitFor(() => a.peer.role === 'active' && b.peer.role === 'standby' && a.peer.inSync, 10_000, 5, 'a active, b standby in sync (as a hears it)')

    expect([a.hit(), a.hit()]).toEqual([true, true])
    await waitFor(() => b.ahead() > 1.5 * MINUTE, 5000, 5, 'the first two on b')

    expect(a.peer.stepDown(false)).toEqual({ ok: true })
    // The hand-over's last admissions, after its flush: the accept queue's connections.
    expect([a.hit(), a.hit(), a.hit()]).toEqual([true, true, true])
    expect(a.hit()).toBe(false)
    await waitFor(() => b.peer.role === 'active', 5000, 5, 'b active')
    await waitFor(() => b.ahead() > 4.5 * MINUTE, 3 * HEARTBEAT * 3, 5, 'all five spent on b')
    // b, the active now, refuses the client as a refused it.
    expect(b.hit()).toBe(false)
  }, 30_000)
})
