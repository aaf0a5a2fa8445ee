// The benchmark's upstream: a bare node:http server answering every request with a small body,
// on `argv[2]` ports (default 2) so the proxies have a pool to balance. Prints one JSON line,
// {"ports":[...]}, once every port listens. Keep-alive is long so no target pays for reconnects.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

const BODY = Buffer.from('hello, world\n')
const count = Number(process.argv[2] ?? 2)

function handle (req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume()
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' })
    res.end('ok\n')
    return
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BODY.length) })
  res.end(BODY)
}

const ports: number[] = []
for (let i = 0; i < count; i++) {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, handle)
  server.headersTimeout = 66_000
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  ports.push((server.address() as AddressInfo).port)
}
process.stdout.write(JSON.stringify({ ports }) + '\n')
process.on('SIGTERM', () => { process.exit(0) })
