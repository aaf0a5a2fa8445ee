import { describe, expect, it } from 'vitest'
import { requestTarget } from '../../../src/listener/request-target.js'

const h = (...pairs: string[]): string[] => pairs

describe('requestTarget', () => {
  it.each([
    ['/a?b', h('Host', 'x.example'), { ok: true, path: '/a?b', host: 'x.example', absolute: false }],
    ['/', h('Host', ''), { ok: true, path: '/', host: '', absolute: false }],
    ['/a.b/c..d/.e?x=../..', h('Host', 'a'), { ok: true, path: '/a.b/c..d/.e?x=../..', host: 'a', absolute: false }],
    ['/50%25', h('Host', 'a'), { ok: true, path: '/50%25', host: 'a', absolute: false }],
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

  // Regressions (bytes as sent): `/v1/../admin` matched `pathPrefix: /v1/` and, stripped,
  // reached the upstream as `/../admin`; `POST /a#frag` was forwarded; HTTP/1.0 with
  // `Transfer-Encoding: chunked` was kept alive and the bytes after its body run as a request;
  // `gzip, chunked` reached the upstream as plain chunked; a 1.1 request without Host got
  // node:http's own unlogged 400.
  it.each([
    ['/v1/../admin', 'fragment or dot-segment'],
    ['/v1/%2e%2E/admin', 'fragment or dot-segment'],
    ['/v1/./x', 'fragment or dot-segment'],
    ['/..', 'fragment or dot-segment'],
    ['/a#frag', 'fragment or dot-segment'],
    ['http://a/v1/../x', 'fragment or dot-segment'],
  ])('%s is refused: %s', (url, reason) => {
    expect(requestTarget(url, h('Host', 'a'), 1)).toEqual({ ok: false, code: 'BAD_REQUEST', reason })
  })

  it('refuses Transfer-Encoding in HTTP/1.0, codings other than chunked (501), and 1.1 without Host', () => {
    expect(requestTarget('/p', h('Host', 'a', 'Transfer-Encoding', 'chunked'), 1, 0)).toEqual({ ok: false, code: 'BAD_REQUEST', reason: 'Transfer-Encoding in HTTP/1.0' })
    expect(requestTarget('/p', h('Host', 'a', 'transfer-encoding', 'gzip, chunked'), 1)).toEqual({ ok: false, code: 'NOT_IMPLEMENTED', reason: 'transfer coding' })
    expect(requestTarget('/p', h('Host', 'a', 'Transfer-Encoding', ' Chunked '), 1).ok).toBe(true)
    expect(requestTarget('/p', h(), 1)).toEqual({ ok: false, code: 'BAD_REQUEST', reason: 'missing Host' })
    expect(requestTarget('/p', h(), 1, 0)).toEqual({ ok: true, path: '/p', host: '', absolute: false })
  })

  it('refuses HTTP versions other than 1.x with 505', () => {
    expect(requestTarget('/', h('Host', 'a'), 2)).toEqual({ ok: false, code: 'VERSION_NOT_SUPPORTED', reason: 'HTTP version' })
  })
})
