// Pair scenarios 3 (SIGSTOP), 4-7 (witness and arbiter partitions) and 9 (healed dual-active):
// each node reaches the witness through its own relay, so one node can be cut alone.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { makePair, roleOf, startSampler, startSettled, type Pair } from '../../helpers/pair.js'
import { startRelay, type Relay } from '../../helpers/relay.js'
import { startRedis, type RedisServer } from '../../helpers/tcp.js'
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js'
import { waitFor } from '../../helpers/wait.js'

let upstream: TestUpstream
let witness: net.Server
let witnessPort: number
let pair: Pair | undefined
let relays: Relay[] = []

beforeAll(async () => {
  upstream = await startUpstream({ name: 'u1' })
  witness = net.createServer((s) => { s.on('error', () => {}); s.end() })
  await new Promise<void>((resolve) => { witness.listen(0, '127.0.0.1', () => { resolve() }) })
  witnessPort = (witness.address() as net.AddressInfo).port
})
afterAll(async () => {
  await upstream.close()
  await new Promise<void>((resolve) => { witness.close(() => { resolve() }) })
})
afterEach(async () => {
  await pair?.close()
  pair = undefined
  await Promise.all(relays.map(async (r) => { await r.close() }))
  relays = []
})

/** A pair whose nodes reach `target` through relays wa (A) and wb (B); `url` makes the witness string. */
async function pairWithWitness (target: number, url: (port: number) => string, extra: { onChange?: string } = {}): Promise<{ p: Pair, wa: Relay, wb: Relay }> {
  const wa = await startRelay({ port: target }, { udp: false })
  const wb = await startRelay({ port: target }, { udp: false })
  relays.push(wa, wb)
  const p = await makePair(upstream.port, { witness: url(wa.port), ...extra }, { witness: url(wb.port), ...extra })
  pair = p
  await startSettled(p)
  return { p, wa, wb }
}

