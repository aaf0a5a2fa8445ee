import { describe, expect, it } from 'vitest'

// The project pins Node 24 LTS as a devDependency (`node`), so `npm test` runs on it even where
// the machine's own Node is older: npm puts node_modules/.bin first on PATH.
describe('the runtime the suite runs on', () => {
  it('is Node 24 LTS', () => {
    expect(Number(process.versions.node.split('.')[0])).toBe(24)
  })
})
