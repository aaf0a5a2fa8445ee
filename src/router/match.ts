import type { IncomingHttpHeaders } from 'node:http'
import type { HttpRouteConfig, RouteMatch } from '../config/types.js'

/**
 * A route with its match conditions prepared once: methods as a Set, headers as pairs. The host
 * condition is not here; the router's host index has already applied it.
 */
export interface CompiledRoute {
  readonly route: HttpRouteConfig
  /** Position in config order; lower wins. */
  readonly index: number
  readonly path?: string
  readonly pathPrefix?: string
  readonly methods?: ReadonlySet<string>
  readonly headers?: ReadonlyArray<readonly [string, string]>
}

export function compileRoute (route: HttpRouteConfig, index: number): CompiledRoute {
  const m = route.match
  const headers = m.headers === undefined ? undefined : Object.entries(m.headers).map(([k, v]) => [k.toLowerCase(), v] as const)
  return {
    route,
    index,
    ...(m.path !== undefined && { path: m.path }),
    ...(m.pathPrefix !== undefined && { pathPrefix: m.pathPrefix }),
    ...(m.methods !== undefined && { methods: new Set(m.methods.map((x) => x.toUpperCase())) }),
    ...(headers !== undefined && headers.length > 0 && { headers }),
  }
}

/** The request target without its query. Precondition: origin-form (`/a/b?c`), as routed. */
export function pathnameOf (rawUrl: string): string {
  const q = rawUrl.indexOf('?')
  return q === -1 ? rawUrl : rawUrl.slice(0, q)
}

/**
 * First path segment of a pathname (`/api/v1` → `api`, `/` → ``), or undefined when it does not
 * start with `/` (asterisk-form `*`).
 */
export function firstSegment (pathname: string): string | undefined {
  if (!pathname.startsWith('/')) return undefined
  const end = pathname.indexOf('/', 1)
  return end === -1 ? pathname.slice(1) : pathname.slice(1, end)
}

/**
 * The first segment every pathname this route can match must have, or undefined when its
 * conditions do not pin one (no path condition, `pathPrefix: /`, or `/ap` that also matches
 * `/apx`). Lets the router skip routes for other segments without changing first-match order.
 */
export function routeSegment (r: Pick<CompiledRoute, 'path' | 'pathPrefix'>): string | undefined {
  if (r.path !== undefined) return firstSegment(r.path)
  const p = r.pathPrefix
  if (p === undefined || !p.startsWith('/')) return undefined
  const end = p.indexOf('/', 1)
  return end === -1 ? undefined : p.slice(1, end)
}

/** `path` is an exact pathname match; `pathPrefix` a plain string prefix (no segment rule). */
export function pathMatches (m: Pick<RouteMatch, 'path' | 'pathPrefix'>, pathname: string): boolean {
  if (m.path !== undefined && pathname !== m.path) return false
  if (m.pathPrefix !== undefined && !pathname.startsWith(m.pathPrefix)) return false
  return true
}

/** Precondition: `methods` upper-case. Methods are case-sensitive (RFC 9110 9.1). */
export function methodMatches (methods: ReadonlySet<string> | undefined, method: string): boolean {
  return methods === undefined || methods.has(method)
}

/**
 * Every configured header must be present with exactly the configured value. Precondition: names
 * lower-case, as Node delivers them. A repeated header that Node keeps as an array matches when
 * any of its values does.
 */
export function headersMatch (wanted: ReadonlyArray<readonly [string, string]> | undefined, headers: IncomingHttpHeaders): boolean {
  if (wanted === undefined) return true
  for (const [name, value] of wanted) {
    const got = headers[name]
    if (got === undefined) return false
    if (typeof got === 'string' ? got !== value : !got.includes(value)) return false
  }
  return true
}

export function routeMatches (r: CompiledRoute, method: string, pathname: string, headers: IncomingHttpHeaders): boolean {
  return pathMatches(r, pathname) && methodMatches(r.methods, method) && headersMatch(r.headers, headers)
}

/**
 * The request target to send upstream. With `stripPrefix` and a `pathPrefix`, the prefix (minus
 * any trailing slash) is cut and the rest kept with its query: prefix `/v1/` or `/v1` turns
 * `/v1/users?x=1` into `/users?x=1`. The result always starts with `/` and is never empty. A
 * prefix that ends mid-segment cuts there, as nginx does (`/v1x/y` → `/x/y`), so the result may
 * hold a dot-segment the request had not (`/v1../a` → `/../a`): the caller must refuse it.
 * Precondition: the route matched `rawUrl`.
 */
export function rewritePath (route: HttpRouteConfig, rawUrl: string): string {
  const prefix = route.match.pathPrefix
  if (!route.stripPrefix || prefix === undefined) return rawUrl
  const cut = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  if (cut === '' || !rawUrl.startsWith(cut)) return rawUrl
  const rest = rawUrl.slice(cut.length)
  return rest.startsWith('/') ? rest : '/' + rest
}
