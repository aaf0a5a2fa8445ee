import net from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { httpConfig } from '../helpers/tandem.js'
import { ok, rawExchange, statuses } from '../helpers/raw-http.js'
import { rawFixture } from '../helpers/raw-fixture.js'
import { waitFor } from '../helpers/wait.js'

// How a 429 reaches the client: in full while its body is still arriving, before any 100
// Continue, and without a body for HEAD.

const fx = rawFixture()

/** One upstream answering `ok`, behind a proxy whose listener allows one request a minute. */
async function limitedProxy (): Promise<{ port: number, requests: () => number, bodies: () => string[] }> {
  const up = await fx.upstream(() => ok('ok'))
  const proxy = await fx.proxy(httpConfig({
    servers: [up.address],
    listener: '    rateLimit: one',
    top: 'rateLimits:\n  one: { key: client-ip, rate: 1/m, burst: 1 }',
  }))
  return { port: proxy.port(), requests: () => up.requests.length, bodies: () => up.requests.map((r) => r.body.toString()) }
}

/** A raw client connection that collects what it reads. */
function connect (port: number): { socket: net.Socket, text: () => string } {
  const socket = net.connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  socket.on('error', () => {})
  return { socket, text: () => text }
}

/** Replaces the Date header's value, the one part of tandem's own answers that varies. */
const undated = (text: string): string => text.replace(/\r\nDate: [^\r]*\r\n/, '\r\nDate: X\r\n')

describe('429 answers', () => {
  it('a 429 for a request whose body is still arriving reaches a client that reads late (general path)', async () => {
    const p = await limitedProxy()
    expect((await request(`http://127.0.0.1:${p.port}/`)).statusCode).toBe(200)
    const socket = net.connect(p.port, '127.0.0.1')
    const errors: string[] = []
    socket.on('error', (e: NodeJS.ErrnoException) => { errors.push(e.code ?? e.message) })
    socket.pause()
    // 100 MiB announced and sent as fast as the proxy takes it; the client reads only later.
    const total = 104857600
    const chunk = Buffer.alloc(65536, 'x')
    let sent = 0
    const pump = (): void => {
      while (!socket.destroyed && sent < total) {
        sent += chunk.length
        if (!socket.write(chunk)) { socket.once('drain', pump); return }
      }
    }
    socket.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`)
    pump()
    const head = await new Promise<string>((resolve) => {
      let text = ''
      socket.once('close', () => { resolve(text) })
      setTimeout(() => {
        socket.on('data', (d: Buffer) => {
          text += d.toString('latin1')
          if (text.includes('\r\n\r\n')) resolve(text)
        })
        socket.resume()
      }, 300)
    })
    socket.destroy()
    expect(head, `errors: ${errors.join(', ')}`).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/)
    expect(head).toContain('\r\nretry-after: 60\r\n')
    expect(head).toContain('\r\nConnection: close\r\n')
    expect(p.requests()).toBe(1)
  })

  it('Expect: 100-continue: an admitted request gets its 100 and is forwarded; a refused one gets the 429 first, never a 100', async () => {
    const p = await limitedProxy()
    const c = connect(p.port)
    c.socket.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
    await waitFor(() => c.text().includes('\r\n\r\n'), 5000, 5, '100 Continue')
    expect(c.text()).toBe('HTTP/1.1 100 Continue\r\n\r\n')
    c.socket.write('hello')
    await waitFor(() => statuses(c.text()).length === 2, 5000, 5, 'the final answer')
    expect(c.text()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
    expect(p.bodies()).toEqual(['hello'])
    c.socket.destroy()

    // The bucket is used up: the client, waiting for a 100 before its 1 MB, gets the 429 first.
    const r = await rawExchange(p.port, 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n')
    expect(r.closed).toBe(true)
    expect(r.text).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/)
    expect(statuses(r.text)).toEqual([429])
    expect(r.text).toContain('\r\nretry-after: 60\r\n')
    expect(p.requests()).toBe(1)
  })

  it('HEAD refused on the lean path: a 429 or 404 head with its Content-Length, no body; what was pipelined behind is not run', async () => {
    const up = await fx.upstream(() => ok('ok'))
    const proxy = await fx.proxy(httpConfig({
      servers: [up.address],
      routes: '      - match: { pathPrefix: /lim }\n        upstream: web\n        rateLimit: one',
      top: 'rateLimits:\n  one: { key: client-ip, rate: 1/m, burst: 1 }',
    }))
    expect((await request(proxy.url() + '/lim', { method: 'HEAD' })).statusCode).toBe(200)
    const next = 'GET /lim HTTP/1.1\r\nHost: a\r\n\r\n'
    const limited = await rawExchange(proxy.port(), 'HEAD /lim HTTP/1.1\r\nHost: a\r\n\r\n' + next)
    expect(limited.closed).toBe(true)
    expect(undated(limited.text)).toBe('HTTP/1.1 429 Too Many Requests\r\nretry-after: 60\r\nratelimit-limit: 1\r\n' +
      'ratelimit-remaining: 0\r\nratelimit-reset: 60\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 18\r\n' +
      'Date: X\r\nConnection: close\r\n\r\n')
    const missing = await rawExchange(proxy.port(), 'HEAD /none HTTP/1.1\r\nHost: a\r\n\r\n' + next)
    expect(missing.closed).toBe(true)
    expect(undated(missing.text)).toBe('HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 10\r\n' +
      'Date: X\r\nConnection: close\r\n\r\n')
    expect(up.requests.map((r) => r.head.split(' ').slice(0, 2).join(' '))).toEqual(['HEAD /lim'])
  })

  it('a 429 on the general path closes the connection as on the lean path: a request pipelined behind it is not run', async () => {
    const p = await limitedProxy()
    expect((await request(`http://127.0.0.1:${p.port}/`)).statusCode).toBe(200)
    // POSTs with bodies take node:http's path; the second one must not reach the upstream.
    const post = (path: string): string => `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi`
    const limited = await rawExchange(p.port, post('/lim') + post('/ok'))
    expect(limited.closed).toBe(true)
    expect(statuses(limited.text)).toEqual([429])
    expect(limited.text).toContain('\r\nConnection: close\r\n')
    expect(p.requests()).toBe(1)
  })
})
