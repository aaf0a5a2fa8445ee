import { describe, expect, it } from 'vitest'
import { MAX_DATAGRAM, REPLAY_WINDOW, Signer, Verifier, type Heartbeat } from '../../../src/peer/messages.js'

const SECRET = 'a-secret-of-16-bytes!'
const hb: Heartbeat = { k: 'hb', term: 3, prio: 100, preempt: false, role: 'active', starting: false, handover: false, yielding: false, inSync: true, conflict: false }

describe('peer messages', () => {
  it('round-trips a signed heartbeat', () => {
    const s = new Signer('lb-b', SECRET)
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    const d = v.decode(s.encode(hb))
    expect(d).toEqual({ ok: true, message: { ...hb, id: 'lb-b', boot: s.boot, seq: 1 } })
    expect(v.peerId).toBe('lb-b')
  })

  it('rejects a wrong secret as unauthenticated, naming the claimed sender', () => {
    const d = new Verifier('lb-a', SECRET, MAX_DATAGRAM).decode(new Signer('lb-b', 'another-secret-16-bytes').encode(hb))
    expect(d).toEqual({ ok: false, reason: 'unauthenticated', claimed: 'lb-b' })
  })

  it('rejects a tampered body', () => {
    const buf = new Signer('lb-b', SECRET).encode(hb)
    const i = buf.indexOf('active')
    buf.write('fault!', i)
    expect(new Verifier('lb-a', SECRET, MAX_DATAGRAM).decode(buf)).toMatchObject({ ok: false, reason: 'unauthenticated' })
  })

  it('rejects replays, accepts reordering inside the window', () => {
    const s = new Signer('lb-b', SECRET)
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    const first = s.encode(hb)
    const second = s.encode(hb)
    expect(v.decode(second).ok).toBe(true)
    expect(v.decode(first).ok).toBe(true)
    expect(v.decode(first)).toEqual({ ok: false, reason: 'replayed' })
    expect(v.decode(second)).toEqual({ ok: false, reason: 'replayed' })
  })

  it('rejects sequences older than the window', () => {
    const s = new Signer('lb-b', SECRET)
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    const old = s.encode(hb)
    for (let i = 0; i < REPLAY_WINDOW + 1; i++) s.encode(hb)
    expect(v.decode(s.encode(hb)).ok).toBe(true)
    expect(v.decode(old)).toEqual({ ok: false, reason: 'replayed' })
  })

  it('a restarted peer (new boot) is accepted; its previous boot never again', () => {
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    const before = new Signer('lb-b', SECRET)
    const kept = before.encode(hb)
    expect(v.decode(before.encode(hb)).ok).toBe(true)
    const after = new Signer('lb-b', SECRET)
    expect(v.decode(after.encode(hb)).ok).toBe(true)
    expect(v.decode(kept)).toEqual({ ok: false, reason: 'replayed' })
  })

  it('knows the peer by id: a second sender and our own id are unknown', () => {
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    expect(v.decode(new Signer('lb-b', SECRET).encode(hb)).ok).toBe(true)
    expect(v.decode(new Signer('lb-c', SECRET).encode(hb))).toEqual({ ok: false, reason: 'unknown-sender' })
    expect(new Verifier('lb-a', SECRET, MAX_DATAGRAM).decode(new Signer('lb-a', SECRET).encode(hb))).toEqual({ ok: false, reason: 'unknown-sender' })
  })

  it('drops oversize, random and malformed data', () => {
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    expect(v.decode(Buffer.alloc(MAX_DATAGRAM + 1))).toEqual({ ok: false, reason: 'oversize' })
    expect(v.decode(Buffer.from('hello'))).toEqual({ ok: false, reason: 'malformed' })
    expect(v.decode(Buffer.alloc(100, 7))).toEqual({ ok: false, reason: 'malformed' })
    // Signed, but not a message we know.
    const s = new Signer('lb-b', SECRET)
    expect(v.decode(s.encode({ k: 'hb' } as unknown as Heartbeat))).toEqual({ ok: false, reason: 'malformed' })
  })

  it('recognises the unsigned auth-failure hint', () => {
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    expect(v.decode(new Signer('lb-b', 'whatever-else-16-bytes').hint())).toEqual({ ok: 'hint', from: 'lb-b' })
  })
})
