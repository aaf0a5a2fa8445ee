import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, writeConfig, type CliRun } from '../helpers/cli.js'
import { ok, rawExchange, startRawUpstream, statuses, type RawUpstream } from '../helpers/raw-http.js'
import { freePort } from '../helpers/relay.js'

// Regression (security): node:http takes its error listener off a socket it hands to 'connect'
// or 'upgrade'. tandem answered such sockets itself (405 for CONNECT, 429 for a rate-limited
// WebSocket handshake) with none of its own, so a client that reset the connection while the
// answer lingered raised an uncaught ECONNRESET: one packet ended the whole proxy (exit 1).
// The proxy runs as a child here, as in production, so such a crash shows as its exit.

let up: RawUpstream
let run: CliRun
let port = 0

beforeAll(async () => {
  up = await startRawUpstream(() => ok('plain'))
  port = await freePort()
  const file = writeConfig(`
log: { level: info, access: false }
rateLimits:
  ws: { key: client-ip, rate: 1/m, burst: 1 }
upstreams:
  web:
    servers: [ { address: ${up.address} } ]
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:${port}
    routes:
      - match: { pathPrefix: /ws }
        upstream: web
        rateLimit: ws
      - match: { pathPrefix: / }
        upstream: web
`)
  run = runCli(['run', '-c', file])
  await run.waitForOutput(/tandem started/)
}, 30_000)

afterAll(async () => {
  run.child.kill('SIGTERM')
  await run.exited
  await up.close()
})

/** Sends `bytes`, waits for the answer's head, then resets the connection (RST); resolves with the status. */
async function answeredThenReset (bytes: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer; got ${JSON.stringify(text)}`)) }, 5000)
    s.on('error', () => {})
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      if (!text.includes('\r\n\r\n')) return
      clearTimeout(timer)
      s.resetAndDestroy()
      resolve(statuses(text)[0] ?? 0)
    })
    s.write(bytes)
  })
}

const handshake = 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'

describe('sockets node:http hands over (CONNECT, upgrades)', () => {
  it('a CONNECT answered 405 and then reset by the client does not end the proxy', async () => {
    for (let i = 0; i < 5; i++) {
      expect(await answeredThenReset('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')).toBe(405)
    }
    const r = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statuses(r.text)).toEqual([200])
    expect(run.child.exitCode).toBeNull()
  })

  it('a WebSocket handshake refused 429 and then reset by the client does not end the proxy', async () => {
    // The burst of one goes to a plain request on the limited route; every handshake after it is refused.
    expect(statuses((await rawExchange(port, 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text)).toEqual([200])
    for (let i = 0; i < 5; i++) expect(await answeredThenReset(handshake)).toBe(429)
    const r = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(statuses(r.text)).toEqual([200])
    expect(run.child.exitCode).toBeNull()
    expect(run.stdout).not.toContain('uncaught')
  })
})
