import { Server } from '../../../src/upstream/server.js'

export interface ServerOpts {
  weight?: number
  backup?: boolean
  maxConnections?: number
}

export function makeServer (address: string, opts: ServerOpts = {}): Server {
  const [host = '', port = '0'] = address.split(':')
  return new Server({
    text: address,
    host,
    port: Number(port),
    weight: opts.weight ?? 1,
    backup: opts.backup ?? false,
    maxConnections: opts.maxConnections ?? 0,
  })
}

/** Small seeded PRNG (mulberry32), uniform in [0, 1), so tests that use randomness are exact. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Counts picks per server address. */
export function tally (picks: ReadonlyArray<Server | undefined>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of picks) {
    const k = p === undefined ? 'undefined' : p.address
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}
