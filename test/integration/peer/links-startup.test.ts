// Pair scenarios 8 (one-way loss, flapping, a second link), 10 (start-up wait, preempt) and 13
// (onChange order under flapping, a hung hook killed while heartbeats go on).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { makePair, roleOf, settled, startSampler, startSettled, type Pair } from '../../helpers/pair.js'
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js'
import { waitFor } from '../../helpers/wait.js'

let upstream: TestUpstream
let pair: Pair | undefined

beforeAll(async () => { upstream = await startUpstream({ name: 'u1' }) })
afterAll(async () => { await upstream.close() })
afterEach(async () => { await pair?.close(); pair = undefined })

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function transitions (metrics: string): number {
  return [...metrics.matchAll(/^tandem_peer_transitions_total\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
}

async function counts (p: Pair): Promise<number[]> {
  return [transitions(await p.a.metrics()), transitions(await p.b.metrics())]
}

/** ISO time of the first stdout line matching `re`, in ms. */
function logTime (stdout: string, re: RegExp): number | undefined {
  const line = stdout.split('\n').find((l) => re.test(l))
  const m = line === undefined ? null : /"time":"([^"]+)"/.exec(line)
  return m === null ? undefined : Date.parse(m[1] as string)
}

describe('pair links', () => {
  it('one link lost one way, then cut, while a second link stays up: no transition', async () => {
    pair = await makePair(upstream.port, {}, {}, 2)
    await startSettled(pair)
    const before = await counts(pair)
    pair.abs[0]!.cut()
    await sleep(1500)
    pair.bas[0]!.cut()
    await sleep(1500)
    expect(await counts(pair)).toEqual(before)
    const b = await pair.b.status()
    expect(b.peer.links.map((l) => l.up)).toEqual([false, true])
    expect(b.peer.other?.up).toBe(true)
  })

  // Regression: the active's state connection has no timeout once up (the standby only listens
  // on it), so a link that blackholed it kept the pair out of sync for as long as it lasted,
  // though heartbeats came over the second link (step-down then refused: "not in sync").
  it('a blackholed link under the state connection: the active dials the next link and the pair is in sync again', async () => {
    pair = await makePair(upstream.port, {}, {}, 2)
    await startSettled(pair)
    const before = await counts(pair)
    pair.abs[0]!.blackhole()
    pair.bas[0]!.blackhole()
    // The standby closes a silent state connection after 5 s; the active drops its own 5 s after
    // it came up if the standby says it is out of sync; then it connects over link 1.
    await waitFor(async () => !(await pair!.b.status()).peer.inSync, 10_000, 50, 'B out of sync')
    await waitFor(async () => (await pair!.b.status()).peer.inSync && (await pair!.a.status()).peer.inSync, 15_000, 50, 'in sync again over link 1')
    expect(await counts(pair)).toEqual(before)
    expect((await pair.a.post('/api/peer/step-down')).status).toBe(200)
  }, 40_000)

  it('a link flapping every 300 ms for 10 s: no transition (heartbeat 200 ms, deadAfter 4)', async () => {
    pair = await makePair(upstream.port)
    await startSettled(pair)
    const before = await counts(pair)
    for (let i = 0; i < 17; i++) {
      if (i % 2 === 0) { pair.ab.cut(); pair.ba.cut() } else { pair.ab.heal(); pair.ba.heal() }
      await sleep(300)
    }
    pair.ab.heal()
    pair.ba.heal()
    await sleep(500)
    expect(await counts(pair)).toEqual(before)
    await settled(pair)
  })
})

