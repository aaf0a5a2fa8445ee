import { describe, it, expect } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { ConfigErrors } from '../../../src/errors.js'
import { loadConfigFile } from '../../../src/config/load.js'

// Each invalid-*.yaml fixture states its exact errors in leading `# expect: LINE:COL: path: message` lines.
const DIR = 'test/fixtures/config'
/** The fixture's own lines starting with `prefix`, as `FILE:` + the rest. */
function stated (file: string, prefix: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith(prefix)).map((l) => `${file}:${l.slice(prefix.length)}`)
}

const invalid = readdirSync(DIR).filter((f) => f.startsWith('invalid-') && f.endsWith('.yaml')).sort()

describe('invalid fixtures report exactly their expected errors', () => {
  it('has one fixture per kind of error', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(10)
  })

  it.each(invalid)('%s', async (name) => {
    const file = `${DIR}/${name}`
    const expected = stated(file, '# expect: ')
    expect(expected.length).toBeGreaterThan(0)
    const err = await loadConfigFile(file, { TANDEM_FIXTURE_PORT: '' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigErrors)
    expect((err as ConfigErrors).errors.map((e) => e.message)).toEqual(expected)
  })
})

// Each warning-*.yaml fixture is valid and states its exact warnings in `# warning: LINE:COL: …` lines.
const warned = readdirSync(DIR).filter((f) => f.startsWith('warning-') && f.endsWith('.yaml')).sort()

describe('warning fixtures load, with exactly their expected warnings', () => {
  it.each(warned)('%s', async (name) => {
    const file = `${DIR}/${name}`
    const expected = stated(file, '# warning: ')
    expect(expected.length).toBeGreaterThan(0)
    expect((await loadConfigFile(file)).warnings).toEqual(expected)
  })
})
