import { describe, it, expect } from 'vitest'
import { errorsOf, parse, yaml, MINIMAL } from './helpers.js'
import { hostCovers, routeCovers } from '../../../src/config/lint.js'

const UPSTREAMS = [
  'upstreams:', //                                     1
  '  web: { servers: [{ address: 127.0.0.1:8081 }] }', // 2
  '  api: { servers: [{ address: 127.0.0.1:8082 }] }', // 3
]

describe('cross-references', () => {
  it('unknown upstreams in http routes, tcp listeners and tcp routes', () => {
    const text = yaml(
      ...UPSTREAMS,
      'listeners:',
      '  - protocol: http',
      '    listen: 127.0.0.1:8080',
      '    routes: [{ upstream: wbe }]',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:8443',
      '    upstream: nope',
      '    routes: [{ match: { sni: a.example.com }, upstream: apo }]',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:7:16: listeners[0].routes[0].upstream: unknown upstream "wbe" (did you mean "web"?)',
      't.yaml:10:5: listeners[1].upstream: unknown upstream "nope"',
      't.yaml:11:47: listeners[1].routes[0].upstream: unknown upstream "apo" (did you mean "api"?)',
    ])
  })

  it('unknown rate limits on listeners and routes', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 9),
      '      - { upstream: web, rateLimit: per-clinet }',
      '    rateLimit: global',
      'rateLimits:',
      '  per-client: { key: client-ip, rate: 10/s }',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:10:26: listeners[0].routes[0].rateLimit: unknown rate limit "per-clinet" (did you mean "per-client"?)',
      't.yaml:11:5: listeners[0].rateLimit: unknown rate limit "global"',
    ])
  })

  it('a tcp listener needs an upstream or routes; an http listener needs routes', () => {
    const text = yaml(
      ...UPSTREAMS,
      'listeners:',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:6380',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:6381',
      '    routes: []',
      '  - protocol: http',
      '    listen: 127.0.0.1:8080',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:10:5: listeners[2].routes: is required',
    ])
    expect(errorsOf(text.replace(/ {2}- protocol: http\n.*\n$/, ''))).toEqual([
      't.yaml:5:5: listeners[0]: a tcp listener needs an upstream or routes',
      't.yaml:7:5: listeners[1]: a tcp listener needs an upstream or routes',
    ])
    expect(errorsOf(yaml(...MINIMAL.slice(0, 8), '    routes: []'))).toEqual([
      't.yaml:9:5: listeners[0].routes: must not be empty',
    ])
  })
})

describe('addresses and names', () => {
  it('two listeners on one address, including 0.0.0.0 against a specific IPv4 address', () => {
    const text = yaml(
      ...MINIMAL,
      '  - { name: b, protocol: tcp, listen: "127.0.0.1:8080", upstream: web }',
      '  - { name: c, protocol: tcp, listen: "0.0.0.0:8080", upstream: web }',
      '  - { name: d, protocol: tcp, listen: "127.0.0.2:8081", upstream: web }',
      '  - { name: e, protocol: tcp, listen: "127.0.0.3:8081", upstream: web }',
      '  - { name: f, protocol: tcp, listen: "[::]:8081", upstream: web }',
      '  - { name: g, protocol: tcp, listen: "[::1]:8082", upstream: web }',
      '  - { name: h, protocol: tcp, listen: "0.0.0.0:8082", upstream: web }',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:11:31: listeners[1].listen: address 127.0.0.1:8080 is already used by listener "public" (127.0.0.1:8080)',
      't.yaml:12:31: listeners[2].listen: address 0.0.0.0:8080 is already used by listener "public" (127.0.0.1:8080)',
      't.yaml:15:31: listeners[5].listen: address [::]:8081 is already used by listener "d" (127.0.0.2:8081)',
    ])
  })

  it('the admin and peer listens collide with listeners too; port 0 never collides', () => {
    const text = yaml(
      'admin: { listen: "127.0.0.1:8080" }',
      'peer: { id: a, listen: "0.0.0.0:8080", peers: ["10.0.0.2:7946"], secret: 0123456789abcdef }',
      ...MINIMAL,
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:2:16: peer.listen: address 0.0.0.0:8080 is already used by the admin listen',
      't.yaml:10:5: listeners[0].listen: address 127.0.0.1:8080 is already used by the admin listen',
    ])
    const zero = yaml('admin: { listen: "127.0.0.1:0" }', ...MINIMAL, '  - { protocol: tcp, listen: "127.0.0.1:0", upstream: web }')
    expect(parse(zero.replace('127.0.0.1:8080', '127.0.0.1:0')).listeners).toHaveLength(2)
  })

  it('duplicate listener names and duplicate route names (generated names count)', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 9),
      '      - { upstream: web, match: { path: /w } }',
      '      - { name: route-1, upstream: web, match: { path: /x } }',
      '      - { name: api, upstream: web, match: { path: /y } }',
      '      - { name: api, upstream: web, match: { path: /z } }',
      '  - { name: public, protocol: tcp, listen: "127.0.0.1:9000", upstream: web }',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:11:11: listeners[0].routes[1].name: duplicate route name "route-1" (also routes[0])',
      't.yaml:13:11: listeners[0].routes[3].name: duplicate route name "api" (also routes[2])',
      't.yaml:14:7: listeners[1].name: duplicate listener name "public" (also listeners[0])',
    ])
  })

  it('duplicate server addresses in one upstream (case-insensitive host)', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - address: Backend.local:80',
      '      - address: 127.0.0.1:80',
      '      - address: backend.LOCAL:80',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:6:9: upstreams.web.servers[2].address: duplicate server backend.LOCAL:80 (also servers[0])',
    ])
  })

  it('ports out of range and malformed IP addresses', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - address: 127.0.0.1:0',
      '      - address: 127.0.0.1:65536',
      '      - address: 300.1.2.3:80',
      '      - address: "[1::2::3]:80"',
      ...MINIMAL.slice(4, 7),
      '    listen: 127.0.0.1:99999',
      ...MINIMAL.slice(8),
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:4:9: upstreams.web.servers[0].address: port 0 out of range 1..65535',
      't.yaml:5:9: upstreams.web.servers[1].address: port 65536 out of range 1..65535',
      't.yaml:6:9: upstreams.web.servers[2].address: invalid IPv4 address "300.1.2.3"',
      't.yaml:7:9: upstreams.web.servers[3].address: invalid IPv6 address "1::2::3"',
      't.yaml:11:5: listeners[0].listen: port 99999 out of range 0..65535',
    ])
  })
})

