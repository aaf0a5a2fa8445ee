import type { Counter } from 'prom-client'
import type { FastHistogram, Series } from './histogram.js'

interface Entry {
  readonly labels: { listener: string, route: string, upstream: string }
  readonly series: Series
  readonly codes: Map<number, number>
}

/**
 * The per-request HTTP metrics, counted where a request ends: per (listener, route, upstream),
 * the duration histogram's series and a count per status code. The three names are the config's
 * own strings, the same objects request after request, so nested Maps find the entry by hashes
 * V8 keeps in the strings: no key is built per request (a joined key cost a string and its hash
 * each time, about half of a request's metrics cost). prom-client sees the counts at scrape time.
 */
export class HttpStats {
  private readonly byListener = new Map<string, Map<string, Map<string, Entry>>>()

  constructor (private readonly duration: FastHistogram) {}

  record (listener: string, route: string, upstream: string, status: number, seconds: number): void {
    let routes = this.byListener.get(listener)
    if (routes === undefined) this.byListener.set(listener, routes = new Map())
    let upstreams = routes.get(route)
    if (upstreams === undefined) routes.set(route, upstreams = new Map())
    let e = upstreams.get(upstream)
    if (e === undefined) {
      e = { labels: { listener, route, upstream }, series: this.duration.handle(listener, route, upstream), codes: new Map() }
      upstreams.set(upstream, e)
    }
    e.codes.set(status, (e.codes.get(status) ?? 0) + 1)
    e.series.observe(seconds)
  }

  /** Writes the counts into tandem_http_requests_total (at scrape time). */
  flush (counter: Counter<'listener' | 'route' | 'upstream' | 'code'>): void {
    counter.reset()
    for (const routes of this.byListener.values()) {
      for (const upstreams of routes.values()) {
        for (const e of upstreams.values()) {
          for (const [code, n] of e.codes) counter.inc({ ...e.labels, code: String(code) }, n)
        }
      }
    }
  }
}
