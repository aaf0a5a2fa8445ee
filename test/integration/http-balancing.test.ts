import { afterEach, describe, expect, it } from 'vitest'
import { Agent, request } from 'undici'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { waitFor } from '../helpers/wait.js'

let upstreams: TestUpstream[] = []
let proxy: RunningTandem | undefined
let agent: Agent | undefined

afterEach(async () => {
  await agent?.close()
  agent = undefined
  await proxy?.stop()
  proxy = undefined
  await Promise.all(upstreams.map(async (u) => { await u.close() }))
  upstreams = []
})

function yaml (balance: string, servers: string[]): string {
  return httpConfig({ servers, upstream: `    balance: ${balance}` })
}

/** `clients` concurrent loops of sequential requests until `until()` says stop. */
async function load (url: string, clients: number, until: () => boolean, onBody?: (b: string) => void): Promise<number> {
  agent ??= new Agent({ connections: clients })
  let errors = 0
  await Promise.all(Array.from({ length: clients }, async () => {
    while (!until()) {
      const res = await request(url, { dispatcher: agent })
      const body = await res.body.text()
      if (res.statusCode !== 200) errors++
      onBody?.(body)
    }
  }))
  return errors
}

describe('balancing through real upstreams', () => {
  it('least-connections sends > 80% to the fast server when the other holds requests 300 ms', async () => {
    const slow = await startUpstream({ name: 'slow', delayMs: 300 })
    const fast = await startUpstream({ name: 'fast' })
    upstreams = [slow, fast]
    proxy = await startProxy(yaml('least-connections', [slow.address, fast.address]))
    const end = Date.now() + 3000
    const errors = await load(proxy.url() + '/', 20, () => Date.now() > end)
    expect(errors).toBe(0)
    const total = slow.count + fast.count
    expect(fast.count / total).toBeGreaterThan(0.8)
  })

  it('response-time: a server 40 ms slower gets < 15%, and > 25% again within 10 s once fast', async () => {
    const a = await startUpstream({ name: 'a' })
    const b = await startUpstream({ name: 'b' })
    const slow = await startUpstream({ name: 'slow', delayMs: 40 })
    upstreams = [a, b, slow]
    proxy = await startProxy(yaml('response-time', [a, b, slow].map((u) => u.address)))
    // Warm up so every server has samples, then measure.
    let end = Date.now() + 1000
    await load(proxy.url() + '/', 8, () => Date.now() > end)
    const before = { a: a.count, b: b.count, slow: slow.count }
    end = Date.now() + 3000
    expect(await load(proxy.url() + '/', 8, () => Date.now() > end)).toBe(0)
    const got = { a: a.count - before.a, b: b.count - before.b, slow: slow.count - before.slow }
    expect(got.slow / (got.a + got.b + got.slow)).toBeLessThan(0.15)

    slow.setDelay(0)
    const recovered = Date.now()
    let window: string[] = []
    let share = 0
    const stop = (): boolean => share > 0.25 || Date.now() - recovered > 10_000
    await load(proxy.url() + '/', 8, stop, (body) => {
      window.push(body)
      if (window.length >= 300) {
        share = window.filter((x) => x === 'slow').length / window.length
        window = []
      }
    })
    expect(share).toBeGreaterThan(0.25)
    expect(Date.now() - recovered).toBeLessThan(10_500)
  })

  it('backup servers get traffic only while no primary is up', async () => {
    const primary = await startUpstream({ name: 'primary' })
    const backup = await startUpstream({ name: 'backup' })
    upstreams = [primary, backup]
    proxy = await startProxy(yaml('round-robin', [primary.address, `{ address: ${backup.address}, backup: true }`]))
    for (let i = 0; i < 20; i++) expect(await (await request(proxy.url() + '/')).body.text()).toBe('primary')
    const up = proxy.runtime.upstreams.get('web')!
    up.setHealth(up.servers[0]!, false)
    for (let i = 0; i < 10; i++) expect(await (await request(proxy.url() + '/')).body.text()).toBe('backup')
    up.setHealth(up.servers[0]!, true)
    for (let i = 0; i < 10; i++) expect(await (await request(proxy.url() + '/')).body.text()).toBe('primary')
    expect([primary.count, backup.count]).toEqual([30, 10])
  })

  it('respects a server maxConnections', async () => {
    const capped = await startUpstream({ name: 'capped', delayMs: 200 })
    const other = await startUpstream({ name: 'other', delayMs: 200 })
    upstreams = [capped, other]
    proxy = await startProxy(yaml('round-robin', [`{ address: ${capped.address}, maxConnections: 2 }`, other.address]))
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    let peak = 0
    const timer = setInterval(() => { peak = Math.max(peak, server.active) }, 5)
    const end = Date.now() + 1500
    await load(proxy.url() + '/', 10, () => Date.now() > end)
    clearInterval(timer)
    expect(peak).toBeLessThanOrEqual(2)
    expect(capped.count).toBeGreaterThan(0)
    await waitFor(() => server.active === 0, 2000)
  })
})