describe('pair start-up and preempt', () => {
  it('a node started alone waits deadAfter × heartbeat before it takes the role', async () => {
    pair = await makePair(upstream.port)
    await pair.b.start()
    await waitFor(async () => (await roleOf(pair!.b)) === 'active', 10_000, 20, 'B active alone')
    // The log is written asynchronously: the status may say active before the line is out.
    await waitFor(() => /"to":"active"/.test(pair!.b.run!.stdout), 5000, 20, 'the role change logged')
    const out = pair.b.run!.stdout
    const started = logTime(out, /peer started/) as number
    const active = logTime(out, /"to":"active"/) as number
    expect(active - started).toBeGreaterThanOrEqual(4 * 200 - 5)
  })

  it('preempt false: a recovered higher-priority node stays standby', async () => {
    pair = await makePair(upstream.port)
    await startSettled(pair)
    pair.a.kill('SIGKILL')
    await pair.a.exited()
    await waitFor(async () => (await roleOf(pair!.b)) === 'active', 10_000, 20, 'B active')
    await pair.a.start()
    await waitFor(async () => (await pair!.a.status()).peer.inSync, 10_000, 20, 'A in sync')
    await sleep(1000)
    expect(await roleOf(pair.a)).toBe('standby')
    expect(await roleOf(pair.b)).toBe('active')
  })

  it('preempt true: the higher-priority node takes the role back once in sync, with no dual answer', async () => {
    pair = await makePair(upstream.port, { preempt: true }, { preempt: true })
    await startSettled(pair)
    pair.a.kill('SIGKILL')
    await pair.a.exited()
    await waitFor(async () => (await roleOf(pair!.b)) === 'active', 10_000, 20, 'B active')
    const sampler = startSampler([pair.a.listenPort, pair.b.listenPort], { maxMs: 20_000 })
    await pair.a.start()
    await waitFor(async () => (await roleOf(pair!.a)) === 'active', 10_000, 20, 'A active again')
    await sleep(300)
    await sampler.stop()
    expect(sampler.dual()).toBe(0)
    const backAt = sampler.firstAnswer(0, 0) as number
    expect(sampler.longestGap(Math.max(backAt - 2000, sampler.samples[0]!.at), backAt)).toBeLessThan(1000)
    expect(await roleOf(pair.b)).toBe('standby')
  })
})

describe('pair onChange', () => {
  it('calls follow the transitions in order under flapping; a hung call is killed and heartbeats go on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-onchange-'))
    const script = join(dir, 'notify.sh')
    // A's first call hangs (killed at onChangeTimeout 1s); every call appends "ID NEW OLD".
    writeFileSync(script, `#!/bin/sh\necho "$3 $1 $2" >> ${join(dir, 'log')}\nif [ "$3" = lb-a ] && [ "$2" = init ]; then sleep 30; fi\n`, { mode: 0o755 })
    pair = await makePair(upstream.port, { onChange: script, onChangeTimeout: '1s' }, { onChange: script, onChangeTimeout: '1s' })
    await startSettled(pair)
    const before = await counts(pair)
    await waitFor(() => /onChange killed after onChangeTimeout/.test(pair!.a.run!.stdout), 5000, 20, 'hung call killed')
    expect(await counts(pair)).toEqual(before)
    // Flap the role: step-downs back and forth.
    for (let i = 0; i < 4; i++) {
      const active = i % 2 === 0 ? pair.a : pair.b
      const standby = i % 2 === 0 ? pair.b : pair.a
      await waitFor(async () => (await active.status()).peer.inSync && (await standby.status()).peer.inSync, 10_000, 20, 'in sync')
      expect((await active.post('/api/peer/step-down')).status).toBe(200)
      await waitFor(async () => (await roleOf(standby)) === 'active', 5000, 20, 'hand-over')
    }
    await sleep(500)
    const lines = readFileSync(join(dir, 'log'), 'utf8').trim().split('\n')
    for (const id of ['lb-a', 'lb-b']) {
      const mine = lines.filter((l) => l.startsWith(id + ' ')).map((l) => l.split(' '))
      expect(mine[0]?.[2]).toBe('init')
      // Each call's OLD role is the previous call's NEW role: in order, none lost, none overlapping.
      for (let i = 1; i < mine.length; i++) expect(mine[i]?.[2], `${id} call ${i}`).toBe(mine[i - 1]?.[1])
      expect(mine.length).toBe(5)
    }
  })
})
