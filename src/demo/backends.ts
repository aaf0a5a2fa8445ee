import { http } from '../node-builtins.js'

export interface DemoBackend {
  readonly name: string
  readonly url: string
  close (): Promise<void>
}

/**
 * A small named backend for `tandem demo`: answers every path with its name, `/healthz` with
 * `ok`, and waits `delayMs` first so the balancers have something to tell apart.
 */
export async function startDemoBackend (name: string, host: string, port: number, delayMs = 0): Promise<DemoBackend> {
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('ok\n')
      return
    }
    const answer = (): void => {
      const body = JSON.stringify({ backend: name, method: req.method, path: req.url, host: req.headers.host }) + '\n'
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name })
      res.end(body)
    }
    req.resume()
    if (delayMs > 0) setTimeout(answer, delayMs)
    else answer()
  })
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : port
  return {
    name,
    url: `http://${host}:${bound}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    },
  }
}
