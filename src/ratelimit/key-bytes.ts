// How a bucket key is stored in the table's byte arena (pure). A dotted IPv4 address, the
// common key, packs into 5 bytes; other Latin-1 keys are their own bytes; anything longer than
// MAX_KEY_BYTES or wider than Latin-1 becomes its SHA-256 digest, so no key costs more than that.
import { crypto, sha256 } from '../node-builtins.js'

/** Keys are stored as at most this many bytes. */
export const MAX_KEY_BYTES = 128

/** First byte of a packed IPv4 key: 1 + 4 address bytes. No stored text key starts with it. */
export const IPV4_TAG = 1

/**
 * The hash's start, random per process (as V8 seeds its own string hashes). With a fixed one,
 * keys a client controls (a header's value, IPv6 addresses of one /64) could be chosen offline
 * to fill one probe run: 50,000 such keys took 3.8 s of CPU to insert instead of 24 ms, and
 * every lookup in the run 55 µs. The hash never leaves the process (the pair and Redis get keys).
 */
let seed: number | undefined
/** Drawn at the first key, so that a process without rate limits never loads node:crypto. */
function seeded (): number {
  return seed ??= crypto().randomBytes(4).readInt32LE(0) ^ 0x811c9dc5
}

/** The key last encoded, as stored (shared scratch, so a lookup allocates nothing): bytes[0..length). */
export const encoded = { bytes: new Uint8Array(MAX_KEY_BYTES), length: 0 }
const Q = encoded.bytes

/**
 * Puts `key` into `encoded` as stored and returns its hash. A dotted IPv4 address (the common key) packs
 * into 5 bytes; other Latin-1 keys (every HTTP header value and address is) of at most
 * MAX_KEY_BYTES are their own bytes; anything else, or a key that could pass for a packed
 * address, becomes its SHA-256 digest, so no key costs more than 128 bytes.
 */
export function encodeKey (key: string): number {
  if (!packIPv4(key)) {
    let text = key
    let plain = key.length <= MAX_KEY_BYTES && key.charCodeAt(0) !== IPV4_TAG
    for (let i = 0; plain && i < key.length; i++) if (key.charCodeAt(i) > 255) plain = false
    if (!plain) text = '#' + sha256(key).toString('base64')
    for (let i = 0; i < text.length; i++) Q[i] = text.charCodeAt(i)
    encoded.length = text.length
  }
  // FNV-1a from a per-process seed, then murmur3's finaliser, so that linear probing sees
  // well-spread low bits and no one can work out offline which keys share a probe run.
  let h = seed ?? seeded()
  for (let i = 0; i < encoded.length; i++) {
    h ^= Q[i]!
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}

/** Packs a canonical dotted quad (no leading zeros) into `encoded`; false for anything else. */
function packIPv4 (key: string): boolean {
  const n = key.length
  if (n < 7 || n > 15) return false
  let part = 0
  let digits = 0
  let at = 1
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i)
    if (c === 46 /* . */) {
      if (digits === 0 || at === 4) return false
      Q[at++] = part
      part = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false // a leading zero: not canonical
      part = part * 10 + c - 48
      if (++digits > 3 || part > 255) return false
    } else {
      return false
    }
  }
  if (at !== 4 || digits === 0) return false
  Q[0] = IPV4_TAG
  Q[4] = part
  encoded.length = 5
  return true
}
