import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { errorsOf, parse, yaml, MINIMAL } from './helpers.js'
import type { HttpListenerConfig, TcpListenerConfig } from '../../../src/config/types.js'

const SPEC_ENV = { TANDEM_ADMIN_TOKEN: 'admin-token', TANDEM_PEER_SECRET: 'a-secret-of-24-bytes-xyz' }

describe('defaults and normalisation', () => {
  it('fills every default of a minimal config', () => {
    const c = parse(yaml(...MINIMAL))
    expect(c).toEqual({
      file: 't.yaml',
      hash: c.hash,
      log: { level: 'info', access: true },
      shutdownDelay: 0,
      shutdownTimeout: 30_000,
      upstreams: {
        web: {
          name: 'web',
          balance: 'round-robin',
          servers: [{ text: '127.0.0.1:8081', host: '127.0.0.1', port: 8081, weight: 1, backup: false, maxConnections: 0 }],
          connectTimeout: 5000,
          retries: 1,
          slowStart: 0,
        },
      },
      listeners: [{
        name: 'public',
        protocol: 'http',
        listen: { text: '127.0.0.1:8080', host: '127.0.0.1', port: 8080 },
        trustedProxies: [],
        timeouts: { header: 10_000, idle: 60_000, response: 60_000 },
        maxHeaderSize: 16_384,
        routes: [{ name: 'route-1', match: {}, upstream: 'web', stripPrefix: false }],
      }],
      rateLimits: {},
    })
  })

  it('defaults health, passive, tcp listener, rate limit, redis and peer settings', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers: [{ address: 127.0.0.1:8081 }]',
      '    health: {}',
      '    passive: {}',
      '  api:',
      '    servers: [{ address: 127.0.0.1:8082 }]',
      '    health: { type: http, expectStatus: 200 }',
      'listeners:',
      '  - { protocol: tcp, listen: "127.0.0.1:6380", upstream: web }',
      '  - { protocol: http, listen: "127.0.0.1:8080", routes: [{ upstream: api }], rateLimit: rl }',
      'rateLimits:',
      '  rl: { key: "header:X-Api-Key", rate: 6000/m }',
      '  slow: { key: global, rate: 1/h }',
      'rateLimitStore: { redis: { url: "redis://127.0.0.1:6379" } }',
      'peer: { id: a, listen: "127.0.0.1:7946", peers: ["127.0.0.1:7947"], secret: 0123456789abcdef }',
    )
    const c = parse(text)
    expect(c.upstreams.web?.health).toEqual({ type: 'tcp', path: '/', expectStatus: [200, 399], interval: 2000, timeout: 1000, rise: 2, fall: 3 })
    expect(c.upstreams.web?.passive).toEqual({ failures: 5, ejectFor: 30_000 })
    expect(c.upstreams.api?.health?.expectStatus).toEqual([200, 200])
    expect(c.upstreams.api?.passive).toBeUndefined()
    const tcp = c.listeners[0] as TcpListenerConfig
    expect(tcp).toEqual({
      name: 'listener-1',
      protocol: 'tcp',
      listen: { text: '127.0.0.1:6380', host: '127.0.0.1', port: 6380 },
      upstream: 'web',
      routes: [],
      proxyProtocol: 'off',
      idleTimeout: 300_000,
      maxConnections: 0,
      prereadTimeout: 5000,
    })
    expect(c.listeners[1]?.name).toBe('listener-2')
    expect(c.rateLimits.rl).toEqual({ name: 'rl', key: { kind: 'header', header: 'x-api-key' }, rate: 100, burst: 100, headers: 'draft-6', maxKeys: 100_000 })
    expect(c.rateLimits.slow).toEqual({ name: 'slow', key: { kind: 'global' }, rate: 1 / 3600, burst: 1, headers: 'draft-6', maxKeys: 100_000 })
    expect(c.rateLimitStore).toEqual({ redis: { url: 'redis://127.0.0.1:6379', prefix: 'tandem:', timeout: 50, onError: 'local' } })
    expect(c.peer).toEqual({
      id: 'a',
      listen: { text: '127.0.0.1:7946', host: '127.0.0.1', port: 7946 },
      peers: [{ text: '127.0.0.1:7947', host: '127.0.0.1', port: 7947 }],
      secret: '0123456789abcdef',
      priority: 100,
      preempt: false,
      heartbeat: 200,
      deadAfter: 3,
      standby: 'closed',
      onChangeTimeout: 30_000,
    })
  })

  it('maps every rate-limit key form', () => {
    const text = yaml(...MINIMAL, 'rateLimits:',
      '  a: { key: client-ip, rate: 1/s }', '  b: { key: route, rate: 1/s }',
      '  c: { key: global, rate: 1/s }', '  d: { key: "header:X-Tenant", rate: 1/s, burst: 5 }')
    const keys = Object.values(parse(text).rateLimits).map((r) => r.key)
    expect(keys).toEqual([{ kind: 'client-ip' }, { kind: 'route' }, { kind: 'global' }, { kind: 'header', header: 'x-tenant' }])
  })

  it('splits IPv6 and DNS addresses, lower-cases hosts, header names and methods', () => {
    const text = yaml(
      'upstreams:',
      '  web: { servers: [{ address: "[fd00::1]:8081" }, { address: Backend.Internal:80 }] }',
      'listeners:',
      '  - protocol: http',
      '    listen: "[::]:8080"',
      '    routes:',
      '      - match: { host: API.Example.com, methods: [get, Post], headers: { X-Canary: 1, X-On: true } }',
      '        upstream: web',
    )
    const c = parse(text)
    expect(c.upstreams.web?.servers.map((s) => [s.host, s.port])).toEqual([['fd00::1', 8081], ['backend.internal', 80]])
    expect(c.listeners[0]?.listen).toEqual({ text: '[::]:8080', host: '::', port: 8080 })
    expect((c.listeners[0] as HttpListenerConfig).routes[0]?.match).toEqual({
      host: 'api.example.com', methods: ['GET', 'POST'], headers: { 'x-canary': '1', 'x-on': 'true' },
    })
  })

  it('converts units', () => {
    const text = yaml(
      'shutdownTimeout: 1500',
      'upstreams:',
      '  web: { servers: [{ address: "127.0.0.1:1" }], connectTimeout: 250ms, slowStart: 1m }',
      'listeners:',
      '  - protocol: http',
      '    listen: 127.0.0.1:8080',
      '    maxHeaderSize: 1mb',
      '    timeouts: { header: 2s, idle: 1h, response: 1 }',
      '    routes: [{ upstream: web }]',
    )
    const c = parse(text)
    expect(c.shutdownTimeout).toBe(1500)
    expect(c.upstreams.web).toMatchObject({ connectTimeout: 250, slowStart: 60_000 })
    expect(c.listeners[0]).toMatchObject({ maxHeaderSize: 1_048_576, timeouts: { header: 2000, idle: 3_600_000, response: 1 } })
  })

  it('rejects a zero where it cannot work', () => {
    const text = yaml(
      'upstreams:',
      '  web: { servers: [{ address: "127.0.0.1:1" }], connectTimeout: 0s, health: { interval: 0, timeout: 0ms } }',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:2:49: upstreams.web.connectTimeout: must be at least 1ms (0 would turn it off)',
      't.yaml:2:79: upstreams.web.health.interval: must be at least 1ms (0 would turn it off)',
      't.yaml:2:92: upstreams.web.health.timeout: must be at least 1ms (0 would turn it off)',
    ])
  })

  it('deep-freezes the result', () => {
    const c = parse(yaml(...MINIMAL))
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.listeners)).toBe(true)
    expect(Object.isFrozen(c.upstreams.web?.servers[0])).toBe(true)
    expect(Object.isFrozen((c.listeners[0] as HttpListenerConfig).routes[0]?.match)).toBe(true)
  })
})

