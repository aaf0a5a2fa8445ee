import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { hostname } from 'node:os'
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { AdminServer, MAX_CONNECTIONS } from '../../src/admin/server.js'
import { parseConfig } from '../../src/config/load.js'
import { channels } from '../../src/observability/events.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { readSse } from '../helpers/sse.js'
import { waitFor } from '../helpers/wait.js'
import { MAX_CLIENTS } from '../../src/admin/events.js'

const VERSION = '9.9.9-test'
const TOKEN = 'admin-token-0123456789'
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

interface Setup {
  runtime: Runtime
  admin: AdminServer
  a: TestUpstream
  b: TestUpstream
  yaml: string
  /** Base URL of the admin server. */
  base: string
  /** Base URL of the proxy's HTTP listener. */
  proxy: string
}

async function setup (opts: { token?: boolean } = {}): Promise<Setup> {
  const a = await startUpstream({ name: 'a' })
  const b = await startUpstream({ name: 'b' })
  cleanups.push(() => a.close(), () => b.close())
  const yaml = `
admin:
  listen: 127.0.0.1:0
${opts.token === true ? `  token: ${TOKEN}\n` : ''}log: { level: silent, access: false }
upstreams:
  web:
    balance: round-robin
    servers:
      - address: ${a.address}
      - address: ${b.address}
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: web
`
  const config = parseConfig(yaml, 'test.yaml')
  const runtime = new Runtime(config)
  await runtime.start()
  cleanups.push(async () => { await runtime.stop(1000) })
  const admin = new AdminServer(config.admin!, { runtime: () => runtime, version: VERSION })
  await admin.listen()
  cleanups.push(() => admin.close())
  const { port } = admin.address()
  return { runtime, admin, a, b, yaml, base: `http://127.0.0.1:${port}`, proxy: `http://127.0.0.1:${runtime.listeners[0]!.address().port}` }
}

async function call (url: string, init: { method?: string, body?: string, headers?: Record<string, string> } = {}): Promise<{ status: number, headers: Record<string, unknown>, text: string, json: () => any }> {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: init.headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

async function send (url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(url)
    expect(res.statusCode).toBe(200)
    await res.body.text()
  }
}

function serverUrl (s: Setup, upstream: string, address: string, action: string): string {
  return `${s.base}/api/upstreams/${upstream}/servers/${encodeURIComponent(address)}/${action}`
}

