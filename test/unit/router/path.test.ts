import { describe, expect, it } from 'vitest'
import { hasDotSegment, normalizePath } from '../../../src/router/path.js'
import { rewritePath } from '../../../src/router/match.js'
import type { HttpRouteConfig } from '../../../src/config/types.js'

describe('normalizePath()', () => {
  it('decodes percent-encoded unreserved characters, in either hex case (RFC 3986 §6.2.2.2)', () => {
    expect(normalizePath('/%61dmin/x')).toBe('/admin/x')
    expect(normalizePath('/%41%5a%30%39%2D%2E%5f%7E')).toBe('/AZ09-._~')
    expect(normalizePath('/%7euser/')).toBe('/~user/')
    expect(normalizePath('/%7Euser/')).toBe('/~user/')
  })

  it('keeps every other escape exactly as sent, hex case included', () => {
    expect(normalizePath('/group%2Fproject')).toBe('/group%2Fproject')
    expect(normalizePath('/a%2fb%5C%3F%23%25%20%C3%A9')).toBe('/a%2fb%5C%3F%23%25%20%C3%A9')
    // %25 decodes to nothing, so %2541 stays: no double decoding.
    expect(normalizePath('/%2541')).toBe('/%2541')
  })

  it('leaves malformed escapes alone and decodes around them', () => {
    expect(normalizePath('/%zz%4')).toBe('/%zz%4')
    expect(normalizePath('/%%61%')).toBe('/%a%')
    expect(normalizePath('/%6')).toBe('/%6')
  })

  it('stops at the query, which is kept as sent', () => {
    expect(normalizePath('/%61?b=%62')).toBe('/a?b=%62')
    expect(normalizePath('/a?%62')).toBe('/a?%62')
    expect(normalizePath('/%6?1')).toBe('/%6?1')
  })

  it('returns the very string given when there is nothing to decode', () => {
    const plain = '/app/hello'
    expect(normalizePath(plain)).toBe(plain)
    const kept = '/a%2Fb'
    expect(normalizePath(kept)).toBe(kept)
  })

  it('normalises configured prefixes as requests are, so /%7Euser/ and /~user/ meet', () => {
    expect(normalizePath('/%7Euser/')).toBe(normalizePath('/~user/'))
    expect(normalizePath('/%7euser/')).toBe(normalizePath('/%7Euser/'))
  })
})

describe('hasDotSegment()', () => {
  it.each([
    '/..', '/.', '/a/../b', '/a/./b', '/a/..', '/%2e%2E/x', '/.%2e', '/a/%2E?q',
    // Separators an upstream that decodes (nginx) resolves dots across.
    '/public/..%2fadmin/x', '/public/%2e%2e%2fadmin/x', '/a%2F.%2Fb', '/a%5c..%5Cb', '/a%2f..', '%2f../x',
  ])('%s has one', (p) => {
    expect(hasDotSegment(p)).toBe(true)
  })

  it.each([
    '/', '/a.b/c..d/.e', '/...', '/a%2e%2e%2e', '/.x/', '/x./', '/a%2fb', '/a?/../b', '/a?x=%2f..%2f', '/a%2f.b',
  ])('%s has none', (p) => {
    expect(hasDotSegment(p)).toBe(false)
  })

  it('catches the dot-segments stripPrefix makes from a prefix that ends mid-segment', () => {
    const api: HttpRouteConfig = { name: 'api', match: { pathPrefix: '/api' }, upstream: 'u', stripPrefix: true }
    expect(hasDotSegment('/api./admin/x')).toBe(false)
    expect(hasDotSegment(rewritePath(api, '/api./admin/x'))).toBe(true)
    expect(hasDotSegment(rewritePath(api, '/api../admin'))).toBe(true)
    expect(hasDotSegment(rewritePath(api, '/api..'))).toBe(true)
    expect(hasDotSegment(rewritePath(api, '/api..?x'))).toBe(true)
    expect(hasDotSegment(rewritePath(api, '/api.x/y'))).toBe(false)
  })
})
