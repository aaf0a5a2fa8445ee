// Checks across values of a normalised Config (pure): references to upstreams and rate limits,
// addresses bound twice, duplicate names, and settings that are surely a mistake (a health
// timeout longer than its interval, an all-backup pool). A route an earlier one shadows is a
// warning, flagged only when certain, whatever the router's exact matching rules.
import type { Config, HostPort, RouteMatch } from './types.js'
import type { Problems } from './positions.js'
import { pointer } from './positions.js'
import { didYouMean } from './suggest.js'

function fmtMs (ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`
  return `${ms}ms`
}

/** Every name `a` matches is also matched by... exact equality, or `*.x` over a one-label name of x. */
export function hostCovers (a: string | undefined, b: string | undefined): boolean {
  if (a === undefined) return true
  if (b === undefined) return false
  if (a === b) return true
  if (!a.startsWith('*.') || b.startsWith('*.')) return false
  const suffix = a.slice(1)
  const label = b.slice(0, -suffix.length)
  return b.endsWith(suffix) && label.length > 0 && !label.includes('.')
}

function pathCovers (a: RouteMatch, b: RouteMatch): boolean {
  if (a.path === undefined && a.pathPrefix === undefined) return true
  if (a.path !== undefined) return b.path === a.path
  const p = a.pathPrefix as string
  const q = b.path ?? b.pathPrefix
  if (q === undefined) return false
  // Holds both for plain string prefixes and for segment-wise prefixes.
  return q === p || (q.startsWith(p) && (p.endsWith('/') || q[p.length] === '/'))
}

/** True when every request that `b` matches is certainly matched by `a`. */
export function routeCovers (a: RouteMatch, b: RouteMatch): boolean {
  if (!hostCovers(a.host, b.host) || !pathCovers(a, b)) return false
  if (a.methods !== undefined && (b.methods === undefined || !b.methods.every((m) => a.methods?.includes(m)))) return false
  const ah = Object.entries(a.headers ?? {})
  if (ah.length > 0 && (b.headers === undefined || !ah.every(([k, v]) => b.headers?.[k] === v))) return false
  return true
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.[0-9.]+$/.test(host)
}

function addressesOverlap (a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.port === 0) return false
  if (a.host === b.host || a.host === '::' || b.host === '::') return true
  // 0.0.0.0 takes the port on every IPv4 address (and names, which resolve to one).
  const v4orName = (h: string): boolean => !h.includes(':')
  return (a.host === '0.0.0.0' && v4orName(b.host)) || (b.host === '0.0.0.0' && v4orName(a.host))
}

function checkAddresses (config: Config, problems: Problems): void {
  const seen: Array<{ addr: HostPort, what: string }> = []
  const claim = (addr: HostPort, ptr: string, what: string): void => {
    const other = seen.find((s) => addressesOverlap(s.addr, addr))
    if (other !== undefined) problems.add(ptr, `address ${addr.text} is already used by ${other.what}`)
    else seen.push({ addr, what })
  }
  if (config.admin !== undefined) claim(config.admin.listen, pointer('admin', 'listen'), 'the admin listen')
  if (config.peer !== undefined) claim(config.peer.listen, pointer('peer', 'listen'), 'the peer listen')
  config.listeners.forEach((l, i) => claim(l.listen, pointer('listeners', i, 'listen'), `listener "${l.name}" (${l.listen.text})`))
}

function checkRefs (config: Config, problems: Problems): void {
  const upstreams = Object.keys(config.upstreams)
  const limits = Object.keys(config.rateLimits)
  const upstream = (name: string | undefined, ptr: string): void => {
    if (name !== undefined && !Object.hasOwn(config.upstreams, name)) {
      problems.add(ptr, `unknown upstream "${name}"${didYouMean(name, upstreams)}`)
    }
  }
  const limit = (name: string | undefined, ptr: string): void => {
    if (name !== undefined && !Object.hasOwn(config.rateLimits, name)) {
      problems.add(ptr, `unknown rate limit "${name}"${didYouMean(name, limits)}`)
    }
  }
  config.listeners.forEach((l, i) => {
    const base = pointer('listeners', i)
    limit(l.rateLimit, base + pointer('rateLimit'))
    if (l.protocol === 'tcp') {
      upstream(l.upstream, base + pointer('upstream'))
      // A TCP connection has no headers and no HTTP route: only these keys mean something there.
      const kind = l.rateLimit === undefined ? undefined : config.rateLimits[l.rateLimit]?.key.kind
      if (kind !== undefined && kind !== 'client-ip' && kind !== 'global') {
        problems.add(base + pointer('rateLimit'), `rate limit "${l.rateLimit}" has key ${kind === 'header' ? 'header:…' : kind}; a tcp listener can only use client-ip or global`)
      }
      if (l.upstream === undefined && l.routes.length === 0) problems.add(base, 'a tcp listener needs an upstream or routes')
    }
    l.routes.forEach((r, j) => {
      upstream(r.upstream, base + pointer('routes', j, 'upstream'))
      if ('rateLimit' in r) limit(r.rateLimit, base + pointer('routes', j, 'rateLimit'))
    })
  })
}

function checkNames (config: Config, problems: Problems): void {
  const listeners = new Map<string, number>()
  config.listeners.forEach((l, i) => {
    const first = listeners.get(l.name)
    if (first !== undefined) problems.add(pointer('listeners', i, 'name'), `duplicate listener name "${l.name}" (also listeners[${first}])`)
    else listeners.set(l.name, i)
    const routes = new Map<string, number>()
    l.routes.forEach((r, j) => {
      const prev = routes.get(r.name)
      if (prev !== undefined) problems.add(pointer('listeners', i, 'routes', j, 'name'), `duplicate route name "${r.name}" (also routes[${prev}])`)
      else routes.set(r.name, j)
    })
  })
}

function checkUpstreams (config: Config, problems: Problems): void {
  for (const u of Object.values(config.upstreams)) {
    const base = pointer('upstreams', u.name)
    const seen = new Map<string, number>()
    u.servers.forEach((s, k) => {
      const key = `${s.host.toLowerCase()}:${s.port}`
      const first = seen.get(key)
      if (first !== undefined) problems.add(base + pointer('servers', k, 'address'), `duplicate server ${s.text} (also servers[${first}])`)
      else seen.set(key, k)
    })
    if (u.servers.length > 0 && u.servers.every((s) => s.backup)) {
      problems.add(base + pointer('servers'), 'every server is a backup; mark at least one with backup: false')
    }
    const h = u.health
    // The next probe starts after the previous one settles, so a timeout up to the interval is fine.
    if (h !== undefined && h.interval > 0 && h.timeout > h.interval) {
      problems.add(base + pointer('health', 'timeout'), `must not be longer than interval (timeout ${fmtMs(h.timeout)}, interval ${fmtMs(h.interval)})`)
    }
  }
}

function checkShadowing (config: Config, problems: Problems): void {
  config.listeners.forEach((l, i) => {
    l.routes.forEach((b, j) => {
      for (let k = 0; k < j; k++) {
        const a = l.routes[k]
        if (a === undefined) continue
        const shadowed = l.protocol === 'http'
          ? routeCovers(a.match as RouteMatch, b.match as RouteMatch)
          : hostCovers((a.match as { sni: string }).sni, (b.match as { sni: string }).sni)
        if (shadowed) {
          // A warning, not an error: first match wins, so the config means something definite.
          problems.warn(pointer('listeners', i, 'routes', j), `never matches: route "${a.name}" (routes[${k}]) comes first and matches everything it would`)
          break
        }
      }
    })
  })
}

/** Adds every cross-value problem of `config` to `problems`. */
export function lint (config: Config, problems: Problems): void {
  checkRefs(config, problems)
  checkNames(config, problems)
  checkAddresses(config, problems)
  checkUpstreams(config, problems)
  checkShadowing(config, problems)
  const admin = config.admin
  if (admin !== undefined && admin.token === undefined && !isLoopback(admin.listen.host)) {
    problems.add(pointer('admin', 'listen'), 'a non-loopback admin listen needs a token (admin.token)')
  }
}
