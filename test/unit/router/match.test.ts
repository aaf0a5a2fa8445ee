import { describe, it, expect } from 'vitest'
import { firstSegment, headersMatch, methodMatches, pathMatches, pathnameOf, rewritePath, routeSegment } from '../../../src/router/match.js'
import type { HttpRouteConfig, RouteMatch } from '../../../src/config/types.js'

const route = (match: RouteMatch, stripPrefix = false): HttpRouteConfig => ({ name: 'r', match, upstream: 'u', stripPrefix })

describe('match predicates', () => {
  it('pathnameOf drops the query', () => {
    expect(pathnameOf('/a/b?x=1&y=2')).toBe('/a/b')
    expect(pathnameOf('/a/b')).toBe('/a/b')
    expect(pathnameOf('/?')).toBe('/')
  })

  it('path is exact, pathPrefix a plain string prefix', () => {
    expect(pathMatches({ path: '/health' }, '/health')).toBe(true)
    expect(pathMatches({ path: '/health' }, '/health/')).toBe(false)
    expect(pathMatches({ path: '/health' }, '/Health')).toBe(false)
    expect(pathMatches({ pathPrefix: '/v1/' }, '/v1/users')).toBe(true)
    expect(pathMatches({ pathPrefix: '/v1/' }, '/v1')).toBe(false)
    expect(pathMatches({ pathPrefix: '/v1' }, '/v1x')).toBe(true)
    expect(pathMatches({}, '/anything')).toBe(true)
  })

  it('methods are an exact, case-sensitive set', () => {
    const set = new Set(['GET', 'POST'])
    expect(methodMatches(set, 'GET')).toBe(true)
    expect(methodMatches(set, 'DELETE')).toBe(false)
    expect(methodMatches(set, 'get')).toBe(false)
    expect(methodMatches(undefined, 'PATCH')).toBe(true)
  })

  it('headers need every configured name with exactly its value', () => {
    const wanted = [['x-canary', '1'], ['x-team', 'blue']] as const
    expect(headersMatch(wanted, { 'x-canary': '1', 'x-team': 'blue', other: 'z' })).toBe(true)
    expect(headersMatch(wanted, { 'x-canary': '1' })).toBe(false)
    expect(headersMatch(wanted, { 'x-canary': '1 ', 'x-team': 'blue' })).toBe(false)
    expect(headersMatch(wanted, { 'x-canary': '1', 'x-team': 'Blue' })).toBe(false)
    expect(headersMatch([['set-cookie', 'a=1']], { 'set-cookie': ['b=2', 'a=1'] })).toBe(true)
    expect(headersMatch(undefined, {})).toBe(true)
  })
})

describe('path segments for the router index', () => {
  it('firstSegment of a pathname', () => {
    expect(firstSegment('/api/v1/users')).toBe('api')
    expect(firstSegment('/api')).toBe('api')
    expect(firstSegment('/')).toBe('')
    expect(firstSegment('//x')).toBe('')
    expect(firstSegment('*')).toBeUndefined()
  })

  it('routeSegment pins a segment only when every matching pathname must have it', () => {
    expect(routeSegment({ path: '/api' })).toBe('api')
    expect(routeSegment({ path: '/api/v1' })).toBe('api')
    expect(routeSegment({ path: '/' })).toBe('')
    expect(routeSegment({ pathPrefix: '/api/' })).toBe('api')
    expect(routeSegment({ pathPrefix: '/api/v1' })).toBe('api')
    // '/api' also matches '/apix' and '/api': no single segment.
    expect(routeSegment({ pathPrefix: '/api' })).toBeUndefined()
    expect(routeSegment({ pathPrefix: '/' })).toBeUndefined()
    expect(routeSegment({})).toBeUndefined()
  })
})

describe('rewritePath()', () => {
  it('cuts the prefix with or without its trailing slash and keeps the query', () => {
    expect(rewritePath(route({ pathPrefix: '/v1/' }, true), '/v1/users?x=1')).toBe('/users?x=1')
    expect(rewritePath(route({ pathPrefix: '/v1' }, true), '/v1/users?x=1')).toBe('/users?x=1')
    expect(rewritePath(route({ pathPrefix: '/api/v2/' }, true), '/api/v2/a/b/c')).toBe('/a/b/c')
  })

  it('never returns an empty target', () => {
    expect(rewritePath(route({ pathPrefix: '/v1/' }, true), '/v1/')).toBe('/')
    expect(rewritePath(route({ pathPrefix: '/v1' }, true), '/v1')).toBe('/')
    expect(rewritePath(route({ pathPrefix: '/v1' }, true), '/v1?x=1')).toBe('/?x=1')
    expect(rewritePath(route({ pathPrefix: '/v1/' }, true), '/v1/?x=1')).toBe('/?x=1')
  })

  it('keeps a leading slash when the prefix ends mid-segment', () => {
    expect(rewritePath(route({ pathPrefix: '/v1' }, true), '/v1x/y')).toBe('/x/y')
  })

  it('leaves the target alone without stripPrefix, without a pathPrefix, or for prefix /', () => {
    expect(rewritePath(route({ pathPrefix: '/v1/' }, false), '/v1/users?x=1')).toBe('/v1/users?x=1')
    expect(rewritePath(route({ path: '/v1/users' }, true), '/v1/users?x=1')).toBe('/v1/users?x=1')
    expect(rewritePath(route({ pathPrefix: '/' }, true), '/users?x=1')).toBe('/users?x=1')
  })
})
