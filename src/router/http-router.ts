import type { IncomingHttpHeaders } from 'node:http'
import type { HttpRouteConfig } from '../config/types.js'
import { compileRoute, firstSegment, pathnameOf, routeMatches, routeSegment, type CompiledRoute } from './match.js'

/**
 * Routes for one HTTP listener, first match in config order. Host decides the candidate list in
 * one or a few map lookups; only the routes that can match that host are then tried in order.
 *
 * Index, built once: for each exact host, and for each wildcard suffix, the ordered merge of every
 * route that can match it (its own routes, the wildcards above it, the host-less routes). A host
 * that is not listed exactly walks its label suffixes, longest first; the first suffix with
 * wildcard routes already holds all shorter matching wildcards. `*.example.com` matches any
 * deeper subdomain, never example.com itself nor a name with an empty label. Within a list,
 * routes are further split by the first path segment they require (see RouteList).
 */
export class HttpRouter {
  private readonly exact = new Map<string, RouteList>()
  private readonly wildcard = new Map<string, RouteList>()
  private readonly anyHost: RouteList

  constructor (routes: readonly HttpRouteConfig[]) {
    const anyHost: CompiledRoute[] = []
    const exactOwn = new Map<string, CompiledRoute[]>()
    const wildOwn = new Map<string, CompiledRoute[]>()
    routes.forEach((route, i) => {
      const r = compileRoute(route, i)
      const host = route.match.host === undefined ? undefined : normalizeHost(route.match.host)
      if (host === undefined || host === '' || host === '*') anyHost.push(r)
      else if (host.startsWith('*.')) push(wildOwn, host.slice(2), r)
      else push(exactOwn, host, r)
    })
    this.anyHost = new RouteList(anyHost)
    for (const suffix of wildOwn.keys()) {
      this.wildcard.set(suffix, new RouteList(merge(anyHost, ...wildcardsCovering(wildOwn, suffix, true))))
    }
    for (const [host, own] of exactOwn) {
      this.exact.set(host, new RouteList(merge(anyHost, own, ...wildcardsCovering(wildOwn, host, false))))
    }
  }

  /**
   * The first route matching the request, or undefined (404). `path` is the request target in
   * origin form, as requestTarget gives it (normalised: router/path.ts); its query is ignored,
   * and it is compared case-sensitively, slashes unmerged. `host` is the raw Host header (or
   * :authority).
   */
  match (method: string, host: string | undefined, path: string, headers: IncomingHttpHeaders): HttpRouteConfig | undefined {
    return this.routesFor(host).find(method, pathnameOf(path), headers)?.route
  }

  private routesFor (rawHost: string | undefined): RouteList {
    if (rawHost === undefined || (this.exact.size === 0 && this.wildcard.size === 0)) return this.anyHost
    const host = normalizeHost(rawHost)
    const exact = this.exact.get(host)
    if (exact !== undefined) return exact
    if (this.wildcard.size > 0) {
      let label = 0
      for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
        // An empty label (`.example.com`, `a..example.com`) makes no subdomain. requestTarget
        // refuses such a Host already; this keeps the router sound on its own.
        if (dot === label) return this.anyHost
        label = dot + 1
        const list = this.wildcard.get(host.slice(dot + 1))
        if (list !== undefined) return list
      }
    }
    return this.anyHost
  }
}

/**
 * One host's routes in config order, split by the first path segment they require. A request is
 * tried against its segment's routes and the routes that pin no segment, walked together in
 * config order, so the result is that of a linear scan while routes for other segments are
 * never looked at. Nothing is copied per segment, so memory stays linear in the routes.
 */
class RouteList {
  private readonly bySegment = new Map<string, CompiledRoute[]>()
  private readonly generic: CompiledRoute[] = []

  /** Precondition: `routes` sorted by index. */
  constructor (routes: readonly CompiledRoute[]) {
    for (const r of routes) {
      const seg = routeSegment(r)
      if (seg === undefined) this.generic.push(r)
      else push(this.bySegment, seg, r)
    }
  }

  find (method: string, pathname: string, headers: IncomingHttpHeaders): CompiledRoute | undefined {
    const seg = firstSegment(pathname)
    const specific = seg === undefined ? undefined : this.bySegment.get(seg)
    const generic = this.generic
    if (specific === undefined) {
      for (const r of generic) if (routeMatches(r, method, pathname, headers)) return r
      return undefined
    }
    let i = 0
    let j = 0
    while (i < specific.length || j < generic.length) {
      const a = specific[i]
      const b = generic[j]
      let r: CompiledRoute
      if (b === undefined || (a !== undefined && a.index < b.index)) {
        r = a!
        i++
      } else {
        r = b
        j++
      }
      if (routeMatches(r, method, pathname, headers)) return r
    }
    return undefined
  }
}

/**
 * Host as routing compares it: lower-case, without port or trailing dot. `[::1]:8080` gives
 * `::1`; a bare IPv6 address (more than one colon, no brackets) is kept whole.
 */
export function normalizeHost (raw: string): string {
  let h = raw
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    h = end === -1 ? h.slice(1) : h.slice(1, end)
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1 && h.indexOf(':', colon + 1) === -1) h = h.slice(0, colon)
  }
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h.toLowerCase()
}

/**
 * Own route lists of the wildcards that match `name`: those whose suffix is a proper label suffix
 * of it, plus (`inclusive`) `*.name` itself when `name` is a wildcard suffix.
 */
function wildcardsCovering (wildOwn: ReadonlyMap<string, CompiledRoute[]>, name: string, inclusive: boolean): CompiledRoute[][] {
  const lists: CompiledRoute[][] = []
  if (inclusive) {
    const own = wildOwn.get(name)
    if (own !== undefined) lists.push(own)
  }
  for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
    const own = wildOwn.get(name.slice(dot + 1))
    if (own !== undefined) lists.push(own)
  }
  return lists
}

function merge (...lists: ReadonlyArray<readonly CompiledRoute[]>): CompiledRoute[] {
  return lists.flat().sort((a, b) => a.index - b.index)
}

function push<K, V> (map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}
