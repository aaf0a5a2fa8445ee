import dc from 'node:diagnostics_channel'
import { afterEach, beforeEach, describe, it, expect, vi } from 'vitest'
import { HealthChecker, startHealthChecks, type HealthTarget, type Probe } from '../../../src/health/active.js'
import type { ProbeResult } from '../../../src/health/probes.js'
import type { HealthConfig, ServerConfig, UpstreamConfig } from '../../../src/config/types.js'
import { Server } from '../../../src/upstream/server.js'
import type { HealthCheckResult } from '../../../src/observability/events.js'

const health: HealthConfig = {
  type: 'tcp', path: '/', expectStatus: [200, 399], interval: 100, timeout: 50, rise: 2, fall: 3,
}

function serverConfig (n: number): ServerConfig {
  return { text: `10.0.0.${n}:80`, host: `10.0.0.${n}`, port: 80, weight: 1, backup: false, maxConnections: 0 }
}

interface FakeUpstream extends HealthTarget {
  calls: Array<[string, boolean]>
}

function fakeUpstream (name: string, h: HealthConfig | undefined, count = 1): FakeUpstream {
  const servers = Array.from({ length: count }, (_, i) => serverConfig(i + 1))
  const config: UpstreamConfig = {
    name, balance: 'round-robin', servers, connectTimeout: 1000, retries: 0, slowStart: 0,
    ...(h === undefined ? {} : { health: h }),
  }
  const calls: Array<[string, boolean]> = []
  return {
    name,
    config,
    servers: servers.map((s) => new Server(s)),
    calls,
    setHealth (server: Server, healthy: boolean) {
      calls.push([server.address, healthy])
      server.healthy = healthy
    },
  }
}

/** A probe whose results the test hands out one by one. */
function scriptedProbe (): { probe: Probe, calls: Array<{ server: string, signal: AbortSignal }>, settle (r: ProbeResult): void } {
  const calls: Array<{ server: string, signal: AbortSignal }> = []
  const pending: Array<(r: ProbeResult) => void> = []
  return {
    calls,
    probe: async (server, _cfg, signal) => {
      calls.push({ server: server.address, signal })
      return await new Promise<ProbeResult>((resolve) => { pending.push(resolve) })
    },
    settle (r) {
      const next = pending.shift()
      if (next === undefined) throw new Error('no probe in flight')
      next(r)
    },
  }
}

const clock = { now: () => Date.now() }
const pass: ProbeResult = { ok: true, detail: 'status 200', ms: 1 }
const fail: ProbeResult = { ok: false, detail: 'ECONNREFUSED', ms: 1 }