describe('security rules', () => {
  it('a non-loopback admin listen needs a token', () => {
    expect(errorsOf(yaml('admin:', '  listen: 0.0.0.0:9090', ...MINIMAL))).toEqual([
      't.yaml:2:3: admin.listen: a non-loopback admin listen needs a token (admin.token)',
    ])
    expect(errorsOf(yaml('admin:', '  listen: 10.1.2.3:9090', '  token: ${T:-}', ...MINIMAL))).toEqual([
      't.yaml:3:3: admin.token: is empty; set a token, or remove the key for a loopback admin without one',
    ])
    for (const listen of ['127.0.0.1:9090', '127.1.2.3:9090', 'localhost:9090', '"[::1]:9090"']) {
      expect(parse(yaml(`admin: { listen: ${listen} }`, ...MINIMAL)).admin?.token).toBeUndefined()
    }
    expect(parse(yaml('admin: { listen: "0.0.0.0:9090", token: t0k }', ...MINIMAL)).admin?.token).toBe('t0k')
  })

  it('a peer needs a secret of at least 16 bytes', () => {
    const peer = (secret: string): string => yaml(...MINIMAL, `peer: { id: a, listen: "127.0.0.1:7946", peers: ["127.0.0.1:7947"]${secret} }`)
    expect(errorsOf(peer(''))).toEqual(['t.yaml:11:7: peer.secret: is required'])
    expect(errorsOf(peer(', secret: 0123456789abcde'))).toEqual([
      't.yaml:11:69: peer.secret: must be at least 16 bytes (it is 15)',
    ])
    expect(parse(peer(', secret: 0123456789abcdef')).peer?.secret).toBe('0123456789abcdef')
  })

  it('a Redis witness needs deadAfter 2 or more (a one-heartbeat lease never lets a node serve)', () => {
    const peer = (rest: string): string => yaml(...MINIMAL, `peer: { id: a, listen: "127.0.0.1:7946", peers: ["127.0.0.1:7947"], secret: 0123456789abcdef, ${rest} }`)
    expect(errorsOf(peer('deadAfter: 1, witness: "redis://127.0.0.1:6379"'))).toEqual([
      't.yaml:11:95: peer.deadAfter: must be at least 2 with a Redis witness (the lease must outlast a missed renewal)',
    ])
    expect(parse(peer('deadAfter: 2, witness: "redis://127.0.0.1:6379"')).peer?.deadAfter).toBe(2)
    expect(parse(peer('deadAfter: 1')).peer?.deadAfter).toBe(1)
  })

  it('a TCP witness needs deadAfter 3 or more, and a heartbeat is at least 50ms', () => {
    const peer = (rest: string): string => yaml(...MINIMAL, `peer: { id: a, listen: "127.0.0.1:7946", peers: ["127.0.0.1:7947"], secret: 0123456789abcdef, ${rest} }`)
    expect(errorsOf(peer('deadAfter: 2, witness: "127.0.0.1:7000"'))).toEqual([
      't.yaml:11:95: peer.deadAfter: must be at least 3 with a TCP witness (an isolated active must stop a heartbeat before the standby starts)',
    ])
    expect(parse(peer('deadAfter: 3, witness: "127.0.0.1:7000"')).peer?.deadAfter).toBe(3)
    expect(parse(peer('witness: "127.0.0.1:7000"')).peer?.deadAfter).toBe(3)
    expect(errorsOf(peer('heartbeat: 20ms'))).toEqual(['t.yaml:11:95: peer.heartbeat: must be at least 50ms'])
    expect(parse(peer('heartbeat: 50ms')).peer?.heartbeat).toBe(50)
  })
})

