// The admin server's bodies: a request body read with a cap, JSON and text answers that are never
// cached, and the status line for what node:http could not parse.
import type { IncomingMessage, ServerResponse } from 'node:http'

export const MAX_BODY = 4096

/** The status line for a request node:http could not parse, as Node's own default handler picks it. */
export function clientErrorStatus (err: NodeJS.ErrnoException): string {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout'
  if (err.code === 'HPE_HEADER_OVERFLOW') return '431 Request Header Fields Too Large'
  return '400 Bad Request'
}

/** The body as text, or undefined when it exceeds MAX_BODY or the client went away. */
export async function readBody (req: IncomingMessage): Promise<string | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
    req.resume()
    return undefined
  }
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size <= MAX_BODY) {
        chunks.push(chunk)
        return
      }
      req.off('data', onData)
      req.resume()
      resolve(undefined)
    }
    req.on('data', onData)
    req.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')) })
    req.on('close', () => { resolve(undefined) })
  })
}

export function send (res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

export function json (res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body) + '\n')
}

export function text (res: ServerResponse, status: number, body: string): void {
  send(res, status, 'text/plain; charset=utf-8', body)
}
