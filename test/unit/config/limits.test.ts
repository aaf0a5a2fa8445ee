// Config protections that a file must not be able to switch off by accident (issue 6, item 10):
// an empty admin token, zero or overflowing timeouts, absurd sizes, alias bombs, and config
// paths that are not regular files. Each asserts the exact error line users see.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfigFile } from '../../../src/config/load.js'
import { errorsOf, parse, yaml, MINIMAL } from './helpers.js'

const HTTP_LISTENER = MINIMAL.slice(4) // lines: listeners:, name, protocol, listen, routes, upstream

describe('admin token', () => {
  it('a token that resolves to an empty string is an error, never "authentication off"', () => {
    const lines = (token: string): string => yaml('admin:', '  listen: 127.0.0.1:9090', `  token: ${token}`, ...MINIMAL)
    const expected = ['t.yaml:3:3: admin.token: is empty; set a token, or remove the key for a loopback admin without one']
    expect(errorsOf(lines('""'))).toEqual(expected)
    expect(errorsOf(lines('${TANDEM_ADMIN_TOKEN}'), { TANDEM_ADMIN_TOKEN: '' })).toEqual(expected)
    expect(errorsOf(lines('${TANDEM_ADMIN_TOKEN:-}'))).toEqual(expected)
    expect(errorsOf(lines('"  "'))).toEqual(expected)
    expect(parse(lines('${TANDEM_ADMIN_TOKEN}'), { TANDEM_ADMIN_TOKEN: 's3cret' }).admin?.token).toBe('s3cret')
    expect(parse(yaml('admin: { listen: 127.0.0.1:9090 }', ...MINIMAL)).admin?.token).toBeUndefined()
  })

  it('a token no Authorization header could carry (a space, a stray trailing one) is an error', () => {
    // Was accepted, and then no request could ever authenticate.
    const lines = (token: string): string => yaml('admin:', '  listen: 127.0.0.1:9090', `  token: ${token}`, ...MINIMAL)
    const expected = ['t.yaml:3:3: admin.token: may hold only letters, digits and - . _ ~ + / (then = padding), as a bearer token; no spaces']
    expect(errorsOf(lines('"s3cret token"'))).toEqual(expected)
    expect(errorsOf(lines('${T}'), { T: 's3cret ' })).toEqual(expected)
    expect(parse(lines('"aB0-._~+/xyz=="')).admin?.token).toBe('aB0-._~+/xyz==')
  })
})

describe('durations', () => {
  it('zero timeouts are refused: in Node 0 means "never time out"', () => {
    const text = yaml(
      'upstreams:',
      '  web: { servers: [{ address: "127.0.0.1:1" }], connectTimeout: 0, passive: { ejectFor: 0s } }',
      'listeners:',
      '  - protocol: http',
      '    listen: 127.0.0.1:8080',
      '    timeouts: { header: 0s, idle: 0ms, response: 0 }',
      '    routes: [{ upstream: web }]',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:8081',
      '    upstream: web',
      '    idleTimeout: 0s',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:2:49: upstreams.web.connectTimeout: must be at least 1ms (0 would turn it off)',
      't.yaml:2:79: upstreams.web.passive.ejectFor: must be at least 1ms (0 would turn it off)',
      't.yaml:6:17: listeners[0].timeouts.header: must be at least 1ms (0 would turn it off)',
      't.yaml:6:29: listeners[0].timeouts.idle: must be at least 1ms (0 would turn it off)',
      't.yaml:6:40: listeners[0].timeouts.response: must be at least 1ms (0 would turn it off)',
      't.yaml:11:5: listeners[1].idleTimeout: must be at least 1ms (0 would turn it off)',
    ])
  })

  it('durations past the maximum are refused (Node timers overflow at 2^31 ms and fire at once)', () => {
    const text = yaml(
      'shutdownTimeout: 25h',
      'upstreams:',
      '  web: { servers: [{ address: "127.0.0.1:1" }], connectTimeout: 2147483648, slowStart: 2h }',
      'listeners:',
      '  - protocol: http',
      '    listen: 127.0.0.1:8080',
      '    timeouts: { idle: 24h, response: 1441m }',
      '    routes: [{ upstream: web }]',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:8081',
      '    upstream: web',
      '    idleTimeout: 169h',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:1:1: shutdownTimeout: must be at most 24h',
      't.yaml:3:49: upstreams.web.connectTimeout: must be at most 24h',
      't.yaml:3:77: upstreams.web.slowStart: must be at most 1h',
      't.yaml:7:28: listeners[0].timeouts.response: must be at most 24h',
      't.yaml:12:5: listeners[1].idleTimeout: must be at most 168h',
    ])
  })

  it('shutdownDelay may be longer than shutdownTimeout (the timeout counts after it); shutdownTimeout 0 (close at once) is allowed', () => {
    const long = parse(yaml('shutdownDelay: 10s', 'shutdownTimeout: 5s', ...MINIMAL))
    expect([long.shutdownDelay, long.shutdownTimeout]).toEqual([10_000, 5000])
    expect(errorsOf(yaml('shutdownDelay: 2h', 'shutdownTimeout: 3h', ...MINIMAL))).toEqual(['t.yaml:1:1: shutdownDelay: must be at most 1h'])
    const c = parse(yaml('shutdownTimeout: 0', ...MINIMAL))
    expect([c.shutdownDelay, c.shutdownTimeout]).toEqual([0, 0])
  })
})

