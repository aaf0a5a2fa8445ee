// Unit parsers for the config's durations, sizes and rates (pure). The regex sources are exported
// so the JSON Schema and these parsers can never disagree about what is accepted.

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$'
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?([bB]|[kK][bB]?|[mM][bB]?|[gG][bB]?)$'
export const RATE_PATTERN = '^[0-9]+(\\.[0-9]+)?/(s|m|h)$'

const durationRe = new RegExp(DURATION_PATTERN)
const sizeRe = new RegExp(SIZE_PATTERN)
const rateRe = new RegExp(RATE_PATTERN)

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const sizeUnits: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }
const rateUnits: Record<string, number> = { s: 1, m: 60, h: 3600 }

function nonNegativeInteger (v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`invalid ${what} ${v}: must be a non-negative integer`)
  return v
}

/** Milliseconds from `250ms`, `2s`, `1.5s`, `5m`, `1h` or integer milliseconds (number or digits). */
export function parseDuration (v: string | number): number {
  if (typeof v === 'number') return nonNegativeInteger(v, 'duration')
  const s = v.trim()
  if (/^[0-9]+$/.test(s)) return nonNegativeInteger(Number(s), 'duration')
  const m = durationRe.exec(s)
  if (m === null) throw new Error(`invalid duration "${v}": expected e.g. 250ms, 2s, 5m, 1h or integer milliseconds`)
  const unit = durationUnits[m[2] as string] as number
  return Math.round(parseFloat(s) * unit)
}

/** Bytes from `512b`, `16kb`, `1mb`, `1gb` (k/m/g also without the b, any case; kb = 1024) or integer bytes. */
export function parseSize (v: string | number): number {
  if (typeof v === 'number') return nonNegativeInteger(v, 'size')
  const s = v.trim()
  if (/^[0-9]+$/.test(s)) return nonNegativeInteger(Number(s), 'size')
  const m = sizeRe.exec(s)
  if (m === null) throw new Error(`invalid size "${v}": expected e.g. 16kb, 1mb, 1gb or integer bytes`)
  const unit = sizeUnits[(m[2] as string)[0]!.toLowerCase()] as number
  return Math.round(parseFloat(s) * unit)
}

/** Events per second from `100/s`, `6000/m` or `10/h`. */
export function parseRate (v: string): number {
  const s = typeof v === 'string' ? v.trim() : String(v)
  const m = rateRe.exec(s)
  if (m === null) throw new Error(`invalid rate "${v}": expected e.g. 100/s, 6000/m or 10/h`)
  const rate = parseFloat(s) / (rateUnits[m[2] as string] as number)
  if (rate <= 0) throw new Error(`invalid rate "${v}": must be greater than 0`)
  return rate
}
