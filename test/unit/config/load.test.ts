import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError, ConfigErrors } from '../../../src/errors.js'
import { loadConfigFile, parseConfig, substituteEnv } from '../../../src/config/load.js'
import { errorsOf, parse, yaml, MINIMAL } from './helpers.js'

const FIXTURES = 'test/fixtures/config'

describe('${NAME} substitution', () => {
  it('substitutes set variables, defaults, and $${ as a literal', () => {
    expect(substituteEnv('a-${X}-b', { X: '1' })).toEqual({ value: 'a-1-b' })
    expect(substituteEnv('${X:-dflt}', {})).toEqual({ value: 'dflt' })
    expect(substituteEnv('${X:-dflt}', { X: '' })).toEqual({ value: 'dflt' })
    expect(substituteEnv('${X:-dflt}', { X: 'set' })).toEqual({ value: 'set' })
    expect(substituteEnv('${X:-}', {})).toEqual({ value: '' })
    expect(substituteEnv('${X}', { X: '' })).toEqual({ value: '' })
    expect(substituteEnv('$${X} ${Y}', { Y: 'y' })).toEqual({ value: '${X} y' })
    expect(substituteEnv('${A}${B:-:-}', { A: '$' })).toEqual({ value: '$:-' })
    expect(substituteEnv('no vars $HOME', {})).toEqual({ value: 'no vars $HOME' })
  })

  it('reports unset, malformed and unclosed references', () => {
    expect(substituteEnv('${NOPE}', {})).toEqual({ error: 'environment variable NOPE is not set (use ${NOPE:-default} for a default)' })
    expect(substituteEnv('${1X}', {})).toEqual({ error: 'invalid variable reference "${1X}"' })
    expect(substituteEnv('abc ${X', {})).toEqual({ error: 'unclosed "${" in "abc ${X"' })
  })

  it('applies in any string scalar after parsing, so positions stay true', () => {
    const text = yaml(
      'admin:',
      '  listen: ${ADMIN:-127.0.0.1:9090}',
      '  token: "${TOKEN}"',
      ...MINIMAL.slice(0, 7),
      '    listen: 127.0.0.1:${PORT}',
      ...MINIMAL.slice(8),
    )
    const c = parse(text, { TOKEN: 'sekrit', PORT: '8088' })
    expect(c.admin).toEqual({ listen: { text: '127.0.0.1:9090', host: '127.0.0.1', port: 9090 }, token: 'sekrit', hosts: [] })
    expect(c.listeners[0]?.listen).toEqual({ text: '127.0.0.1:8088', host: '127.0.0.1', port: 8088 })
  })

  it('an unset variable without default is an error at its scalar; other errors still show', () => {
    const text = yaml(
      'admin:',
      '  listen: 127.0.0.1:9090',
      '  token: ${TANDEM_ADMIN_TOKEN}',
      'upstreams:',
      '  web:',
      '    servers:',
      '      - address: ${WEB_ADDR}',
      '        weight: 0',
      ...MINIMAL.slice(4),
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:3:3: admin.token: environment variable TANDEM_ADMIN_TOKEN is not set (use ${TANDEM_ADMIN_TOKEN:-default} for a default)',
      't.yaml:7:9: upstreams.web.servers[0].address: environment variable WEB_ADDR is not set (use ${WEB_ADDR:-default} for a default)',
      't.yaml:8:9: upstreams.web.servers[0].weight: must be an integer 1..256',
    ])
  })

  it('a variable gives a number or boolean where the key wants one; a literal string does not', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers:',
      '      - address: 127.0.0.1:8081',
      '        weight: ${W}',
      '        backup: "${B:-false}"',
      ...MINIMAL.slice(4),
      'peer: { id: a, listen: "127.0.0.1:7946", peers: ["127.0.0.1:7947"], secret: "${S}", priority: "${P:-7}" }',
    )
    const c = parse(text, { W: '3', S: '12345678901234567890' })
    expect(c.upstreams.web?.servers[0]).toMatchObject({ weight: 3, backup: false })
    expect(c.peer).toMatchObject({ secret: '12345678901234567890', priority: 7 })
    expect(errorsOf(text, { W: 'three', S: '12345678901234567890' })).toEqual([
      't.yaml:5:9: upstreams.web.servers[0].weight: must be an integer 1..256',
    ])
  })

  // Regression: `connectTimeout: ${CT}` with CT=2000 was refused ("must be a duration"): the
  // value is text, and only type errors were re-typed, while a duration's string fails its pattern.
  it('a variable of plain digits gives integer milliseconds or bytes to a duration or size', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    connectTimeout: ${CT}',
      '    servers:',
      '      - address: 127.0.0.1:8081',
      ...MINIMAL.slice(4, 8),
      '    maxHeaderSize: "${HS}"',
      ...MINIMAL.slice(8),
    )
    const c = parse(text, { CT: '2000', HS: '16384' })
    expect(c.upstreams.web?.connectTimeout).toBe(2000)
    expect(c.listeners[0]?.protocol === 'http' && c.listeners[0].maxHeaderSize).toBe(16384)
    expect(parse(text, { CT: '2s', HS: '16kb' }).upstreams.web?.connectTimeout).toBe(2000)
    expect(errorsOf(text, { CT: 'soon', HS: '16384' })).toEqual([
      't.yaml:3:5: upstreams.web.connectTimeout: must be a duration like 250ms, 2s, 5m or integer milliseconds',
    ])
    expect(errorsOf(text.replace('${CT}', '"2000"'), { HS: '16384' })).toEqual([
      't.yaml:3:5: upstreams.web.connectTimeout: must be a duration like 250ms, 2s, 5m or integer milliseconds',
    ])
  })

  it('does not substitute in keys', () => {
    expect(errorsOf(yaml(...MINIMAL, '${X}: 1'), { X: 'log' })).toEqual(['t.yaml:11:1: ${X}: unknown key'])
  })
})