describe('surely a mistake', () => {
  it('a health timeout longer than its interval', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers: [{ address: 127.0.0.1:8081 }]',
      '    health: { interval: 1s, timeout: 1001 }',
      '  api:',
      '    servers: [{ address: 127.0.0.1:8082 }]',
      '    health: { interval: 500ms, timeout: 2s }',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:4:29: upstreams.web.health.timeout: must not be longer than interval (timeout 1001ms, interval 1s)',
      't.yaml:7:32: upstreams.api.health.timeout: must not be longer than interval (timeout 2s, interval 500ms)',
    ])
  })

  it('a fast interval alone is valid: the timeout defaults to 1s or the interval when shorter', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers: [{ address: 127.0.0.1:8081 }]',
      '    health: { interval: 500ms }',
      '  api:',
      '    servers: [{ address: 127.0.0.1:8082 }]',
      '    health: { interval: 1s, timeout: 1s }',
      ...MINIMAL.slice(4),
    )
    const config = parse(text)
    expect(config.upstreams.web?.health).toMatchObject({ interval: 500, timeout: 500 })
    expect(config.upstreams.api?.health).toMatchObject({ interval: 1000, timeout: 1000 })
  })

  it('a pool whose servers are all backup', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - { address: 127.0.0.1:8081, backup: true }',
      '      - { address: 127.0.0.1:8082, backup: true }',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:3:5: upstreams.web.servers: every server is a backup; mark at least one with backup: false',
    ])
  })

  it('path with pathPrefix, and stripPrefix without pathPrefix', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 9),
      '      - { upstream: web, match: { path: /a, pathPrefix: /a } }',
      '      - { upstream: web, match: { path: /b }, stripPrefix: true }',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:10:45: listeners[0].routes[0].match.pathPrefix: use either path or pathPrefix, not both',
      't.yaml:11:47: listeners[0].routes[1].stripPrefix: needs match.pathPrefix (the prefix it strips)',
    ])
  })

  it('trusted proxies must be IPs or CIDRs; status ranges must not be empty', () => {
    const errs = errorsOf(yaml(
      'upstreams:',
      '  web:',
      '    servers: [{ address: 127.0.0.1:8081 }]',
      '    health: { type: http, expectStatus: 399-200 }',
      ...MINIMAL.slice(4),
      '    trustedProxies: [10.0.0.0/8, "::1", fd00::/8, 10.0.0.0/33, 1.2.3, fd00::/129, 10.0.0.1]',
    ))
    expect(errs).toEqual([
      't.yaml:4:27: upstreams.web.health.expectStatus: range 399-200 is empty (399 > 200)',
      't.yaml:11:51: listeners[0].trustedProxies[3]: must be an IP address or a CIDR like 10.0.0.0/8 or fd00::/8',
      't.yaml:11:64: listeners[0].trustedProxies[4]: must be an IP address or a CIDR like 10.0.0.0/8 or fd00::/8',
      't.yaml:11:71: listeners[0].trustedProxies[5]: must be an IP address or a CIDR like 10.0.0.0/8 or fd00::/8',
    ])
    expect(errorsOf(yaml(...MINIMAL, '    trustedProxies: [example.com]'))).toEqual([
      't.yaml:11:22: listeners[0].trustedProxies[0]: must be an IP address or a CIDR like 10.0.0.0/8',
    ])
  })
})

describe('rate limits on tcp listeners', () => {
  it('refuse keys that need HTTP (header:NAME, route)', async () => {
    const { parseConfig } = await import('../../../src/config/load.js')
    const yaml = `
upstreams: { u: { servers: [{ address: 127.0.0.1:1 }] } }
listeners:
  - { name: t, protocol: tcp, listen: 127.0.0.1:0, upstream: u, rateLimit: keyed }
rateLimits:
  keyed: { key: "header:x-k", rate: 1/s }
`
    expect(() => parseConfig(yaml, 't.yaml')).toThrow(/listeners\[0\]\.rateLimit: rate limit "keyed" has key header:…; a tcp listener can only use client-ip or global/)
  })
})
