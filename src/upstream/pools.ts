import { Client, Pool } from 'undici'
import type { UpstreamConfig } from '../config/types.js'
import type { Server } from './server.js'

/**
 * Idle upstream connections are closed before common backends close them (Node's default
 * server keep-alive is 5 s, nginx's 75 s), so a request rarely lands on a socket the server is
 * closing. A backend's own `Keep-Alive: timeout=N` hint lowers this further, less a margin.
 */
const IDLE_KEEPALIVE_MS = 4000
const KEEPALIVE_MARGIN_MS = 500

function origin (server: Server): string {
  return server.host.includes(':') ? `http://[${server.host}]:${server.port}` : `http://${server.host}:${server.port}`
}

function options (config: UpstreamConfig): Pool.Options {
  return {
    pipelining: 1,
    keepAliveTimeout: IDLE_KEEPALIVE_MS,
    keepAliveMaxTimeout: IDLE_KEEPALIVE_MS,
    keepAliveTimeoutThreshold: KEEPALIVE_MARGIN_MS,
    connect: { timeout: config.connectTimeout, noDelay: true },
    // Per-request values from the listener override these.
    headersTimeout: 0,
    bodyTimeout: 0,
    maxHeaderSize: 64 * 1024,
  }
}

/** One keep-alive undici Pool per server, shared by every listener and kept across reloads. */
export class HttpPools {
  private readonly pools = new Map<Server, Pool>()

  get (server: Server, config: UpstreamConfig): Pool {
    let pool = this.pools.get(server)
    if (pool === undefined) {
      pool = new Pool(origin(server), options(config))
      this.pools.set(server, pool)
    }
    return pool
  }

  /** A one-request client on a new connection, for the retry after a stale keep-alive socket. */
  fresh (server: Server, config: UpstreamConfig): Client {
    return new Client(origin(server), { ...options(config), pipelining: 1 })
  }

  /** Closes pools of servers no longer in use (after a reload). */
  retain (servers: ReadonlySet<Server>): void {
    for (const [server, pool] of this.pools) {
      if (!servers.has(server)) {
        this.pools.delete(server)
        pool.close().catch(() => {})
      }
    }
  }

  async close (): Promise<void> {
    const all = [...this.pools.values()]
    this.pools.clear()
    await Promise.all(all.map(async (p) => await p.destroy().catch(() => {})))
  }
}
