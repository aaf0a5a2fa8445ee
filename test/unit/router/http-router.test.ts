import { describe, it, expect } from 'vitest'
import type { IncomingHttpHeaders } from 'node:http'
import { HttpRouter, normalizeHost } from '../../../src/router/http-router.js'
import type { HttpRouteConfig, RouteMatch } from '../../../src/config/types.js'
import { seededRandom } from '../balancer/helpers.js'

const r = (name: string, match: RouteMatch, upstream = 'u'): HttpRouteConfig => ({ name, match, upstream, stripPrefix: false })
const hit = (router: HttpRouter, host: string | undefined, path = '/', method = 'GET', headers: IncomingHttpHeaders = {}): string | undefined =>
  router.match(method, host, path, headers)?.name

describe('normalizeHost()', () => {
  it('lower-cases and strips the port and a trailing dot', () => {
    expect(normalizeHost('API.Example.COM')).toBe('api.example.com')
    expect(normalizeHost('api.example.com:8080')).toBe('api.example.com')
    expect(normalizeHost('api.example.com.')).toBe('api.example.com')
    expect(normalizeHost('Api.Example.Com.:443')).toBe('api.example.com')
    expect(normalizeHost('127.0.0.1:80')).toBe('127.0.0.1')
  })

  it('handles IPv6 literals with and without brackets', () => {
    expect(normalizeHost('[::1]:8080')).toBe('::1')
    expect(normalizeHost('[::1]')).toBe('::1')
    expect(normalizeHost('[FE80::1]:443')).toBe('fe80::1')
    expect(normalizeHost('::1')).toBe('::1')
  })
})

describe('HttpRouter host index', () => {
  const router = new HttpRouter([
    r('exact', { host: 'api.example.com' }),
    r('wild', { host: '*.example.com' }),
    r('any', {}),
  ])

  it('matches an exact host', () => {
    expect(hit(router, 'api.example.com')).toBe('exact')
  })

  it('matches a wildcard for any deeper subdomain, not the apex', () => {
    expect(hit(router, 'www.example.com')).toBe('wild')
    expect(hit(router, 'a.b.c.example.com')).toBe('wild')
    expect(hit(router, 'example.com')).toBe('any')
    expect(hit(router, 'badexample.com')).toBe('any')
    expect(hit(router, 'example.com.evil.net')).toBe('any')
  })

  // Regression: `.example.com`, `a..example.com` and `..example.com` matched the wildcard.
  it('never takes a name with an empty label for a subdomain', () => {
    expect(hit(router, '.example.com')).toBe('any')
    expect(hit(router, 'a..example.com')).toBe('any')
    expect(hit(router, '..example.com')).toBe('any')
    expect(hit(router, 'a.b..example.com:80')).toBe('any')
    expect(hit(router, 'a.b.example.com.')).toBe('wild')
  })

  it('sends other hosts and a missing Host to the host-less routes', () => {
    expect(hit(router, 'other.org')).toBe('any')
    expect(hit(router, undefined)).toBe('any')
    expect(hit(router, '')).toBe('any')
  })

  it('normalises the request Host: case, port, trailing dot', () => {
    expect(hit(router, 'API.example.com:8443')).toBe('exact')
    expect(hit(router, 'api.example.com.')).toBe('exact')
    expect(hit(router, 'WWW.Example.Com.:80')).toBe('wild')
  })

  it('normalises configured hosts the same way', () => {
    const rr = new HttpRouter([r('v6', { host: '[::1]' }), r('upper', { host: '*.Example.COM' }), r('any', {})])
    expect(hit(rr, '[::1]:8080')).toBe('v6')
    expect(hit(rr, 'x.example.com')).toBe('upper')
  })

  it('answers undefined when nothing matches', () => {
    const rr = new HttpRouter([r('only', { host: 'a.test' })])
    expect(hit(rr, 'b.test')).toBeUndefined()
    expect(hit(rr, undefined)).toBeUndefined()
    expect(new HttpRouter([]).match('GET', 'x', '/', {})).toBeUndefined()
  })
})