describe("the spec's full example", () => {
  it('validates against the schema as written; only the upstreams it never defines are missing', () => {
    const text = readFileSync('test/fixtures/config/spec-example.yaml', 'utf8')
    expect(errorsOf(text, SPEC_ENV)).toEqual([
      't.yaml:52:9: listeners[0].routes[0].upstream: unknown upstream "api"',
      't.yaml:60:5: listeners[1].upstream: unknown upstream "cache"',
      't.yaml:70:9: listeners[2].routes[0].upstream: unknown upstream "web-tls"',
      't.yaml:71:5: listeners[2].upstream: unknown upstream "default-tls"',
    ])
  })

  it('parses completely once those upstreams exist', () => {
    const c = parse(readFileSync('test/fixtures/config/spec-full.yaml', 'utf8'), SPEC_ENV)
    expect(c.admin).toEqual({ listen: { text: '127.0.0.1:9090', host: '127.0.0.1', port: 9090 }, token: 'admin-token', hosts: [] })
    expect(c.upstreams.web).toEqual({
      name: 'web',
      balance: 'round-robin',
      servers: [
        { text: '127.0.0.1:8081', host: '127.0.0.1', port: 8081, weight: 3, backup: false, maxConnections: 0 },
        { text: '127.0.0.1:8082', host: '127.0.0.1', port: 8082, weight: 1, backup: true, maxConnections: 100 },
      ],
      connectTimeout: 2000,
      retries: 1,
      health: { type: 'http', path: '/healthz', expectStatus: [200, 399], expectBody: 'ok', interval: 2000, timeout: 1000, rise: 2, fall: 3 },
      passive: { failures: 5, ejectFor: 30_000 },
      slowStart: 0,
    })
    expect(c.listeners.map((l) => [l.name, l.protocol, l.listen.port])).toEqual([
      ['public', 'http', 8080], ['redis', 'tcp', 6380], ['tls-passthrough', 'tcp', 8443],
    ])
    expect((c.listeners[0] as HttpListenerConfig).routes).toEqual([
      {
        name: 'api',
        match: { host: 'api.example.com', pathPrefix: '/v1/', methods: ['GET', 'POST'], headers: { 'x-canary': '1' } },
        upstream: 'api',
        rateLimit: 'api-calls',
        stripPrefix: false,
      },
      { name: 'route-2', match: { pathPrefix: '/' }, upstream: 'web', stripPrefix: false },
    ])
    expect(c.listeners[1]).toMatchObject({ upstream: 'cache', proxyProtocol: 'off', idleTimeout: 300_000, maxConnections: 10_000, rateLimit: 'new-conns' })
    expect((c.listeners[2] as TcpListenerConfig).routes).toEqual([{ name: 'route-1', match: { sni: '*.example.com' }, upstream: 'web-tls' }])
    expect(c.rateLimits['api-calls']).toEqual({ name: 'api-calls', key: { kind: 'header', header: 'x-api-key' }, rate: 10, burst: 20, headers: 'draft-6', maxKeys: 100_000 })
    expect(c.peer).toMatchObject({ id: 'lb-a', secret: SPEC_ENV.TANDEM_PEER_SECRET, priority: 150, heartbeat: 200, witness: { kind: 'tcp', address: { host: '127.0.0.1', port: 53 } }, onChange: './notify.sh', onChangeTimeout: 30_000 })
  })

  it('every example-like fixture is valid', () => {
    for (const f of ['minimal.yaml', 'http-routing.yaml', 'tcp-sni.yaml', 'pair-a.yaml', 'spec-full.yaml']) {
      expect(() => parse(readFileSync(`test/fixtures/config/${f}`, 'utf8'), SPEC_ENV), f).not.toThrow()
    }
  })
})