function transitions (metrics: string): number {
  return [...metrics.matchAll(/^tandem_peer_transitions_total\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('pair with a TCP witness', () => {
  it('SIGSTOP 150 ms: no transition; 2 s: takeover, and the resumed node steps down without serving', async () => {
    const { p } = await pairWithWitness(witnessPort, (port) => `127.0.0.1:${port}`)
    const before = [transitions(await p.a.metrics()), transitions(await p.b.metrics())]
    const sampler = startSampler([p.a.listenPort, p.b.listenPort], { maxMs: 20_000 })
    p.a.kill('SIGSTOP')
    await sleep(150)
    p.a.kill('SIGCONT')
    await sleep(1000)
    expect([transitions(await p.a.metrics()), transitions(await p.b.metrics())]).toEqual(before)
    p.a.kill('SIGSTOP')
    await waitFor(async () => (await roleOf(p.b)) === 'active', 5000, 20, 'B takes over')
    await sleep(2000)
    p.a.kill('SIGCONT')
    await waitFor(async () => (await roleOf(p.a)) === 'standby', 5000, 20, 'A steps down').catch((err: unknown) => {
      console.log(p.a.run?.stdout.slice(-4000))
      throw err
    })
    await sleep(500)
    await sampler.stop()
    expect(sampler.dual()).toBe(0)
    expect(await roleOf(p.b)).toBe('active')
    expect((await p.b.status()).peer.term).toBeGreaterThan((await p.a.status()).peer.term - 1)
  })

  it('active cut from peer and witness: it stops before the standby starts (no overlap)', async () => {
    const { p, wa } = await pairWithWitness(witnessPort, (port) => `127.0.0.1:${port}`)
    const sampler = startSampler([p.a.listenPort, p.b.listenPort], { maxMs: 15_000 })
    await waitFor(() => sampler.samples.some((s) => s.answered.includes(0)), 5000, 10, 'A answering')
    wa.cut()
    p.ab.cut()
    p.ba.cut()
    await waitFor(async () => (await roleOf(p.b)) === 'active', 5000, 20, 'B active')
    await waitFor(async () => (await roleOf(p.a)) === 'fault', 5000, 20, 'A fault')
    await sleep(500)
    await sampler.stop()
    expect(sampler.dual()).toBe(0)
  })

  it('standby cut from peer and witness: the standby goes fault, the active stays', async () => {
    const { p, wb } = await pairWithWitness(witnessPort, (port) => `127.0.0.1:${port}`)
    const before = transitions(await p.a.metrics())
    wb.cut()
    p.ab.cut()
    p.ba.cut()
    await waitFor(async () => (await roleOf(p.b)) === 'fault', 5000, 20, 'B fault')
    await sleep(500)
    expect(await roleOf(p.a)).toBe('active')
    expect(transitions(await p.a.metrics())).toBe(before)
  })

  it('witness down with the link up: no transition; then the active dies: fault until the witness returns', async () => {
    const { p, wa, wb } = await pairWithWitness(witnessPort, (port) => `127.0.0.1:${port}`)
    const before = [transitions(await p.a.metrics()), transitions(await p.b.metrics())]
    wa.cut()
    wb.cut()
    await sleep(1500)
    expect([transitions(await p.a.metrics()), transitions(await p.b.metrics())]).toEqual(before)
    expect((await p.b.status()).peer.witness?.state).toBe('down')
    p.a.kill('SIGKILL')
    await waitFor(async () => (await roleOf(p.b)) === 'fault', 5000, 20, 'B fault')
    const back = Date.now()
    wb.heal()
    await waitFor(async () => (await roleOf(p.b)) === 'active', 5000, 10, 'B active')
    expect(Date.now() - back).toBeLessThan(1000 + 500)
  })

  it('pair link cut, both reach the witness: both serve (documented); healed: one steps down at once, the survivor re-runs onChange', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-onchange-'))
    const script = join(dir, 'notify.sh')
    writeFileSync(script, `#!/bin/sh\necho "$3 $1 $2" >> ${join(dir, 'log')}\n`, { mode: 0o755 })
    const { p } = await pairWithWitness(witnessPort, (port) => `127.0.0.1:${port}`, { onChange: script })
    p.ab.cut()
    p.ba.cut()
    await waitFor(async () => (await roleOf(p.b)) === 'active', 5000, 20, 'B active too')
    expect(await roleOf(p.a)).toBe('active')
    const healedAt = Date.now()
    p.ab.heal()
    p.ba.heal()
    // B took over last (newer term): A steps down, B stays and announces again.
    await waitFor(async () => (await roleOf(p.a)) === 'standby', 5000, 10, 'A steps down')
    expect(Date.now() - healedAt).toBeLessThan(1000)
    expect(await roleOf(p.b)).toBe('active')
    await waitFor(() => readFileSync(join(dir, 'log'), 'utf8').includes('lb-b active active'), 5000, 20, 'onChange re-run on B').catch((err: unknown) => {
      console.log(readFileSync(join(dir, 'log'), 'utf8'))
      throw err
    })
    const lines = readFileSync(join(dir, 'log'), 'utf8').trim().split('\n')
    expect(lines.filter((l) => l.startsWith('lb-a')).slice(0, 1)).toEqual(['lb-a active init'])
    expect(lines.filter((l) => l.startsWith('lb-a')).at(-1)).toBe('lb-a standby active')
    expect(lines.filter((l) => l.startsWith('lb-b')).slice(0, 2)).toEqual(['lb-b standby init', 'lb-b active standby'])
    expect(lines.filter((l) => l === 'lb-b active active').length).toBe(1)
  })
})

describe('pair with a Redis arbiter', () => {
  let redis: RedisServer
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => { await redis.close() })

  it('pair link cut, both reach Redis: exactly one serves throughout', async () => {
    const { p } = await pairWithWitness(redis.port, (port) => `redis://127.0.0.1:${port}`)
    await waitFor(async () => (await p.a.status()).peer.witness?.lease === true, 5000, 20, 'A holds the lease')
    const sampler = startSampler([p.a.listenPort, p.b.listenPort], { maxMs: 15_000 })
    await waitFor(() => sampler.samples.some((s) => s.answered.includes(0)), 5000, 10, 'A answering')
    const cutAt = Date.now()
    p.ab.cut()
    p.ba.cut()
    await sleep(2000)
    await sampler.stop()
    expect(sampler.dual()).toBe(0)
    expect(await roleOf(p.a)).toBe('active')
    expect(await roleOf(p.b)).not.toBe('active')
    // B never answered; A kept answering (a renewal slower than a heartbeat may cost a sample or two).
    expect(sampler.samples.filter((s) => s.answered.includes(1)).length).toBe(0)
    const after = sampler.samples.filter((s) => s.at > cutAt)
    expect(after.filter((s) => s.answered.length === 0).length).toBeLessThan(after.length / 10)
  })

  it('Redis down with the link up: nothing changes; then link cut too: both go to fault', async () => {
    const { p, wa, wb } = await pairWithWitness(redis.port, (port) => `redis://127.0.0.1:${port}`)
    const before = [transitions(await p.a.metrics()), transitions(await p.b.metrics())]
    wa.cut()
    wb.cut()
    await sleep(1500)
    expect([transitions(await p.a.metrics()), transitions(await p.b.metrics())]).toEqual(before)
    const sampler = startSampler([p.a.listenPort, p.b.listenPort], { maxMs: 15_000 })
    p.ab.cut()
    p.ba.cut()
    await waitFor(async () => (await roleOf(p.a)) === 'fault' && (await roleOf(p.b)) === 'fault', 5000, 20, 'both fault')
    await sampler.stop()
    expect(sampler.dual()).toBe(0)
  })

  it('the active dies: the standby takes the lease after it runs out', async () => {
    const { p } = await pairWithWitness(redis.port, (port) => `redis://127.0.0.1:${port}`)
    const sampler = startSampler([p.a.listenPort, p.b.listenPort], { maxMs: 15_000 })
    const killedAt = Date.now()
    p.a.kill('SIGKILL')
    await waitFor(() => sampler.firstAnswer(1, killedAt) !== undefined, 5000, 10, 'B answering')
    await sampler.stop()
    expect(sampler.dual()).toBe(0)
    expect((await p.b.status()).peer.witness?.lease).toBe(true)
  })
})
