import type { Counter } from 'prom-client'
import type { FastHistogram, Series } from './histogram.js'

interface Entry {
  readonly labels: { listener: string, route: string, upstream: string }
  readonly series: Series
  /** Requests by status code (three digits, 100–999; anything else counts under 0). */
  readonly codes: Float64Array
}

/**
 * The per-request HTTP metrics, counted where a request ends: per (listener, route, upstream),
 * the duration histogram's series and a count per status code. The three names are the config's
 * own strings, the same objects request after request, so nested Maps find the entry by hashes
 * V8 keeps in the strings: no key is built per request (a joined key cost a string and its hash
 * each time, about half of a request's metrics cost), and the last entry is kept: requests in a
 * row mostly share one. Counts by status sit in an array indexed by the code, not a Map.
 * prom-client sees the counts at scrape time.
 */
export class HttpStats {
  private readonly byListener = new Map<string, Map<string, Map<string, Entry>>>()
  private lastListener: string | undefined
  private lastRoute: string | undefined
  private lastUpstream: string | undefined
  private last: Entry | undefined

  constructor (private readonly duration: FastHistogram) {}

  record (listener: string, route: string, upstream: string, status: number, seconds: number): void {
    const e = listener === this.lastListener && route === this.lastRoute && upstream === this.lastUpstream
      ? this.last as Entry
      : this.entry(listener, route, upstream)
    const i = status >= 100 && status <= 999 ? status : 0
    e.codes[i] = (e.codes[i] as number) + 1
    e.series.observe(seconds)
  }

  private entry (listener: string, route: string, upstream: string): Entry {
    let routes = this.byListener.get(listener)
    if (routes === undefined) this.byListener.set(listener, routes = new Map())
    let upstreams = routes.get(route)
    if (upstreams === undefined) routes.set(route, upstreams = new Map())
    let e = upstreams.get(upstream)
    if (e === undefined) {
      e = { labels: { listener, route, upstream }, series: this.duration.handle(listener, route, upstream), codes: new Float64Array(1000) }
      upstreams.set(upstream, e)
    }
    this.lastListener = listener
    this.lastRoute = route
    this.lastUpstream = upstream
    this.last = e
    return e
  }

  /** Writes the counts into tandem_http_requests_total (at scrape time). */
  flush (counter: Counter<'listener' | 'route' | 'upstream' | 'code'>): void {
    counter.reset()
    for (const routes of this.byListener.values()) {
      for (const upstreams of routes.values()) {
        for (const e of upstreams.values()) {
          const codes = e.codes
          for (let code = 0; code < codes.length; code++) {
            const n = codes[code] as number
            if (n > 0) counter.inc({ ...e.labels, code: String(code) }, n)
          }
        }
      }
    }
  }
}