describe('admin API', () => {
  it('healthz, readyz, and readyz 503 after setShuttingDown', async () => {
    const s = await setup()
    const h = await call(s.base + '/healthz')
    expect([h.status, h.text]).toEqual([200, 'ok'])
    expect((await call(s.base + '/readyz')).status).toBe(200)
    s.admin.setShuttingDown()
    const r = await call(s.base + '/readyz')
    expect([r.status, r.text]).toEqual([503, 'shutting down'])
    expect((await call(s.base + '/healthz')).status).toBe(200)
  })

  it('status JSON shows node, config, listeners and every server with its counters', async () => {
    const s = await setup()
    await send(s.proxy + '/x', 6)
    const res = await call(s.base + '/api/status')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
    const st = res.json()
    expect(st.id).toBe(hostname())
    expect(st.role).toBe('active')
    expect(st.version).toBe(VERSION)
    expect(Number.isInteger(st.uptime) && st.uptime >= 0).toBe(true)
    expect(st.config).toEqual({ file: 'test.yaml', hash: createHash('sha256').update(s.yaml).digest('hex') })
    expect(st.listeners).toHaveLength(1)
    expect(st.listeners[0]).toMatchObject({ name: 'public', protocol: 'http', listen: `127.0.0.1:${s.runtime.listeners[0]!.address().port}` })
    expect(typeof st.listeners[0].activeConnections).toBe('number')
    expect(st.upstreams).toHaveLength(1)
    expect(st.upstreams[0].name).toBe('web')
    expect(st.upstreams[0].balance).toBe('round-robin')
    const servers = st.upstreams[0].servers
    expect(servers.map((x: any) => [x.address, x.state, x.weight, x.backup, x.active, x.requests, x.failures, x.lastCheck]))
      .toEqual([[s.a.address, 'up', 1, false, 0, 3, 0, null], [s.b.address, 'up', 1, false, 0, 3, 0, null]])
    for (const x of servers) expect(x.responseTimeMs).toBeGreaterThan(0)
  })

  it('disable takes a server out (exact counts), enable puts it back, drain stops new traffic', async () => {
    const s = await setup()
    await send(s.proxy + '/', 4)
    expect([s.a.count, s.b.count]).toEqual([2, 2])

    const d = await call(serverUrl(s, 'web', s.b.address, 'disable'), { method: 'POST' })
    expect(d.status).toBe(200)
    expect(d.json()).toEqual({ upstream: 'web', server: s.b.address, state: 'disabled', adminState: 'disabled', weight: 1 })
    await send(s.proxy + '/', 6)
    expect([s.a.count, s.b.count]).toEqual([8, 2])
    const st = (await call(s.base + '/api/status')).json()
    expect(st.upstreams[0].servers.map((x: any) => x.state)).toEqual(['up', 'disabled'])

    // Plain host:port in the path works as well as the encoded form.
    const e = await call(`${s.base}/api/upstreams/web/servers/${s.b.address}/enable`, { method: 'POST' })
    expect([e.status, e.json().state]).toEqual([200, 'up'])
    await send(s.proxy + '/', 4)
    expect([s.a.count, s.b.count]).toEqual([10, 4])

    const dr = await call(serverUrl(s, 'web', s.a.address, 'drain'), { method: 'POST' })
    expect([dr.status, dr.json().state]).toEqual([200, 'drain'])
    await send(s.proxy + '/', 3)
    expect([s.a.count, s.b.count]).toEqual([10, 7])
    const st2 = (await call(s.base + '/api/status')).json()
    expect(st2.upstreams[0].servers.map((x: any) => x.state)).toEqual(['drain', 'up'])
  })

  it('PUT weight changes the split and shows in status; bad bodies are 400', async () => {
    const s = await setup()
    const w = await call(serverUrl(s, 'web', s.a.address, 'weight'), { method: 'PUT', body: '{"weight": 3}', headers: { 'content-type': 'application/json' } })
    expect(w.status).toBe(200)
    expect(w.json().weight).toBe(3)
    await send(s.proxy + '/', 8)
    expect([s.a.count, s.b.count]).toEqual([6, 2])
    const st = (await call(s.base + '/api/status')).json()
    expect(st.upstreams[0].servers.map((x: any) => x.weight)).toEqual([3, 1])

    for (const body of ['{"weight": 0}', '{"weight": 257}', '{"weight": 1.5}', '{"weight": "2"}', '{}', '[]', 'null', 'not json', '']) {
      const bad = await call(serverUrl(s, 'web', s.a.address, 'weight'), { method: 'PUT', body })
      expect([body, bad.status]).toEqual([body, 400])
      expect(typeof bad.json().error).toBe('string')
    }
    const big = await call(serverUrl(s, 'web', s.a.address, 'weight'), { method: 'PUT', body: `{"weight": 2, "pad": "${'x'.repeat(10_000)}"}` })
    expect(big.status).toBe(413)
    expect(s.runtime.upstreams.get('web')!.servers.map((x) => x.weight)).toEqual([3, 1])
  })

  it('answers JSON errors: 404 for unknown names and paths, 405 for a wrong method, 501 reload', async () => {
    const s = await setup()
    const cases: Array<[string, string, number]> = [
      ['POST', serverUrl(s, 'nope', s.a.address, 'drain'), 404],
      ['POST', serverUrl(s, 'web', '127.0.0.1:1', 'drain'), 404],
      ['PUT', serverUrl(s, 'web', '127.0.0.1:1', 'weight'), 404],
      ['GET', s.base + '/api/nothing', 404],
      ['POST', s.base + '/api/upstreams/web/servers/x/explode', 404],
      ['GET', serverUrl(s, 'web', s.a.address, 'drain'), 405],
      ['POST', serverUrl(s, 'web', s.a.address, 'weight'), 405],
      ['DELETE', s.base + '/api/status', 405],
      ['POST', s.base + '/api/upstreams/web/servers/%E0%A4%A/drain', 400],
      ['POST', s.base + '/api/reload', 501],
      // The spec: 409 when no standby holds the full state; a standalone node has none (was 404).
      ['POST', s.base + '/api/peer/step-down', 409],
    ]
    for (const [method, url, status] of cases) {
      const res = await call(url, { method, body: method === 'PUT' ? '{"weight": 2}' : undefined })
      expect([method, url, res.status]).toEqual([method, url, status])
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(typeof res.json().error).toBe('string')
    }
    const wrong = await call(serverUrl(s, 'web', s.a.address, 'drain'))
    expect(wrong.headers.allow).toBe('POST')
    expect((await call(s.base + '/api/reload', { method: 'POST' })).json()).toEqual({ error: 'reload not available yet' })
    // Nothing above changed any server.
    expect(s.runtime.upstreams.get('web')!.servers.map((x) => x.adminState)).toEqual(['enabled', 'enabled'])
  })

  it('with a token, mutating endpoints demand it; GETs stay open; cross-origin POSTs are refused', async () => {
    const s = await setup({ token: true })
    const url = serverUrl(s, 'web', s.b.address, 'disable')
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }]) {
      const res = await call(url, { method: 'POST', headers })
      expect(res.status).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer realm="tandem"')
      expect(res.json()).toEqual({ error: 'missing or wrong bearer token' })
    }
    expect(s.runtime.upstreams.get('web')!.servers[1]!.adminState).toBe('enabled')
    expect((await call(s.base + '/api/status')).status).toBe(200)
    expect((await call(s.base + '/metrics')).status).toBe(200)

    const evil = await call(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' } })
    expect(evil.status).toBe(403)
    const ok = await call(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    expect([ok.status, ok.json().state]).toEqual([200, 'disabled'])
    expect(s.runtime.upstreams.get('web')!.servers[1]!.adminState).toBe('disabled')
  })

  it('serves the dashboard and its assets (uPlot from the installed package) with a CSP, nothing from elsewhere', async () => {
    const s = await setup()
    const res = await call(s.base + '/')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(String(res.headers['content-security-policy'])).toContain("default-src 'none'")
    expect(String(res.headers['content-security-policy'])).toContain("script-src 'self'")
    expect(res.text).toContain('<!doctype html>')
    expect(res.text).not.toMatch(/(src|href)=["']?(https?:)?\/\//)
    const assets = [...res.text.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1])
    expect(assets.sort()).toEqual(['assets/app.css', 'assets/app.js', 'assets/charts.js', 'assets/format.js', 'assets/servers.js', 'assets/uplot.css', 'assets/uplot.js'])
    const app = await call(s.base + '/assets/app.js')
    expect([app.status, app.headers['content-type']]).toEqual([200, 'text/javascript; charset=utf-8'])
    expect(app.text).toContain("new EventSource('api/events')")
    const uplot = await call(s.base + '/assets/uplot.js')
    expect(uplot.status).toBe(200)
    expect(uplot.text).toContain('uPlot')
    expect((await call(s.base + '/assets/uplot.css')).headers['content-type']).toBe('text/css; charset=utf-8')
    expect((await call(s.base + '/assets/nope.js')).status).toBe(404)
    expect((await call(s.base + '/assets/../package.json')).status).toBe(404)
  })

  it('status shows each server\'s admin state, check progress, ejection and slow-start fields', async () => {
    const s = await setup()
    const st = (await call(s.base + '/api/status')).json()
    expect(st.upstreams[0].servers[0]).toMatchObject({ adminState: 'enabled', checks: null, ejectedForMs: 0, slowStart: null })
    await call(serverUrl(s, 'web', s.a.address, 'drain'), { method: 'POST' })
    expect((await call(s.base + '/api/status')).json().upstreams[0].servers[0].adminState).toBe('drain')
  })

  it(`SSE: at most ${MAX_CLIENTS} streams at once (the endpoint needs no token); the next gets 503 until one closes`, async () => {
    const s = await setup()
    const open: http.ClientRequest[] = []
    const status = async (): Promise<number> => await new Promise((resolve, reject) => {
      const req = http.get(s.base + '/api/events')
      open.push(req)
      req.on('response', (res) => { resolve(res.statusCode ?? 0); res.resume() })
      req.on('error', reject)
    })
    try {
      for (let i = 0; i < MAX_CLIENTS; i++) expect(await status()).toBe(200)
      expect(await status()).toBe(503)
      const stream = (s.admin as unknown as { events: { size: number } }).events
      expect(stream.size).toBe(MAX_CLIENTS)
      open[0]!.destroy()
      await waitFor(() => stream.size === MAX_CLIENTS - 1, 5000, 10, 'a stream closed')
      expect(await status()).toBe(200)
    } finally {
      for (const r of open) r.destroy()
    }
  })

  // Regression: the admin accepted every socket (400 idle ones held for half a minute each)
  // before any authentication, and answered a header overflow with 400.
  it(`holds at most ${MAX_CONNECTIONS} connections; a header block over 16 KiB gets 431`, async () => {
    const s = await setup()
    const port = Number(new URL(s.base).port)
    const sockets: net.Socket[] = []
    const open = async (): Promise<net.Socket> => await new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => { resolve(c) })
      c.on('error', () => {})
      c.once('error', reject)
      sockets.push(c)
    })
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) await open()
      const extra = await open()
      const closed = await new Promise<boolean>((resolve) => {
        extra.once('close', () => { resolve(true) })
        setTimeout(() => { resolve(false) }, 5000).unref()
      })
      expect(closed).toBe(true)
      for (const c of sockets.slice(0, 4)) c.destroy()
      const server = (s.admin as unknown as { server: net.Server }).server
      const count = async (): Promise<number> => await new Promise((resolve) => { server.getConnections((_e, n) => { resolve(n) }) })
      await waitFor(async () => await count() <= MAX_CONNECTIONS - 4, 5000, 10, 'four connections closed')
      const big = await new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1')
        let got = ''
        c.on('data', (d: Buffer) => { got += d.toString('latin1') })
        c.on('close', () => { resolve(got) })
        c.on('error', () => {})
        c.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)
      })
      expect(big.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large')
    } finally {
      for (const c of sockets) c.destroy()
    }
  })

  it('SSE: a status snapshot at once and every second, an event on each state change (server, weight, reload)', async () => {
    const s = await setup()
    const req = http.get(s.base + '/api/events')
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => { req.on('response', resolve); req.on('error', reject) })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    const frames = readSse(res)
    await waitFor(() => frames.length >= 1, 5000, 10, 'first status event')
    expect(frames[0]!.event).toBe('status')
    expect(frames[0]!.data.upstreams[0].servers.map((x: any) => x.state)).toEqual(['up', 'up'])

    expect((await call(serverUrl(s, 'web', s.a.address, 'disable'), { method: 'POST' })).status).toBe(200)
    await waitFor(() => frames.some((f) => f.event === 'server'), 5000, 10, 'server event')
    expect(frames.find((f) => f.event === 'server')!.data).toEqual({ upstream: 'web', server: s.a.address, from: 'up', to: 'disabled', reason: 'admin' })
    // Other state changes come as they happen too, not only in the next snapshot.
    expect((await call(serverUrl(s, 'web', s.b.address, 'weight'), { method: 'PUT', body: '{"weight": 4}', headers: { 'content-type': 'application/json' } })).status).toBe(200)
    await waitFor(() => frames.some((f) => f.event === 'weight'), 5000, 10, 'weight event')
    expect(frames.find((f) => f.event === 'weight')!.data).toEqual({ upstream: 'web', server: s.b.address, weight: 4 })
    channels.configReload.publish({ result: 'failure' })
    await waitFor(() => frames.some((f) => f.event === 'reload'), 5000, 10, 'reload event')
    expect(frames.find((f) => f.event === 'reload')!.data).toEqual({ result: 'failure' })
    await waitFor(() => frames.filter((f) => f.event === 'status').length >= 2, 10_000, 20, 'periodic status event')
    const last = frames.filter((f) => f.event === 'status').at(-1)!
    expect(last.data.upstreams[0].servers.map((x: any) => x.state)).toEqual(['disabled', 'up'])

    // The dashboard's series: 10 minutes of points on connect, then a tick with each new point.
    expect(frames.filter((f) => f.event === 'history')).toHaveLength(1)
    expect(frames.findIndex((f) => f.event === 'history')).toBe(1)
    await send(s.proxy + '/x', 4)
    await waitFor(() => frames.some((f) => f.event === 'tick' && f.data.points.some((p: any) => p.listeners.public?.codes[1] > 0)), 10_000, 20, 'a tick with the requests')
    const counted = frames.filter((f) => f.event === 'tick').flatMap((f) => f.data.points).reduce((n: number, p: any) => n + (p.listeners.public?.codes[1] ?? 0), 0)
    await waitFor(() => frames.filter((f) => f.event === 'tick').flatMap((f) => f.data.points).reduce((n: number, p: any) => n + (p.listeners.public?.codes[1] ?? 0), 0) === 4, 10_000, 20, 'all 4 requests in ticks')
    expect(counted).toBeLessThanOrEqual(4)
    const ticks = frames.filter((f) => f.event === 'tick').flatMap((f) => f.data.events)
    expect(ticks.map((e: any) => [e.kind, e.level, e.text])).toContainEqual(['server', 'warn', `web ${s.a.address}: up → disabled (admin)`])

    const stream = (s.admin as unknown as { events: { size: number } }).events
    expect(stream.size).toBe(1)
    req.destroy()
    await waitFor(() => stream.size === 0, 5000, 10, 'SSE client dropped after it left')
    await s.admin.close()
    expect(channels.serverState.hasSubscribers).toBe(false)
  })
})
