// Pair scenarios 11 (bad messages, wrong secret) and 12 (state carried over a takeover).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Signer, type Heartbeat } from '../../../src/peer/messages.js'
import { makePair, roleOf, settled, startSettled, SECRET, type Pair } from '../../helpers/pair.js'
import { closedPort, startUpstream, type TestUpstream } from '../../helpers/upstream.js'
import { waitFor } from '../../helpers/wait.js'
import { get } from '../../helpers/pair.js'

let upstream: TestUpstream
let pair: Pair | undefined

beforeAll(async () => { upstream = await startUpstream({ name: 'u1' }) })
afterAll(async () => { await upstream.close() })
afterEach(async () => { await pair?.close(); pair = undefined })


function metric (text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => '\\' + c)} (\\S+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

const hb: Heartbeat = { k: 'hb', term: 99, prio: 250, preempt: true, role: 'active', starting: false, handover: false, yielding: false, inSync: true, conflict: false }

describe('pair messages', () => {
  it('a wrong secret is reported on both nodes within a second (status, error log, metric)', async () => {
    pair = await makePair(upstream.port, {}, { secret: 'another-secret-0123456789' })
    await Promise.all([pair.a.start(), pair.b.start()])
    const started = Date.now()
    await waitFor(async () => {
      const [a, b] = await Promise.all([pair!.a.status(), pair!.b.status()])
      return a.peer.configFault !== null && b.peer.configFault !== null
    }, 10_000, 20, 'config fault on both nodes')
    // Both start listening at once; the first heartbeats cross within a heartbeat of the later start.
    expect(Date.now() - started).toBeLessThan(2000)
    const a = await pair.a.status()
    expect(a.peer.configFault).toMatch(/lb-b .*fails? (its )?authentication \(secret mismatch\?\)/)
    expect((await pair.b.status()).peer.configFault).toMatch(/secret mismatch/)
    await waitFor(async () => metric(await pair!.a.metrics(), 'tandem_peer_messages_rejected_total{reason="unauthenticated"}') > 0, 5000, 50, 'rejections counted on A')
    await waitFor(() => /"level":"error".*secret mismatch/.test(pair!.a.run!.stdout) && /"level":"error".*secret mismatch/.test(pair!.b.run!.stdout), 5000, 20, 'error lines')
  })

  it('two nodes configured with the same peer.id are reported on both nodes (status, error log)', async () => {
    pair = await makePair(upstream.port, {}, { id: 'lb-a' })
    await Promise.all([pair.a.start(), pair.b.start()])
    await waitFor(async () => {
      const [a, b] = await Promise.all([pair!.a.status(), pair!.b.status()])
      return a.peer.configFault !== null && b.peer.configFault !== null
    }, 10_000, 20, 'config fault on both nodes')
    for (const n of [pair.a, pair.b]) expect((await n.status()).peer.configFault).toBe("another node sends as this node's id lb-a: each node of the pair needs its own peer.id")
    await waitFor(() => /"level":"error".*own peer.id/.test(pair!.a.run!.stdout) && /"level":"error".*own peer.id/.test(pair!.b.run!.stdout), 5000, 20, 'error lines')
  })

  it('replayed, random, oversized and unknown-sender messages are dropped and counted; no role change', async () => {
    pair = await makePair(upstream.port)
    await startSettled(pair)
    const before = await pair.b.metrics()
    const captured = pair.ab.last as Buffer
    expect(captured).toBeInstanceOf(Buffer)
    expect(captured.length).toBeGreaterThan(32) // a signed heartbeat: body plus a 32-byte MAC at least
    for (let i = 0; i < 20; i++) {
      pair.ab.inject(captured)
      pair.ab.inject(Buffer.from(Array.from({ length: 200 }, () => Math.floor(Math.random() * 256))))
      pair.ab.inject(Buffer.alloc(5000, 1))
      pair.ab.inject(new Signer('lb-x', SECRET).encode(hb))
      // Paced: a burst of datagrams overflows the socket buffer and is lost, not rejected.
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await waitFor(async () => {
      const m = await pair!.b.metrics()
      return metric(m, 'tandem_peer_messages_rejected_total{reason="replayed"}') >= 15 &&
        metric(m, 'tandem_peer_messages_rejected_total{reason="malformed"}') >= 15 &&
        metric(m, 'tandem_peer_messages_rejected_total{reason="oversize"}') >= 15 &&
        metric(m, 'tandem_peer_messages_rejected_total{reason="unknown-sender"}') >= 15
    }, 5000, 25, 'rejections counted')
    const after = await pair.b.metrics()
    const transitions = (t: string): number => [...t.matchAll(/^tandem_peer_transitions_total\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
    expect(transitions(after)).toBe(transitions(before))
    expect(await roleOf(pair.b)).toBe('standby')
    expect(await roleOf(pair.a)).toBe('active')
    expect((await pair.b.status()).peer.configFault).toBeNull()
    // Logged once per burst, not once per message.
    expect(pair.b.run!.stdout.match(/peer message dropped/g)?.length ?? 0).toBeLessThanOrEqual(4)
  })
})

describe('pair state', () => {
  it('drain and ejections carry over a takeover; a restarted standby resyncs', async () => {
    const dead = await closedPort()
    const extra = 'passive: { failures: 1, ejectFor: 60s }\nretries: 1'
    const more = [`127.0.0.1:${dead}`]
    pair = await makePair(upstream.port, { upstreamExtra: extra, moreServers: more }, { upstreamExtra: extra, moreServers: more })
    await startSettled(pair)
    const live = `127.0.0.1:${upstream.port}`
    // A's traffic ejects the dead server (one failure, then the retry reaches the live one).
    await waitFor(async () => {
      expect((await get(`http://127.0.0.1:${pair!.a.listenPort}/`)).status).toBe(200)
      return (await pair!.a.status()).upstreams[0]?.servers[1]?.state === 'down'
    }, 5000, 10, 'dead server ejected on A')
    await waitFor(async () => (await pair!.b.status()).upstreams[0]?.servers[1]?.state === 'down', 5000, 25, 'ejection on B')
    expect((await pair.a.post(`/api/upstreams/web/servers/${encodeURIComponent(live)}/drain`)).status).toBe(200)
    await waitFor(async () => (await pair!.b.status()).upstreams[0]?.servers[0]?.state === 'drain', 5000, 25, 'drain on B')
    // Restart B: it resyncs from a full snapshot.
    pair.b.kill('SIGKILL')
    await pair.b.exited()
    await pair.b.start()
    await waitFor(async () => (await pair!.b.status()).peer.inSync, 10_000, 25, 'B in sync again')
    expect((await pair.b.status()).upstreams[0]?.servers[0]?.state).toBe('drain')
    pair.a.kill('SIGKILL')
    await waitFor(async () => (await roleOf(pair!.b)) === 'active', 5000, 25, 'B active')
    expect((await pair.b.status()).upstreams[0]?.servers[0]?.state).toBe('drain')
    expect((await pair.b.status()).upstreams[0]?.servers[1]?.state).toBe('down')
    // A drained server takes no new request on B either: no server left → 503.
    expect((await get(`http://127.0.0.1:${pair.b.listenPort}/`)).status).toBe(503)
  })

  it('a spent rate-limit bucket stays spent after a takeover: the new active answers 429', async () => {
    const limit = { rate: '1/m', burst: 5 }
    pair = await makePair(upstream.port, { rateLimit: limit }, { rateLimit: limit })
    await startSettled(pair)
    const url = `http://127.0.0.1:${pair.a.listenPort}/`
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await get(url)).status)
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
    // Bucket changes travel with the next heartbeats; nothing on B shows them, so give it five
    // heartbeats (200 ms each) before A dies.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    pair.a.kill('SIGKILL')
    await waitFor(async () => (await roleOf(pair!.b)) === 'active', 5000, 25, 'B active')
    const after = await get(`http://127.0.0.1:${pair.b.listenPort}/`)
    expect(after.status).toBe(429)
  })
})
