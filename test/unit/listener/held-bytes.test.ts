import { describe, expect, it } from 'vitest'
import { grow, onlyLineBreaks } from '../../../src/listener/held-bytes.js'

describe('held bytes of a head spread over reads', () => {
  it('appends in place while the store has room, moves once without the consumed bytes when not', () => {
    const first = grow(Buffer.from('GET / HT'), 0, Buffer.from('TP/1.1\r\n'), undefined)
    expect([first.buf.toString(), first.dropped, first.store.length]).toEqual(['GET / HTTP/1.1\r\n', 0, 4096])
    const second = grow(first.buf, 0, Buffer.from('Host: a'), first.store)
    expect(second.store).toBe(first.store)
    expect(second.buf.toString()).toBe('GET / HTTP/1.1\r\nHost: a')
    // A view handed out earlier keeps its bytes.
    const handedOut = second.buf.subarray(0, 3)
    const big = Buffer.alloc(5000, 'x')
    const third = grow(second.buf, 16, big, second.store)
    expect(third.store).not.toBe(first.store)
    expect(third.dropped).toBe(16)
    expect(third.buf.toString()).toBe('Host: a' + 'x'.repeat(5000))
    expect(handedOut.toString()).toBe('GET')
  })

  it('line breaks alone are no request', () => {
    expect(onlyLineBreaks(Buffer.from('\r\n\r\n'), 0)).toBe(true)
    expect(onlyLineBreaks(Buffer.from('GET\r\n'), 3)).toBe(true)
    expect(onlyLineBreaks(Buffer.from('\r\nG'), 0)).toBe(false)
  })
})
