import { describe, expect, it } from 'vitest'
import { clientHead } from '../../../src/http1/client-head.js'
import { RESPONSE_INCOMPLETE, parseResponseHead, rawHeadersOf, type ResponseHead } from '../../../src/http1/response-head.js'

const parse = (text: string, head = false): ReturnType<typeof parseResponseHead> => parseResponseHead(Buffer.from(text, 'latin1'), 0, 65536, head)
const ok = (text: string, head = false): ResponseHead => parse(text, head) as ResponseHead

describe('lean response-head parser', () => {
  it('reads status, reason, fields, Content-Length framing and reuse', () => {
    const r = ok('HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello')
    expect([r.status, r.reason, r.framing, r.length, r.reusable, r.end]).toEqual([201, 'Created', 'length', 5, true, 51])
    expect(rawHeadersOf(r)).toEqual(['Content-Length', '5', 'X-A', '1'])
  })

  it('a status line without a reason, with an empty one, and HTTP/1.0 (not reusable unless it asks to be kept alive)', () => {
    expect([ok('HTTP/1.1 204\r\n\r\n').status, ok('HTTP/1.1 204\r\n\r\n').reason]).toEqual([204, ''])
    expect(ok('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').reason).toBe('')
    expect(ok('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').reusable).toBe(false)
    expect(ok('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n').reusable).toBe(true)
    expect(ok('HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n').reusable).toBe(false)
    expect(ok('HTTP/1.1 200 OK\r\nConnection: close, X-A\r\nContent-Length: 0\r\n\r\n').connection).toEqual(['close', 'x-a'])
  })

  it('frames by RFC 9112 §6.3: HEAD, 1xx, 204 and 304 have no body; chunked; otherwise until close', () => {
    expect(ok('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', true).framing).toBe('none')
    expect(ok('HTTP/1.1 204 No Content\r\n\r\n').framing).toBe('none')
    expect(ok('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n').framing).toBe('none')
    expect(ok('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n').framing).toBe('none')
    expect(ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n').framing).toBe('chunked')
    const close = ok('HTTP/1.1 200 OK\r\n\r\nbody')
    expect([close.framing, close.reusable]).toEqual(['close', false])
  })

  it('a 204 announcing a body ends the connection; a 304 with the length of what it stands for does not', () => {
    expect(ok('HTTP/1.1 204 No Content\r\nContent-Length: 42\r\n\r\n').reusable).toBe(false)
    expect(ok('HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n').reusable).toBe(false)
    expect(ok('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n').reusable).toBe(true)
    expect(ok('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n').reusable).toBe(true)
  })

  it('a connection is reused unless Connection: close or HTTP/1.0 without keep-alive; the Keep-Alive hint is read', () => {
    expect(ok('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n').reusable).toBe(false)
    expect(ok('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').reusable).toBe(false)
    expect(ok('HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n').reusable).toBe(true)
    expect(ok('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=2, max=100\r\n\r\n').keepAliveMs).toBe(2000)
  })

  it('waits for the rest of a head', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Le')).toBe(RESPONSE_INCOMPLETE)
  })

  // Each would let one response be read two ways, or is not HTTP/1.1 at all: 502.
  const bad: Array<[string, string]> = [
    ['garbage', 'SSH-2.0-OpenSSH_9.6\r\n\r\n'],
    ['a malformed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n'],
    ['two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n'],
    ['Content-Length beside Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['a transfer coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n'],
    ['a bare LF', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
    ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: \x00\r\n\r\n'],
    ['a bare CR inside a value', 'HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 0\r\n\r\n'],
    ['a bare LF inside a value', 'HTTP/1.1 200 OK\r\nX-A: 1\n2\r\nContent-Length: 0\r\n\r\n'],
    ['CR CR LF', 'HTTP/1.1 200 OK\r\r\nContent-Length: 0\r\n\r\n'],
    ['a CR just before the blank line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\r\n\r\n'],
    ['DEL in a value', 'HTTP/1.1 200 OK\r\nX-A: \x7f\r\n\r\n'],
    ['a status line with no space after the status', 'HTTP/1.1 200OK\r\n\r\n'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n'],
    ['a status with a letter', 'HTTP/1.1 2x0 OK\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['HTTP/2', 'HTTP/2 200\r\n\r\n'],
  ]
  for (const [name, text] of bad) {
    it(`refuses ${name}`, () => { expect(() => parse(text)).toThrow() })
  }

  it('refuses a head over the limit, complete or not', () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(100)}`
    expect(() => parseResponseHead(Buffer.from(big), 0, 64, false)).toThrow(/too large/)
    expect(() => parseResponseHead(Buffer.from(big + '\r\n\r\n'), 0, 64, false)).toThrow(/too large/)
  })

  it('obs-text in the reason phrase is legal and replaced for the client', () => {
    const r = ok('HTTP/1.1 200 \xd0\xa3\xd1\x81\r\nContent-Length: 0\r\n\r\n')
    expect(clientHead(r, undefined, 5, 'D').split('\r\n')[0]).toBe('HTTP/1.1 200 OK')
  })
})

describe('client response head', () => {
  it('drops hop-by-hop fields and those Connection names, adds limits, Date, framing and keep-alive', () => {
    const r = ok('HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=9\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n')
    expect(clientHead(r, ['RateLimit-Limit', '5'], 60, 'Wed, 02 Dec 2026 06:00:00 GMT')).toBe(
      'HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nRateLimit-Limit: 5\r\nDate: Wed, 02 Dec 2026 06:00:00 GMT\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n')
  })

  it('keeps the upstream Date and Content-Length; a closing answer says so; a close-framed body is re-chunked', () => {
    const r = ok('HTTP/1.1 404 Not Found\r\nDate: X\r\nContent-Length: 3\r\n\r\n')
    expect(clientHead(r, undefined, undefined, 'D')).toBe('HTTP/1.1 404 Not Found\r\nDate: X\r\nContent-Length: 3\r\nConnection: close\r\n\r\n')
    expect(clientHead(ok('HTTP/1.1 200 OK\r\nDate: X\r\n\r\n'), undefined, 5, 'D')).toContain('Transfer-Encoding: chunked\r\n')
  })

  it('copies `Name: value` lines as sent and writes the others so; only SP and HTAB are trimmed', () => {
    const r = ok('HTTP/1.1 200 OK\r\nX-A: 1\r\nKEEP-ALIVE: timeout=3\r\nx-b:2\r\nX-C:  3 \t\r\nX-D:\r\nX-E: \xa0e\xa0\r\nX-F: 6\r\nContent-Length: 0\r\n\r\n')
    expect(r.keepAliveMs).toBe(3000)
    expect(rawHeadersOf(r)).toEqual(['X-A', '1', 'KEEP-ALIVE', 'timeout=3', 'x-b', '2', 'X-C', '3', 'X-D', '', 'X-E', '\xa0e\xa0', 'X-F', '6', 'Content-Length', '0'])
    expect(clientHead(r, undefined, 5, 'D')).toBe('HTTP/1.1 200 OK\r\nX-A: 1\r\nx-b: 2\r\nX-C: 3\r\nX-D: \r\nX-E: \xa0e\xa0\r\nX-F: 6\r\nContent-Length: 0\r\n' +
      'Date: D\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n')
  })

  it('drops a field Connection names wherever it stands, in any case, but never Content-Length', () => {
    const r = ok('HTTP/1.1 200 OK\r\nX-Hop: 1\r\nX-A: a\r\nConnection: x-hop, Content-Length\r\nx-HOP: 2\r\nContent-Length: 0\r\nPROXY-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\n\r\n')
    expect(clientHead(r, undefined, undefined, 'D')).toBe('HTTP/1.1 200 OK\r\nX-A: a\r\nContent-Length: 0\r\nDate: D\r\nConnection: close\r\n\r\n')
  })
})
