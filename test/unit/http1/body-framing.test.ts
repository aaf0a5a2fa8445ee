import { describe, expect, it } from 'vitest'
import { BodyFraming } from '../../../src/http1/body-framing.js'
import { readFinalHead, type FinalHead } from '../../../src/http1/response-head.js'

const b = (s: string): Buffer => Buffer.from(s, 'latin1')

describe('body framing', () => {
  it('Content-Length: counts down across reads; bytes past the end are not the body', () => {
    const f = new BodyFraming('length', 5)
    expect([f.take(b('hel'), 0), f.done]).toEqual([3, false])
    expect([f.take(b('xxloHTTP'), 2), f.done, f.payload]).toEqual([4, true, 5])
  })

  it('chunked: ends after the last chunk and trailers; payload excludes framing; bad framing is -1', () => {
    const f = new BodyFraming('chunked', 0)
    const body = b('3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nnext')
    expect([f.take(body, 0), f.done, f.payload]).toEqual([body.length - 4, true, 3])
    expect(new BodyFraming('chunked', 0).take(b('zz\r\n'), 0)).toBe(-1)
  })

  it('none is done at once; until-close never is', () => {
    const none = new BodyFraming('none', 0)
    expect([none.done, none.take(b('stray'), 0)]).toEqual([true, 0])
    const close = new BodyFraming('close', 0)
    expect([close.take(b('abc'), 1), close.done, close.payload]).toEqual([3, false, 2])
  })
})

describe('final response head', () => {
  it('skips 100 and 103 answers, and joins a head split across reads', () => {
    const first = readFinalHead(undefined, b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le'), 65536, false)
    expect(Buffer.isBuffer(first)).toBe(true)
    const got = readFinalHead(first as Buffer, b('ngth: 2\r\n\r\nok'), 65536, false) as FinalHead
    expect([got.head.status, got.head.length, got.buf.subarray(got.head.end).toString()]).toEqual([200, 2, 'ok'])
  })

  it('refuses a 101: nothing on this path asked to switch protocols', () => {
    expect(() => readFinalHead(undefined, b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'), 65536, false)).toThrow(/101/)
  })
})
