// Routing defects an audit found, each with the bytes that showed it, on both HTTP paths: the
// lean one, and node:http + undici as `TANDEM_HTTP_LEAN=off` runs it. A refused request gets its
// 400 and reaches no upstream; an admitted one reaches exactly the upstream and request line
// given. Most were ways past a route guard (`admin` below) that an upstream undid: nginx resolves
// `..%2f` and `/./`, WHATWG URL parsers read `\` as `/`.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startProxy, type RunningTandem } from '../helpers/tandem.js'
import { ok, rawExchange, startRawUpstream, statuses, type RawUpstream } from '../helpers/raw-http.js'

const NAMES = ['admin', 'api', 'public', 'wild', 'default'] as const
type Name = typeof NAMES[number]
type Path = 'lean' | 'general'

const ups = {} as Record<Name, RawUpstream>
const proxies = {} as Record<Path, RunningTandem>

const config = (): string => `
log: { level: silent, access: false }
upstreams:
${NAMES.map((n) => `  ${n}: { servers: [{ address: ${ups[n].address} }] }`).join('\n')}
rateLimits:
  strict: { key: client-ip, rate: 1/m, burst: 1 }
listeners:
  - name: main
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - { name: admin, match: { pathPrefix: /admin/ }, upstream: admin }
      - { name: api, match: { pathPrefix: /api }, upstream: api, stripPrefix: true }
      - { name: public, match: { pathPrefix: /public/ }, upstream: public }
      - { name: wild, match: { host: "*.example.com", path: /wild }, upstream: wild }
      - { name: default, match: { pathPrefix: / }, upstream: default }
  - name: nocatch
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - { name: only, match: { host: api.example.com, pathPrefix: /api/ }, upstream: api }
  - name: limited
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - { name: admin, match: { pathPrefix: /admin/ }, upstream: admin, rateLimit: strict }
      - { name: api, match: { pathPrefix: /api }, upstream: api, stripPrefix: true }
      - { name: public, match: { pathPrefix: /public/ }, upstream: public }
      - { name: default, match: { pathPrefix: / }, upstream: default }
`

beforeAll(async () => {
  for (const n of NAMES) ups[n] = await startRawUpstream((r) => ok(r.head.split(' ')[1] ?? ''))
  proxies.lean = await startProxy(config())
  // http-listener.ts reads TANDEM_HTTP_LEAN once, as it loads: a second module graph loaded
  // under it is a proxy on the general path for every connection.
  vi.stubEnv('TANDEM_HTTP_LEAN', 'off')
  vi.resetModules()
  const general = await import('../helpers/tandem.js')
  vi.unstubAllEnvs()
  proxies.general = await general.startProxy(config())
})

afterAll(async () => {
  for (const p of Object.values(proxies)) await p.stop()
  await Promise.all(Object.values(ups).map(async (u) => { await u.close() }))
})

/** The status, and `upstream request-line` for each request the upstreams received meanwhile. */
async function send (path: Path, bytes: string, listener = 'main'): Promise<{ status: number[], received: string[] }> {
  const before = NAMES.map((n) => ups[n].requests.length)
  // A head is enough: the upstream has the request before the proxy can answer it.
  const r = await rawExchange(proxies[path].port(listener), bytes, { until: (t) => t.includes('\r\n\r\n') })
  const received = NAMES.flatMap((n, i) => ups[n].requests.slice(before[i]).map((q) => `${n} ${q.head.slice(0, q.head.indexOf('\r\n'))}`))
  return { status: statuses(r.text), received }
}

const req = (target: string, host = 'Host: a\r\n'): string => `GET ${target} HTTP/1.1\r\n${host}Connection: close\r\n\r\n`

