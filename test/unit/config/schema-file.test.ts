import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { configSchema } from '../../../src/config/schema.js'

describe('examples/tandem.schema.json', () => {
  it('is what `tandem schema` prints (regenerate with: node dist/cli.js schema > examples/tandem.schema.json)', () => {
    const file = readFileSync(new URL('../../../examples/tandem.schema.json', import.meta.url), 'utf8')
    expect(JSON.parse(file)).toEqual(JSON.parse(JSON.stringify(configSchema)))
  })
})
