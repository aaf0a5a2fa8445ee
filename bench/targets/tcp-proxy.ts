// tandem's TCP pass-through under test: two TcpListeners built directly (the same objects the
// runtime builds for `protocol: tcp`), `stream` in front of the upstream's source port and
// `conns` in front of its greet port. argv: SOURCE_PORT GREET_PORT [observed]. Prints
// {"stream":N,"conns":N} first. `observed` adds what `tandem run` subscribes by default: the access
// log (one JSON line per connection to stdout, which the benchmark drains through a pipe, as a
// container runtime would) and the metrics' event counters, as with an admin server.
import { systemClock } from '../../src/clock.js'
import type { TcpListenerConfig, UpstreamConfig } from '../../src/config/types.js'
import { TcpListener } from '../../src/listener/tcp-listener.js'
import { attachLogs, createLogger } from '../../src/observability/log.js'
import { createMetrics } from '../../src/observability/metrics.js'
import type { Runtime } from '../../src/runtime/runtime.js'
import { Upstream } from '../../src/upstream/upstream.js'

const [sourcePort, greetPort] = process.argv.slice(2, 4).map(Number)
const observed = process.argv[4] === 'observed'

function upstream (name: string, port: number): UpstreamConfig {
  const server = { text: `127.0.0.1:${port}`, host: '127.0.0.1', port, weight: 1, backup: false, maxConnections: 0 }
  return { name, balance: 'round-robin', servers: [server], connectTimeout: 2000, retries: 1, slowStart: 0 }
}

function listener (name: string, up: string): TcpListenerConfig {
  return {
    name,
    protocol: 'tcp',
    listen: { text: '127.0.0.1:0', host: '127.0.0.1', port: 0 },
    upstream: up,
    routes: [],
    proxyProtocol: 'off',
    idleTimeout: 60_000,
    maxConnections: 0,
    prereadTimeout: 5000,
  }
}

const deps = {
  upstreams: new Map([
    ['source', new Upstream(upstream('source', sourcePort as number), { clock: systemClock, random: Math.random })],
    ['greet', new Upstream(upstream('greet', greetPort as number), { clock: systemClock, random: Math.random })],
  ]),
  clock: systemClock,
  random: Math.random,
}
const stream = new TcpListener(listener('stream', 'source'), deps)
const conns = new TcpListener(listener('conns', 'greet'), deps)
if (observed) {
  const log = { level: 'info', access: true } as const
  attachLogs(createLogger(log), log)
  // Gauges read the runtime only at scrape time; the counters subscribe to the events now.
  createMetrics(() => ({ listeners: [stream, conns], upstreams: deps.upstreams, clock: systemClock }) as unknown as Runtime)
}
await stream.listen()
await conns.listen()
process.stdout.write(JSON.stringify({ stream: stream.address().port, conns: conns.address().port }) + '\n')
process.on('SIGTERM', () => { process.exit(0) })