describe('HttpRouter first match wins across host categories', () => {
  const router = new HttpRouter([
    r('any-special', { pathPrefix: '/special' }),
    r('wild-w', { host: '*.example.com', pathPrefix: '/w' }),
    r('exact', { host: 'api.example.com', pathPrefix: '/' }),
    r('deep-wild', { host: '*.eu.example.com' }),
    r('wild', { host: '*.example.com' }),
    r('any', { pathPrefix: '/' }),
  ])

  it('keeps config order between host-less, wildcard and exact routes', () => {
    expect(hit(router, 'api.example.com', '/special/x')).toBe('any-special')
    expect(hit(router, 'api.example.com', '/w/x')).toBe('wild-w')
    expect(hit(router, 'api.example.com', '/x')).toBe('exact')
    expect(hit(router, 'www.example.com', '/x')).toBe('wild')
    expect(hit(router, 'www.example.com', '/special')).toBe('any-special')
    expect(hit(router, 'other.net', '/x')).toBe('any')
  })

  it('tries every wildcard level that covers the host, in config order', () => {
    expect(hit(router, 'a.eu.example.com', '/x')).toBe('deep-wild')
    expect(hit(router, 'a.eu.example.com', '/w')).toBe('wild-w')
    expect(hit(router, 'eu.example.com', '/x')).toBe('wild')
  })

  it('lets a later exact route lose to an earlier wildcard for the same host', () => {
    const rr = new HttpRouter([r('wild', { host: '*.example.com' }), r('exact', { host: 'api.example.com' })])
    expect(hit(rr, 'api.example.com')).toBe('wild')
  })

  it('lets an exact route placed before a catch-all win only where its conditions hold', () => {
    const rr = new HttpRouter([r('exact', { host: 'a.test', path: '/x' }), r('any', {}), r('exact2', { host: 'a.test' })])
    expect(hit(rr, 'a.test', '/x')).toBe('exact')
    expect(hit(rr, 'a.test', '/y')).toBe('any')
  })
})

describe('HttpRouter request conditions', () => {
  const router = new HttpRouter([
    r('exact-path', { path: '/healthz' }),
    r('canary', { pathPrefix: '/api/', headers: { 'x-canary': '1' } }),
    r('write', { pathPrefix: '/api/', methods: ['post', 'PUT'] }),
    r('read', { pathPrefix: '/api/' }),
    r('fallback', {}),
  ])

  it('matches path exactly, ignoring the query', () => {
    expect(hit(router, 'h', '/healthz')).toBe('exact-path')
    expect(hit(router, 'h', '/healthz?full=1')).toBe('exact-path')
    expect(hit(router, 'h', '/healthz/')).toBe('fallback')
  })

  it('checks headers, methods and prefixes in order', () => {
    expect(hit(router, 'h', '/api/x', 'GET', { 'x-canary': '1' })).toBe('canary')
    expect(hit(router, 'h', '/api/x', 'GET', { 'x-canary': '0' })).toBe('read')
    expect(hit(router, 'h', '/api/x', 'POST')).toBe('write')
    expect(hit(router, 'h', '/api/x', 'PUT')).toBe('write')
    expect(hit(router, 'h', '/api/x', 'DELETE')).toBe('read')
    expect(hit(router, 'h', '/api', 'POST')).toBe('fallback')
  })

  it('keeps config order between routes for one path segment and routes that pin none', () => {
    const rr = new HttpRouter([
      r('api-get', { pathPrefix: '/api/', methods: ['GET'] }),
      r('ap-any', { pathPrefix: '/ap' }),
      r('api-all', { pathPrefix: '/api/' }),
      r('static', { pathPrefix: '/static/' }),
      r('header', { headers: { 'x-debug': '1' } }),
      r('static-late', { path: '/static/x' }),
      r('root', { path: '/' }),
    ])
    expect(hit(rr, 'h', '/api/x', 'GET')).toBe('api-get')
    expect(hit(rr, 'h', '/api/x', 'POST')).toBe('ap-any')
    expect(hit(rr, 'h', '/apix', 'POST')).toBe('ap-any')
    expect(hit(rr, 'h', '/static/x')).toBe('static')
    expect(hit(rr, 'h', '/static', 'GET', { 'x-debug': '1' })).toBe('header')
    expect(hit(rr, 'h', '/static?x', 'GET')).toBeUndefined()
    expect(hit(rr, 'h', '/?q=1')).toBe('root')
    expect(hit(rr, 'h', '*', 'OPTIONS')).toBeUndefined()
    expect(hit(rr, 'h', '*', 'OPTIONS', { 'x-debug': '1' })).toBe('header')
  })

  it('does not let the query satisfy a prefix', () => {
    expect(hit(router, 'h', '/x?/api/')).toBe('fallback')
  })
})