describe('sizes and counts', () => {
  it('maxHeaderSize must be 1kb..1mb; connection and count limits have a ceiling', () => {
    const text = yaml(
      'upstreams:',
      '  web: { servers: [{ address: "127.0.0.1:1", maxConnections: 2000000 }], health: { rise: 101 } }',
      'listeners:',
      '  - protocol: http',
      '    listen: 127.0.0.1:8080',
      '    maxHeaderSize: 0',
      '    routes: [{ upstream: web }]',
      '  - protocol: http',
      '    listen: 127.0.0.1:8081',
      '    maxHeaderSize: 10gb',
      '    routes: [{ upstream: web }]',
      '  - protocol: tcp',
      '    listen: 127.0.0.1:8082',
      '    upstream: web',
      '    maxConnections: 1000001',
    )
    // Every problem at once: the schema's and the normaliser's.
    expect(errorsOf(text)).toEqual([
      't.yaml:2:46: upstreams.web.servers[0].maxConnections: must be an integer 0..1000000',
      't.yaml:2:84: upstreams.web.health.rise: must be an integer 1..100',
      't.yaml:6:5: listeners[0].maxHeaderSize: must be between 1kb and 1mb',
      't.yaml:10:5: listeners[1].maxHeaderSize: must be between 1kb and 1mb',
      't.yaml:15:5: listeners[2].maxConnections: must be an integer 0..1000000',
    ])
    const sizes = text.replace('maxConnections: 2000000', 'maxConnections: 10').replace('rise: 101', 'rise: 2').replace('maxConnections: 1000001', 'maxConnections: 10')
    expect(errorsOf(sizes)).toEqual([
      't.yaml:6:5: listeners[0].maxHeaderSize: must be between 1kb and 1mb',
      't.yaml:10:5: listeners[1].maxHeaderSize: must be between 1kb and 1mb',
    ])
  })
})

describe('alias bombs', () => {
  it('a small file whose aliases expand to 200,000 values is refused fast, with one clear line', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}: 1`).join(', ')
    const aliases = Array.from({ length: 200 }, () => '*big').join(', ')
    const text = yaml(...MINIMAL, 'rateLimits:', `  a: { key: global, rate: 1/s, x: &big { ${keys} } }`, `  b: [${aliases}]`)
    expect(text.length).toBeLessThan(16 * 1024)
    const t0 = performance.now()
    expect(errorsOf(text)).toEqual([
      expect.stringMatching(/^t\.yaml:13:\d+: rateLimits\.b\[\d+\]: the config expands to more than 100000 values \(through aliases\); refused$/),
    ])
    expect(performance.now() - t0).toBeLessThan(15_000) // about 1 s alone; the point is: no gigabytes
  })
})

describe('config paths that are not regular files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-limits-'))
  const refused = async (path: string): Promise<string> => await loadConfigFile(path).then(() => 'loaded', (err: Error) => err.message)

  it('a FIFO is refused at once (no writer needed, nothing blocks)', async () => {
    const fifo = join(dir, 'fifo.yaml')
    execFileSync('mkfifo', [fifo])
    expect(await refused(fifo)).toBe(`cannot read config file ${fifo}: not a regular file (a FIFO)`)
  })

  it('/dev/zero, a directory and a file over 16 MiB are refused without reading them', async () => {
    expect(await refused('/dev/zero')).toBe('cannot read config file /dev/zero: not a regular file (a character device)')
    expect(await refused(dir)).toBe(`cannot read config file ${dir}: not a regular file (a directory)`)
    const huge = join(dir, 'huge.yaml')
    writeFileSync(huge, '')
    truncateSync(huge, 16 * 1024 * 1024 + 1) // sparse: costs no disk
    expect(await refused(huge)).toBe(`cannot read config file ${huge}: larger than 16 MiB (16777217 bytes)`)
    expect(await refused(join(dir, 'missing.yaml'))).toBe(`cannot read config file ${join(dir, 'missing.yaml')}: no such file`)
  })

  it('a regular file of exactly 16 MiB is still read', async () => {
    const big = join(dir, 'big.yaml')
    writeFileSync(big, yaml(...MINIMAL) + '#'.repeat(16 * 1024 * 1024 - yaml(...MINIMAL).length))
    const c = await loadConfigFile(big)
    expect(c.upstreams.web?.servers[0]?.port).toBe(8081)
  })
})
