/** Polls until the predicate holds; throws with `what` after the deadline. No fixed sleeps. */
export async function waitFor (
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  stepMs = 20,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, stepMs))
  }
}
