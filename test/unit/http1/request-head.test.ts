import { describe, expect, it } from 'vitest'
import { INCOMPLETE, MAX_LEAN_HEADERS, UNSUPPORTED, parseRequestHead, type RequestHead } from '../../../src/http1/request-head.js'

const parse = (text: string, limit = 16384): ReturnType<typeof parseRequestHead> => parseRequestHead(Buffer.from(text, 'latin1'), 0, limit)

describe('lean request-head parser', () => {
  it('parses a bodiless GET: target, headers as sent, a headers object, the end offset', () => {
    const text = 'GET /a?b=1 HTTP/1.1\r\nHost: x.example\r\nAccept:  */* \r\nCookie: a=1\r\ncookie: b=2\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET /next'
    const r = parse(text) as RequestHead
    expect(r.method).toBe('GET')
    expect(r.url).toBe('/a?b=1')
    expect(r.rawHeaders).toEqual(['Host', 'x.example', 'Accept', '*/*', 'Cookie', 'a=1', 'cookie', 'b=2', 'X-A', '1', 'x-a', '2'])
    expect(r.headers).toEqual({ host: 'x.example', accept: '*/*', cookie: 'a=1; b=2', 'x-a': '1, 2' })
    expect(r.close).toBe(false)
    expect(r.end).toBe(text.indexOf('GET /next'))
  })

  it('sees Connection: close among other tokens, and HEAD', () => {
    const r = parse('HEAD / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n') as RequestHead
    expect([r.method, r.close]).toEqual(['HEAD', true])
  })

  it('starts at an offset (the next pipelined request)', () => {
    const buf = Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n')
    const first = parseRequestHead(buf, 0, 16384) as RequestHead
    const second = parseRequestHead(buf, first.end, 16384) as RequestHead
    expect([first.url, second.url, second.end]).toEqual(['/1', '/2', buf.length])
  })

  it('waits for the rest of a head that may still be lean', () => {
    expect(parse('GET / HTTP/1.1\r\nHost: a\r\n')).toBe(INCOMPLETE)
    expect(parse('GE')).toBe(INCOMPLETE)
    expect(parse('HEAD')).toBe(INCOMPLETE)
  })

  // Every one of these goes to node:http, whose checks answer or forward it.
  const general: Array<[string, string]> = [
    ['POST', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx'],
    ['a partial POST, at once', 'POST / HTTP/1.1\r\nHo'],
    ['Content-Length on a GET', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n'],
    ['Transfer-Encoding', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['Upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['Expect', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n'],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['absolute form', 'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['asterisk form', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['no Host', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n'],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: a\r\nbroken\r\n\r\n'],
    ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\n\n'],
    ['a bare CR inside a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n'],
    ['a bare LF inside a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\n2\r\n\r\n'],
    ['a CR just before the blank line', 'GET / HTTP/1.1\r\nHost: a\r\r\n\r\n'],
    ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n'],
    ['a non-token header name', 'GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n'],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n'],
    ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: \xe9\r\n\r\n'],
    ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a leading empty line', '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ]
  for (const [name, text] of general) {
    it(`hands over: ${name}`, () => { expect(parse(text)).toBe(UNSUPPORTED) })
  }

  // Was: 2,500 header lines under `maxHeaderSize: 64kb` were forwarded by the lean path while the
  // general path answered 431 to the same bytes.
  it(`hands over a head of more than ${MAX_LEAN_HEADERS} fields: node:http's limits decide, as on the general path`, () => {
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: ${i}\r\n`).join('')
    expect(parse(`GET / HTTP/1.1\r\nHost: a\r\n${fields(MAX_LEAN_HEADERS - 1)}\r\n`, 65536)).not.toBe(UNSUPPORTED)
    expect(parse(`GET / HTTP/1.1\r\nHost: a\r\n${fields(MAX_LEAN_HEADERS)}\r\n`, 65536)).toBe(UNSUPPORTED)
  })

  it('hands over a head longer than maxHeaderSize, complete or not (node:http answers 431)', () => {
    const big = 'GET / HTTP/1.1\r\nHost: a\r\nX-Big: ' + 'a'.repeat(200)
    expect(parse(big + '\r\n\r\n', 100)).toBe(UNSUPPORTED)
    expect(parse(big, 100)).toBe(UNSUPPORTED)
    expect(parse(big + '\r\n\r\n', 1000)).not.toBe(UNSUPPORTED)
  })
})
