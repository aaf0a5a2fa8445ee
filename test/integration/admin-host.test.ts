// Regression (issue 6): a token-less loopback admin was drivable from a web page through DNS
// rebinding: the page's own name resolves to 127.0.0.1, so the browser sends Host: evil.example.
import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { AdminServer } from '../../src/admin/server.js'
import { parseConfig } from '../../src/config/load.js'
import { Runtime } from '../../src/runtime/runtime.js'

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => { while (cleanups.length > 0) await cleanups.pop()!() })

async function admin (token?: string, extra = '', listen = '127.0.0.1:0'): Promise<number> {
  const config = parseConfig(`
admin: { listen: ${listen}${token === undefined ? '' : `, token: ${token}`}${extra} }
log: { level: silent, access: false }
upstreams: { web: { servers: [{ address: 127.0.0.1:9 }] } }
listeners: [{ protocol: http, listen: 127.0.0.1:0, routes: [{ upstream: web }] }]
`, 'test.yaml')
  const runtime = new Runtime(config)
  await runtime.start()
  cleanups.push(async () => await runtime.stop(500))
  const server = new AdminServer(config.admin!, { runtime: () => runtime, version: 'test' })
  await server.listen()
  cleanups.push(async () => { await server.close() })
  return server.address().port
}

/** Raw request with an exact Host header (undici and fetch would set their own). */
function send (port: number, method: string, path: string, host: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, setHost: false, headers: { ...(host === undefined ? {} : { host }), ...headers } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

describe('admin without a token: Host check against DNS rebinding', () => {
  it('answers 403 to a foreign Host on every endpoint, reads or writes, and never acts', async () => {
    const port = await admin()
    for (const [method, path] of [['GET', '/api/status'], ['GET', '/metrics'], ['GET', '/'], ['POST', `/api/upstreams/web/servers/127.0.0.1:9/disable`]] as const) {
      const r = await send(port, method, path, `evil.example:${port}`)
      expect(r.status).toBe(403)
      expect(JSON.parse(r.body)).toEqual({ error: 'Host not allowed: without admin.token this API answers only loopback names, its listen address and admin.hosts' })
    }
    const status = JSON.parse((await send(port, 'GET', '/api/status', `127.0.0.1:${port}`)).body) as { upstreams: Array<{ servers: Array<{ state: string }> }> }
    expect(status.upstreams[0]?.servers[0]?.state).not.toBe('disabled')
  })

  it('answers loopback names and addresses', async () => {
    const port = await admin()
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`]) {
      expect((await send(port, 'GET', '/healthz', host)).status).toBe(200)
    }
  })

  it('with a token: a request carrying it passes any Host; without it only IP literals, loopback and the listen address', async () => {
    // Was: with a token the Host was not checked at all, so a rebinding page (Host: evil.example)
    // read /api/status (config path, hostname, every upstream address), /metrics and the dashboard.
    const port = await admin('t0ken-0123456789')
    for (const path of ['/api/status', '/metrics', '/', '/api/events']) {
      expect((await send(port, 'GET', path, `evil.example:${port}`)).status, path).toBe(403)
    }
    expect((await send(port, 'GET', '/api/status', 'lb.example.com', { authorization: 'Bearer t0ken-0123456789' })).status).toBe(200)
    for (const host of [`10.1.2.3:${port}`, `[2001:db8::1]:${port}`, `127.0.0.1:${port}`]) {
      expect((await send(port, 'GET', '/healthz', host)).status, host).toBe(200)
    }
    expect((await send(port, 'POST', '/api/upstreams/web/servers/127.0.0.1:9/disable', `10.1.2.3:${port}`)).status).toBe(401)
  })

  // Regression: the shipped compose + Prometheus example scrapes tandem-a:9090 with no token
  // and got 403 on every scrape (TandemDown fired, every other alert went blind); load
  // balancers probing /readyz by name were refused the same way.
  it('probes answer any Host; admin.hosts lists the names reads may use without the token', async () => {
    const port = await admin('t0ken-0123456789', ', hosts: [tandem-a, Admin.Example.com]')
    for (const path of ['/healthz', '/readyz']) expect((await send(port, 'GET', path, `lb-probe.example:${port}`)).status, path).toBe(200)
    for (const host of [`tandem-a:${port}`, 'TANDEM-A', `admin.example.com.:${port}`]) {
      expect((await send(port, 'GET', '/metrics', host)).status, host).toBe(200)
    }
    expect((await send(port, 'GET', '/metrics', `tandem-b:${port}`)).status).toBe(403)
    expect((await send(port, 'POST', '/api/upstreams/web/servers/127.0.0.1:9/disable', `tandem-a:${port}`)).status).toBe(401)
    expect(() => parseConfig('admin: { listen: 127.0.0.1:0, hosts: ["a b"] }\nupstreams: { web: { servers: [{ address: 127.0.0.1:9 }] } }\nlisteners: [{ protocol: http, listen: 127.0.0.1:0, routes: [{ upstream: web }] }]\n', 't.yaml'))
      .toThrow('t.yaml:1:39: admin.hosts[0]: must be a DNS name (no port)')
  })

  // A wildcard admin takes loopback connections too, and a rebinding page can make those: they
  // are checked as on a loopback admin (reads over a network address are not; see the unit test).
  it('on a wildcard address: a read over loopback with a foreign Host is refused without the token', async () => {
    const port = await admin('t0ken-0123456789', '', '0.0.0.0:0')
    for (const path of ['/api/status', '/metrics', '/']) {
      expect((await send(port, 'GET', path, `evil.example:${port}`)).status, path).toBe(403)
    }
    expect((await send(port, 'GET', '/api/status', `127.0.0.1:${port}`)).status).toBe(200)
    expect((await send(port, 'GET', '/api/status', 'evil.example', { authorization: 'Bearer t0ken-0123456789' })).status).toBe(200)
    expect((await send(port, 'POST', '/api/upstreams/web/servers/127.0.0.1:9/disable', `127.0.0.1:${port}`)).status).toBe(401)
  })
})
