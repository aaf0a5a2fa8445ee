import { Counter, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { FastHistogram } from '../../../src/observability/histogram.js'
import { HttpStats } from '../../../src/observability/http-stats.js'

describe('HttpStats', () => {
  it('counts by listener, route, upstream and code, across the last-entry cache and a route in between', async () => {
    const stats = new HttpStats(new FastHistogram('d', 'd', ['listener', 'route', 'upstream'], [0.1, 1]))
    stats.record('web', 'api', 'pool', 200, 0.01)
    stats.record('web', 'api', 'pool', 200, 0.01)
    stats.record('web', 'static', 'pool', 404, 0.01)
    stats.record('web', 'api', 'pool', 503, 0.01)
    stats.record('web', 'api', '', 999, 0.01)
    stats.record('web', 'api', '', 1000, 0.01)
    const registry = new Registry()
    const counter = new Counter({ name: 'reqs', help: 'h', labelNames: ['listener', 'route', 'upstream', 'code'], registers: [registry] })
    stats.flush(counter)
    stats.flush(counter) // a second scrape counts the same, not twice
    const values = (await counter.get()).values.map((v) => `${v.labels.route}/${v.labels.upstream}/${v.labels.code}=${v.value}`).sort()
    expect(values).toEqual(['api//0=1', 'api//999=1', 'api/pool/200=2', 'api/pool/503=1', 'static/pool/404=1'])
  })
})
