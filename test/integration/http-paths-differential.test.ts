// Differential test of the two HTTP paths: the same GET and HEAD requests through a proxy on the
// lean path and through one with TANDEM_HTTP_LEAN=off (node:http + undici) must reach the
// upstream with the same request line and fields, and give the client the same status, fields
// and body. Where the paths may legitimately differ (Date, the order and spelling of the framing
// and connection fields node:http adds, undici's own `connection: keep-alive` upstream), the
// comparison normalises exactly that and nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, writeConfig, type CliRun } from '../helpers/cli.js'
import { ok, rawExchange, startRawUpstream, type RawUpstream } from '../helpers/raw-http.js'
import { freePort } from '../helpers/relay.js'

let up: RawUpstream
const runs: CliRun[] = []
const ports: Record<'lean' | 'general', number> = { lean: 0, general: 0 }

const replies: Record<string, string> = {
  '/plain': ok('hello', 'X-App: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n'),
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: 2\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  '/hop': 'HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: secret\r\nKeep-Alive: timeout=30\r\nContent-Length: 2\r\n\r\nok',
  '/reason': 'HTTP/1.1 299 Custom Reason\r\nContent-Length: 0\r\n\r\n',
  '/404': 'HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found',
  '/empty': 'HTTP/1.1 204 No Content\r\nX-App: 3\r\n\r\n',
}

beforeAll(async () => {
  up = await startRawUpstream((r) => {
    const path = r.head.split(' ')[1] ?? ''
    if (r.head.startsWith('HEAD')) return 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App: head\r\n\r\n'
    return replies[path] ?? ok('other')
  })
  for (const path of ['lean', 'general'] as const) {
    ports[path] = await freePort()
    const file = writeConfig(`
log: { level: info, access: false }
upstreams:
  web:
    servers: [ { address: ${up.address} } ]
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:${ports[path]}
    routes:
      - match: { pathPrefix: / }
        upstream: web
`)
    const run = runCli(['run', '-c', file], path === 'general' ? { TANDEM_HTTP_LEAN: 'off' } : {})
    runs.push(run)
    await run.waitForOutput(/tandem started/)
  }
}, 30_000)

afterAll(async () => {
  for (const r of runs) r.child.kill('SIGTERM')
  await Promise.all(runs.map(async (r) => await r.exited))
  await up.close()
})

/** Field lines of a head, lower-cased names, minus what the two paths may legitimately differ in. */
function fields (head: string, drop: readonly string[]): string[] {
  return head.split('\r\n').slice(1).filter((l) => l !== '').map((l) => {
    const i = l.indexOf(':')
    return `${l.slice(0, i).toLowerCase()}:${l.slice(i + 1).trim()}`
  }).filter((l) => !drop.includes(l.slice(0, l.indexOf(':'))))
}

async function through (path: 'lean' | 'general', request: string): Promise<{ upstream: string, status: string, fields: string[], body: string }> {
  const before = up.requests.length
  const r = await rawExchange(ports[path], request)
  const at = r.text.indexOf('\r\n\r\n')
  const head = r.text.slice(0, at)
  const received = up.requests[before]?.head ?? ''
  return {
    upstream: [received.split('\r\n')[0], ...fields(received, ['connection'])].join('\n'),
    status: head.split('\r\n')[0] ?? '',
    // Date is the proxy's clock; connection and keep-alive are this hop's own.
    fields: fields(head, ['date', 'connection', 'keep-alive']),
    body: r.text.slice(at + 4),
  }
}

describe('lean and general HTTP paths agree', () => {
  const requests: Array<[string, string]> = [
    ['plain GET with repeated Set-Cookie', 'GET /plain?q=1 HTTP/1.1\r\nHost: app.test\r\nAccept: */*\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n'],
    ['chunked response', 'GET /chunked HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'],
    ['hop-by-hop fields both ways', 'GET /hop HTTP/1.1\r\nHost: app.test\r\nConnection: close, X-Mine\r\nX-Mine: 1\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n'],
    ['an unusual status and reason', 'GET /reason HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'],
    ['a 404 from the upstream', 'GET /404 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'],
    ['204', 'GET /empty HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'],
    ['HEAD', 'HEAD /h HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'],
    ['X-Forwarded-* from an untrusted client', 'GET /plain HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n'],
  ]
  for (const [name, request] of requests) {
    it(name, async () => {
      const lean = await through('lean', request)
      const general = await through('general', request)
      expect(lean.upstream).not.toBe('')
      expect(lean).toEqual(general)
    })
  }
})
