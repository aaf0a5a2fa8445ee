// Schema-valid raw value → Config (pure): defaults filled, names generated, each section built
// from its values (normalise-values.ts parses and bounds those). Checks that need a parsed value
// or two keys together (status range, path and pathPrefix, peer timing) are reported here, at the
// value they concern.
import type {
  AdminConfig, Config, HealthConfig, HttpListenerConfig, HttpRouteConfig, ListenerConfig,
  PeerConfig, RateLimitConfig, RateLimitKey, RedisStoreConfig, RouteMatch, TcpListenerConfig, WitnessConfig,
  TcpRouteConfig, UpstreamConfig,
} from './types.js'
import { normalizePath } from '../router/path.js'
import { parseRate } from './units.js'
import type { Problems } from './positions.js'
import { pointer } from './positions.js'
import { HEADER_SIZE, RAMP, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT, TCP_IDLE, ValueNormaliser } from './normalise-values.js'

// Values here already passed the schema, so their shapes are known; `any` keeps the walk short.
type Raw = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

class Normaliser extends ValueNormaliser {
  upstream (name: string, u: Raw): UpstreamConfig {
    const base = pointer('upstreams', name)
    const servers = (u.servers as Raw[]).map((s, i) => ({
      ...this.hostPort(s.address as string, base + pointer('servers', i, 'address'), false),
      weight: (s.weight as number | undefined) ?? 1,
      backup: (s.backup as boolean | undefined) ?? false,
      maxConnections: (s.maxConnections as number | undefined) ?? 0,
    }))
    return {
      name,
      balance: u.balance ?? 'round-robin',
      servers,
      connectTimeout: this.duration(u.connectTimeout, 5000, base + pointer('connectTimeout')),
      retries: u.retries ?? 1,
      ...(u.health === undefined ? {} : { health: this.health(u.health as Raw, base + pointer('health')) }),
      ...(u.passive === undefined
        ? {}
        : {
            passive: {
              failures: u.passive.failures ?? 5,
              ejectFor: this.duration(u.passive.ejectFor, 30_000, base + pointer('passive', 'ejectFor')),
            },
          }),
      slowStart: this.duration(u.slowStart, 0, base + pointer('slowStart'), RAMP),
    }
  }

  health (h: Raw, base: string): HealthConfig {
    let expectStatus: [number, number] = [200, 399]
    if (typeof h.expectStatus === 'number') expectStatus = [h.expectStatus, h.expectStatus]
    if (typeof h.expectStatus === 'string') {
      const [lo, hi = lo] = h.expectStatus.split('-').map(Number) as [number, number?]
      if (hi < lo) this.problems.add(base + pointer('expectStatus'), `range ${h.expectStatus} is empty (${lo} > ${hi})`)
      expectStatus = [lo, hi]
    }
    const interval = this.duration(h.interval, 2000, base + pointer('interval'))
    return {
      type: h.type ?? 'tcp',
      path: h.path ?? '/',
      expectStatus,
      ...(h.expectBody === undefined ? {} : { expectBody: String(h.expectBody) }),
      interval,
      // 1s, or the interval when shorter: a fast `interval` alone is a valid config.
      timeout: this.duration(h.timeout, Math.min(1000, interval), base + pointer('timeout')),
      rise: h.rise ?? 2,
      fall: h.fall ?? 3,
    }
  }

  listener (l: Raw, i: number): ListenerConfig {
    const base = pointer('listeners', i)
    const common = {
      name: (l.name as string | undefined) ?? `listener-${i + 1}`,
      listen: this.hostPort(l.listen as string, base + pointer('listen'), true),
      ...(l.rateLimit === undefined ? {} : { rateLimit: l.rateLimit as string }),
    }
    const routes = (l.routes ?? []) as Raw[]
    if (l.protocol === 'http') {
      const t = (l.timeouts ?? {}) as Raw
      const http: HttpListenerConfig = {
        ...common,
        protocol: 'http',
        trustedProxies: ((l.trustedProxies ?? []) as string[]).map((c, j) => this.cidr(c, base + pointer('trustedProxies', j))),
        timeouts: {
          header: this.duration(t.header, 10_000, base + pointer('timeouts', 'header')),
          idle: this.duration(t.idle, 60_000, base + pointer('timeouts', 'idle')),
          response: this.duration(t.response, 60_000, base + pointer('timeouts', 'response')),
        },
        maxHeaderSize: this.size(l.maxHeaderSize, 16 * 1024, base + pointer('maxHeaderSize'), HEADER_SIZE),
        routes: routes.map((r, j) => this.httpRoute(r, j, base + pointer('routes', j))),
      }
      return http
    }
    const tcp: TcpListenerConfig = {
      ...common,
      protocol: 'tcp',
      ...(l.upstream === undefined ? {} : { upstream: l.upstream as string }),
      routes: routes.map((r, j): TcpRouteConfig => ({
        name: (r.name as string | undefined) ?? `route-${j + 1}`,
        match: { sni: (r.match.sni as string).toLowerCase() },
        upstream: r.upstream as string,
      })),
      proxyProtocol: l.proxyProtocol ?? 'off',
      idleTimeout: this.duration(l.idleTimeout, 300_000, base + pointer('idleTimeout'), TCP_IDLE),
      maxConnections: l.maxConnections ?? 0,
      prereadTimeout: this.duration(l.prereadTimeout, 5000, base + pointer('prereadTimeout')),
    }
    return tcp
  }

