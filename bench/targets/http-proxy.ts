// Baseline: http-proxy with a keep-alive agent, rotating over the upstream ports given as
// arguments and adding X-Forwarded-* (xfwd), the way it is usually deployed. Prints {"port":N}.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import httpProxy from 'http-proxy'

const targets = process.argv.slice(2).map((port) => `http://127.0.0.1:${port}`)
if (targets.length === 0) throw new Error('usage: http-proxy.js UPSTREAM_PORT...')

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
const proxy = httpProxy.createProxyServer({ agent, xfwd: true })
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502)
  res.end()
})

let next = 0
const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const target = targets[next++ % targets.length] as string
  proxy.web(req, res, { target })
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
})
process.on('SIGTERM', () => { process.exit(0) })
