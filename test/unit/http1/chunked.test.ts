import { describe, expect, it } from 'vitest'
import { CHUNKED_BAD, CHUNKED_MORE, ChunkedScanner } from '../../../src/http1/chunked.js'

function scanAll (text: string, step = text.length): { at: number, data: number } {
  const buf = Buffer.from(text, 'latin1')
  const s = new ChunkedScanner()
  for (let i = 0; i < buf.length; i += step) {
    const at = s.scan(buf, i, Math.min(buf.length, i + step))
    if (at !== CHUNKED_MORE) return { at, data: s.data }
  }
  return { at: CHUNKED_MORE, data: s.data }
}

describe('chunked framing scanner', () => {
  const body = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n'

  it('finds the end after the trailers and counts only payload bytes', () => {
    expect(scanAll(body + 'HTTP/1.1 200 OK')).toEqual({ at: body.length, data: 11 })
  })

  it('gives the same answer fed one byte at a time', () => {
    for (const step of [1, 2, 3, 7]) expect(scanAll(body, step)).toEqual({ at: body.length, data: 11 })
  })

  it('takes leading zeros in a size (chunk-size = 1*HEXDIG; regression: 14 digits were a 502 blamed on the server)', () => {
    expect(scanAll('00000000000005\r\nhello\r\n0\r\n\r\n')).toEqual({ at: 28, data: 5 })
    expect(scanAll('0000000000000000000000\r\n\r\n').at).toBe(26)
    expect(scanAll('5 ;ext\r\nhello\r\n0\r\n\r\n')).toEqual({ at: 20, data: 5 })
  })

  it('needs more until the final CRLF', () => {
    expect(scanAll('5\r\nhello\r\n0\r\n\r').at).toBe(CHUNKED_MORE)
    expect(scanAll('A\r\n0123456789\r\n0\r\n\r\n')).toEqual({ at: 20, data: 10 })
  })

  const bad: Array<[string, string]> = [
    ['a size that is not hex', 'x\r\n'],
    ['an empty size line', '\r\n'],
    ['data not followed by CRLF', '2\r\nabc\r\n'],
    ['a bare LF after the size', '2\nab\r\n'],
    ['a size over 2^52', 'fffffffffffff0\r\n'],
    ['a control byte in an extension', '1;\x01\r\n'],
    // Refused by undici (the general path) and llhttp; the lean path relayed them as valid.
    ['whitespace after the size with no extension', '5 \r\nhello\r\n0\r\n\r\n'],
    ['a trailer line that is not a field', '0\r\ngarbage\r\n\r\n'],
    ['a trailer line that starts with its colon', '0\r\n: x\r\n\r\n'],
  ]
  for (const [name, text] of bad) {
    it(`refuses ${name}`, () => { expect(scanAll(text).at).toBe(CHUNKED_BAD) })
  }
})
