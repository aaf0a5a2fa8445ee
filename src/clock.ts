/** The only place that reads the wall clock; pure modules take a Clock so tests can step time. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number
}

export const systemClock: Clock = {
  now: () => performance.now(),
}

/** Wall-clock milliseconds since the epoch: for times shown to people (dashboard chart axis). */
export const wallClock: Clock = {
  now: () => Date.now(),
}

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor (private t = 0) {}
  now (): number { return this.t }
  advance (ms: number): void { this.t += ms }
  set (ms: number): void { this.t = ms }
}
