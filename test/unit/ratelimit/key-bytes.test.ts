import { describe, expect, it } from 'vitest'
import { encodeKey } from '../../../src/ratelimit/key-bytes.js'

/** The table's hash before it was seeded: what an attacker could compute offline. */
function unseeded (key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h
}

describe('encodeKey hash', () => {
  it('hash flooding: 400 header values chosen offline to share a probe start spread over the table', () => {
    // As an attacker would: search values whose fixed hash lands in one slot of a 1024-slot table.
    const crafted: string[] = []
    for (let i = 0; crafted.length < 400 && i < 5_000_000; i++) {
      const key = `tenant-${i}`
      if ((unseeded(key) & 1023) === 0) crafted.push(key)
    }
    expect(crafted.length).toBe(400)
    const slots = new Set(crafted.map((k) => encodeKey(k) & 1023))
    // Random hashes put 400 keys on about 330 of 1024 slots; the fixed hash put them all on one.
    expect(slots.size).toBeGreaterThan(250)
  })

  it('is the same for the same key within the process, and packs dotted IPv4 as before', () => {
    expect(encodeKey('203.0.113.7')).toBe(encodeKey('203.0.113.7'))
    expect(encodeKey('a-key')).toBe(encodeKey('a-key'))
    expect(encodeKey('a-key')).not.toBe(encodeKey('a-kez'))
  })
})
