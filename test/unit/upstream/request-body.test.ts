import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ReplayableBody } from '../../../src/upstream/request-body.js'

describe('ReplayableBody', () => {
  it('a retry sends what the failed attempt read, then reads on; a read the failed attempt left pending is not lost', async () => {
    const client = new PassThrough()
    const body = new ReplayableBody(client, 1024)
    const first = body.attempt()
    client.write('one,')
    expect(String((await first.next()).value)).toBe('one,')
    client.write('two,')
    expect(String((await first.next()).value)).toBe('two,')
    // The first attempt fails while waiting for a third chunk (undici gives up its iterator).
    const abandoned = first.next()
    expect(body.replayable).toBe(true)
    const second = body.attempt()
    const got: string[] = []
    got.push(String((await second.next()).value), String((await second.next()).value))
    const third = second.next()
    client.end('three')
    got.push(String((await third).value))
    expect((await second.next()).done).toBe(true)
    expect(got).toEqual(['one,', 'two,', 'three'])
    expect(String((await abandoned).value)).toBe('three')
    expect(body.bytes).toBe(13)
  })

  it('past the limit the body is not replayable, and an attempt that would need the dropped part fails', async () => {
    const client = new PassThrough()
    const body = new ReplayableBody(client, 4)
    const first = body.attempt()
    client.write('abc')
    expect(String((await first.next()).value)).toBe('abc')
    client.write('defg')
    expect(String((await first.next()).value)).toBe('defg')
    expect(body.replayable).toBe(false)
    const second = body.attempt()
    expect(String((await second.next()).value)).toBe('abc')
    await expect(second.next()).rejects.toThrow('request body no longer replayable')
    client.end()
    expect((await first.next()).done).toBe(true)
  })
})
