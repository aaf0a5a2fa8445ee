import { afterEach, describe, expect, it } from 'vitest'
import net from 'node:net'
import http from 'node:http'
import { request } from 'undici'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { PYTHON, startBlackhole } from '../helpers/blackhole.js'
import dc from 'node:diagnostics_channel'
import type { HttpRequestEnd } from '../../src/observability/events.js'

let upstreams: TestUpstream[] = []
let proxy: RunningTandem | undefined

afterEach(async () => {
  await proxy?.stop()
  proxy = undefined
  await Promise.all(upstreams.map(async (u) => { await u.close() }))
  upstreams = []
})

function yaml (servers: string[], opts: { upstream?: string, listener?: string, routes?: string } = {}): string {
  return httpConfig({ servers, ...opts })
}

/** Sends raw bytes and collects the whole reply until the proxy closes or `until` matches. */
async function raw (port: number, data: string, until?: RegExp): Promise<string> {
  return await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let out = ''
    s.setTimeout(5000, () => { s.destroy(); reject(new Error('raw: timeout, got ' + JSON.stringify(out))) })
    s.on('data', (c) => { out += c.toString('latin1'); if (until?.test(out) === true) { s.destroy(); resolve(out) } })
    s.on('error', reject)
    s.on('close', () => { resolve(out) })
    s.write(data)
  })
}

