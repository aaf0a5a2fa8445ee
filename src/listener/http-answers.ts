import type http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { statusText } from '../errors.js'
import { ClientConn, LINGER_MS } from './client-conn.js'

/**
 * Half-closes after the answer, discards input until the client closes its side or LINGER_MS
 * passes, then closes. Precondition: everything to send has been written.
 */
export function lingerClose (socket: Duplex): void {
  if (socket.destroyed) return
  socket.end()
  if (socket.readableEnded) {
    socket.destroy()
    return
  }
  const timer = setTimeout(() => { socket.destroy() }, LINGER_MS)
  timer.unref()
  socket.once('end', () => { socket.destroy() })
  socket.once('close', () => { clearTimeout(timer) })
  socket.resume()
}

/** node:http closes a connection after its last response with destroySoon(): make that linger. */
export function lingerAfterLastResponse (socket: Socket | null): void {
  if (socket === null) return
  socket.destroySoon = () => { lingerClose(socket) }
}

/**
 * tandem's own answers (errors it decides itself). They always close the connection: whatever
 * the client pipelined behind a refused or failed request is not run (HAProxy and nginx do the
 * same after an error they generate), so one bad request cannot smuggle the next one through.
 */
export function answer (res: http.ServerResponse, status: number, extra?: readonly string[]): void {
  const body = statusText(status) + '\n'
  res.shouldKeepAlive = false
  lingerAfterLastResponse(res.socket)
  const headers = extra === undefined ? [] : [...extra]
  headers.push('content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body)))
  res.writeHead(status, headers as unknown as http.OutgoingHttpHeaders)
  res.end(body)
}

/**
 * `extra` (flat name, value pairs: a rate limit's headers), then the head lines answerRaw()
 * writes by default for `status`'s text body; undefined without extra (answerRaw's default).
 */
export function answerLines (status: number, extra?: readonly string[]): string | undefined {
  if (extra === undefined) return undefined
  let lines = ''
  for (let i = 0; i + 1 < extra.length; i += 2) lines += `${extra[i]!}: ${extra[i + 1]!}\r\n`
  return lines + `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(statusText(status) + '\n')}\r\n`
}

/**
 * The same answer written straight to a connection that node:http no longer (or not yet)
 * writes to. `headers` are `name: value\r\n` lines; `body` defaults to the status text.
 * `method` is the request's: a HEAD gets the head only, Content-Length as for a GET
 * (RFC 9110 §9.3.2), which node:http does by itself for answer().
 */
export function answerRaw (out: Duplex | ClientConn, status: number, headers?: string, body?: string, method?: string): void {
  body ??= statusText(status) + '\n'
  headers ??= `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
  // The same head node:http writes for answer(): Date, and `Connection: close` in its spelling.
  const text = `HTTP/1.1 ${status} ${statusText(status)}\r\n${headers}Date: ${new Date().toUTCString()}\r\nConnection: close\r\n\r\n${method === 'HEAD' ? '' : body}`
  if (out instanceof ClientConn) return out.sendLast(text)
  if (out.destroyed || out.writableEnded) return // already answered, lingering
  if (!out.writable) {
    out.destroy()
    return
  }
  out.write(text)
  lingerClose(out)
}

/** A request line whose only fault can be its method: a token, a target, an HTTP version. */
const WELL_FORMED_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [\x21-\x7e]+ HTTP\/\d\.\d\r\n/

/**
 * node:http parse errors → the status that explains them. llhttp reports any bad start of a
 * request as an invalid method: only a well-formed request line with a method it does not know
 * is 501 (RFC 9110 15.6.2); garbage (`hello world`) is a malformed request, 400.
 */
export function statusForParseError (code: string | undefined, rawPacket?: Buffer): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return 431
    case 'ERR_HTTP_REQUEST_TIMEOUT': case 'HPE_HEADERS_TIMEOUT': return 408
    case 'HPE_INVALID_METHOD': return rawPacket !== undefined && WELL_FORMED_LINE.test(rawPacket.toString('latin1', 0, 8192)) ? 501 : 400
    default: return 400
  }
}
