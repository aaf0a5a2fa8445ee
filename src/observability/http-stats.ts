import type { Counter } from 'prom-client'
import type { FastHistogram, Series } from './histogram.js'
import { TupleMap } from './tuple-map.js'

interface Entry {
  readonly labels: { listener: string, route: string, upstream: string }
  readonly series: Series
  /** Requests by status code (three digits, 100–999; anything else counts under 0). */
  readonly codes: Float64Array
}

/**
 * The per-request HTTP metrics, counted where a request ends: per (listener, route, upstream),
 * the duration histogram's series and a count per status code, found with no key built per
 * request (tuple-map.ts; a joined key cost a string and its hash each time, about half of a
 * request's metrics cost). Counts by status sit in an array indexed by the code, not a Map.
 * prom-client sees the counts at scrape time.
 */
export class HttpStats {
  private readonly entries: TupleMap<Entry>

  constructor (duration: FastHistogram) {
    this.entries = new TupleMap((listener, route, upstream) => ({
      labels: { listener, route, upstream },
      series: duration.handle(listener, route, upstream),
      codes: new Float64Array(1000),
    }))
  }

  record (listener: string, route: string, upstream: string, status: number, seconds: number): void {
    const e = this.entries.get(listener, route, upstream)
    const i = status >= 100 && status <= 999 ? status : 0
    e.codes[i] = (e.codes[i] as number) + 1
    e.series.observe(seconds)
  }

  /** Writes the counts into tandem_http_requests_total (at scrape time). */
  flush (counter: Counter<'listener' | 'route' | 'upstream' | 'code'>): void {
    counter.reset()
    for (const e of this.entries.values()) {
      const codes = e.codes
      for (let code = 0; code < codes.length; code++) {
        const n = codes[code] as number
        if (n > 0) counter.inc({ ...e.labels, code: String(code) }, n)
      }
    }
  }
}
