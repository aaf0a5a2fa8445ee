import { describe, it, expect } from 'vitest'
import { errorsOf, parse, yaml, MINIMAL } from './helpers.js'

describe('schema errors: one per kind, with exact line, column and path', () => {
  it('unknown key: at the key, with a suggestion', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - address: 127.0.0.1:8081',
      '        wieght: 3',
      'listeners:',
      '  - name: public',
      '    protocl: http',
      '    listen: 127.0.0.1:8080',
      '    routes: [{ upstream: web }]',
      'extra: 1',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:5:9: upstreams.web.servers[0].wieght: unknown key (did you mean "weight"?)',
      't.yaml:7:5: listeners[0].protocol: is required',
      't.yaml:8:5: listeners[0].protocl: unknown key (did you mean "protocol"?)',
      't.yaml:11:1: extra: unknown key',
    ])
  })

  it("bad value: where its key starts (as in the spec's 14:9 example), in plain words", () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    balance: round-robn',
      '    servers:',
      '      - address: 127.0.0.1:8081',
      '        weight: 300',
      '      - { address: 127.0.0.1:8082, weight: "2", backup: yes }',
      '    connectTimeout: 2 seconds',
      'listeners:',
      '  - protocol: http',
      '    listen: 8080',
      '    maxHeaderSize: 16 kilobytes',
      '    routes: [{ upstream: web }]',
      'rateLimits:',
      '  r: { key: ip, rate: 100/d, burst: 0 }',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:3:5: upstreams.web.balance: must be one of: round-robin, least-connections, response-time (did you mean "round-robin"?)',
      't.yaml:6:9: upstreams.web.servers[0].weight: must be an integer 1..256',
      't.yaml:7:36: upstreams.web.servers[1].weight: must be an integer 1..256',
      't.yaml:7:49: upstreams.web.servers[1].backup: must be true or false',
      't.yaml:8:5: upstreams.web.connectTimeout: must be a duration like 250ms, 2s, 5m or integer milliseconds',
      't.yaml:11:5: listeners[0].listen: must be host:port (an IPv6 host in brackets: [::1]:8080)',
      't.yaml:12:5: listeners[0].maxHeaderSize: must be a size like 16kb, 1mb or integer bytes',
      't.yaml:15:8: rateLimits.r.key: must be one of: client-ip, header:NAME, route, global',
      't.yaml:15:17: rateLimits.r.rate: must be a rate like 100/s, 6000/m or 10/h',
      't.yaml:15:30: rateLimits.r.burst: must be an integer 1..1000000000',
    ])
  })

  it('missing required key: at the parent mapping', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - weight: 2',
      'listeners:',
      '  - name: public',
      '    protocol: http',
      '    routes: [{ upstream: web }]',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:4:9: upstreams.web.servers[0].address: is required',
      't.yaml:6:5: listeners[0].listen: is required',
    ])
  })

  it('missing top-level sections, empty file, wrong root type', () => {
    expect(errorsOf('log: { level: info }\n')).toEqual([
      't.yaml:1:1: listeners: is required',
      't.yaml:1:1: upstreams: is required',
    ])
    expect(errorsOf('')).toEqual(['t.yaml:1:1: (root): must be a mapping'])
    expect(errorsOf('# only a comment\n\n- a\n')).toEqual(['t.yaml:3:1: (root): must be a mapping'])
  })

  it('wrong container types and empty lists', () => {
    const text = yaml(
      'upstreams: []',
      'listeners: []',
      'log: verbose',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:1:1: upstreams: must be a mapping',
      't.yaml:2:1: listeners: must not be empty',
      't.yaml:3:1: log: must be a mapping',
    ])
  })

  it('keys that belong to the other listener protocol or health type', () => {
    const text = yaml(
      ...MINIMAL,
      '    idleTimeout: 5m',
      '  - name: db',
      '    protocol: tcp',
      '    listen: 127.0.0.1:5432',
      '    upstream: web',
      '    trustedProxies: [10.0.0.0/8]',
      'rateLimits: {}',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:11:5: listeners[0].idleTimeout: only allowed on tcp listeners (http listeners use timeouts.idle)',
      't.yaml:16:5: listeners[1].trustedProxies: only allowed on http listeners',
    ])
    const health = yaml(
      'upstreams:',
      '  web:',
      '    servers: [{ address: 127.0.0.1:8081 }]',
      '    health: { interval: 2s, path: /healthz }',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(health)).toEqual([
      't.yaml:4:29: upstreams.web.health.path: only allowed with type: http',
    ])
  })

  // Regression: `path: "/health check"` passed `tandem check`, then every probe failed before it
  // connected (node:http refuses the space) and the whole upstream went down.
  it('a health check path that cannot be sent as a request target is refused', () => {
    const text = (path: string): string => yaml(
      'upstreams:',
      '  web:',
      '    servers: [{ address: 127.0.0.1:8081 }]',
      `    health: { type: http, path: ${path} }`,
      ...MINIMAL.slice(4),
    )
    const bad = (path: string): string[] => errorsOf(text(path))
    const message = 'upstreams.web.health.path: must be a path starting with "/", in visible ASCII (percent-encode spaces and the rest)'
    expect(bad('"/health check"')).toEqual([`t.yaml:4:27: ${message}`])
    expect(bad('"/h\\u0000"')).toEqual([`t.yaml:4:27: ${message}`])
    expect(bad('"/h\\u00e9"')).toEqual([`t.yaml:4:27: ${message}`])
    expect(parse(text('"/healthz?full=1&x=%20"')).upstreams.web?.health?.path).toBe('/healthz?full=1&x=%20')
  })

  it('http route problems and tcp route shapes', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 9),
      '      - match: { hots: a.example.com, path: v1, methods: [G3T] }',
      '        upstream: web',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:8443',
      '    routes: [{ match: { host: a.example.com }, upstream: web }]',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:10:18: listeners[0].routes[0].match.hots: unknown key (did you mean "host"?)',
      't.yaml:10:39: listeners[0].routes[0].match.path: must be a path starting with "/", in visible ASCII, without "?", "#", "\\" or a "." or ".." segment (no request path has them)',
      't.yaml:10:59: listeners[0].routes[0].match.methods[0]: must be an HTTP method like GET',
      't.yaml:14:23: listeners[1].routes[0].match.sni: is required',
      't.yaml:14:25: listeners[1].routes[0].match.host: unknown key',
    ])
  })

  // Regression: a route path no request can have (requests with "?" in the path part, "#",
  // "\\", non-ASCII or dot-segments are refused 400) passed `tandem check` and never matched.
  it('a route path that no request path can be is refused', () => {
    const route = (match: string): string => yaml(...MINIMAL.slice(0, 9), `      - match: { ${match} }`, '        upstream: web')
    const message = 'must be a path starting with "/", in visible ASCII, without "?", "#", "\\" or a "." or ".." segment (no request path has them)'
    for (const [match, col] of [['path: "/healthz?full=1"', 18], ['pathPrefix: "/x#y"', 18], ['pathPrefix: /a/../b', 18], ['path: /v1/%2e', 18], ['pathPrefix: "/a\\\\b"', 18], ['path: /café', 18]] as const) {
      expect(errorsOf(route(match)), match).toEqual([`t.yaml:10:${col}: listeners[0].routes[0].match.${match.split(':')[0]}: ${message}`])
    }
    const ok = parse(route('pathPrefix: /v1/.well-known/a.b~c-d_e'))
    expect(ok.listeners[0]?.protocol === 'http' && ok.listeners[0].routes[0]?.match.pathPrefix).toBe('/v1/.well-known/a.b~c-d_e')
  })

  // Requests are routed on their path with unreserved escapes decoded (src/router/path.ts), so
  // a configured path is spelled the same way: `/%61pi/` matches what `/api/` matches.
  it('configured paths are normalised as request paths are: unreserved escapes decoded, others kept', () => {
    const route = (match: string): string => yaml(...MINIMAL.slice(0, 9), `      - match: { ${match} }`, '        upstream: web')
    const first = (text: string): unknown => { const c = parse(text).listeners[0]; return c?.protocol === 'http' ? c.routes[0]?.match : undefined }
    expect(first(route('pathPrefix: /%61pi/%7Euser/'))).toEqual({ pathPrefix: '/api/~user/' })
    expect(first(route('path: /files/a%2Fb%3f'))).toEqual({ path: '/files/a%2Fb%3f' })
  })

  it('names used as map keys', () => {
    const text = yaml(
      'upstreams:',
      '  "web server": { servers: [{ address: 127.0.0.1:8081 }] }',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(text)).toContain(
      't.yaml:2:3: upstreams.web server: must be a name of letters, digits, ".", "_" or "-", starting with a letter or digit',
    )
  })

  it('peer ranges and required keys', () => {
    const text = yaml(
      ...MINIMAL,
      'peer:',
      '  id: lb-a',
      '  listen: 127.0.0.1:7946',
      '  peers: [127.0.0.1:7947]',
      '  priority: 255',
      '  standby: half-open',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:12:3: peer.secret: is required',
      't.yaml:15:3: peer.priority: must be an integer 1..254',
      't.yaml:16:3: peer.standby: must be one of: closed, open',
    ])
  })

  it('reports every error in the file, not only the first', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - { address: 127.0.0.1:8081, weight: 0 }',
      '      - { address: 127.0.0.1:8082, weight: 257 }',
      '      - { address: 127.0.0.1:8083, weight: 1.5 }',
      'listeners:',
      '  - { protocol: http, listen: "127.0.0.1:8080", routes: [{ upstream: web }], maxHeaderSize: -1 }',
      'shutdownTimeout: soon',
      'log: { level: loud, access: "yes" }',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:4:36: upstreams.web.servers[0].weight: must be an integer 1..256',
      't.yaml:5:36: upstreams.web.servers[1].weight: must be an integer 1..256',
      't.yaml:6:36: upstreams.web.servers[2].weight: must be an integer 1..256',
      't.yaml:8:78: listeners[0].maxHeaderSize: must be a size like 16kb, 1mb or integer bytes',
      't.yaml:9:1: shutdownTimeout: must be a duration like 250ms, 2s, 5m or integer milliseconds',
      't.yaml:10:8: log.level: must be one of: trace, debug, info, warn, error, silent',
      't.yaml:10:21: log.access: must be true or false',
    ])
  })
})
