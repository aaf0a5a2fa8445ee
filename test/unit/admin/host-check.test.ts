import { describe, expect, it } from 'vitest'
import { hostAllowed, hostOf, isLoopbackHost } from '../../../src/admin/host-check.js'

describe('admin Host check (DNS rebinding)', () => {
  it('parses Host headers: names, IPv4, bracketed IPv6, ports, a trailing dot; malformed is undefined', () => {
    expect(hostOf('LocalHost:9090')).toBe('localhost')
    expect(hostOf('127.0.0.1')).toBe('127.0.0.1')
    expect(hostOf('[::1]:9090')).toBe('::1')
    expect(hostOf('evil.example.:9090')).toBe('evil.example')
    expect(hostOf('a b')).toBeUndefined()
    expect(hostOf('[::1')).toBeUndefined()
    expect(hostOf('x:123456')).toBeUndefined()
    expect(hostOf('')).toBeUndefined()
  })

  it('loopback: localhost, 127.0.0.0/8, ::1 and its mapped forms', () => {
    for (const h of ['localhost', '127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h)).toBe(true)
    for (const h of ['localhost.evil.example', '128.0.0.1', '10.0.0.1', '::2', 'evil.example', '0.0.0.0']) expect(isLoopbackHost(h)).toBe(false)
  })

  it('allows loopback Hosts, the listen host and no Host; refuses any other name', () => {
    expect(hostAllowed('127.0.0.1:9090', ['127.0.0.1'])).toBe(true)
    expect(hostAllowed('localhost:9090', ['127.0.0.1'])).toBe(true)
    expect(hostAllowed('[::1]:9090', ['::1'])).toBe(true)
    expect(hostAllowed('admin.internal:9090', ['admin.internal'])).toBe(true)
    expect(hostAllowed(undefined, ['127.0.0.1'])).toBe(true)
    expect(hostAllowed('evil.example:9090', ['127.0.0.1'])).toBe(false)
    expect(hostAllowed('evil.example', ['localhost'])).toBe(false)
    expect(hostAllowed('127.0.0.1.evil.example', ['127.0.0.1'])).toBe(false)
    expect(hostAllowed('a b', ['127.0.0.1'])).toBe(false)
  })
})
