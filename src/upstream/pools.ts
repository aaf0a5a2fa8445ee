import { createRequire } from 'node:module'
import type { Client, Pool } from 'undici'
import type { UpstreamConfig } from '../config/types.js'
import { RawPool } from './raw-pool.js'
import type { Server } from './server.js'

/**
 * Idle upstream connections are closed before common backends close them (Node's default
 * server keep-alive is 5 s, nginx's 75 s), so a request rarely lands on a socket the server is
 * closing. A backend's own `Keep-Alive: timeout=N` hint lowers this further, less a margin.
 */
const IDLE_KEEPALIVE_MS = 4000
const KEEPALIVE_MARGIN_MS = 500
/**
 * Non-idempotent requests are not re-sent once they may have reached a server, so they must not
 * meet the keep-alive race at all: they go only on a connection used within this window (or a
 * new one). Common backends keep idle connections for 2 s (gunicorn) to 75 s (nginx); none close
 * one this young.
 */
const UNSAFE_IDLE_MS = 750
/**
 * Connections per server and pool when the server sets no maxConnections: one client can no
 * longer fan out (a connection runs one request at a time), but many clients can, and a backend
 * should see a bounded number of sockets from its proxy. Beyond it requests wait in undici's
 * queue, bounded by the response timeout.
 */
export const DEFAULT_POOL_CONNECTIONS = 256

/**
 * undici is loaded on first use (about 25 MiB of RSS): a proxy whose traffic the lean path takes
 * entirely (bodiless GET and HEAD) never needs it.
 */
let undici: typeof import('undici') | undefined
function lib (): typeof import('undici') {
  return undici ??= createRequire(import.meta.url)('undici') as typeof import('undici')
}

/** Connections per pool for `server`: its maxConnections, or the default cap. */
/** Connections one of a server's pools opens at most. */
export function capOf (server: Server): number {
  return server.maxConnections > 0 ? server.maxConnections : DEFAULT_POOL_CONNECTIONS
}

/** The settings an undici Pool fixes when made, as one comparable string. */
function settingsOf (config: UpstreamConfig, server: Server): string {
  return `${config.connectTimeout}/${capOf(server)}`
}

function origin (server: Server): string {
  return server.host.includes(':') ? `http://[${server.host}]:${server.port}` : `http://${server.host}:${server.port}`
}

function options (config: UpstreamConfig, server: Server, idleMs = IDLE_KEEPALIVE_MS): Pool.Options {
  return {
    pipelining: 1,
    connections: capOf(server),
    keepAliveTimeout: idleMs,
    keepAliveMaxTimeout: idleMs,
    keepAliveTimeoutThreshold: KEEPALIVE_MARGIN_MS,
    connect: { timeout: config.connectTimeout, noDelay: true },
    // Per-request values from the listener override these.
    headersTimeout: 0,
    bodyTimeout: 0,
    maxHeaderSize: 64 * 1024,
  }
}

/**
 * Two keep-alive undici Pools per server (idempotent requests; others on young connections),
 * shared by every listener and kept across reloads (reconfigure applies a reload's settings).
 */
export class HttpPools {
  private readonly pools = new Map<Server, Pool>()
  private readonly unsafe = new Map<Server, Pool>()
  private readonly raws = new Map<Server, RawPool>()
  /** Each undici Pool's connectTimeout/cap when made (reconfigure compares them). */
  private readonly sigs = new WeakMap<Pool, string>()
  /** The servers of the Runtime that started last (the one serving): retain() keeps their pools. */
  private serving: ReadonlySet<Server> = new Set()

  /** A Runtime now serves with `servers` (its start() succeeded). */
  use (servers: ReadonlySet<Server>): void {
    this.serving = servers
  }

  /** The lean path's connections to `server` (raw-pool.ts), under the same cap and idle rules. */
  raw (server: Server, config: UpstreamConfig): RawPool {
    let pool = this.raws.get(server)
    if (pool === undefined) {
      pool = new RawPool(server.host, server.port, config.connectTimeout, IDLE_KEEPALIVE_MS, capOf(server))
      this.raws.set(server, pool)
    }
    return pool
  }

  get (server: Server, config: UpstreamConfig, idempotent = true): Pool {
    const map = idempotent ? this.pools : this.unsafe
    let pool = map.get(server)
    if (pool === undefined) {
      pool = new (lib().Pool)(origin(server), options(config, server, idempotent ? IDLE_KEEPALIVE_MS : UNSAFE_IDLE_MS))
      this.sigs.set(pool, settingsOf(config, server))
      map.set(server, pool)
    }
    return pool
  }

  /** A one-request client on a new connection, for the retry after a stale keep-alive socket. */
  fresh (server: Server, config: UpstreamConfig): Client {
    return new (lib().Client)(origin(server), { ...options(config, server), pipelining: 1 })
  }

  /**
   * After a reload: servers that stayed get the new connectTimeout and connection cap. The lean
   * path's pool changes in place; an undici Pool (its options are fixed) is replaced when they
   * differ, the old one finishing what it carries.
   */
  reconfigure (server: Server, config: UpstreamConfig): void {
    this.raws.get(server)?.update(config.connectTimeout, capOf(server))
    const sig = settingsOf(config, server)
    for (const map of [this.pools, this.unsafe]) {
      const pool = map.get(server)
      if (pool === undefined || this.sigs.get(pool) === sig) continue
      map.delete(server)
      pool.close().catch(() => {})
    }
  }

  /**
   * Closes pools of servers the serving Runtime no longer has (after a reload's retire). The set
   * is the newest one, never the retiring Runtime's successor's: retires end out of order, and an
   * older one must not close the pool of a server a later reload added.
   */
  retain (): void {
    const servers = this.serving
    for (const [server, pool] of this.raws) {
      if (!servers.has(server)) {
        this.raws.delete(server)
        pool.close()
      }
    }
    for (const map of [this.pools, this.unsafe]) {
      for (const [server, pool] of map) {
        if (!servers.has(server)) {
          map.delete(server)
          pool.close().catch(() => {})
        }
      }
    }
  }

  async close (): Promise<void> {
    const all = [...this.pools.values(), ...this.unsafe.values()]
    this.pools.clear()
    this.unsafe.clear()
    for (const pool of this.raws.values()) pool.close()
    this.raws.clear()
    await Promise.all(all.map(async (p) => await p.destroy().catch(() => {})))
  }
}
