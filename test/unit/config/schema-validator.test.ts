import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { validatorSource } from '../../../src/config/validator-source.js'

describe('the compiled config validator', () => {
  it('is what the schema compiles to today (run `npm run validator` after changing src/config/schema.ts)', () => {
    const committed = readFileSync(new URL('../../../src/config/schema-validator.cjs', import.meta.url), 'utf8')
    expect(committed === validatorSource(), 'src/config/schema-validator.cjs is stale: run `npm run validator`').toBe(true)
  })
})
