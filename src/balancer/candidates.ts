import type { Server } from '../upstream/server.js'

/**
 * The servers a strategy may rank for the next request or connection, in input order.
 *
 * Eligible means state 'up' (not down, ejected, draining or disabled) and under maxConnections.
 * Backups follow HAProxy: while any non-backup server is up, only non-backups are returned, even
 * when all of them are full (the caller then answers 503 rather than spilling onto backups that
 * are meant for outages, not for overload). Only when no non-backup server is up do the up
 * backups with room serve.
 */
export function candidates (servers: readonly Server[], now: number): Server[] {
  let primaryUp = false
  for (const s of servers) {
    if (!s.backup && s.state(now) === 'up') {
      primaryUp = true
      break
    }
  }
  const out: Server[] = []
  for (const s of servers) {
    // With a primary up we want non-backups only; without one, backups only.
    if (s.backup === primaryUp) continue
    if (s.state(now) === 'up' && s.hasRoom()) out.push(s)
  }
  return out
}

/**
 * The next servers for a request or connection whose attempts failed on every primary that counts
 * as up (`tried` holds them): the up backups with room that it has not tried. An outage is what
 * backups are for, and a primary that refuses is one before its checks say so (nginx's
 * `proxy_next_upstream` reaches backups the same way). Empty while some up primary is untried,
 * even a full one: overload still answers 503 rather than spilling onto backups.
 */
export function backupsAfter (servers: readonly Server[], tried: ReadonlySet<Server>, now: number): Server[] {
  for (const s of servers) {
    if (!s.backup && s.state(now) === 'up' && !tried.has(s)) return []
  }
  const out: Server[] = []
  for (const s of servers) {
    if (s.backup && !tried.has(s) && s.state(now) === 'up' && s.hasRoom()) out.push(s)
  }
  return out
}
