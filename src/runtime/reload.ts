import type { Config } from '../config/types.js'
import { channels } from '../observability/events.js'
import type { Role } from '../peer/election-types.js'
import { Runtime } from './runtime.js'

export interface ReloadSummary {
  listeners: { added: string[], removed: string[], kept: string[] }
  upstreams: { added: string[], removed: string[], kept: string[] }
  servers: { added: string[], removed: string[] }
}

/**
 * Replaces `current` with a Runtime built from `config`, without dropping traffic: listeners on
 * unchanged addresses keep their sockets, servers that stay keep their health, admin state,
 * counters and pools, in-flight requests and streams finish on what they started with.
 * Resolves once the new Runtime serves; the old one retires in the background (up to its
 * shutdownTimeout). Throws (and leaves `current` serving) when a new listener cannot bind.
 */
export async function reloadRuntime (
  current: Runtime,
  config: Config,
  /** A pair's role now (the election's): it may change while the new listeners bind. */
  roleNow: () => Role = () => current.role,
): Promise<{ runtime: Runtime, summary: ReloadSummary, retired: Promise<boolean> }> {
  const next = new Runtime(config, { previous: current, clock: current.clock })
  // A pair's standby with `standby: closed` keeps its listeners unbound across a reload.
  next.role = current.role
  const bind = current.role === 'active' || config.peer?.standby !== 'closed'
  try {
    await next.start({ bind })
    // A role change while this bound (a step-down, a takeover) went to the old Runtime only.
    const role = roleNow()
    if (role !== next.role) {
      next.role = role
      if (role === 'active') await next.bindListeners()
      else await next.standDown('now', config.peer?.standby === 'open')
    }
  } catch (err) {
    channels.configReload.publish({ result: 'failure' })
    throw err
  }
  const summary = diff(current, next)
  const retired = current.retire(next)
  channels.configReload.publish({ result: 'success' })
  return { runtime: next, summary, retired }
}

function diff (before: Runtime, after: Runtime): ReloadSummary {
  const servers = (r: Runtime): string[] => [...r.upstreams.values()].flatMap((u) => u.servers.map((s) => `${u.name}/${s.address}`))
  return {
    listeners: {
      added: after.listeners.filter((l) => !before.listeners.includes(l)).map((l) => l.name),
      removed: before.listeners.filter((l) => !after.listeners.includes(l)).map((l) => l.name),
      kept: after.listeners.filter((l) => before.listeners.includes(l)).map((l) => l.name),
    },
    upstreams: split([...before.upstreams.keys()], [...after.upstreams.keys()]),
    servers: (({ added, removed }) => ({ added, removed }))(split(servers(before), servers(after))),
  }
}

function split (before: string[], after: string[]): { added: string[], removed: string[], kept: string[] } {
  const was = new Set(before)
  const is = new Set(after)
  return {
    added: after.filter((x) => !was.has(x)),
    removed: before.filter((x) => !is.has(x)),
    kept: after.filter((x) => was.has(x)),
  }
}
