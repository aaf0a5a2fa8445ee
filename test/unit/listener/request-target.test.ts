import { describe, expect, it } from 'vitest'
import { requestTarget } from '../../../src/listener/request-target.js'

const h = (...pairs: string[]): string[] => pairs

describe('requestTarget', () => {
  it.each([
    ['/a?b', h('Host', 'x.example'), { ok: true, path: '/a?b', host: 'x.example', absolute: false }],
    ['/a.b/c..d/.e?x=../..', h('Host', 'a'), { ok: true, path: '/a.b/c..d/.e?x=../..', host: 'a', absolute: false }],
    ['/50%25', h('Host', 'a'), { ok: true, path: '/50%25', host: 'a', absolute: false }],
    ['http://API.example:8080/p?q', h('Host', 'other'), { ok: true, path: '/p?q', host: 'api.example:8080', absolute: true }],
    ['https://a.example', h('Host', 'x'), { ok: true, path: '/', host: 'a.example', absolute: true }],
    ['http://a.example?x=1', h('Host', 'x'), { ok: true, path: '/?x=1', host: 'a.example', absolute: true }],
    ['http://[::1]:80/x', h('Host', 'x'), { ok: true, path: '/x', host: '[::1]:80', absolute: true }],
    ['/', h('Host', 'api.example.com.'), { ok: true, path: '/', host: 'api.example.com.', absolute: false }],
    ['/', h('Host', '[::1]:8080'), { ok: true, path: '/', host: '[::1]:8080', absolute: false }],
    ['/a?q=\\', h('Host', 'a'), { ok: true, path: '/a?q=\\', host: 'a', absolute: false }],
    ['/group%2Fproject/x', h('Host', 'a'), { ok: true, path: '/group%2Fproject/x', host: 'a', absolute: false }],
  ])('%s is accepted', (url, headers, want) => {
    expect(requestTarget(url, headers, 1)).toEqual(want)
  })

  it.each([
    ['/', h('Host', 'a', 'host', 'b'), 'repeated Host'],
    ['/', h('Host', 'a b'), 'invalid Host'],
    ['/', h('Host', 'a@b'), 'invalid Host'],
    ['*', h('Host', 'a'), 'asterisk form'],
    ['ftp://a/x', h('Host', 'a'), 'request target'],
    ['http://user@a/x', h('Host', 'a'), 'absolute-form authority'],
    ['http:///x', h('Host', 'a'), 'absolute-form authority'],
    ['http://a/x#frag', h('Host', 'a'), 'request target'],
    // Regressions: an empty Host was forwarded (`Host: `, an empty X-Forwarded-Host), and an
    // empty label matched `*.example.com` (RFC 9110 §4.2.1; nginx refuses both).
    ['/', h('Host', ''), 'invalid Host'],
    ['/', h('Host', '.example.com'), 'invalid Host'],
    ['/', h('Host', 'a..example.com'), 'invalid Host'],
    ['/', h('Host', '..example.com'), 'invalid Host'],
    ['/', h('Host', 'api.example.com..'), 'invalid Host'],
    ['/', h('Host', '.'), 'invalid Host'],
    ['/', h('Host', '.:8080'), 'invalid Host'],
    ['http://.example.com/x', h('Host', 'a'), 'absolute-form authority'],
    ['http://a..b/x', h('Host', 'a'), 'absolute-form authority'],
    // Regression: absolute form took its host from the target even with no Host at all (§3.2).
    ['http://api.example.com/api/x', h(), 'missing Host'],
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
    // Regressions: a backslash reads as `/` to WHATWG URL parsers (`/public\..\admin/x` is
    // `/admin/x` to a Node app), and `..%2f` to an upstream that decodes before resolving dots.
    ['/public\\..\\admin/x', 'backslash in path'],
    ['/v2/x/..\\..\\admin', 'backslash in path'],
    ['/a\\b?c', 'backslash in path'],
    ['http://a/public\\..\\admin/x', 'backslash in path'],
    ['/public/..%2fadmin/x', 'fragment or dot-segment'],
    ['/public/%2e%2e%2fadmin/x', 'fragment or dot-segment'],
    ['/public/%2E%2E%2Fadmin/x', 'fragment or dot-segment'],
    ['/public/..%5cadmin/x', 'fragment or dot-segment'],
    ['/public%5C..%5Cadmin', 'fragment or dot-segment'],
    ['/a%2f.', 'fragment or dot-segment'],
  ])('%s is refused: %s', (url, reason) => {
    expect(requestTarget(url, h('Host', 'a'), 1)).toEqual({ ok: false, code: 'BAD_REQUEST', reason })
  })

  it('refuses Transfer-Encoding in HTTP/1.0, codings other than chunked (501), and 1.1 without Host', () => {
    expect(requestTarget('/p', h('Host', 'a', 'Transfer-Encoding', 'chunked'), 1, 0)).toEqual({ ok: false, code: 'BAD_REQUEST', reason: 'Transfer-Encoding in HTTP/1.0' })
    expect(requestTarget('/p', h('Host', 'a', 'transfer-encoding', 'gzip, chunked'), 1)).toEqual({ ok: false, code: 'NOT_IMPLEMENTED', reason: 'transfer coding' })
    expect(requestTarget('/p', h('Host', 'a', 'Transfer-Encoding', ' Chunked '), 1).ok).toBe(true)
    expect(requestTarget('/p', h(), 1)).toEqual({ ok: false, code: 'BAD_REQUEST', reason: 'missing Host' })
    expect(requestTarget('/p', h(), 1, 0)).toEqual({ ok: true, path: '/p', host: '', absolute: false })
    expect(requestTarget('http://a.example/p', h(), 1, 0)).toEqual({ ok: true, path: '/p', host: 'a.example', absolute: true })
    expect(requestTarget('/p', h('Host', ''), 1, 0)).toEqual({ ok: false, code: 'BAD_REQUEST', reason: 'invalid Host' })
  })

  it('gives the path with encoded unreserved characters decoded, other escapes and the query as sent', () => {
    const path = (url: string): string | undefined => { const t = requestTarget(url, h('Host', 'a'), 1); return t.ok ? t.path : undefined }
    expect(path('/%61dmin/x')).toBe('/admin/x')
    expect(path('/%7Euser/%2D%2e%5F%7e%30%5A?q=%61')).toBe('/~user/-._~0Z?q=%61')
    expect(path('/a%2fb%2F%3f%25%zz%4')).toBe('/a%2fb%2F%3f%25%zz%4')
    expect(path('http://h/%61?%62')).toBe('/a?%62')
    // `%2e` next to other characters is no dot-segment: decoded like the rest.
    expect(path('/a%2e/%2ex')).toBe('/a./.x')
    // The common target (no `%`) comes back as the very string given.
    const url = '/app/hello'
    const t = requestTarget(url, h('Host', 'a'), 1)
    expect(t.ok && t.path).toBe(url)
  })

  it('refuses HTTP versions other than 1.x with 505', () => {
    expect(requestTarget('/', h('Host', 'a'), 2)).toEqual({ ok: false, code: 'VERSION_NOT_SUPPORTED', reason: 'HTTP version' })
  })
})
