import { describe, it, expect } from 'vitest'
import { hostCovers, routeCovers } from '../../../src/config/lint.js'
import type { RouteMatch } from '../../../src/config/types.js'
import { parse, yaml, MINIMAL } from './helpers.js'

describe('route shadowing: flagged only when certain', () => {
  it.each<[string, RouteMatch, RouteMatch]>([
    ['a catch-all covers anything', {}, { host: 'a.example.com', pathPrefix: '/v1/', methods: ['GET'] }],
    ['same host', { host: 'a.example.com' }, { host: 'a.example.com', path: '/x' }],
    ['a wildcard covers a one-label name under it', { host: '*.example.com' }, { host: 'api.example.com' }],
    ['a wildcard covers itself', { host: '*.example.com' }, { host: '*.example.com', path: '/x' }],
    ['prefix ending in / covers longer prefixes', { pathPrefix: '/v1/' }, { pathPrefix: '/v1/users' }],
    ['prefix covers the next segment', { pathPrefix: '/v1' }, { pathPrefix: '/v1/users' }],
    ['prefix covers an exact path under it', { pathPrefix: '/v1' }, { path: '/v1/x' }],
    ['same exact path', { path: '/x' }, { path: '/x' }],
    ['method superset', { methods: ['GET', 'POST'] }, { methods: ['GET'] }],
    ['header subset required', { headers: { 'x-a': '1' } }, { headers: { 'x-a': '1', 'x-b': '2' } }],
  ])('%s', (_, a, b) => {
    expect(routeCovers(a, b)).toBe(true)
  })

  it.each<[string, RouteMatch, RouteMatch]>([
    ['a host-bound route does not cover host-less', { host: 'a.example.com' }, {}],
    ['different host', { host: 'a.example.com' }, { host: 'b.example.com' }],
    ['a wildcard does not cover the bare domain', { host: '*.example.com' }, { host: 'example.com' }],
    ['a wildcard is not certain over two labels', { host: '*.example.com' }, { host: 'a.b.example.com' }],
    ['a name does not cover a wildcard', { host: 'a.example.com' }, { host: '*.example.com' }],
    ['/v1 is not certain over /v10', { pathPrefix: '/v1' }, { pathPrefix: '/v10' }],
    ['a prefix does not cover all paths', { pathPrefix: '/v1' }, {}],
    ['even / does not (absolute-form targets, OPTIONS *)', { pathPrefix: '/' }, { host: 'a.example.com' }],
    ['an exact path does not cover a prefix', { path: '/v1' }, { pathPrefix: '/v1' }],
    ['method subset', { methods: ['GET'] }, { methods: ['GET', 'POST'] }],
    ['methods do not cover all methods', { methods: ['GET'] }, {}],
    ['header value differs', { headers: { 'x-a': '1' } }, { headers: { 'x-a': '2' } }],
    ['headers do not cover no headers', { headers: { 'x-a': '1' } }, {}],
  ])('not: %s', (_, a, b) => {
    expect(routeCovers(a, b)).toBe(false)
  })

  it('host coverage for SNI', () => {
    expect(hostCovers('*.example.com', 'www.example.com')).toBe(true)
    expect(hostCovers('www.example.com', 'www.example.com')).toBe(true)
    expect(hostCovers('*.example.com', 'www.other.com')).toBe(false)
  })

  it('reports the shadowed http route at the route, naming the one that wins', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 9),
      '      - name: api',
      '        match: { pathPrefix: /api/ }',
      '        upstream: web',
      '      - match: { pathPrefix: /api/v2, methods: [GET] }',
      '        upstream: web',
      '      - match: { pathPrefix: / }',
      '        upstream: web',
      '      - match: { host: a.example.com, pathPrefix: /x }',
      '        upstream: web',
    )
    // A warning: the config is valid (first match wins) and runs as written.
    expect(parse(text).warnings).toEqual([
      't.yaml:13:9: listeners[0].routes[1]: warning: never matches: route "api" (routes[0]) comes first and matches everything it would',
      't.yaml:17:9: listeners[0].routes[3]: warning: never matches: route "route-3" (routes[2]) comes first and matches everything it would',
    ])
  })

  it('the spec-style order (specific first, catch-all last) is fine', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 9),
      '      - { upstream: web, match: { host: api.example.com, pathPrefix: /v1/, methods: [GET], headers: { x-canary: "1" } } }',
      '      - { upstream: web, match: { host: api.example.com, pathPrefix: /v1/ } }',
      '      - { upstream: web, match: { host: "*.example.com" } }',
      '      - { upstream: web, match: { pathPrefix: / } }',
    )
    const config = parse(text)
    expect(config.listeners[0]?.routes.map((r) => r.name)).toEqual(['route-1', 'route-2', 'route-3', 'route-4'])
    expect(config.warnings).toBeUndefined()
  })

  it('reports a shadowed SNI route', () => {
    const text = yaml(
      ...MINIMAL.slice(0, 5),
      '  - protocol: tcp',
      '    listen: 127.0.0.1:8443',
      '    routes:',
      '      - { match: { sni: "*.example.com" }, upstream: web }',
      '      - { match: { sni: www.example.com }, upstream: web }',
      '      - { match: { sni: www.example.org }, upstream: web }',
    )
    expect(parse(text).warnings).toEqual([
      't.yaml:10:9: listeners[0].routes[1]: warning: never matches: route "route-1" (routes[0]) comes first and matches everything it would',
    ])
  })
})
