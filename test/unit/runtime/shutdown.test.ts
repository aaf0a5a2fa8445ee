import { describe, expect, it } from 'vitest'
import { runShutdown, type ShutdownSteps } from '../../../src/runtime/shutdown.js'

/** A fake clock whose waits advance time at once and record themselves. */
function harness (opts: { delayMs: number, timeoutMs: number, drainMs?: number, beforeDrainMs?: number }): { steps: ShutdownSteps, log: string[] } {
  let now = 1000
  const log: string[] = []
  const never = new Promise<void>(() => {})
  const at = (ms: number): Promise<void> => ms === Infinity ? never : Promise.resolve().then(() => { now += ms })
  const steps: ShutdownSteps = {
    delayMs: opts.delayMs,
    timeoutMs: opts.timeoutMs,
    clock: { now: () => now },
    notReady: () => { log.push(`notReady@${now - 1000}`) },
    ...(opts.beforeDrainMs === undefined ? {} : { beforeDrain: async () => { log.push(`beforeDrain@${now - 1000}`); await at(opts.beforeDrainMs as number) } }),
    stopAccepting: async () => { log.push(`stopAccepting@${now - 1000}`) },
    drained: async () => { await at(opts.drainMs ?? 0) },
    closeRest: async () => { log.push(`closeRest@${now - 1000}`) },
    // Finite steps settle in microtasks; a wait settles a macrotask later, so it wins a race only
    // against a step that never ends. A wait that lost its race (aborted) does not move time.
    wait: async (ms, signal) => { await new Promise((resolve) => setImmediate(resolve)); if (!signal.aborted) now += ms },
  }
  return { steps, log }
}

describe('runShutdown', () => {
  it('runs the steps in the spec order: not ready at once, delay, stop accepting, drain, close', async () => {
    const { steps, log } = harness({ delayMs: 500, timeoutMs: 3000, drainMs: 100, beforeDrainMs: 0 })
    expect(await runShutdown(steps)).toEqual({ clean: true, elapsedMs: 600 })
    expect(log).toEqual(['notReady@0', 'beforeDrain@500', 'stopAccepting@500', 'closeRest@600'])
  })

  it('the deadline is timeoutMs after the delay: work that never ends is closed then', async () => {
    const { steps, log } = harness({ delayMs: 1000, timeoutMs: 3000, drainMs: Infinity })
    expect(await runShutdown(steps)).toEqual({ clean: false, elapsedMs: 4000 })
    expect(log).toEqual(['notReady@0', 'stopAccepting@1000', 'closeRest@4000'])
  })

  it('a delay longer than the timeout runs in full, then the drain gets timeoutMs', async () => {
    const { steps, log } = harness({ delayMs: 10_000, timeoutMs: 2000, drainMs: Infinity })
    expect(await runShutdown(steps)).toEqual({ clean: false, elapsedMs: 12_000 })
    expect(log).toEqual(['notReady@0', 'stopAccepting@10000', 'closeRest@12000'])
  })

  it('a hand-over that hangs does not stretch the deadline', async () => {
    const { steps, log } = harness({ delayMs: 0, timeoutMs: 2000, beforeDrainMs: Infinity })
    expect(await runShutdown(steps)).toEqual({ clean: false, elapsedMs: 2000 })
    expect(log).toEqual(['notReady@0', 'beforeDrain@0', 'stopAccepting@2000', 'closeRest@2000'])
  })
})
