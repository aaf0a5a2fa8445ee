import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'
import { reportError } from '../observability/events.js'

export interface RedisOptions {
  /** How long one command may take before it fails (ms); the caller's own deadline. */
  readonly commandTimeout: number
}

/**
 * The one way tandem opens a Redis connection (the rate-limit store and the pair's arbiter).
 * Commands fail at once while disconnected instead of queueing (a proxy must answer by its own
 * `onError` rule, not wait), and reconnects are retried in the background forever, backing off to
 * one attempt every 500 ms so that service resumes within a second of Redis's return.
 */
export function connectRedis (url: string, options: RedisOptions): Redis {
  // Loaded on first use (about 20 MiB of RSS), so nodes without Redis never pay for it.
  const { Redis: Client } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis')
  const client = new Client(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeout,
    connectTimeout: Math.max(200, options.commandTimeout * 4),
    retryStrategy: (times) => Math.min(50 * times, 500),
    lazyConnect: false,
  })
  // Errors surface through each command's rejection and the caller's breaker too; here they are
  // counted and logged once per burst (ioredis reports every reconnect failure).
  client.on('error', (err) => { reportError('redis', err) })
  return client
}
