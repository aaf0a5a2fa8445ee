import type { Registry } from 'prom-client'

/**
 * A labelled histogram counted in plain arrays and handed to prom-client only at scrape time:
 * prom-client's own observe() hashes the label object on every call, which is most of the cost of
 * a request's metrics. One `series(...)` handle per label tuple is resolved once and kept; the hot
 * path is then one linear bucket scan over a handful of bounds and three additions.
 */
export class FastHistogram {
  private readonly series = new Map<string, Series>()

  constructor (
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly buckets: readonly number[],
  ) {}

  /** The handle for one label tuple (in labelNames order); keep it, it is stable. */
  handle (...labels: string[]): Series {
    const key = labels.join('\0')
    let s = this.series.get(key)
    if (s === undefined) {
      s = new Series(labels, this.buckets)
      this.series.set(key, s)
    }
    return s
  }

  /** Registers with prom-client as a custom collector (its `Metric` contract: name, help, type, get()). */
  register (registry: Registry): void {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0])
  }

  readonly type = 'histogram'
  readonly aggregator = 'sum'

  /** prom-client's MetricObjectWithValues for a histogram: cumulative `_bucket`s, `_sum`, `_count`. */
  get (): { name: string, help: string, type: string, aggregator: string, values: Array<{ metricName: string, labels: Record<string, string | number>, value: number }> } {
    const values: Array<{ metricName: string, labels: Record<string, string | number>, value: number }> = []
    for (const s of this.series.values()) {
      const base: Record<string, string> = {}
      this.labelNames.forEach((n, i) => { base[n] = s.labels[i] ?? '' })
      let acc = 0
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i] as number
        values.push({ metricName: `${this.name}_bucket`, labels: { ...base, le: this.buckets[i] as number }, value: acc })
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...base, le: '+Inf' }, value: s.count })
      values.push({ metricName: `${this.name}_sum`, labels: base, value: s.sum })
      values.push({ metricName: `${this.name}_count`, labels: base, value: s.count })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** Forgets every series (prom-client's reset()). */
  reset (): void {
    this.series.clear()
  }
}

/** One label tuple's counts: non-cumulative per bucket, plus sum and count. */
export class Series {
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (readonly labels: readonly string[], private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    this.sum += value
    this.count++
    const b = this.bounds
    for (let i = 0; i < b.length; i++) {
      if (value <= (b[i] as number)) { this.counts[i] = (this.counts[i] ?? 0) + 1; return }
    }
  }
}
