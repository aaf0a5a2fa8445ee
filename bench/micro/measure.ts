/** Runs `fn` in batches until `ms` of wall time pass, after a warm-up; returns calls per second. */
export function measure (fn: (i: number) => void, ms = 1000): number {
  for (let i = 0; i < 10_000; i++) fn(i)
  const batch = 10_000
  let calls = 0
  const start = process.hrtime.bigint()
  const limit = BigInt(ms) * 1_000_000n
  let elapsed = 0n
  while (elapsed < limit) {
    for (let i = 0; i < batch; i++) fn(calls + i)
    calls += batch
    elapsed = process.hrtime.bigint() - start
  }
  return (calls * 1e9) / Number(elapsed)
}
