import net, { type AddressInfo } from 'node:net'

/** One request as the upstream received it, byte for byte. */
export interface ReceivedRequest {
  /** Request line and headers, up to and including the blank line. */
  readonly head: string
  readonly body: Buffer
  /** Connection number (1-based, in accept order) it arrived on, and its index there. */
  readonly connection: number
  readonly indexOnConnection: number
}

/**
 * What the upstream does with a request: a string or bytes to write (the whole response),
 * 'destroy' to reset the connection unanswered, 'hang' to never answer, `{ switchTo }` to answer
 * 101 and then echo every later byte prefixed with `tunnel:` (still recorded in `bytes`), or a
 * function that takes the socket itself.
 */
export type RawReply = string | Buffer | 'destroy' | 'hang' | { switchTo: string } | ((socket: net.Socket) => void)

export interface RawUpstream {
  readonly port: number
  readonly address: string
  /** Every byte received, on every connection, in arrival order. */
  readonly bytes: Buffer
  readonly requests: readonly ReceivedRequest[]
  readonly connections: number
  /** Most connections open at once. */
  readonly peakConnections: number
  /** Connections open now. */
  readonly open: number
  close (): Promise<void>
}

export function ok (body: string, extra = ''): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
}

/**
 * An HTTP/1.1 upstream on a raw socket: records the exact bytes it receives, splits them into
 * requests (Content-Length or chunked bodies), and answers each with `reply(request)`.
 */
export async function startRawUpstream (reply: (r: ReceivedRequest) => RawReply = () => ok('ok')): Promise<RawUpstream> {
  const chunks: Buffer[] = []
  const requests: ReceivedRequest[] = []
  const sockets = new Set<net.Socket>()
  let connections = 0
  let peak = 0
  const server = net.createServer((socket) => {
    const id = ++connections
    sockets.add(socket)
    peak = Math.max(peak, sockets.size)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let index = 0
    let tunnel = false
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      if (tunnel) {
        socket.write('tunnel:' + c.toString('latin1'))
        return
      }
      buf = Buffer.concat([buf, c])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buf.subarray(0, end + 4).toString('latin1')
        let bodyEnd: number
        const len = /\r\ncontent-length: *(\d+)/i.exec(head)
        if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', end + 2)
          if (last === -1) return
          bodyEnd = last + 7
        } else {
          bodyEnd = end + 4 + (len === null ? 0 : Number(len[1]))
          if (buf.length < bodyEnd) return
        }
        const r: ReceivedRequest = { head, body: Buffer.from(buf.subarray(end + 4, bodyEnd)), connection: id, indexOnConnection: index++ }
        buf = buf.subarray(bodyEnd)
        requests.push(r)
        const what = reply(r)
        if (what === 'destroy') { socket.destroy(); return }
        if (what === 'hang') continue
        if (typeof what === 'object' && 'switchTo' in what) {
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${what.switchTo}\r\nConnection: Upgrade\r\n\r\n`)
          tunnel = true
          if (buf.length > 0) socket.write('tunnel:' + buf.toString('latin1'))
          return
        }
        if (typeof what === 'function') what(socket)
        else socket.write(what)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    address: `127.0.0.1:${port}`,
    get bytes () { return Buffer.concat(chunks) },
    requests,
    get connections () { return connections },
    get peakConnections () { return peak },
    get open () { return sockets.size },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * Writes `data` on a new connection and collects what comes back until the proxy closes the
 * connection, `until` matches, or `timeoutMs` passes (then `timedOut` is set).
 */
export async function rawExchange (port: number, data: string | Buffer, opts: { until?: (text: string) => boolean, timeoutMs?: number } = {}): Promise<{ text: string, closed: boolean, timedOut: boolean, ms: number }> {
  const started = Date.now()
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    let done = false
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resolve({ text, closed, timedOut, ms: Date.now() - started })
    }
    const timer = setTimeout(() => { finish(false, true) }, opts.timeoutMs ?? 5000)
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      if (opts.until?.(text) === true) finish(false, false)
    })
    s.on('error', () => {})
    s.on('close', () => { finish(true, false) })
    s.write(data)
  })
}

/** Status codes of every response in a raw byte stream, in order. */
export function statuses (text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))
}
