// DNS rebinding defence for the admin API (pure). A web page on evil.example can
// point its own name at 127.0.0.1 and then read or drive http://evil.example:9090/ from the
// victim's browser: same origin, so neither CORS nor the Origin check stops it. The Host header
// still says evil.example, so a token-less admin answers only Hosts that name the loopback
// interface or its own listen address (what Docker's, Jupyter's and webpack-dev-server's own
// rebinding checks do), plus the names listed in `admin.hosts`. With a token, a request that does not carry it is held to the same
// rule, widened to any IP literal (a rebinding page always has a name): the token guards writes,
// and this keeps a rebinding page from reading the status, metrics or dashboard.
import { isIP } from 'node:net'

/** The host part of a Host header, lower-cased, without brackets or port; undefined if malformed. */
export function hostOf (header: string): string | undefined {
  const h = header.trim().toLowerCase()
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::[0-9]{1,5})?$/.exec(h)
  if (m === null) return undefined
  return m[1] ?? (m[2] as string).replace(/\.$/, '')
}

export function isLoopbackHost (host: string): boolean {
  if (host === 'localhost') return true
  const family = isIP(host)
  if (family === 4) return host.startsWith('127.')
  if (family === 6) return host === '::1' || /^::ffff:127\./.test(host) || /^0*:(0*:){0,6}0*1$/.test(host)
  return false
}

/**
 * True when a request carrying `header` may be answered by an admin whose own names are `names`
 * (its listen host and `admin.hosts`). No Host at all (HTTP/1.0 tools) is allowed: a browser
 * always sends one.
 */
export function hostAllowed (header: string | undefined, names: readonly string[], ipLiterals = false): boolean {
  if (header === undefined) return true
  const host = hostOf(header)
  if (host === undefined) return false
  return isLoopbackHost(host) || names.some((n) => n.toLowerCase() === host) || (ipLiterals && isIP(host) !== 0)
}