describe('peer witness forms', () => {
  it('reads host:port as a TCP reference node and redis:// as an arbiter', async () => {
    const { parseConfig } = await import('../../../src/config/load.js')
    const base = (w: string): string => [
      'upstreams: { web: { servers: [{ address: 127.0.0.1:8081 }] } }',
      'listeners: [{ name: p, protocol: http, listen: 127.0.0.1:8080, routes: [{ match: { pathPrefix: / }, upstream: web }] }]',
      `peer: { id: a, listen: 127.0.0.1:7946, peers: [127.0.0.1:7947, 10.0.0.2:7947], secret: 0123456789abcdef, witness: "${w}", onChangeTimeout: 2s }`,
    ].join('\n')
    expect(parseConfig(base('10.0.0.9:53'), 't.yaml').peer?.witness).toEqual({ kind: 'tcp', address: { text: '10.0.0.9:53', host: '10.0.0.9', port: 53 } })
    expect(parseConfig(base('redis://127.0.0.1:6379/2'), 't.yaml').peer?.witness).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:6379/2' })
    expect(parseConfig(base('redis://127.0.0.1:6379/2'), 't.yaml').peer?.onChangeTimeout).toBe(2000)
    expect(parseConfig(base('redis://127.0.0.1:6379/2'), 't.yaml').peer?.peers.length).toBe(2)
    expect(() => parseConfig(base('nowhere'), 't.yaml')).toThrow(/peer.witness: must be host:port \(a TCP reference node\) or a redis:\/\/ URL/)
  })
})

describe('examples/pair', () => {
  it('every pair example is a valid config', async () => {
    const { readdirSync } = await import('node:fs')
    const { loadConfigFile } = await import('../../../src/config/load.js')
    process.env.TANDEM_PEER_SECRET ??= '0123456789abcdef0123'
    const dir = new URL('../../../examples/pair/', import.meta.url)
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
    expect(files.sort()).toEqual(['lb-a-redis.yaml', 'lb-a.yaml', 'lb-b.yaml'])
    for (const f of files) expect((await loadConfigFile(new URL(f, dir).pathname)).peer?.id).toMatch(/^lb-[ab]$/)
  })
})
