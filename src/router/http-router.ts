import type { IncomingHttpHeaders } from 'node:http'
import type { HttpRouteConfig } from '../config/types.js'
import { compileRoute, pathnameOf, routeMatches, type CompiledRoute } from './match.js'

/**
 * Routes for one HTTP listener, first match in config order. Host decides the candidate list in
 * one or a few map lookups; only the routes that can match that host are then tried in order.
 *
 * Index, built once: for each exact host, and for each wildcard suffix, the ordered merge of every
 * route that can match it (its own routes, the wildcards above it, the host-less routes). A host
 * that is not listed exactly walks its label suffixes, longest first; the first suffix with
 * wildcard routes already holds all shorter matching wildcards. `*.example.com` matches any
 * deeper subdomain, never example.com itself.
 */
export class HttpRouter {
  private readonly exact = new Map<string, CompiledRoute[]>()
  private readonly wildcard = new Map<string, CompiledRoute[]>()
  private readonly anyHost: CompiledRoute[] = []

  constructor (routes: readonly HttpRouteConfig[]) {
    const exactOwn = new Map<string, CompiledRoute[]>()
    const wildOwn = new Map<string, CompiledRoute[]>()
    routes.forEach((route, i) => {
      const r = compileRoute(route, i)
      const host = route.match.host === undefined ? undefined : normalizeHost(route.match.host)
      if (host === undefined || host === '' || host === '*') this.anyHost.push(r)
      else if (host.startsWith('*.')) push(wildOwn, host.slice(2), r)
      else push(exactOwn, host, r)
    })
    for (const suffix of wildOwn.keys()) {
      this.wildcard.set(suffix, merge(this.anyHost, ...wildcardsCovering(wildOwn, suffix, true)))
    }
    for (const [host, own] of exactOwn) {
      this.exact.set(host, merge(this.anyHost, own, ...wildcardsCovering(wildOwn, host, false)))
    }
  }

  /**
   * The first route matching the request, or undefined (404). `path` is the request target in
   * origin form; its query is ignored. `host` is the raw Host header (or :authority).
   */
  match (method: string, host: string | undefined, path: string, headers: IncomingHttpHeaders): HttpRouteConfig | undefined {
    const pathname = pathnameOf(path)
    for (const r of this.routesFor(host)) {
      if (routeMatches(r, method, pathname, headers)) return r.route
    }
    return undefined
  }

  private routesFor (rawHost: string | undefined): readonly CompiledRoute[] {
    if (rawHost === undefined || (this.exact.size === 0 && this.wildcard.size === 0)) return this.anyHost
    const host = normalizeHost(rawHost)
    const exact = this.exact.get(host)
    if (exact !== undefined) return exact
    if (this.wildcard.size > 0) {
      for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
        const list = this.wildcard.get(host.slice(dot + 1))
        if (list !== undefined) return list
      }
    }
    return this.anyHost
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
