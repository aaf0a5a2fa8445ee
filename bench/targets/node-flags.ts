// Node's flags and environment as the image starts tandem (Dockerfile, src/cli.ts's first line),
// given to every Node process a benchmark compares it with and to the test suite's proxy
// children (test/helpers/proc.ts). No side effects: tests import it.

/** The image's flags; BENCH_NODE_FLAGS adds flags to try. */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--no-maglev', ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)]

/** The image's malloc setting (MALLOC_ARENA_MAX=2 unless the environment has its own). */
export const NODE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' }
