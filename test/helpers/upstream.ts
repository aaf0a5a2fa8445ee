import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { reservePort } from './ports.js'

export interface UpstreamOptions {
  /** Answered in the body and the x-upstream header. */
  name: string
  /** Delay before answering, ms; may be changed while running through `setDelay`. */
  delayMs?: number
  /** Server keep-alive timeout, ms (Node's default is 5000). */
  keepAliveTimeout?: number
  /** Custom handler; the default answers `name`. */
  handler?: http.RequestListener
}

export interface TestUpstream {
  readonly name: string
  readonly port: number
  readonly address: string
  /** Requests answered so far. */
  readonly count: number
  /** TCP connections accepted so far. */
  readonly connections: number
  /** Headers of the last request seen. */
  readonly lastHeaders: http.IncomingHttpHeaders | undefined
  readonly lastUrl: string | undefined
  setDelay (ms: number): void
  close (): Promise<void>
}

/** A real HTTP upstream on 127.0.0.1:0 that counts what reaches it. */
export async function startUpstream (opts: UpstreamOptions): Promise<TestUpstream> {
  let delay = opts.delayMs ?? 0
  let count = 0
  let connections = 0
  let lastHeaders: http.IncomingHttpHeaders | undefined
  let lastUrl: string | undefined
  const sockets = new Set<Socket>()
  const answer: http.RequestListener = opts.handler ?? ((req, res) => {
    req.resume()
    req.on('end', () => {
      const reply = (): void => {
        const body = opts.name
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-upstream': opts.name })
        res.end(body)
      }
      if (delay > 0) setTimeout(reply, delay)
      else reply()
    })
  })
  const server = http.createServer((req, res) => {
    count++
    lastHeaders = req.headers
    lastUrl = req.url
    answer(req, res)
  })
  if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout
  server.on('connection', (s: Socket) => {
    connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    name: opts.name,
    port,
    address: `127.0.0.1:${port}`,
    get count () { return count },
    get connections () { return connections },
    get lastHeaders () { return lastHeaders },
    get lastUrl () { return lastUrl },
    setDelay (ms: number) { delay = ms },
    async close () {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A port that nothing listens on (bound then released). */
export async function closedPort (): Promise<number> {
  return await reservePort()
}
