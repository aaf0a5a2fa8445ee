import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'

let upstreams: TestUpstream[] = []
let proxy: RunningTandem | undefined

afterEach(async () => {
  await proxy?.stop()
  proxy = undefined
  await Promise.all(upstreams.map(async (u) => { await u.close() }))
  upstreams = []
})

function config (servers: string[], upstream = '', routes?: string): string {
  return httpConfig({ servers, upstream, routes })
}

describe('http proxy basics', () => {
  it('round-robin 3:1:1 gives exactly 300/100/100 of 500, interleaved', async () => {
    upstreams = await Promise.all(['a', 'b', 'c'].map(async (name) => await startUpstream({ name })))
    const [a, b, c] = upstreams as [TestUpstream, TestUpstream, TestUpstream]
    proxy = await startProxy(config([`{ address: ${a.address}, weight: 3 }`, b.address, c.address], '    balance: round-robin'))
    const seq: string[] = []
    for (let i = 0; i < 500; i++) {
      const res = await request(proxy.url() + '/x')
      expect(res.statusCode).toBe(200)
      seq.push(await res.body.text())
    }
    expect([a.count, b.count, c.count]).toEqual([300, 100, 100])
    // Smooth: never more than 2 of a in a row, and every window of 5 holds the 3:1:1 mix.
    expect(seq.join('')).not.toContain('aaa')
    for (let i = 0; i + 5 <= seq.length; i += 5) {
      const w = seq.slice(i, i + 5).sort().join('')
      expect(w).toBe('aaabc')
    }
  })

  it('reuses upstream connections: 1,000 sequential requests use a handful', async () => {
    const u = await startUpstream({ name: 'solo' })
    upstreams = [u]
    proxy = await startProxy(config([u.address]))
    for (let i = 0; i < 1000; i++) {
      const res = await request(proxy.url() + '/k')
      await res.body.text()
      expect(res.statusCode).toBe(200)
    }
    expect(u.count).toBe(1000)
    expect(u.connections).toBeLessThanOrEqual(3)
  })

  it('answers 404 when no route matches and 503 when no server is up', async () => {
    const u = await startUpstream({ name: 'solo' })
    upstreams = [u]
    proxy = await startProxy(config([u.address], '', '      - match: { pathPrefix: /api/ }\n        upstream: web'))
    const miss = await request(proxy.url() + '/other')
    expect(miss.statusCode).toBe(404)
    expect(await miss.body.text()).toBe('Not Found\n')
    const up = proxy.runtime.upstreams.get('web')!
    up.setAdminState(up.servers[0]!, 'disabled')
    const none = await request(proxy.url() + '/api/x')
    expect(none.statusCode).toBe(503)
    expect(await none.body.text()).toBe('Service Unavailable\n')
    expect(u.count).toBe(0)
  })
})
