// The one JSON Schema (draft-07) for tandem.yaml. It is both the validator's input and what
// `tandem schema` prints for editors, so every property carries a description and a default, and
// every leaf that users get wrong carries an `errorMessage` (VS Code shows it; validate.ts uses it).
// Shared pieces are spread in rather than $ref'd because draft-07 editors drop siblings of $ref.
// Rules that need more than one value (cross-references, collisions) live in lint.ts.
import {
  HOST_NAME, HOST_PORT_PATTERN, NAME_PATTERN, TOKEN_PATTERN,
  bool, duration, hostPort, int, name, obj, oneOfWords, only, rate, routePath, size, str,
} from './schema-builders.js'

const admin = obj('Admin API and dashboard. Without it no admin server runs.', {
  listen: hostPort('Address of the admin API, e.g. 127.0.0.1:9090.'),
  token: str('Bearer token; when set, mutating endpoints demand it. Required for a non-loopback listen.'),
  hosts: {
    type: 'array',
    description: 'DNS names this admin answers without the token (Prometheus scraping tandem-a:9090, the dashboard by name), besides IP addresses, loopback names and the listen host.',
    items: { type: 'string', pattern: `^${HOST_NAME}$`, errorMessage: 'must be a DNS name (no port)' },
  },
}, ['listen'])

const log = obj('Logging.', {
  level: oneOfWords(['trace', 'debug', 'info', 'warn', 'error', 'silent'], 'Minimum level logged.', 'info'),
  access: bool('One JSON line per HTTP request and per closed TCP connection.', true),
})

const server = obj('One upstream server.', {
  address: hostPort('host:port; the host may be IPv4, [IPv6] or a DNS name.'),
  weight: int(1, 256, 'Relative share of traffic.', 1),
  backup: bool('Gets traffic only while no non-backup server is up.', false),
  maxConnections: int(0, 1_000_000, 'Concurrent connections to this server; 0 = unlimited.', 0),
}, ['address'])

const health = {
  ...obj('Active health checks; without them every server counts as up.', {
    type: oneOfWords(['tcp', 'http'], 'tcp: a connect succeeds; http: a GET answers as expected.', 'tcp'),
    // Sent as the request target as it is: a space or a control character could never be sent.
    path: { type: 'string', pattern: '^/[\\x21-\\x7e]*$', description: 'http only: path requested (visible ASCII; percent-encode the rest).', default: '/', errorMessage: 'must be a path starting with "/", in visible ASCII (percent-encode spaces and the rest)' },
    expectStatus: {
      type: ['integer', 'string'],
      pattern: '^[1-5][0-9]{2}(-[1-5][0-9]{2})?$',
      minimum: 100,
      maximum: 599,
      description: 'http only: a status (200) or an inclusive range (200-399) that counts as passing.',
      default: '200-399',
      errorMessage: 'must be a status like 200 or a range like 200-399',
    },
    expectBody: str('http only, optional: a substring the response body must contain.'),
    interval: duration('Time between checks of one server.', '2s'),
    timeout: duration('A check taking longer fails; must be shorter than interval.', '1s'),
    rise: int(1, 100, 'Consecutive passes to come back up.', 2),
    fall: int(1, 100, 'Consecutive failures to go down.', 3),
  }),
  if: { properties: { type: { const: 'http' } }, required: ['type'] },
  else: {
    properties: {
      path: only('with type: http'),
      expectStatus: only('with type: http'),
      expectBody: only('with type: http'),
    },
  },
}

const upstream = obj('A pool of servers.', {
  balance: oneOfWords(['round-robin', 'least-connections', 'response-time'], 'Load-balancing strategy.', 'round-robin'),
  servers: { type: 'array', minItems: 1, items: server, description: 'The servers of this pool.' },
  connectTimeout: duration('Connect attempts taking longer fail.', '5s'),
  retries: int(0, 16, 'HTTP: other servers tried after a connect failure (and, for idempotent methods, a reset before any response byte).', 1),
  health,
  passive: obj('Outlier ejection from real traffic.', {
    failures: int(1, 1000, 'Consecutive failures (connect error, reset, timeout, 5xx) that eject a server.', 5),
    ejectFor: duration('How long an ejected server stays out before it is tried again.', '30s'),
  }),
  slowStart: duration('A server coming back up ramps its share over this time; 0 = at once.', '0s'),
}, ['servers'])

