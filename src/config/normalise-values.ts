// The value-level half of normalise.ts (pure): units to numbers within their limits, host:port
// split, CIDRs checked. Each check reports at the value it concerns and returns something usable
// regardless, so one pass collects every problem.
import { isIP } from 'node:net'
import type { HostPort } from './types.js'
import { parseDuration, parseSize } from './units.js'
import type { Problems } from './positions.js'

const HOUR = 3_600_000
/** [min, max] in ms of each kind of duration key (README "Config limits"). */
const TIMEOUT = [1, 24 * HOUR] as const
export const TCP_IDLE = [1, 7 * 24 * HOUR] as const
export const RAMP = [0, HOUR] as const
export const SHUTDOWN_DELAY = [0, HOUR] as const
export const SHUTDOWN_TIMEOUT = [0, 24 * HOUR] as const
/** [min, max] bytes of maxHeaderSize: below 1 KiB no browser request fits; above 1 MiB is a memory lever. */
export const HEADER_SIZE = [1024, 1024 * 1024] as const

function showMs (ms: number): string {
  if (ms % HOUR === 0) return `${ms / HOUR}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}

export class ValueNormaliser {
  constructor (protected readonly problems: Problems) {}

  /**
   * Duration in ms within [min, max]. Timeouts and intervals take min 1ms, so a 0 cannot switch a
   * protection off (in Node 0 means "no timeout"); every max stays far below 2^31 ms, past which
   * Node's timers fire after 1 ms.
   */
  duration (v: unknown, dflt: number, ptr: string, [min, max]: readonly [number, number] = TIMEOUT): number {
    if (v === undefined) return dflt
    const ms = this.attempt(() => parseDuration(v as string | number), ptr, dflt)
    if (ms < min) this.problems.add(ptr, min === 1 ? 'must be at least 1ms (0 would turn it off)' : `must be at least ${showMs(min)}`)
    else if (ms > max) this.problems.add(ptr, `must be at most ${showMs(max)}`)
    return ms
  }

  /** Size in bytes within [min, max]. */
  size (v: unknown, dflt: number, ptr: string, [min, max]: readonly [number, number]): number {
    if (v === undefined) return dflt
    const bytes = this.attempt(() => parseSize(v as string | number), ptr, dflt)
    if (bytes < min || bytes > max) this.problems.add(ptr, `must be between ${min / 1024}kb and ${max / 1024 / 1024}mb`)
    return bytes
  }

  attempt<T> (f: () => T, ptr: string, fallback: T): T {
    try {
      return f()
    } catch (err) {
      this.problems.add(ptr, (err as Error).message)
      return fallback
    }
  }

  /** Splits host:port. Port 0 (let the OS pick) is allowed only where tandem itself listens. */
  hostPort (text: string, ptr: string, listen: boolean): HostPort {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]+)$/.exec(text) as RegExpExecArray
    const port = Number(m[3])
    let host: string
    if (m[1] !== undefined) {
      host = m[1]
      if (isIP(host.replace(/%.*$/, '')) !== 6) this.problems.add(ptr, `invalid IPv6 address "${host}"`)
    } else {
      host = (m[2] as string).toLowerCase()
      if (/^[0-9.]+$/.test(host) && isIP(host) !== 4) this.problems.add(ptr, `invalid IPv4 address "${host}"`)
    }
    if (port > 65535 || (port === 0 && !listen)) {
      this.problems.add(ptr, `port ${port} out of range ${listen ? '0' : '1'}..65535`)
    }
    return { text, host, port }
  }

  cidr (text: string, ptr: string): string {
    const [ip = '', bits, extra] = text.split('/')
    const family = isIP(ip)
    const max = family === 6 ? 128 : 32
    if (family === 0 || extra !== undefined || (bits !== undefined && (!/^[0-9]+$/.test(bits) || Number(bits) > max))) {
      this.problems.add(ptr, 'must be an IP address or a CIDR like 10.0.0.0/8 or fd00::/8')
    }
    return text
  }
}
