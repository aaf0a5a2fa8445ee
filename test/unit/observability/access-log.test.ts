import { describe, expect, it } from 'vitest'
import { accessLine, isoClock } from '../../../src/observability/access-log.js'

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

  it('formats the time once per millisecond', () => {
    let now = 1_000
    const t = isoClock(() => now)
    const a = t()
    expect(t()).toBe(a)
    now = 1_001
    expect(t()).toBe('1970-01-01T00:00:01.001Z')
  })
})
