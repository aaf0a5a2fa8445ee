// Audit defect 2: state changes reached the standby only with the next heartbeat, so a takeover
// lost up to a heartbeat of them, even a planned one (step-down, SIGTERM): a client spent its
// rate-limit bucket on the active and got a fresh one on the new active. Each case starts right
// after a heartbeat reached B (the next is most of a second away), so no heartbeat can carry the
// changes: they must go out as they happen, and before a hand-over.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { get, makePair, roleOf, startSettled, type Pair, type PairNode } from '../../helpers/pair.js'
import { closedPort, startUpstream, type TestUpstream } from '../../helpers/upstream.js'
import { waitFor } from '../../helpers/wait.js'

let upstream: TestUpstream
let pair: Pair | undefined

beforeAll(async () => { upstream = await startUpstream({ name: 'u1' }) })
afterAll(async () => { await upstream.close() })
afterEach(async () => { await pair?.close(); pair = undefined })

const limit = { rate: '1/m', burst: 5 }
const timing = { heartbeat: '1s', deadAfter: 3, rateLimit: limit }

async function settledPair (): Promise<Pair> {
  const spare = `127.0.0.1:${await closedPort()}`
  const p = await makePair(upstream.port, { ...timing, moreServers: [spare] }, { ...timing, moreServers: [spare] })
  await startSettled(p)
  return p
}

/** Waits until B has just heard A's heartbeat, so the next one is most of a heartbeat away; returns when. */
async function justAfterHeartbeat (p: Pair): Promise<number> {
  await waitFor(async () => ((await p.b.status()).peer.other?.lastHeartbeatAgeMs ?? Number.POSITIVE_INFINITY) < 150, 10_000, 5, 'a heartbeat just heard on B')
  return Date.now()
}

/** Spends A's bucket: five pass, the sixth is refused. */
async function exhaust (node: PairNode): Promise<void> {
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await get(`http://127.0.0.1:${node.listenPort}/`)).status)
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
}

/** The new active's first answers once its listener is bound (an election role precedes the bind). */
async function answersOf (node: PairNode, n: number): Promise<number[]> {
  await waitFor(async () => (await roleOf(node)) === 'active', 10_000, 5, `${node.spec.id} active`)
  let first = 0
  await waitFor(async () => {
    first = await get(`http://127.0.0.1:${node.listenPort}/`).then((r) => r.status, () => 0)
    return first !== 0
  }, 5000, 5, `${node.spec.id} answering`)
  const out = [first]
  for (let i = 1; i < n; i++) out.push((await get(`http://127.0.0.1:${node.listenPort}/`)).status)
  return out
}

describe('state reaches the standby as it changes, and before a hand-over', () => {
  it('step-down right after the bucket is spent: the new active refuses at once (429)', async () => {
    pair = await settledPair()
    await justAfterHeartbeat(pair)
    await exhaust(pair.a)
    expect((await pair.a.post('/api/peer/step-down')).status).toBe(200)
    expect(await answersOf(pair.b, 2)).toEqual([429, 429])
  }, 60_000)

  it('SIGTERM right after the bucket is spent: the new active refuses at once (429)', async () => {
    pair = await settledPair()
    await justAfterHeartbeat(pair)
    await exhaust(pair.a)
    pair.a.kill('SIGTERM')
    expect(await answersOf(pair.b, 2)).toEqual([429, 429])
    expect(await pair.a.exited()).toBe(0)
  }, 60_000)

  it('SIGKILL once the changes reached the standby, before any heartbeat could carry them: 429', async () => {
    pair = await settledPair()
    const from = await justAfterHeartbeat(pair)
    await exhaust(pair.a)
    // An admin change after the requests: state travels in order, so once B shows it, B holds
    // the bucket too.
    const spare = (await pair.a.status()).upstreams[0]?.servers[1]?.address as string
    expect((await pair.a.post(`/api/upstreams/web/servers/${encodeURIComponent(spare)}/drain`)).status).toBe(200)
    let heardAt = Number.NaN
    await waitFor(async () => {
      const asked = Date.now()
      const s = await pair!.b.status()
      if (s.upstreams[0]?.servers[1]?.state !== 'drain') return false
      heardAt = asked - (s.peer.other?.lastHeartbeatAgeMs ?? Number.NaN)
      return true
    }, 5000, 5, 'drain on B')
    // B still last heard the heartbeat from before the requests: no heartbeat carried them.
    expect(heardAt).toBeLessThan(from)
    pair.a.kill('SIGKILL')
    expect(await answersOf(pair.b, 2)).toEqual([429, 429])
    expect((await pair.b.status()).upstreams[0]?.servers[1]?.state).toBe('drain')
  }, 60_000)
})
