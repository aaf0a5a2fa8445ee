// Node's flags are memory settings (README, Docker): the tandem command's first line, the image's
// entrypoint, `npm start` and the benchmarks must start Node the same way, or the published RSS
// figures describe a process nobody runs.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { NODE_ENV, NODE_FLAGS } from '../../../bench/targets/node-flags.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const read = (file: string): string => readFileSync(ROOT + file, 'utf8')

/** The flags of the shebang `#!/usr/bin/env -S node …`. */
const cliFlags = (): string[] => {
  const first = read('src/cli.ts').split('\n')[0] ?? ''
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first)
  if (m === null) throw new Error(`src/cli.ts's first line is not a node shebang: ${first}`)
  return (m[1] ?? '').trim().split(' ')
}

describe('Node flags', () => {
  it('the shebang starts Node 24 with a small young generation and without Maglev', () => {
    expect(cliFlags()).toEqual(['--max-semi-space-size=2', '--no-maglev'])
  })

  it('the Docker entrypoint, npm start and the benchmarks use the same flags', () => {
    const flags = cliFlags()
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1]
    expect(JSON.parse(entry ?? '[]')).toEqual(['node', ...flags, '/app/dist/cli.js'])
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start
    expect(start).toBe(`npm run build && node ${flags.join(' ')} dist/cli.js demo`)
    if (process.env.BENCH_NODE_FLAGS === undefined) expect(NODE_FLAGS).toEqual(flags)
  })

  it('the image and the benchmarks give glibc two malloc arenas', () => {
    expect(read('Dockerfile')).toMatch(/^\s+MALLOC_ARENA_MAX=2 \\$/m)
    if (process.env.MALLOC_ARENA_MAX === undefined) expect(NODE_ENV).toEqual({ MALLOC_ARENA_MAX: '2' })
  })
})
