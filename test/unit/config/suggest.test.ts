import { describe, it, expect } from 'vitest'
import { didYouMean, editDistance, suggest } from '../../../src/config/suggest.js'

describe('suggest', () => {
  it('measures edits, counting a transposition as one', () => {
    expect(editDistance('protocl', 'protocol')).toBe(1)
    expect(editDistance('wieght', 'weight')).toBe(1)
    expect(editDistance('abc', 'abc')).toBe(0)
    expect(editDistance('', 'abc')).toBe(3)
  })

  it('suggests the closest candidate when it is close', () => {
    const keys = ['name', 'protocol', 'listen', 'routes', 'maxConnections']
    expect(suggest('protocl', keys)).toBe('protocol')
    expect(suggest('maxconnections', keys)).toBe('maxConnections')
    expect(suggest('route', keys)).toBe('routes')
    expect(suggest('zzzz', keys)).toBeUndefined()
    expect(suggest('x', [])).toBeUndefined()
  })

  it('formats the hint', () => {
    expect(didYouMean('bakup', ['backup', 'weight'])).toBe(' (did you mean "backup"?)')
    expect(didYouMean('completely-different', ['backup'])).toBe('')
  })
})