describe('YAML problems', () => {
  it('reports syntax errors with their position', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    servers: [ { address: 127.0.0.1:8081 }',
      'listeners: x',
    )
    const errs = errorsOf(text)
    expect(errs.length).toBeGreaterThan(0)
    expect(errs[0]).toMatch(/^t\.yaml:\d+:\d+: \(syntax\): \S/)
    expect(errorsOf('a: b: c\n')).toEqual(['t.yaml:1:4: (syntax): Nested mappings are not allowed in compact mappings'])
  })

  it('reports duplicate keys at the repeated key, with the path', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 4),
      '      - address: 127.0.0.1:8082',
      '        address: 127.0.0.1:8083',
      ...MINIMAL.slice(4),
      'upstreams: {}',
    )
    expect(errorsOf(text)).toEqual([
      't.yaml:6:9: upstreams.web.servers[1].address: duplicate key (first at line 5)',
      't.yaml:13:1: upstreams: duplicate key (first at line 1)',
    ])
  })

  it('resolves anchors, aliases and merge keys (explicit keys win)', () => {
    const text = yaml(
      'upstreams:',
      '  web:',
      '    <<: &d { connectTimeout: 1s, retries: 2 }',
      '    retries: 3',
      '    servers: &s [{ address: 127.0.0.1:8081 }]',
      '  api: { <<: *d, servers: *s }',
      ...MINIMAL.slice(4),
    )
    const c = parse(text)
    expect(c.upstreams.web).toMatchObject({ connectTimeout: 1000, retries: 3 })
    expect(c.upstreams.api).toMatchObject({ connectTimeout: 1000, retries: 2, servers: [{ text: '127.0.0.1:8081' }] })
    // Anchors must live inside known keys: a top-level "x-" block is still an unknown key.
    expect(errorsOf(yaml('x-defaults: &d { retries: 2 }', ...MINIMAL))).toEqual(['t.yaml:1:1: x-defaults: unknown key'])
    expect(errorsOf(yaml(...MINIMAL.slice(0, 2), '    <<: [1]', ...MINIMAL.slice(2)))).toEqual([
      't.yaml:3:5: upstreams.web.<<: merge key (<<) must refer to a mapping or a list of mappings',
    ])
  })

  it('stops runaway alias expansion', () => {
    const lines = ['a0: &a0 [x]']
    for (let i = 1; i <= 12; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`)
    const text = yaml('log:', '  level: info', ...MINIMAL, 'rateLimits:', ...lines.map((l) => '  ' + l))
    const errs = errorsOf(text)
    expect(errs.filter((e) => e.includes('too many alias expansions'))).toHaveLength(1)
  })

  it('strips a byte-order mark without shifting columns', () => {
    expect(errorsOf('\uFEFFlog: 1\n' + yaml(...MINIMAL))).toEqual(['t.yaml:1:1: log: must be a mapping'])
  })
})

describe('loadConfigFile', () => {
  const env = { TANDEM_ADMIN_TOKEN: 'admin-token', TANDEM_PEER_SECRET: '0123456789abcdef0123' }

  it('returns the absolute path and the sha256 of the bytes', async () => {
    const file = `${FIXTURES}/minimal.yaml`
    const c = await loadConfigFile(file, env)
    expect(c.file).toBe(resolve(file))
    expect(c.hash).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'))
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('names the file as given in every error line', async () => {
    const file = `${FIXTURES}/invalid-weight.yaml`
    const err = await loadConfigFile(file, env).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigErrors)
    const errors = (err as ConfigErrors).errors
    expect(errors.map((e) => e.message)).toEqual([
      `${file}:14:9: upstreams.web.servers[1].weight: must be an integer 1..256`,
    ])
    expect(errors[0]).toBeInstanceOf(ConfigError)
    expect(errors[0]).toMatchObject({ file, line: 14, col: 9, path: 'upstreams.web.servers[1].weight', detail: 'must be an integer 1..256' })
  })

  it('an unreadable file is a plain one-line Error', async () => {
    const err = await loadConfigFile(`${FIXTURES}/does-not-exist.yaml`, env).catch((e: unknown) => e)
    expect(err).not.toBeInstanceOf(ConfigErrors)
    expect((err as Error).message).toBe(`cannot read config file ${FIXTURES}/does-not-exist.yaml: no such file`)
    const dir = await loadConfigFile(FIXTURES, env).catch((e: unknown) => e)
    expect((dir as Error).message).toBe(`cannot read config file ${FIXTURES}: not a regular file (a directory)`)
  })

  it('parseConfig labels inline configs with the given name and hashes the text', () => {
    const text = yaml(...MINIMAL)
    const c = parseConfig(text, 'inline', {})
    expect(c.file).toBe('inline')
    expect(c.hash).toBe(createHash('sha256').update(text).digest('hex'))
  })
})
