import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { httpConfig, type RunningTandem } from '../helpers/tandem.js'
import { ok, rawExchange, statuses, type RawUpstream } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import { readSse, type SseFrame } from '../helpers/sse.js'
import { waitFor } from '../helpers/wait.js'
import { AdminServer } from '../../src/admin/server.js'
import { attachLogs, createLogger } from '../../src/observability/log.js'
import { maxEjected } from '../../src/upstream/upstream.js'

// Passive ejection never empties more than half a pool, and statuses a client can provoke never
// count as a server failure.

let proxy: RunningTandem | undefined

const fx = rawFixture()

const status = (code: number, reason: string): string => `HTTP/1.1 ${code} ${reason}\r\ncontent-length: 0\r\n\r\n`
const get = 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'

describe('passive ejection', () => {
  it('caps ejections at half a pool, at least one', () => {
    expect([1, 2, 3, 4, 5, 10].map(maxEjected)).toEqual([1, 1, 1, 2, 2, 5])
  })

  it('four servers all failing: two are ejected, two keep serving', async () => {
    const ups: RawUpstream[] = []
    for (let i = 0; i < 4; i++) ups.push(await fx.upstream(() => status(500, 'Internal Server Error')))
    proxy = await fx.proxy(httpConfig({ servers: ups.map((u) => u.address), upstream: '    retries: 0\n    passive: { failures: 1, ejectFor: 60s }' }))
    const seen: number[] = []
    for (let i = 0; i < 12; i++) seen.push(...statuses((await rawExchange(proxy.port(), get)).text))
    expect(seen).toEqual(Array(12).fill(500))
    const states = proxy.runtime.upstreams.get('web')!.servers.map((s) => s.state(proxy!.runtime.clock.now()))
    expect(states.filter((s) => s === 'down')).toHaveLength(2)
    expect(states.filter((s) => s === 'up')).toHaveLength(2)
  })

  // Was: only 500, 502, 503 and 504 counted, so a server answering 507 for ever was never ejected.
  it.each([[505, 'HTTP Version Not Supported'], [507, 'Insufficient Storage']])('an upstream %i is a server failure: ejected after failures: 1', async (code, reason) => {
    const u = await fx.upstream(() => status(code, reason))
    proxy = await fx.proxy(httpConfig({ servers: [u.address], upstream: '    passive: { failures: 1, ejectFor: 60s }' }))
    expect(statuses((await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text)).toEqual([code])
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(server.failures).toBe(1)
    expect(server.state(proxy.runtime.clock.now())).toBe('down')
  })

  it.each([[501, 'Not Implemented'], [404, 'Not Found'], [413, 'Content Too Large']])('an upstream %i is not a server failure', async (code, reason) => {
    const u = await fx.upstream(() => status(code, reason))
    proxy = await fx.proxy(httpConfig({ servers: [u.address], upstream: '    passive: { failures: 1, ejectFor: 60s }' }))
    for (let i = 0; i < 3; i++) expect(statuses((await rawExchange(proxy.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text)).toEqual([code])
    const server = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(server.failures).toBe(0)
    expect(server.state(proxy!.runtime.clock.now())).toBe('up')
    expect(u.requests).toHaveLength(3)
  })

  // Was: an ejection ended by time alone and nothing published it: the log showed the server go
  // down and never come back, and SSE clients never got its recovery.
  it('the end of an ejection is logged and sent on /api/events: down → up (ejection over)', async () => {
    let failing = true
    const a = await fx.upstream(() => failing ? status(500, 'Internal Server Error') : ok('a'))
    const b = await fx.upstream(() => ok('b'))
    const lines: string[] = []
    const log = createLogger({ level: 'warn', access: false }, { write: (l: string) => { lines.push(l) } })
    const detach = attachLogs(log, { level: 'warn', access: false })
    proxy = await fx.proxy(httpConfig({
      servers: [a.address, b.address],
      upstream: '    retries: 0\n    passive: { failures: 1, ejectFor: 400ms }',
      top: 'admin: { listen: 127.0.0.1:0 }',
    }))
    const running = proxy
    const admin = new AdminServer(running.runtime.config.admin!, { runtime: () => running.runtime, version: 'test' })
    await admin.listen()
    const frames: SseFrame[] = []
    const sse = http.get({ host: '127.0.0.1', port: admin.address().port, path: '/api/events', agent: false }, (res) => { readSse(res, frames) })
    sse.on('error', () => {})
    try {
      // The stream listens for state changes from its first frame on.
      await waitFor(() => frames.length > 0, 5000, 10, 'first SSE frame')
      const seen: number[] = []
      while (!seen.includes(500) && seen.length < 4) seen.push(...statuses((await rawExchange(running.port(), get)).text))
      expect(seen.filter((s) => s === 500)).toEqual([500])
      failing = false
      const serverFrames = (): unknown[] => frames.filter((f) => f.event === 'server').map((f) => f.data)
      await waitFor(() => serverFrames().length >= 2, 5000, 10, 'the ejection\'s end on the SSE stream')
      expect(serverFrames()).toEqual([
        { upstream: 'web', server: a.address, from: 'up', to: 'down', reason: 'passive ejection' },
        { upstream: 'web', server: a.address, from: 'down', to: 'up', reason: 'ejection over' },
      ])
      const server = running.runtime.upstreams.get('web')!.server(a.address)!
      expect(server.state(running.runtime.clock.now())).toBe('up')
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'server state changed')
        .map(({ level, component, upstream, server, from, to, reason }) => ({ level, component, upstream, server, from, to, reason }))
      expect(logged).toEqual([
        { level: 'warn', component: 'upstream', upstream: 'web', server: a.address, from: 'up', to: 'down', reason: 'passive ejection' },
        { level: 'warn', component: 'upstream', upstream: 'web', server: a.address, from: 'down', to: 'up', reason: 'ejection over' },
      ])
    } finally {
      sse.destroy()
      await admin.close()
      detach()
    }
  })
})
