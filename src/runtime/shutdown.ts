// The graceful shutdown sequence of the spec ("Signals"), in one place so its order reads top to
// bottom: not ready at once, keep accepting for `delayMs`, stop accepting, drain until the
// deadline, close the rest. The deadline is `timeoutMs` after the delay ends (the spec: keep
// accepting for shutdownDelay, then let in-flight work finish for up to shutdownTimeout), fixed
// then and never moved by a step that takes long: a hung hand-over, upstream or tunnel cannot
// stretch it.
import type { Clock } from '../clock.js'

/** What the sequence drives; each step is owned by the process (serve.ts) or the Runtime. */
export interface ShutdownSteps {
  /** Milliseconds to keep accepting after the signal while /readyz is 503 (`shutdownDelay`). */
  readonly delayMs: number
  /** Milliseconds after the delay until whatever is still open is closed (`shutdownTimeout`). */
  readonly timeoutMs: number
  readonly clock: Clock
  /** /readyz answers 503 from now on; called at once. */
  notReady (): void
  /** Runs after the delay and before listeners stop accepting (a pair hands over to its standby here). */
  beforeDrain? (): Promise<void>
  /** Stops accepting new connections; resolves once the sockets are no longer bound. */
  stopAccepting (): Promise<void>
  /** Resolves when in-flight requests, tunnels and TCP streams have all finished. */
  drained (): Promise<void>
  /** Closes everything still open (connections, upstream pools). Must not wait on peers. */
  closeRest (): Promise<void>
  /** Waits `ms`, or until `signal` aborts (injected so a unit test can step time). */
  wait? (ms: number, signal: AbortSignal): Promise<void>
}

export interface ShutdownResult {
  /** True when all in-flight work finished before the deadline. */
  readonly clean: boolean
  /** Milliseconds from the signal to the end of closeRest(). */
  readonly elapsedMs: number
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms))
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

/** Resolves with what `p` gave, or with `timedOut` when `ms` pass first; no timer is left behind. */
async function within<T> (p: Promise<T>, ms: number, wait: Required<ShutdownSteps>['wait'], timedOut: T): Promise<T> {
  if (ms <= 0) return timedOut
  const done = new AbortController()
  try {
    return await Promise.race([p, wait(ms, done.signal).then(() => timedOut)])
  } finally {
    done.abort()
  }
}

/**
 * Runs the sequence once; `startedAt` is the signal's time on `steps.clock`. Every step after
 * the delay is bounded by the deadline, so this resolves no later than about `delayMs +
 * timeoutMs` after the signal plus what closeRest() takes (it only destroys).
 */
export async function runShutdown (steps: ShutdownSteps, startedAt = steps.clock.now()): Promise<ShutdownResult> {
  const wait = steps.wait ?? sleep
  const deadline = startedAt + steps.delayMs + steps.timeoutMs
  const left = (): number => deadline - steps.clock.now()
  steps.notReady()
  if (steps.delayMs > 0) await wait(steps.delayMs, new AbortController().signal)
  if (steps.beforeDrain !== undefined) await within(steps.beforeDrain(), left(), wait, undefined)
  await within(steps.stopAccepting(), left(), wait, undefined)
  const clean = await within(steps.drained().then(() => true), left(), wait, false)
  await steps.closeRest()
  return { clean, elapsedMs: steps.clock.now() - startedAt }
}
