// Who may use the admin API: the DNS-rebinding Host check (host-check.ts) for reads on a loopback
// admin, the Origin check and the bearer token for writes. /healthz and /readyz answer any Host:
// they tell nothing ("ok", "ready") and outer load balancers probe them by whatever name they
// were given. A read that arrives on a network address (an admin there must have a token) is
// answered whatever its Host: the spec makes the token guard mutating endpoints only, and such
// an admin is reached by names (Prometheus scraping `tandem-a:9090`, the dashboard opened by a
// compose or pod name) the node cannot know. One that arrives on loopback, the rebinding target,
// is checked, also on a wildcard listen.
import type { IncomingMessage } from 'node:http'
import type { AdminConfig } from '../config/types.js'
import { unmapV4 } from '../listener/client-ip.js'
import { hostAllowed, isLoopbackHost } from './host-check.js'
import { crypto, sha256 } from '../node-builtins.js'

export interface Refusal {
  status: 401 | 403
  body: { error: string }
}

const PROBES = new Set(['/healthz', '/readyz'])

export class AdminAccess {
  private readonly tokenDigest: Buffer | undefined
  private readonly hosts: readonly string[]

  constructor (config: AdminConfig) {
    this.tokenDigest = config.token === undefined ? undefined : digest(config.token)
    this.hosts = [config.listen.host, ...config.hosts]
  }

  /** A read (any request) that names a Host this admin does not answer without the token. */
  hostRefusal (req: IncomingMessage, path: string): Refusal | undefined {
    // Decided by where the request arrived, not by the listen address: a wildcard listen
    // (0.0.0.0, [::]) takes loopback connections too, and those a rebinding page can make.
    if (PROBES.has(path) || !isLoopbackHost(unmapV4(req.socket.localAddress ?? '127.0.0.1'))) return undefined
    const withToken = this.tokenDigest !== undefined
    if ((withToken && this.bearerOk(req)) || hostAllowed(req.headers.host, this.hosts, withToken)) return undefined
    return {
      status: 403,
      body: {
        error: withToken
          ? 'Host not allowed: without the bearer token this API answers only IP addresses, loopback names, its listen address and admin.hosts'
          : 'Host not allowed: without admin.token this API answers only loopback names, its listen address and admin.hosts',
      },
    }
  }

  /** Why a mutating request may not proceed, or undefined when it may. */
  writeRefusal (req: IncomingMessage): Refusal | undefined {
    // Browsers send Origin on cross-site POSTs; without this a web page could drive a
    // token-less loopback admin API (CSRF). curl and scripts send no Origin.
    const origin = req.headers.origin
    if (origin !== undefined && origin !== 'null') {
      let host: string | undefined
      try { host = new URL(origin).host } catch { host = undefined }
      if (host === undefined || host !== req.headers.host) return { status: 403, body: { error: 'cross-origin request refused' } }
    } else if (origin === 'null') {
      return { status: 403, body: { error: 'cross-origin request refused' } }
    }
    if (this.tokenDigest === undefined || this.bearerOk(req)) return undefined
    return { status: 401, body: { error: 'missing or wrong bearer token' } }
  }

  /** The request carries the configured bearer token. */
  private bearerOk (req: IncomingMessage): boolean {
    const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')
    // Digests have equal lengths, so timingSafeEqual never throws and leaks no length.
    return m?.[1] !== undefined && this.tokenDigest !== undefined && crypto().timingSafeEqual(digest(m[1]), this.tokenDigest)
  }
}

function digest (token: string): Buffer {
  return sha256(token)
}