const httpRoute = obj('An HTTP route; the first route that matches wins.', {
  name: name('Route name (metrics label); default route-N, 1-based.'),
  match: obj('What a request must match; every given condition must hold. Empty matches all.', {
    host: {
      type: 'string',
      pattern: `^(\\*\\.)?${HOST_NAME}$`,
      description: 'Host header: exact, or a leading wildcard "*.example.com".',
      errorMessage: 'must be a host name, or a leading wildcard like "*.example.com"',
    },
    path: routePath('Exact path (the query is not part of it).'),
    pathPrefix: routePath('Path prefix.'),
    methods: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^[A-Za-z]+$', errorMessage: 'must be an HTTP method like GET' },
      description: 'Allowed methods, e.g. [GET, POST].',
    },
    headers: {
      type: 'object',
      propertyNames: { type: 'string', pattern: TOKEN_PATTERN, errorMessage: 'must be a header name' },
      additionalProperties: { type: ['string', 'number', 'boolean'], errorMessage: 'must be a header value' },
      description: 'Headers that must be present with exactly these values.',
    },
  }),
  upstream: name('Upstream that serves this route.'),
  rateLimit: name('Name of a rateLimits entry applied to this route.'),
  stripPrefix: bool('Remove match.pathPrefix before forwarding: /v1/users reaches the upstream as /users.', false),
  upgrades: {
    type: 'array',
    items: { type: 'string', pattern: TOKEN_PATTERN, errorMessage: 'must be a protocol name like websocket' },
    default: ['websocket'],
    description: 'Extension: Upgrade protocols this route turns into tunnels. A tunnel is past every route condition, so other protocols (h2c …) are plain requests unless listed; [] refuses WebSocket too.',
  },
}, ['upstream'])

const tcpRoute = obj('A TLS SNI route; the first route that matches wins. TLS is not terminated.', {
  name: name('Route name (metrics label); default route-N, 1-based.'),
  match: obj('What the TLS ClientHello must carry.', {
    sni: {
      type: 'string',
      pattern: `^(\\*\\.)?${HOST_NAME}$`,
      description: 'Server name: exact, or a leading wildcard "*.example.com".',
      errorMessage: 'must be a host name, or a leading wildcard like "*.example.com"',
    },
  }, ['sni']),
  upstream: name('Upstream that serves this route.'),
}, ['match', 'upstream'])