describe.each(['lean', 'general'] as const)('routing bypasses, %s path', (path) => {
  it('the general fixture is node:http + undici, the lean one is not (undici lower-cases Host)', async () => {
    await send(path, 'GET /x HTTP/1.1\r\nhOsT: a\r\nConnection: close\r\n\r\n')
    const head = ups.default.requests.at(-1)?.head ?? ''
    expect(head).toContain(path === 'lean' ? '\r\nhOsT: a\r\n' : '\r\nhost: a\r\n')
  })

  it.each([
    // 1. `pathPrefix: /api` + stripPrefix turned these into /./admin/x, /../admin, /%2e%2e/admin, /..
    ['/api./admin/x', 400, []],
    ['/api../admin', 400, []],
    ['/api%2e%2e/admin', 400, []],
    ['/api..', 400, []],
    // ...while stripping keeps nginx's semantics, a cut mid-segment included.
    ['/api/x?y=%2F', 200, ['api GET /x?y=%2F HTTP/1.1']],
    ['/apix/y', 200, ['api GET /x/y HTTP/1.1']],
    ['/api.x/y', 200, ['api GET /.x/y HTTP/1.1']],
    // 2. A backslash in the path (a WHATWG app reads /public\..\admin/x as /admin/x); not in the query.
    ['/public\\..\\admin/x', 400, []],
    ['http://a/public\\..\\admin/x', 400, []],
    ['/api/x/..\\..\\admin', 400, []],
    ['/public/x\\y', 400, []],
    ['/public/x?q=a\\b', 200, ['public GET /public/x?q=a\\b HTTP/1.1']],
    // 3. Encoded separators around dots (nginx resolved these to /admin/x); a plain %2F is data.
    ['/public/..%2fadmin/x', 400, []],
    ['/public/%2e%2e%2fadmin/x', 400, []],
    ['/public/..%5Cadmin/x', 400, []],
    ['/public/x%2F.%2Fy', 400, []],
    ['/public/group%2Fproject/x', 200, ['public GET /public/group%2Fproject/x HTTP/1.1']],
    // 4. Encoded unreserved characters are decoded for routing and upstream; nothing else is.
    ['/%61dmin/x', 200, ['admin GET /admin/x HTTP/1.1']],
    ['/%61%64%6D%69%6e/x', 200, ['admin GET /admin/x HTTP/1.1']],
    ['/public/%7Euser/a%2fb%3F%25%zz%4?q=%61', 200, ['public GET /public/~user/a%2fb%3F%25%zz%4?q=%61 HTTP/1.1']],
    ['/api%2Fadmin', 200, ['api GET /%2Fadmin HTTP/1.1']],
    // Deliberately not normalised (HAProxy's and Envoy's defaults): case and repeated slashes.
    ['/Admin/x', 200, ['default GET /Admin/x HTTP/1.1']],
    ['//admin/x', 200, ['default GET //admin/x HTTP/1.1']],
  ] as const)('GET %s: %i, upstream got %j', async (target, status, received) => {
    expect(await send(path, req(target))).toEqual({ status: [status], received })
  })

  it('the same encoded-slash and stripPrefix bypasses with a body (POST) are refused too', async () => {
    for (const target of ['/public/..%2fadmin/x', '/api./admin/x', '/public\\..\\admin/x']) {
      expect(await send(path, `POST ${target} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`)).toEqual({ status: [400], received: [] })
    }
    expect(await send(path, 'POST /%61dmin/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')).toEqual({ status: [200], received: ['admin POST /admin/x HTTP/1.1'] })
  })

  it('5. an absolute-form HTTP/1.1 request without Host: 400 (was routed and forwarded)', async () => {
    const bytes = 'GET http://api.example.com/api/x HTTP/1.1\r\nConnection: close\r\n\r\n'
    expect(await send(path, bytes, 'nocatch')).toEqual({ status: [400], received: [] })
    expect(await send(path, bytes)).toEqual({ status: [400], received: [] })
    // With a Host, or from HTTP/1.0 (which needs none), the authority still routes.
    expect(await send(path, 'GET http://api.example.com/api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'nocatch')).toEqual({ status: [200], received: ['api GET /api/x HTTP/1.1'] })
    expect(await send(path, 'GET http://api.example.com/api/x HTTP/1.0\r\n\r\n', 'nocatch')).toEqual({ status: [200], received: ['api GET /api/x HTTP/1.1'] })
  })

  it.each([
    ['Host: .example.com\r\n', 400, []],
    ['Host: a..example.com\r\n', 400, []],
    ['Host: ..example.com\r\n', 400, []],
    ['Host: .\r\n', 400, []],
    ['Host: a.example.com\r\n', 200, ['wild GET /wild HTTP/1.1']],
    ['Host: A.Example.COM.:8080\r\n', 200, ['wild GET /wild HTTP/1.1']],
  ] as const)('6. GET /wild with %j: %i (an empty label matched *.example.com)', async (host, status, received) => {
    expect(await send(path, req('/wild', host))).toEqual({ status: [status], received })
  })

  it('6. an absolute-form authority with an empty label: 400', async () => {
    expect(await send(path, 'GET http://.example.com/wild HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toEqual({ status: [400], received: [] })
  })

  it('7. an empty Host: 400 (was forwarded with `Host: ` and an empty X-Forwarded-Host)', async () => {
    expect(await send(path, 'GET /fwd HTTP/1.1\r\nHost:\r\n\r\n')).toEqual({ status: [400], received: [] })
    expect(await send(path, 'GET /fwd HTTP/1.0\r\nHost: \r\n\r\n')).toEqual({ status: [400], received: [] })
  })

  it('the rate-limited admin route cannot be reached around its limit (the audit\'s demonstration)', async () => {
    const limited = async (target: string): Promise<{ status: number[], received: string[] }> => await send(path, req(target), 'limited')
    expect(await limited('/admin/x')).toEqual({ status: [200], received: ['admin GET /admin/x HTTP/1.1'] })
    expect(await limited('/admin/x')).toEqual({ status: [429], received: [] })
    for (const target of ['/api./admin/x', '/public/..%2fadmin/x', '/public/%2e%2e%2fadmin/x', '/public\\..\\admin/x']) {
      expect(await limited(target)).toEqual({ status: [400], received: [] })
    }
    expect(await limited('/%61dmin/x')).toEqual({ status: [429], received: [] })
  })
})
