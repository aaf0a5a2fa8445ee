// Timing: run under the shared lock (flock /tmp/tandem-heavy.lock …). Margins are wide; the
// exact figures are in the unit tests (fake clock) and bench/ratelimit.ts.
import { Agent, request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'

let upstream: TestUpstream | undefined
let proxy: RunningTandem | undefined
afterEach(async () => {
  await proxy?.stop()
  await upstream?.close()
})

describe('sustained accuracy', () => {
  it('3 s at twice the rate: admitted within ±10% of rate × 3 + burst', async () => {
    const rate = 50
    const burst = 20
    upstream = await startUpstream({ name: 'u' })
    proxy = await startProxy(httpConfig({
      servers: [upstream.address],
      listener: '    rateLimit: api',
      top: `rateLimits:\n  api: { key: client-ip, rate: ${rate}/s, burst: ${burst} }`,
    }))
    const agent = new Agent({ connections: 16 })
    const url = proxy.url() + '/'
    let admitted = 0
    let denied = 0
    const pending: Array<Promise<void>> = []
    let lastSent = 0
    // Paced by the wall clock: request n goes at n / (2 × rate) s, catching up after a stall.
    const start = performance.now()
    const total = 2 * rate * 3
    for (let n = 0; n < total; n++) {
      const due = start + (n * 1000) / (2 * rate)
      const wait = due - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      lastSent = performance.now()
      pending.push(request(url, { dispatcher: agent }).then(async (res) => {
        await res.body.text()
        if (res.statusCode === 200) admitted++
        else if (res.statusCode === 429) denied++
      }))
    }
    await Promise.all(pending)
    const elapsed = (performance.now() - start) / 1000
    await agent.close()
    expect(admitted + denied).toBe(total)
    // rate × 3 s + burst, over the span actually covered (a stalled machine stretches it).
    const span = Math.max(3, (lastSent - start) / 1000)
    const expected = rate * span + burst
    expect(admitted).toBeGreaterThanOrEqual(Math.floor(expected * 0.9))
    expect(admitted).toBeLessThanOrEqual(Math.ceil(expected * 1.1))
    expect(upstream.count).toBe(admitted)
    expect(elapsed).toBeLessThan(10)
  })
})
