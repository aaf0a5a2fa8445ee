import { describe, it, expect } from 'vitest'
import { parseDuration, parseRate, parseSize } from '../../../src/config/units.js'

describe('parseDuration', () => {
  it.each([
    ['250ms', 250], ['2s', 2000], ['1.5s', 1500], ['5m', 300_000], ['1h', 3_600_000],
    ['0s', 0], ['1500', 1500], [' 2s ', 2000], [0, 0], [750, 750],
  ] as const)('%s → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each(['', 's', '2 s', '2sec', '-1s', '1d', '1.s', 'abc'])('rejects %j', (input) => {
    expect(() => parseDuration(input)).toThrow(`invalid duration "${input}": expected e.g. 250ms, 2s, 5m, 1h or integer milliseconds`)
  })

  it('rejects negative and fractional numbers', () => {
    expect(() => parseDuration(-1)).toThrow('invalid duration -1: must be a non-negative integer')
    expect(() => parseDuration(1.5)).toThrow('invalid duration 1.5: must be a non-negative integer')
  })
})

describe('parseSize', () => {
  it.each([
    ['16kb', 16_384], ['16KB', 16_384], ['16k', 16_384], ['1mb', 1_048_576], ['1m', 1_048_576],
    ['1gb', 1_073_741_824], ['512b', 512], ['0.5kb', 512], ['4096', 4096], [8192, 8192],
  ] as const)('%s → %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes)
  })

  it.each(['', 'kb', '16 kb', '16kib', '-1kb', '1tb'])('rejects %j', (input) => {
    expect(() => parseSize(input)).toThrow(`invalid size "${input}": expected e.g. 16kb, 1mb, 1gb or integer bytes`)
  })
})

describe('parseRate', () => {
  it.each([
    ['100/s', 100], ['6000/m', 100], ['3600/h', 1], ['1/m', 1 / 60], ['0.5/s', 0.5],
  ] as const)('%s → %d per second', (input, perSecond) => {
    expect(parseRate(input)).toBe(perSecond)
  })

  it.each(['100', '100/d', '/s', '100 / s', '-1/s', 'x/s'])('rejects %j', (input) => {
    expect(() => parseRate(input)).toThrow(`invalid rate "${input}": expected e.g. 100/s, 6000/m or 10/h`)
  })

  it('rejects a zero rate', () => {
    expect(() => parseRate('0/s')).toThrow('invalid rate "0/s": must be greater than 0')
  })
})
