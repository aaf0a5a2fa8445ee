/**
 * Child-process entry for tests that measure the proxy alone (memory): starts a TcpListener from
 * the JSON spec in argv[2] ({ listener, upstreams }), sends { port } over IPC, then an
 * { rss } sample every 50 ms. Run with vite-node (see startTcpProxyProcess in tcp.ts).
 */
import { startTcpProxy } from './tcp.js'

const spec = JSON.parse(process.argv[2] ?? '{}') as { listener: object, upstreams: [] }
const proxy = await startTcpProxy(spec.listener, spec.upstreams)
const send = (m: object): void => { if (process.connected) process.send?.(m) }
send({ port: proxy.port })
setInterval(() => send({ rss: process.memoryUsage().rss }), 50)
process.on('disconnect', () => process.exit(0))
