import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { FastHistogram } from '../../../src/observability/histogram.js'

describe('FastHistogram', () => {
  it('exposes cumulative buckets, sum and count in the Prometheus text format', async () => {
    const registry = new Registry()
    const h = new FastHistogram('t_seconds', 'help text', ['listener', 'route'], [0.1, 1])
    h.register(registry)
    const a = h.handle('l', 'r')
    expect(h.handle('l', 'r')).toBe(a)
    for (const v of [0.05, 0.1, 0.5, 2]) a.observe(v)
    const text = await registry.metrics()
    expect(text).toContain('# TYPE t_seconds histogram')
    expect(text).toContain('t_seconds_bucket{listener="l",route="r",le="0.1"} 2')
    expect(text).toContain('t_seconds_bucket{listener="l",route="r",le="1"} 3')
    expect(text).toContain('t_seconds_bucket{listener="l",route="r",le="+Inf"} 4')
    expect(text).toContain('t_seconds_sum{listener="l",route="r"} 2.65')
    expect(text).toContain('t_seconds_count{listener="l",route="r"} 4')
  })
})