  httpRoute (r: Raw, j: number, base: string): HttpRouteConfig {
    const m = (r.match ?? {}) as Raw
    const match: { -readonly [K in keyof RouteMatch]: RouteMatch[K] } = {}
    if (m.host !== undefined) match.host = (m.host as string).toLowerCase()
    // Spelled as routing sees request paths (unreserved escapes decoded): `/%61pi/` is `/api/`.
    if (m.path !== undefined) match.path = normalizePath(m.path as string)
    if (m.pathPrefix !== undefined) match.pathPrefix = normalizePath(m.pathPrefix as string)
    if (m.methods !== undefined) match.methods = [...new Set((m.methods as string[]).map((x) => x.toUpperCase()))]
    if (m.headers !== undefined) {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(m.headers as Raw)) {
        const lk = k.toLowerCase()
        if (Object.hasOwn(headers, lk)) this.problems.add(base + pointer('match', 'headers', k), `header ${lk} is given twice`, 'key')
        headers[lk] = String(v)
      }
      match.headers = headers
    }
    if (match.path !== undefined && match.pathPrefix !== undefined) {
      this.problems.add(base + pointer('match', 'pathPrefix'), 'use either path or pathPrefix, not both', 'key')
    }
    if (r.stripPrefix === true && match.pathPrefix === undefined) {
      this.problems.add(base + pointer('stripPrefix'), 'needs match.pathPrefix (the prefix it strips)')
    }
    return {
      name: (r.name as string | undefined) ?? `route-${j + 1}`,
      match,
      upstream: r.upstream as string,
      ...(r.rateLimit === undefined ? {} : { rateLimit: r.rateLimit as string }),
      stripPrefix: r.stripPrefix ?? false,
      ...(r.upgrades !== undefined && { upgrades: [...new Set((r.upgrades as string[]).map((p) => p.toLowerCase()))] }),
    }
  }


  rateLimit (name: string, r: Raw): RateLimitConfig {
    const ptr = pointer('rateLimits', name)
    const keyText = r.key as string
    const key: RateLimitKey = keyText.startsWith('header:')
      ? { kind: 'header', header: keyText.slice('header:'.length).toLowerCase() }
      : { kind: keyText as 'client-ip' | 'route' | 'global' }
    const rate = this.attempt(() => parseRate(r.rate as string), ptr + pointer('rate'), 1)
    return {
      name,
      key,
      rate,
      burst: (r.burst as number | undefined) ?? Math.max(1, Math.ceil(rate)),
      headers: (r.headers as RateLimitConfig['headers'] | undefined) ?? 'draft-6',
      maxKeys: (r.maxKeys as number | undefined) ?? 100_000,
    }
  }

  witness (text: string): WitnessConfig {
    if (/^rediss?:\/\//.test(text)) return { kind: 'redis', url: text }
    return { kind: 'tcp', address: this.hostPort(text, pointer('peer', 'witness'), false) }
  }

  peer (p: Raw): PeerConfig {
    const secret = p.secret as string
    if (Buffer.byteLength(secret) < 16) {
      this.problems.add(pointer('peer', 'secret'), `must be at least 16 bytes (it is ${Buffer.byteLength(secret)})`)
    }
    // The lease lives deadAfter heartbeats and is renewed every heartbeat; the active gives the
    // role up while one heartbeat of it is left, so one lease of a single heartbeat never serves.
    if (p.deadAfter === 1 && /^rediss?:\/\//.test(String(p.witness))) {
      this.problems.add(pointer('peer', 'deadAfter'), 'must be at least 2 with a Redis witness (the lease must outlast a missed renewal)')
    }
    // An active that lost the witness may serve on 1.5 heartbeats after its last good probe (one
    // lost probe never flips the role); it must still stop a heartbeat before the standby starts.
    if (p.witness !== undefined && !/^rediss?:\/\//.test(String(p.witness)) && typeof p.deadAfter === 'number' && p.deadAfter < 3) {
      this.problems.add(pointer('peer', 'deadAfter'), 'must be at least 3 with a TCP witness (an isolated active must stop a heartbeat before the standby starts)')
    }
    const heartbeat = this.duration(p.heartbeat, 200, pointer('peer', 'heartbeat'))
    // Below this the event loop's own pauses (a GC, a large snapshot) pass for freezes.
    if (heartbeat < 50) this.problems.add(pointer('peer', 'heartbeat'), 'must be at least 50ms')
    return {
      id: p.id,
      listen: this.hostPort(p.listen as string, pointer('peer', 'listen'), true),
      peers: (p.peers as string[]).map((a, i) => this.hostPort(a, pointer('peer', 'peers', i), false)),
      secret,
      priority: p.priority ?? 100,
      preempt: p.preempt ?? false,
      heartbeat,
      deadAfter: p.deadAfter ?? 3,
      ...(p.witness === undefined ? {} : { witness: this.witness(p.witness as string) }),
      standby: p.standby ?? 'closed',
      ...(p.onChange === undefined ? {} : { onChange: p.onChange as string }),
      onChangeTimeout: this.duration(p.onChangeTimeout, 30_000, pointer('peer', 'onChangeTimeout')),
    }
  }
}

