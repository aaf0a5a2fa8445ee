import type { UpstreamConfig } from '../../src/config/types.js'

/** A normalised upstream config for unit tests: round-robin over `addresses` (host:port), defaults elsewhere, `extra` on top. */
export function upstreamConfig (addresses: readonly string[], extra: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    name: 'web',
    balance: 'round-robin',
    servers: addresses.map((text) => ({ text, host: text.slice(0, text.lastIndexOf(':')), port: Number(text.slice(text.lastIndexOf(':') + 1)), weight: 1, backup: false, maxConnections: 0 })),
    connectTimeout: 1000,
    retries: 0,
    slowStart: 0,
    ...extra,
  }
}