describe('HealthChecker', () => {
  beforeEach(() => { vi.useFakeTimers({ now: 1_000_000 }) })
  afterEach(() => { vi.useRealTimers() })

  it('does nothing without a health config', () => {
    const up = fakeUpstream('plain', undefined)
    const checker = new HealthChecker(up, { clock, random: () => 0.5 })
    checker.start()
    expect(vi.getTimerCount()).toBe(0)
    checker.stop()
  })

  it('runs the first check within interval/10, then every interval ±10% after each settles', async () => {
    const script = scriptedProbe()
    const randoms = [0.5, 0, 0.999]
    const up = fakeUpstream('api', health)
    const checker = new HealthChecker(up, { clock, random: () => randoms.shift() ?? 0.5, probe: script.probe })
    checker.start()
    // First delay: 0.5 × 100 × 0.1 = 5 ms.
    await vi.advanceTimersByTimeAsync(4)
    expect(script.calls.length).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(script.calls.length).toBe(1)
    script.settle(pass)
    // Next delay with random 0: 100 × 0.9 = 90 ms after settling.
    await vi.advanceTimersByTimeAsync(89)
    expect(script.calls.length).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(script.calls.length).toBe(2)
    script.settle(pass)
    // random 0.999: 100 × (1 + 0.1 × 0.998) = 109.98 ms, truncated to 109 by setTimeout.
    await vi.advanceTimersByTimeAsync(108)
    expect(script.calls.length).toBe(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(script.calls.length).toBe(3)
    checker.stop()
  })

  it('keeps at most one probe in flight per server', async () => {
    const script = scriptedProbe()
    const up = fakeUpstream('api', health, 2)
    const checker = new HealthChecker(up, { clock, random: () => 0.5, probe: script.probe })
    checker.start()
    await vi.advanceTimersByTimeAsync(1000)
    expect(script.calls.map((c) => c.server)).toEqual(['10.0.0.1:80', '10.0.0.2:80'])
    script.settle(pass)
    await vi.advanceTimersByTimeAsync(100)
    expect(script.calls.map((c) => c.server)).toEqual(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.1:80'])
    checker.stop()
  })

  it('feeds rise/fall and calls setHealth only on a change; records lastCheck and publishes', async () => {
    const events: HealthCheckResult[] = []
    const onEvent = (msg: unknown): void => { events.push(msg as HealthCheckResult) }
    dc.subscribe('tandem:health:check', onEvent)
    try {
      const results = [fail, fail, fail, pass, pass, pass, fail, fail, fail]
      const up = fakeUpstream('api', health)
      const server = up.servers[0]!
      const probe: Probe = async () => results.shift() ?? pass
      const checker = new HealthChecker(up, { clock, random: () => 0.5, probe })
      checker.start()
      await vi.advanceTimersByTimeAsync(5)
      // A new server starts up with no failure counted: it takes `fall` (3) failures to go down.
      expect(up.calls).toEqual([])
      expect(server.lastCheck).toEqual({ at: 1_000_005, ok: false, detail: 'ECONNREFUSED' })
      await vi.advanceTimersByTimeAsync(100) // fail
      expect(up.calls).toEqual([])
      await vi.advanceTimersByTimeAsync(100) // third failure in a row
      expect(up.calls).toEqual([['10.0.0.1:80', false]])
      await vi.advanceTimersByTimeAsync(100) // pass
      expect(up.calls).toEqual([['10.0.0.1:80', false]])
      await vi.advanceTimersByTimeAsync(100) // pass: rise 2 reached
      expect(up.calls).toEqual([['10.0.0.1:80', false], ['10.0.0.1:80', true]])
      await vi.advanceTimersByTimeAsync(300) // pass, fail, fail
      expect(up.calls.length).toBe(2)
      await vi.advanceTimersByTimeAsync(100) // third failure in a row
      expect(up.calls).toEqual([['10.0.0.1:80', false], ['10.0.0.1:80', true], ['10.0.0.1:80', false]])
      expect(server.lastCheck).toEqual({ at: 1_000_805, ok: false, detail: 'ECONNREFUSED' })
      checker.stop()
      expect(events.filter((e) => e.upstream === 'api').map((e) => e.ok))
        .toEqual([false, false, false, true, true, true, false, false, false])
      expect(events[0]).toEqual({ upstream: 'api', server: '10.0.0.1:80', ok: false, detail: 'ECONNREFUSED' })
    } finally {
      dc.unsubscribe('tandem:health:check', onEvent)
    }
  })

  it('starts a server already unhealthy as down: it needs `rise` passes', async () => {
    const up = fakeUpstream('api', health)
    up.servers[0]!.healthy = false
    const checker = new HealthChecker(up, { clock, random: () => 0.5, probe: async () => pass })
    checker.start()
    await vi.advanceTimersByTimeAsync(5)
    expect(up.calls).toEqual([])
    await vi.advanceTimersByTimeAsync(100)
    expect(up.calls).toEqual([['10.0.0.1:80', true]])
    checker.stop()
  })

  it('follows health set by someone else before applying a result', async () => {
    const up = fakeUpstream('api', health)
    const server = up.servers[0]!
    const checker = new HealthChecker(up, { clock, random: () => 0.5, probe: async () => pass })
    checker.start()
    await vi.advanceTimersByTimeAsync(5)
    server.healthy = false // e.g. peer sync
    await vi.advanceTimersByTimeAsync(100)
    expect(up.calls).toEqual([])
    await vi.advanceTimersByTimeAsync(100)
    expect(up.calls).toEqual([['10.0.0.1:80', true]])
    checker.stop()
  })

  it('counts a probe that throws as a failure', async () => {
    const up = fakeUpstream('api', health)
    const checker = new HealthChecker(up, { clock, random: () => 0.5, probe: async () => { throw new Error('boom') } })
    checker.start()
    await vi.advanceTimersByTimeAsync(5)
    expect(up.servers[0]!.lastCheck).toEqual({ at: 1_000_005, ok: false, detail: 'boom' })
    expect(up.calls).toEqual([])
    await vi.advanceTimersByTimeAsync(200)
    expect(up.calls).toEqual([['10.0.0.1:80', false]])
    checker.stop()
  })

  it('stop() clears every timer, aborts the probe in flight and ignores its result', async () => {
    const script = scriptedProbe()
    const up = fakeUpstream('api', health, 3)
    const checker = new HealthChecker(up, { clock, random: () => 0.5, probe: script.probe })
    checker.start()
    expect(vi.getTimerCount()).toBe(3)
    await vi.advanceTimersByTimeAsync(5)
    expect(script.calls.length).toBe(3)
    script.settle(fail)
    await vi.advanceTimersByTimeAsync(0)
    expect(vi.getTimerCount()).toBe(1) // the settled server's next check
    checker.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(script.calls.map((c) => c.signal.aborted)).toEqual([true, true, true])
    script.settle(fail)
    script.settle(fail)
    await vi.advanceTimersByTimeAsync(1000)
    expect(up.calls).toEqual([]) // one failure of three, and nothing after stop()
    expect(up.servers[0]!.lastCheck?.ok).toBe(false)
    expect(up.servers[1]!.lastCheck).toBeUndefined()
    expect(vi.getTimerCount()).toBe(0)
    expect(script.calls.length).toBe(3)
  })

  it('can start again after stop()', async () => {
    const script = scriptedProbe()
    const up = fakeUpstream('api', health)
    const checker = new HealthChecker(up, { clock, random: () => 0.5, probe: script.probe })
    checker.start()
    checker.start() // idempotent while running
    expect(vi.getTimerCount()).toBe(1)
    checker.stop()
    checker.start()
    await vi.advanceTimersByTimeAsync(5)
    expect(script.calls.length).toBe(1)
    checker.stop()
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('startHealthChecks', () => {
  beforeEach(() => { vi.useFakeTimers({ now: 0 }) })
  afterEach(() => { vi.useRealTimers() })

  it('checks only upstreams with health, and stop() stops them all', async () => {
    const probed: string[] = []
    const probe: Probe = async (server) => { probed.push(server.address); return pass }
    const a = fakeUpstream('a', health, 2)
    const b = fakeUpstream('b', undefined, 2)
    const c = fakeUpstream('c', { ...health, interval: 1000 }, 1)
    const handle = startHealthChecks([a, b, c], { clock, random: () => 0.5, probe })
    expect(vi.getTimerCount()).toBe(3)
    await vi.advanceTimersByTimeAsync(50)
    expect(probed).toEqual(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.1:80'])
    expect(b.servers.every((s) => s.lastCheck === undefined)).toBe(true)
    handle.stop()
    expect(vi.getTimerCount()).toBe(0)
  })
})
