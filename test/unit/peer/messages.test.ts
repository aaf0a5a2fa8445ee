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
    const before = new Signer('lb-b', SECRET, 1_000_000)
    const kept = before.encode(hb)
    expect(v.decode(before.encode(hb)).ok).toBe(true)
    const after = new Signer('lb-b', SECRET, 1_005_000)
    expect(v.decode(after.encode(hb)).ok).toBe(true)
    expect(v.decode(kept)).toEqual({ ok: false, reason: 'replayed' })
  })

  // Security regression: one recorded message from the peer's earlier run (a boot this receiver
  // had not seen) was taken as the peer's newest run and retired the current one, after which
  // every real message was dropped as replayed: the receiver went deaf and took the active role.
  it('a message replayed from the peer\'s earlier run cannot retire its current run', () => {
    const earlier = new Signer('lb-b', SECRET, 1_000_000)
    const recorded = earlier.encode(hb)
    const current = new Signer('lb-b', SECRET, 1_060_000)
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    expect(v.decode(current.encode(hb)).ok).toBe(true)
    expect(v.decode(recorded)).toEqual({ ok: false, reason: 'replayed' })
    expect(v.decode(current.encode(hb)).ok).toBe(true)
    // A receiver that restarted takes the recording once (it knows no run yet), then the real run for good.
    const fresh = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    expect(fresh.decode(recorded).ok).toBe(true)
    expect(fresh.decode(current.encode(hb)).ok).toBe(true)
    expect(fresh.decode(earlier.encode(hb))).toEqual({ ok: false, reason: 'replayed' })
    expect(fresh.decode(current.encode(hb)).ok).toBe(true)
  })

  it('a heartbeat sent as a state frame is malformed there and leaves the channel\'s run as it was', () => {
    const earlier = new Signer('lb-b', SECRET, 1_000_000)
    const recordedHeartbeat = earlier.encode(hb)
    const current = new Signer('lb-b', SECRET, 1_060_000)
    const state = new Verifier('lb-a', SECRET, MAX_DATAGRAM, ['state'])
    const frame = { k: 'state', full: true, parts: {} } as const
    expect(state.decode(current.encode(frame)).ok).toBe(true)
    expect(state.decode(recordedHeartbeat)).toEqual({ ok: false, reason: 'malformed' })
    expect(state.decode(current.encode(hb))).toEqual({ ok: false, reason: 'malformed' })
    expect(state.decode(current.encode(frame)).ok).toBe(true)
  })

  it('a peer whose clock went back across its restart is taken once it echoes one of our recent messages', () => {
    const us = new Signer('lb-a', SECRET, 5_000_000)
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM, ['hb'], us)
    const before = new Signer('lb-b', SECRET, 2_000_000)
    expect(v.decode(before.encode(hb)).ok).toBe(true)
    const after = new Signer('lb-b', SECRET, 1_000_000) // restarted with its clock set back
    // The restarted peer accepts our heartbeats (it knows no run of ours yet) and echoes them.
    const peerView = new Verifier('lb-b', SECRET, MAX_DATAGRAM, ['hb'], after)
    after.echo = () => peerView.lastSeen
    expect(v.decode(after.encode(hb))).toEqual({ ok: false, reason: 'replayed' })
    expect(peerView.decode(us.encode(hb)).ok).toBe(true)
    expect(v.decode(after.encode(hb)).ok).toBe(true)
    expect(v.decode(before.encode(hb))).toEqual({ ok: false, reason: 'replayed' })
    // An echo of a message of ours from long ago proves nothing: a run recorded then stays out.
    const stale = new Signer('lb-b', SECRET, 500_000)
    const staleView = new Verifier('lb-b', SECRET, MAX_DATAGRAM, ['hb'], stale)
    stale.echo = () => staleView.lastSeen
    expect(staleView.decode(us.encode(hb)).ok).toBe(true)
    const recorded = stale.encode(hb)
    for (let i = 0; i < 300; i++) us.encode(hb)
    expect(v.decode(recorded)).toEqual({ ok: false, reason: 'replayed' })
    expect(v.decode(after.encode(hb)).ok).toBe(true)
  })

  it('knows the peer by id: a second sender and our own id are unknown', () => {
    const v = new Verifier('lb-a', SECRET, MAX_DATAGRAM)
    expect(v.decode(new Signer('lb-b', SECRET).encode(hb)).ok).toBe(true)
    expect(v.decode(new Signer('lb-c', SECRET).encode(hb))).toEqual({ ok: false, reason: 'unknown-sender' })
    // Our own message looped back is dropped quietly; another node with our id is named, to be reported.
    const us = new Signer('lb-a', SECRET)
    expect(new Verifier('lb-a', SECRET, MAX_DATAGRAM, ['hb'], us).decode(us.encode(hb))).toEqual({ ok: false, reason: 'unknown-sender' })
    expect(new Verifier('lb-a', SECRET, MAX_DATAGRAM, ['hb'], us).decode(new Signer('lb-a', SECRET).encode(hb))).toEqual({ ok: false, reason: 'unknown-sender', claimed: 'lb-a' })
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
