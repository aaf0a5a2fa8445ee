/**
 * The validated, normalised configuration the runtime consumes. Durations are milliseconds,
 * sizes bytes, rates tokens per second. Everything is deep-frozen by the loader.
 */
export type BalanceName = 'round-robin' | 'least-connections' | 'response-time'
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** host:port as written, split. IPv6 hosts are stored without brackets. */
export interface HostPort {
  readonly text: string
  readonly host: string
  readonly port: number
}

export interface AdminConfig {
  readonly listen: HostPort
  readonly token?: string
  /** Host names (lower case) answered without the token besides IPs, loopback and the listen host. */
  readonly hosts: readonly string[]
}

export interface LogConfig {
  readonly level: LogLevel
  readonly access: boolean
}

export interface ServerConfig extends HostPort {
  readonly weight: number
  readonly backup: boolean
  readonly maxConnections: number
}

export interface HealthConfig {
  readonly type: 'tcp' | 'http'
  readonly path: string
  readonly expectStatus: readonly [number, number]
  readonly expectBody?: string
  readonly interval: number
  readonly timeout: number
  readonly rise: number
  readonly fall: number
}

export interface PassiveConfig {
  readonly failures: number
  readonly ejectFor: number
}

export interface UpstreamConfig {
  readonly name: string
  readonly balance: BalanceName
  readonly servers: readonly ServerConfig[]
  readonly connectTimeout: number
  readonly retries: number
  readonly health?: HealthConfig
  readonly passive?: PassiveConfig
  readonly slowStart: number
}

export interface RouteMatch {
  readonly host?: string
  readonly path?: string
  readonly pathPrefix?: string
  readonly methods?: readonly string[]
  /** Header names lower-cased. */
  readonly headers?: Readonly<Record<string, string>>
}

export interface HttpRouteConfig {
  /** Given or generated as `route-N` (1-based). */
  readonly name: string
  readonly match: RouteMatch
  readonly upstream: string
  readonly rateLimit?: string
  readonly stripPrefix: boolean
  /** Upgrade protocols (lower-case) this route tunnels; absent: WebSocket only. */
  readonly upgrades?: readonly string[]
}

export interface HttpTimeouts {
  readonly header: number
  readonly idle: number
  readonly response: number
}

export interface HttpListenerConfig {
  readonly name: string
  readonly protocol: 'http'
  readonly listen: HostPort
  readonly trustedProxies: readonly string[]
  readonly timeouts: HttpTimeouts
  readonly maxHeaderSize: number
  readonly rateLimit?: string
  readonly routes: readonly HttpRouteConfig[]
}

export interface TcpRouteConfig {
  readonly name: string
  readonly match: { readonly sni: string }
  readonly upstream: string
}

export interface TcpListenerConfig {
  readonly name: string
  readonly protocol: 'tcp'
  readonly listen: HostPort
  /** Fallback when no SNI route matches or the stream is not TLS; required without routes. */
  readonly upstream?: string
  readonly routes: readonly TcpRouteConfig[]
  readonly proxyProtocol: 'off' | 'v1' | 'v2'
  readonly idleTimeout: number
  /** 0 = unlimited. */
  readonly maxConnections: number
  readonly rateLimit?: string
  /** Extension: how long to wait for a TLS ClientHello when routes are set (nginx preread_timeout). */
  readonly prereadTimeout: number
}

export type ListenerConfig = HttpListenerConfig | TcpListenerConfig

export type RateLimitKey =
  | { readonly kind: 'client-ip' }
  | { readonly kind: 'header', readonly header: string }
  | { readonly kind: 'route' }
  | { readonly kind: 'global' }

export interface RateLimitConfig {
  readonly name: string
  readonly key: RateLimitKey
  /** Tokens per second. */
  readonly rate: number
  readonly burst: number
  readonly headers: 'draft-6' | 'draft-11' | 'none'
  readonly maxKeys: number
}

export interface RedisStoreConfig {
  readonly url: string
  readonly prefix: string
  readonly timeout: number
  readonly onError: 'local' | 'allow' | 'deny'
}

export interface PeerConfig {
  readonly id: string
  readonly listen: HostPort
  readonly peers: readonly HostPort[]
  readonly secret: string
  readonly priority: number
  readonly preempt: boolean
  readonly heartbeat: number
  readonly deadAfter: number
  readonly witness?: WitnessConfig
  readonly standby: 'closed' | 'open'
  readonly onChange?: string
  readonly onChangeTimeout: number
}

/** A TCP reference node, or a Redis arbiter holding the active node's lease. */
export type WitnessConfig =
  | { readonly kind: 'tcp', readonly address: HostPort }
  | { readonly kind: 'redis', readonly url: string }

export interface Config {
  /** Absolute path of the file read, or a label for inline configs. */
  readonly file: string
  /** sha256 of the file's bytes, hex. */
  readonly hash: string
  /** Valid but probably not meant (a route an earlier one shadows): `FILE:LINE:COL: path: warning: …`. */
  readonly warnings?: readonly string[]
  readonly admin?: AdminConfig
  readonly log: LogConfig
  /** Milliseconds to keep accepting after SIGTERM/SIGINT while /readyz is 503. */
  readonly shutdownDelay: number
  readonly shutdownTimeout: number
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>
  readonly listeners: readonly ListenerConfig[]
  readonly rateLimits: Readonly<Record<string, RateLimitConfig>>
  readonly rateLimitStore?: { readonly redis?: RedisStoreConfig }
  readonly peer?: PeerConfig
}
