// Baseline: the floor of "node:http server + undici client", with nothing of tandem's around it:
// one undici Pool per upstream port, rotated, X-Forwarded-For appended, bodies streamed.
// Prints {"port":N}. What tandem costs above this is tandem's own work.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

const pools = process.argv.slice(2).map((port) => new Pool(`http://127.0.0.1:${port}`, { connections: 256, keepAliveTimeout: 60_000 }))
if (pools.length === 0) throw new Error('usage: undici-proxy.js UPSTREAM_PORT...')

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])
let next = 0
const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const pool = pools[next++ % pools.length] as Pool
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v
  const xff = req.headers['x-forwarded-for']
  headers['x-forwarded-for'] = (xff === undefined ? '' : `${String(xff)}, `) + (req.socket.remoteAddress ?? '')
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.request({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: hasBody ? req : null })
    .then(({ statusCode, headers: h, body }) => {
      const out: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v
      res.writeHead(statusCode, out)
      body.pipe(res)
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    })
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
})
process.on('SIGTERM', () => { process.exit(0) })