/** The spec's rules written as plainly as possible: a linear scan to check the index against. */
function reference (routes: readonly HttpRouteConfig[], method: string, host: string | undefined, url: string, headers: IncomingHttpHeaders): string | undefined {
  const h = host === undefined ? undefined : normalizeHost(host)
  const pathname = url.split('?')[0] ?? ''
  for (const route of routes) {
    const m = route.match
    if (m.host !== undefined) {
      if (h === undefined) continue
      const want = m.host.toLowerCase()
      if (want.startsWith('*.')) {
        if (!h.endsWith(want.slice(1)) || h.length <= want.length - 1) continue
      } else if (want !== h) continue
    }
    if (m.path !== undefined && m.path !== pathname) continue
    if (m.pathPrefix !== undefined && !pathname.startsWith(m.pathPrefix)) continue
    if (m.methods !== undefined && !m.methods.includes(method)) continue
    if (m.headers !== undefined && !Object.entries(m.headers).every(([k, v]) => headers[k] === v)) continue
    return route.name
  }
  return undefined
}

describe('HttpRouter over 1,000 routes', () => {
  it('agrees with a linear scan of the rules on 20,000 random requests', () => {
    const random = seededRandom(1000)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
    const labels = ['api', 'www', 'eu', ...Array.from({ length: 20 }, (_, i) => `n${i}`)]
    const domains = ['example.com', 'example.org', 'test', 'eu.example.com', 'shop.example.com', 'io', 'corp.internal', 'n1.test']
    const hostName = (): string => (random() < 0.5 ? pick(labels) + '.' : '') + (random() < 0.3 ? pick(labels) + '.' : '') + pick(domains)
    const paths = ['/', '/api/', '/api/v1/', '/api/v1/users', '/api', '/ap', '/static/', '/st', '/healthz', '/v2']
    const routes: HttpRouteConfig[] = []
    for (let i = 0; i < 1000; i++) {
      const match: { -readonly [K in keyof RouteMatch]: RouteMatch[K] } = {}
      const kind = random()
      if (kind < 0.5) match.host = hostName()
      else if (kind < 0.9) match.host = '*.' + pick(domains)
      // Every route has a path condition and most a second one, so early routes shadow few
      // later ones and the index is exercised across many of them; '/' alone is left out.
      if (random() < 0.7) match.pathPrefix = pick(paths.slice(1))
      else match.path = pick(paths) + pick(['', 'x', 'users/1'])
      if (random() < 0.4) match.methods = [pick(['GET', 'POST', 'PUT'])]
      if (random() < 0.4) match.headers = { 'x-v': pick(['1', '2', '3']) }
      routes.push(r(`r${i}`, match))
    }
    const router = new HttpRouter(routes)
    const seen = new Set<string>()
    let misses = 0
    for (let i = 0; i < 20_000; i++) {
      const host = random() < 0.05 ? undefined : (random() < 0.1 ? 'x.other.net' : hostName()) + (random() < 0.2 ? ':8080' : '')
      const url = (random() < 0.1 ? '/zzz' : pick(paths)) + pick(['', 'x', 'users/1']) + (random() < 0.2 ? '?q=/api/' : '')
      const method = pick(['GET', 'POST', 'PUT', 'DELETE'])
      const headers: IncomingHttpHeaders = random() < 0.5 ? { 'x-v': pick(['1', '2', '3']) } : {}
      const want = reference(routes, method, host, url, headers)
      expect(router.match(method, host, url, headers)?.name).toBe(want)
      if (want !== undefined) seen.add(want)
      else misses++
    }
    // The generated mix exercises both outcomes.
    expect(misses).toBeGreaterThan(1_000)
    expect(seen.size).toBeGreaterThan(100)
  })
})
