import { describe, expect, it } from 'vitest'
import { HttpPrefix, accessLine, isoClock } from '../../../src/observability/access-log.js'

describe('accessLine', () => {
  it('writes the pino-shaped JSON line with rounded times, escaped strings and no zero retries', () => {
    const line = accessLine('http', {
      listener: 'public', route: 'app', method: 'GET', host: 'a"b', path: '/x\ny', status: 200, client: '127.0.0.1',
      upstream: 'web', server: '127.0.0.1:8081', bytesIn: 0, bytesOut: 13, upstreamMs: 0.8049, totalMs: 1.23456, retries: 0,
    }, '2026-11-28T05:00:00.000Z', 42)
    expect(line).toBe('{"level":"info","time":"2026-11-28T05:00:00.000Z","pid":42,"component":"access","type":"http",' +
      '"listener":"public","route":"app","method":"GET","host":"a\\"b","path":"/x\\ny","status":200,"client":"127.0.0.1",' +
      '"upstream":"web","server":"127.0.0.1:8081","bytesIn":0,"bytesOut":13,"upstreamMs":0.8,"totalMs":1.23}\n')
    expect(JSON.parse(line)).toMatchObject({ host: 'a"b', path: '/x\ny', totalMs: 1.23 })
  })

  it('leaves out undefined fields and keeps non-zero retries', () => {
    const line = accessLine('http', { listener: 'l', route: '', method: 'GET', host: '', path: '/', status: 404, client: 'c', bytesIn: 0, bytesOut: 0, totalMs: 0.5, error: 'NO_ROUTE', retries: 2, upstream: undefined }, 't', 1)
    const parsed = JSON.parse(line) as Record<string, unknown>
    expect(parsed).not.toHaveProperty('upstream')
    expect(parsed.retries).toBe(2)
    expect(parsed.error).toBe('NO_ROUTE')
  })

  it('writes numbers as JSON does: large byte counts, milliseconds rounded to 0.01, non-finite as null', () => {
    const base = { listener: 'l', route: 'r', method: 'GET', host: 'h', path: '/', status: 200, client: 'c', bytesIn: 0, retries: 0 }
    const cases: Array<[number, number, string]> = [
      [5_000_000_000, 12345.678, '"bytesOut":5000000000,"upstreamMs":0.01,"totalMs":12345.68'],
      [0, 1.999, '"bytesOut":0,"upstreamMs":0.01,"totalMs":2'],
      [7, 2.1, '"bytesOut":7,"upstreamMs":0.01,"totalMs":2.1'],
      [10, 0.05, '"bytesOut":10,"upstreamMs":0.01,"totalMs":0.05'],
      [1.5, Number.NaN, '"bytesOut":1.5,"upstreamMs":0.01,"totalMs":null'],
      [-1, 2e9, '"bytesOut":-1,"upstreamMs":0.01,"totalMs":2000000000'],
    ]
    for (const [bytesOut, totalMs, fields] of cases) {
      const line = accessLine('http', { ...base, bytesOut, upstreamMs: 0.005, totalMs }, 't', 1)
      expect(line).toContain(fields)
      expect(() => JSON.parse(line) as unknown).not.toThrow()
    }
  })

  it('strings that are not plain ASCII round-trip through JSON exactly, also past the scratch buffer', () => {
    const tricky = ['ü', '/😀', '\u0000\u001f', '\u007f', '\ud800', '"\\', '\u2028', 'a'.repeat(20_000) + '\n']
    for (const s of tricky) {
      const line = accessLine('http', { listener: s, route: s, method: 'GET', host: s, path: s, status: 200, client: s, upstream: s, server: s, bytesIn: 0, bytesOut: 0, totalMs: 1, error: s, limit: s, retries: 1 }, 't', 1)
      expect(line.endsWith('}\n')).toBe(true)
      const parsed = JSON.parse(line) as Record<string, unknown>
      for (const k of ['listener', 'route', 'host', 'path', 'client', 'upstream', 'server', 'error', 'limit']) expect(parsed[k]).toBe(s)
    }
  })

  it('formats the time once per millisecond', () => {
    let now = 1_000
    const t = isoClock(() => now)
    const a = t()
    expect(t()).toBe(a)
    now = 1_001
    expect(t()).toBe('1970-01-01T00:00:01.001Z')
  })

  it('HttpPrefix: the prefix for every millisecond is the one built from that time, digits rewritten in place', () => {
    const p = new HttpPrefix(7)
    const expected = (t: number): string => `{"level":"info","time":"${new Date(t).toISOString()}","pid":7,"component":"access","type":"http","listener":`
    // Across second, minute and day boundaries, forward, repeated and (a clock stepped back) backward.
    const times = [1_764_806_399_998, 1_764_806_399_999, 1_764_806_400_000, 1_764_806_400_000, 1_764_806_400_001, 1_764_806_400_010,
      1_764_806_400_100, 1_764_806_400_999, 1_764_806_401_000, 1_764_806_400_500, 0, 999, 253_402_300_799_999]
    for (const t of times) expect(p.at(t).toString('latin1')).toBe(expected(t))
  })
})