/** Where a config came from: its file, and its hash (computed when first read, see load.ts). */
export interface ConfigMeta { file: string, hash: () => string }

/** Raw must have passed the schema. Problems found are added; the result is returned regardless. */
export function normalise (raw: Raw, problems: Problems, meta: ConfigMeta): Config {
  const n = new Normaliser(problems)
  let admin: AdminConfig | undefined
  if (raw.admin !== undefined) {
    const token = raw.admin.token as string | undefined
    // An empty token (a variable set to "", ${T:-}) must never mean "authentication off": a
    // deployment that lost its secret would silently open the API. No token = leave the key out.
    if (token !== undefined && token.trim() === '') problems.add(pointer('admin', 'token'), 'is empty; set a token, or remove the key for a loopback admin without one')
    // RFC 6750 b64token: what `Authorization: Bearer …` can carry. A space (a stray one from a
    // variable, say) would make a token no request can ever match.
    else if (token !== undefined && !/^[A-Za-z0-9._~+/-]+=*$/.test(token)) problems.add(pointer('admin', 'token'), 'may hold only letters, digits and - . _ ~ + / (then = padding), as a bearer token; no spaces')
    admin = {
      listen: n.hostPort(raw.admin.listen as string, pointer('admin', 'listen'), true),
      ...(token === undefined ? {} : { token }),
      hosts: ((raw.admin.hosts as string[] | undefined) ?? []).map((h) => h.toLowerCase().replace(/\.$/, '')),
    }
  }
  const shutdownDelay = n.duration(raw.shutdownDelay, 0, pointer('shutdownDelay'), SHUTDOWN_DELAY)
  const shutdownTimeout = n.duration(raw.shutdownTimeout, 30_000, pointer('shutdownTimeout'), SHUTDOWN_TIMEOUT)
  let redis: RedisStoreConfig | undefined
  const r = raw.rateLimitStore?.redis as Raw | undefined
  if (r !== undefined) {
    redis = {
      url: r.url,
      prefix: r.prefix ?? 'tandem:',
      timeout: n.duration(r.timeout, 50, pointer('rateLimitStore', 'redis', 'timeout')),
      onError: r.onError ?? 'local',
    }
  }
  const hash = meta.hash
  return {
    file: meta.file,
    get hash (): string { return hash() },
    ...(admin === undefined ? {} : { admin }),
    log: { level: raw.log?.level ?? 'info', access: raw.log?.access ?? true },
    shutdownDelay,
    shutdownTimeout,
    upstreams: Object.fromEntries(Object.entries(raw.upstreams as Raw).map(([k, u]) => [k, n.upstream(k, u as Raw)])),
    listeners: (raw.listeners as Raw[]).map((l, i) => n.listener(l, i)),
    rateLimits: Object.fromEntries(Object.entries((raw.rateLimits ?? {}) as Raw).map(([k, v]) => [k, n.rateLimit(k, v as Raw)])),
    ...(raw.rateLimitStore === undefined ? {} : { rateLimitStore: redis === undefined ? {} : { redis } }),
    ...(raw.peer === undefined ? {} : { peer: n.peer(raw.peer as Raw) }),
  }
}
