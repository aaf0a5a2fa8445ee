import type http from 'node:http'
import type { Duplex } from 'node:stream'
import { statusText } from '../errors.js'

/**
 * tandem's own answers (errors it decides itself). They always close the connection: whatever
 * the client pipelined behind a refused or failed request is not run (HAProxy and nginx do the
 * same after an error they generate), so one bad request cannot smuggle the next one through.
 */
export function answer (res: http.ServerResponse, status: number, extra?: Record<string, string>): void {
  const body = statusText(status) + '\n'
  res.shouldKeepAlive = false
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...extra })
  res.end(body)
}

/** The same answer written straight to a socket that node:http no longer (or not yet) writes to. */
export function answerRaw (socket: Duplex, status: number, extra = ''): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const body = statusText(status) + '\n'
  socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`, () => { socket.destroy() })
}

/** node:http parse errors → the status that explains them. */
export function statusForParseError (code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return 431
    case 'ERR_HTTP_REQUEST_TIMEOUT': case 'HPE_HEADERS_TIMEOUT': return 408
    case 'HPE_INVALID_METHOD': return 501
    default: return 400
  }
}