const listener = {
  ...obj('A listening socket.', {
    name: name('Listener name (metrics label); default listener-N, 1-based.'),
    protocol: oneOfWords(['http', 'tcp'], 'http: an HTTP/1.1 reverse proxy; tcp: byte pass-through.'),
    listen: hostPort('Address to listen on, e.g. 0.0.0.0:8080 or [::]:8080.'),
    rateLimit: name('http: rateLimits entry for the whole listener; tcp: limits new connections.'),
    routes: { type: 'array', description: 'http: ordered routes, first match wins. tcp: optional SNI routes.' },
    trustedProxies: {
      type: 'array',
      items: { type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$', errorMessage: 'must be an IP address or a CIDR like 10.0.0.0/8' },
      description: 'http: CIDRs whose X-Forwarded-For is believed when finding the client IP.',
      default: [],
    },
    timeouts: obj('http: timeouts.', {
      header: duration('Time allowed to receive the request headers.', '10s'),
      idle: duration('Keep-alive idle time of client connections.', '60s'),
      response: duration('Time allowed for the upstream to start answering.', '60s'),
    }),
    maxHeaderSize: size('http: largest request header block accepted.', '16kb'),
    upstream: name('tcp: upstream for all streams, or the fallback when no SNI route matches.'),
    proxyProtocol: oneOfWords(['off', 'v1', 'v2'], 'tcp: send a PROXY protocol header to the upstream.', 'off'),
    idleTimeout: duration('tcp: a stream idle this long both ways is closed.', '5m'),
    maxConnections: int(0, 1_000_000, 'tcp: concurrent client connections; 0 = unlimited.', 0),
    prereadTimeout: duration('tcp with routes: how long to wait for the TLS ClientHello (nginx preread_timeout).', '5s'),
  }, ['protocol', 'listen']),
  allOf: [
    {
      if: { properties: { protocol: { const: 'http' } }, required: ['protocol'] },
      then: {
        required: ['routes'],
        properties: {
          routes: { type: 'array', minItems: 1, items: httpRoute },
          upstream: only('on tcp listeners (http listeners route with routes[].upstream)'),
          proxyProtocol: only('on tcp listeners'),
          idleTimeout: only('on tcp listeners (http listeners use timeouts.idle)'),
          maxConnections: only('on tcp listeners'),
          prereadTimeout: only('on tcp listeners'),
        },
      },
    },
    {
      if: { properties: { protocol: { const: 'tcp' } }, required: ['protocol'] },
      then: {
        properties: {
          routes: { type: 'array', items: tcpRoute },
          trustedProxies: only('on http listeners'),
          timeouts: only('on http listeners'),
          maxHeaderSize: only('on http listeners'),
        },
      },
    },
  ],
}

const rateLimit = obj('A token bucket.', {
  key: {
    type: 'string',
    pattern: `^(client-ip|route|global|header:${TOKEN_PATTERN.slice(1, -1)})$`,
    description: 'What gets its own bucket: client-ip | header:NAME | route | global.',
    errorMessage: 'must be one of: client-ip, header:NAME, route, global',
  },
  rate: rate('Sustained rate, e.g. 100/s or 6000/m.'),
  burst: int(1, 1_000_000_000, 'How many may pass at once from a full bucket; default: one second of rate.'),
  headers: oneOfWords(['draft-6', 'draft-11', 'none'],
    'Response headers: draft-6: RateLimit-Limit/-Remaining/-Reset; draft-11: RateLimit-Policy and RateLimit (IETF draft 11); none.', 'draft-6'),
  maxKeys: int(1, 10_000_000, 'Keys kept per limit; the least recently used goes first (it then starts again from a full bucket).', 100000),
}, ['key', 'rate'])

const redis = obj('Share rate-limit buckets through Redis.', {
  url: { type: 'string', pattern: '^rediss?://', description: 'redis:// or rediss:// URL.', errorMessage: 'must be a redis:// or rediss:// URL' },
  prefix: { type: 'string', description: 'Prefix of every key tandem writes.', default: 'tandem:' },
  timeout: duration('A Redis call taking longer counts as an error.', '50ms'),
  onError: oneOfWords(['local', 'allow', 'deny'], 'On Redis errors: local buckets, allow, or deny.', 'local'),
}, ['url'])

const peer = obj('Active/standby pair. Without it the node is standalone and always active.', {
  id: name('This node\'s id; on a priority tie the lower id wins.'),
  listen: hostPort('Where this node takes the other node\'s heartbeats and state.'),
  peers: { type: 'array', minItems: 1, items: hostPort('The other node\'s peer listen address on one network.'), description: 'The other node\'s addresses: several = several links; heartbeats go over each, any one arriving counts.' },
  secret: str('Shared secret, at least 16 bytes; every message is HMAC-SHA256 signed.'),
  priority: int(1, 254, 'The higher one becomes active.', 100),
  preempt: bool('true: a recovered higher-priority node takes the active role back.', false),
  heartbeat: duration('Heartbeat interval.', '200ms'),
  deadAfter: int(1, 100, 'Missed heartbeats before the other node is declared dead.', 3),
  witness: {
    type: 'string',
    pattern: `${HOST_PORT_PATTERN.slice(0, -1)}|^rediss?://.+$`,
    description: 'Optional: host:port of a reference node (a node that hears no peer serves only while it reaches it) or a redis:// URL of an arbiter (the active holds a lease).',
    errorMessage: 'must be host:port (a TCP reference node) or a redis:// URL (an arbiter)',
  },
  standby: oneOfWords(['closed', 'open'], 'closed: listeners are not bound while standby.', 'closed'),
  onChange: str('Command run on every role change (and once at start) with: NEW_ROLE OLD_ROLE NODE_ID.'),
  onChangeTimeout: duration('An onChange call still running after this is killed (and logged).', '30s'),
}, ['id', 'listen', 'peers', 'secret'])

/** JSON Schema (draft-07) of tandem.yaml; what `tandem schema` prints. */
export const configSchema: Readonly<Record<string, unknown>> = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'tandem configuration',
  ...obj('tandem load balancer configuration.', {
    admin,
    log,
    shutdownDelay: duration('After SIGTERM/SIGINT, keep accepting this long while /readyz is 503, so an outer load balancer sees the node leave first.', '0s'),
    shutdownTimeout: duration('After shutdownDelay, how long work still in flight (requests, WebSocket tunnels, TCP streams) may finish before it is closed.', '30s'),
    upstreams: {
      type: 'object',
      minProperties: 1,
      description: 'Server pools by name.',
      propertyNames: { type: 'string', pattern: NAME_PATTERN, errorMessage: 'must be a name of letters, digits, ".", "_" or "-", starting with a letter or digit' },
      additionalProperties: upstream,
    },
    listeners: { type: 'array', minItems: 1, items: listener, description: 'Listening sockets.' },
    rateLimits: {
      type: 'object',
      description: 'Token buckets by name, referenced by listeners and routes.',
      propertyNames: { type: 'string', pattern: NAME_PATTERN, errorMessage: 'must be a name of letters, digits, ".", "_" or "-", starting with a letter or digit' },
      additionalProperties: rateLimit,
    },
    rateLimitStore: obj('Where rate-limit buckets live; default: in memory on this node (peer-synced in a pair).', { redis }),
    peer,
  }, ['upstreams', 'listeners']),
}