describe('http forwarding', () => {
  it('sets X-Forwarded-*, keeps Host, drops hop-by-hop headers, keeps repeated Set-Cookie', async () => {
    const u = await startUpstream({
      name: 'h',
      handler: (req, res) => {
        req.resume()
        res.setHeader('set-cookie', ['a=1', 'b=2'])
        res.setHeader('x-seen', JSON.stringify(req.headers))
        res.setHeader('connection', 'keep-alive, x-private')
        res.setHeader('x-private', 'secret')
        res.end('ok')
      },
    })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address]))
    // node:http sends the Connection header as given (undici would rewrite it).
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({
        host: '127.0.0.1',
        port: proxy!.port(),
        path: '/p?q=1',
        agent: false,
        headers: { host: 'shop.example.com', 'x-forwarded-for': '203.0.113.9', 'x-hop': '1', connection: 'x-hop', 'proxy-connection': 'keep-alive' },
      }, resolve).on('error', reject)
    })
    expect(res.statusCode).toBe(200)
    const seen = JSON.parse(res.headers['x-seen'] as string) as Record<string, string>
    expect(seen.host).toBe('shop.example.com')
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1')
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-host']).toBe('shop.example.com')
    expect(seen['x-hop']).toBeUndefined()
    expect(seen['proxy-connection']).toBeUndefined()
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    expect(res.headers['x-private']).toBeUndefined()
    expect(u.lastUrl).toBe('/p?q=1')
    res.resume()
  })

  it('routes by host, path, method and header; stripPrefix rewrites the path', async () => {
    const api = await startUpstream({ name: 'api' })
    const web = await startUpstream({ name: 'web' })
    const canary = await startUpstream({ name: 'canary' })
    upstreams = [api, web, canary]
    proxy = await startProxy(`
log: { level: silent, access: false }
upstreams:
  api: { servers: [ { address: ${api.address} } ] }
  web: { servers: [ { address: ${web.address} } ] }
  canary: { servers: [ { address: ${canary.address} } ] }
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - name: canary
        match: { host: "*.example.com", headers: { x-canary: "1" } }
        upstream: canary
      - name: api
        match: { host: api.example.com, pathPrefix: /v1/, methods: [GET, POST] }
        upstream: api
        stripPrefix: true
      - name: rest
        match: { pathPrefix: / }
        upstream: web
`)
    const get = async (path: string, headers: Record<string, string>, method = 'GET'): Promise<string> => {
      const res = await request(proxy!.url() + path, { headers, method: method as 'GET' })
      expect(res.statusCode).toBe(200)
      return await res.body.text()
    }
    expect(await get('/v1/users?id=2', { host: 'api.example.com' })).toBe('api')
    expect(api.lastUrl).toBe('/users?id=2')
    expect(await get('/v1/users', { host: 'api.example.com' }, 'DELETE')).toBe('web')
    expect(await get('/v1/users', { host: 'API.example.com:8080' })).toBe('api')
    expect(await get('/v1/users', { host: 'www.example.com', 'x-canary': '1' })).toBe('canary')
    expect(await get('/v1/users', { host: 'example.com', 'x-canary': '1' })).toBe('web')
  })

  it('answers 400 to a malformed request and 431 to oversized headers without forwarding', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address], { listener: '    maxHeaderSize: 1kb' }))
    const bad = await raw(proxy.port(), 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')
    expect(bad).toMatch(/^HTTP\/1\.1 400 /)
    const big = await raw(proxy.port(), `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`)
    expect(big).toMatch(/^HTTP\/1\.1 431 /)
    expect(u.count).toBe(0)
  })

  it('gives 502 on a refused connect after trying the next server, never revealing addresses', async () => {
    const dead = await closedPort()
    const u = await startUpstream({ name: 'alive' })
    upstreams = [u]
    proxy = await startProxy(yaml([`127.0.0.1:${dead}`, u.address], { upstream: '    retries: 1' }))
    for (let i = 0; i < 4; i++) {
      const res = await request(proxy.url() + '/')
      expect(res.statusCode).toBe(200)
      expect(await res.body.text()).toBe('alive')
    }
    await proxy.stop()
    proxy = await startProxy(yaml([`127.0.0.1:${dead}`], { upstream: '    retries: 1' }))
    const res = await request(proxy.url() + '/')
    expect(res.statusCode).toBe(502)
    const body = await res.body.text()
    expect(body).toBe('Bad Gateway\n')
    expect(body).not.toContain(String(dead))
  })

  it('gives 504 when the upstream does not answer within the response timeout', async () => {
    const u = await startUpstream({ name: 'slow', delayMs: 3000 })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address], { listener: '    timeouts: { header: 5s, idle: 10s, response: 300ms }' }))
    const res = await request(proxy.url() + '/')
    expect(res.statusCode).toBe(504)
    expect(await res.body.text()).toBe('Gateway Timeout\n')
  })

  it.skipIf(PYTHON === undefined)('a connect timeout tries the next server; with none left it is 504', async () => {
    const hole = await startBlackhole()
    try {
      const u = await startUpstream({ name: 'alive' })
      upstreams = [u]
      proxy = await startProxy(yaml([`127.0.0.1:${hole.port}`, u.address], { upstream: '    connectTimeout: 200ms\n    retries: 1\n    balance: round-robin' }))
      const t0 = Date.now()
      const first = await request(proxy.url() + '/')
      expect(first.statusCode).toBe(200)
      expect(await first.body.text()).toBe('alive')
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190)
      await proxy.stop()
      proxy = await startProxy(yaml([`127.0.0.1:${hole.port}`], { upstream: '    connectTimeout: 200ms' }))
      const res = await request(proxy.url() + '/')
      expect(res.statusCode).toBe(504)
      expect(await res.body.text()).toBe('Gateway Timeout\n')
    } finally {
      hole.close()
    }
  })

  it('closes a client that sends incomplete headers after the header timeout with 408', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address], { listener: '    timeouts: { header: 300ms, idle: 5s, response: 5s }' }))
    const t0 = Date.now()
    const reply = await raw(proxy.port(), 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ')
    expect(reply).toMatch(/^HTTP\/1\.1 408 /)
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(u.count).toBe(0)
  })

  it('closes an idle keep-alive client connection after the idle timeout', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address], { listener: '    timeouts: { header: 5s, idle: 300ms, response: 5s }' }))
    const t0 = Date.now()
    const reply = await raw(proxy.port(), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(reply).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nu$/)
    const waited = Date.now() - t0
    expect(waited).toBeGreaterThanOrEqual(250)
    expect(waited).toBeLessThan(3000)
  })

  it('an upstream reset before the response gives 502; mid-response it closes the client connection', async () => {
    let mode: 'before' | 'during' = 'before'
    const u = await startUpstream({
      name: 'resetter',
      handler: (req, res) => {
        req.resume()
        if (mode === 'before') { req.socket.destroy(); return }
        res.writeHead(200, { 'content-length': '100000' })
        res.write(Buffer.alloc(1000, 97), () => { setImmediate(() => req.socket.destroy()) })
      },
    })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address], { upstream: '    retries: 0' }))
    const r1 = await request(proxy.url() + '/', { method: 'POST', body: 'x' })
    expect(r1.statusCode).toBe(502)
    await r1.body.text()
    mode = 'during'
    const r2 = await request(proxy.url() + '/', { method: 'POST', body: 'x' })
    expect(r2.statusCode).toBe(200)
    await expect(r2.body.arrayBuffer()).rejects.toThrow()
  })

  it('a 503 with no server up logs retries 0 on both paths (the lean path logged -1)', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address]))
    proxy.runtime.upstreams.get('web')!.setAdminState(proxy.runtime.upstreams.get('web')!.servers[0]!, 'disabled')
    const seen: HttpRequestEnd[] = []
    const onEnd = (m: unknown): void => { seen.push(m as HttpRequestEnd) }
    dc.subscribe('tandem:http:request-end', onEnd)
    try {
      for (const method of ['GET', 'POST']) {
        const r = await request(proxy.url() + '/', { method, ...(method === 'POST' ? { body: 'x' } : {}) })
        expect(r.statusCode).toBe(503)
        await r.body.text()
      }
    } finally {
      dc.unsubscribe('tandem:http:request-end', onEnd)
    }
    expect(seen.map((e) => [e.method, e.status, e.error, e.retries])).toEqual([['GET', 503, 'NO_SERVER_UP', 0], ['POST', 503, 'NO_SERVER_UP', 0]])
  })

  it('the stale keep-alive retry does not use up `retries`: a server that then refuses sends the request to the next one', async () => {
    // Was: the fresh-connection retry counted as the one retry allowed, so the refused connect
    // that followed gave 502 while B was up.
    let served = 0
    const a = net.createServer((socket) => {
      socket.on('data', () => {
        if (++served === 1) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na')
          a.close() // no more connections: the fresh retry will be refused
        } else {
          socket.destroy() // the pooled connection dies under the second request, no byte sent
        }
      })
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => a.listen(0, '127.0.0.1', resolve))
    const aAddress = `127.0.0.1:${(a.address() as net.AddressInfo).port}`
    const b = await startUpstream({ name: 'b' })
    upstreams = [b]
    proxy = await startProxy(yaml([`{ address: ${aAddress}, weight: 100 }`, b.address], { upstream: '    retries: 1\n    balance: round-robin' }))
    const first = await request(proxy.url() + '/1')
    expect([first.statusCode, await first.body.text()]).toEqual([200, 'a'])
    const second = await request(proxy.url() + '/2')
    expect([second.statusCode, await second.body.text()]).toEqual([200, 'b'])
  })

  it('HEAD, 204 and 304 carry no body; chunked bodies stream through', async () => {
    const u = await startUpstream({
      name: 'codes',
      handler: (req, res) => {
        req.resume()
        if (req.url === '/204') { res.writeHead(204); res.end(); return }
        if (req.url === '/304') { res.writeHead(304, { etag: '"x"' }); res.end(); return }
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('chunk-1,')
        setTimeout(() => { res.end('chunk-2') }, 20)
      },
    })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address]))
    const head = await request(proxy.url() + '/h', { method: 'HEAD' })
    expect(head.statusCode).toBe(200)
    expect(await head.body.text()).toBe('')
    const r204 = await request(proxy.url() + '/204')
    expect(r204.statusCode).toBe(204)
    expect(await r204.body.text()).toBe('')
    const r304 = await request(proxy.url() + '/304')
    expect(r304.statusCode).toBe(304)
    expect(r304.headers.etag).toBe('"x"')
    await r304.body.text()
    const chunked = await request(proxy.url() + '/c')
    expect(chunked.headers['transfer-encoding']).toBe('chunked')
    expect(await chunked.body.text()).toBe('chunk-1,chunk-2')
  })

  it('relays response trailers on a chunked response', async () => {
    const u = await startUpstream({
      name: 'trailers',
      handler: (req, res) => {
        req.resume()
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' })
        res.write('body')
        res.addTrailers({ 'x-checksum': 'abc123' })
        res.end()
      },
    })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address]))
    const port = proxy.port()
    const got = await new Promise<{ body: string, trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { te: 'trailers' } }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => { resolve({ body, trailers: res.trailers }) })
      }).on('error', reject)
    })
    expect(got.body).toBe('body')
    expect(got.trailers['x-checksum']).toBe('abc123')
  })

  it('answers Expect: 100-continue and forwards the body', async () => {
    const u = await startUpstream({
      name: 'echo',
      handler: (req, res) => {
        const parts: Buffer[] = []
        req.on('data', (c: Buffer) => parts.push(c))
        req.on('end', () => { res.end(Buffer.concat(parts)) })
      },
    })
    upstreams = [u]
    proxy = await startProxy(yaml([u.address]))
    const port = proxy.port()
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { expect: '100-continue', 'content-length': 5 } })
      req.on('continue', () => { req.end('hello') })
      req.on('response', (res) => {
        let b = ''
        res.on('data', (c: Buffer) => { b += c.toString() })
        res.on('end', () => { resolve(b) })
      })
      req.on('error', reject)
    })
    expect(body).toBe('hello')
  })
})
