/*
 * The process side of an active/standby pair: builds the PeerNode beside the Runtime (it
 * outlives reloads), applies its role to whichever Runtime serves now (listeners bound only
 * while active with `standby: closed`), and hands the active role over on SIGTERM.
 */
import type { PeerConfig } from '../config/types.js'
import type { Logger } from '../observability/log.js'
import type { Role } from '../peer/election.js'
import type { PeerNode } from '../peer/node.js'
import type { Sources } from '../peer/sync.js'
import type { Replicated } from '../state/replicated.js'
import { ServerStates, holdReportedDown } from '../upstream/replication.js'
import type { Runtime } from './runtime.js'

/**
 * The state a pair carries, by name: server state and every rate limit's buckets, read from the
 * current Runtime on every use (a reload swaps it; limits left unchanged keep their buckets).
 */
export function replicatedSources (servers: ServerStates, runtime: Runtime): Sources {
  return new Map<string, Replicated<unknown>>([
    ['servers', servers as Replicated<unknown>],
    ['ratelimits', runtime.limiters as Replicated<unknown>],
  ])
}

/** How long a server the old active last saw down is kept out after a takeover (issue 8: 5 s). */
const TAKEOVER_HOLD_MS = 5000

/** Should a Runtime bind its listeners now? Only the active node of a `standby: closed` pair does. */
export function bindsListeners (peer: PeerConfig | undefined, role: Role): boolean {
  return peer === undefined || peer.standby === 'open' || role === 'active'
}

/** The pair's modules are loaded here, with `peer:` only: a standalone node never runs them. */
export async function createPeer (config: PeerConfig, runtime: () => Runtime, log: Logger): Promise<PeerNode> {
  const { PeerNode } = await import('../peer/node.js')
  const servers = new ServerStates(() => runtime().upstreams.values(), () => runtime().clock.now())
  return new PeerNode(config, () => replicatedSources(servers, runtime()), {
    async apply (role, abrupt) {
      const r = runtime()
      if (role !== 'active') {
        // Not serving from this instant: /readyz and the listening sockets agree.
        r.role = role
        // A hand-over serves what already reached this node; a fault takes nothing more.
        await r.standDown(abrupt === true ? 'abrupt' : role === 'fault' ? 'now' : 'queued', config.standby === 'open')
        return
      }
      // Binds whatever is unbound (standby: closed) and serves.
      await r.bindListeners()
      if (r.role !== 'active') {
        const held = holdReportedDown(servers, r.upstreams.values(), r.clock.now(), TAKEOVER_HOLD_MS)
        if (held > 0) log.info({ held, ms: TAKEOVER_HOLD_MS }, 'servers the previous active saw down are held out after the takeover')
      }
      r.role = 'active'
    },
  }, log.child({ component: 'peer' }), runtime().clock)
}

/**
 * SIGTERM on the active node: hand the role to a heard standby first and wait (up to the dead
 * time) until it reports active, so clients see a hand-over rather than a dead-time gap. Then the
 * usual drain follows. A standby or a lone node has nothing to hand over.
 */
export async function handOverBeforeShutdown (peer: PeerNode | undefined, config: PeerConfig | undefined, log: Logger): Promise<void> {
  if (peer === undefined || config === undefined || peer.role !== 'active') return
  const r = peer.stepDown(true)
  if (!r.ok) {
    log.warn({ why: r.why }, 'shutting down without a hand-over')
    return
  }
  const taken = await peer.handedOver(config.heartbeat * config.deadAfter)
  log.info({ taken }, taken ? 'active role handed over' : 'hand-over not confirmed; the peer will take over after the dead time')
}
