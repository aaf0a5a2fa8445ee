import { describe, expect, it } from 'vitest'
import { requestTarget } from '../../../src/listener/request-target.js'

const h = (...pairs: string[]): string[] => pairs

describe('requestTarget', () => {
  it.each([
    ['/a?b', h('Host', 'x.example'), { ok: true, path: '/a?b', host: 'x.example', absolute: false }],
    ['/', h(), { ok: true, path: '/', host: '', absolute: false }],
    ['http://API.example:8080/p?q', h('Host', 'other'), { ok: true, path: '/p?q', host: 'api.example:8080', absolute: true }],
    ['https://a.example', h(), { ok: true, path: '/', host: 'a.example', absolute: true }],
    ['http://a.example?x=1', h(), { ok: true, path: '/?x=1', host: 'a.example', absolute: true }],
    ['http://[::1]:80/x', h(), { ok: true, path: '/x', host: '[::1]:80', absolute: true }],
  ])('%s is accepted', (url, headers, want) => {
    expect(requestTarget(url, headers, 1)).toEqual(want)
  })

  it.each([
    ['/', h('Host', 'a', 'host', 'b'), 'repeated Host'],
    ['/', h('Host', 'a b'), 'invalid Host'],
    ['/', h('Host', 'a@b'), 'invalid Host'],
    ['*', h('Host', 'a'), 'asterisk form'],
    ['ftp://a/x', h(), 'request target'],
    ['http://user@a/x', h(), 'absolute-form authority'],
    ['http:///x', h(), 'absolute-form authority'],
    ['http://a/x#frag', h(), 'request target'],
  ])('%s with %j is refused: %s', (url, headers, reason) => {
    expect(requestTarget(url, headers, 1)).toEqual({ ok: false, code: 'BAD_REQUEST', reason })
  })

  it('refuses HTTP versions other than 1.x with 505', () => {
    expect(requestTarget('/', h('Host', 'a'), 2)).toEqual({ ok: false, code: 'VERSION_NOT_SUPPORTED', reason: 'HTTP version' })
  })
})
