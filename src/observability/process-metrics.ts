// Node's process metrics (process_*, nodejs_*), once per process: prom-client installs an
// event-loop monitor per call that cannot be removed, so every registry shares these objects.
// prom-client's own modules, not its index (which also loads the Pushgateway: https, zlib, tls).
import { createRequire } from 'node:module'
import { PerformanceObserver } from 'node:perf_hooks'
import type * as PromClient from 'prom-client'

const load = createRequire(import.meta.url)
const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter
const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry
type Registry = PromClient.Registry

/**
 * prom-client's default process metrics, two of them built here:
 * - nodejs_gc_duration_seconds (gcObserved below), so that it counts every collection. An
 *   observer costs an entry built in JS at each collection, one every ~200 requests under load:
 *   about 1 µs per request in paired runs, within this VM's noise (V8's GCProfiler, read once a
 *   second instead, held 4–10 MiB more under load for its per-collection heap statistics);
 * - processCpuTotal, replaced by cpuCounters below: it loads @opentelemetry/api (51 modules,
 *   about 1 MiB at start) for exemplars tandem does not use.
 */
const PROCESS_METRICS = ['processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors',
  'eventLoopLag', 'processResources', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version']
type DefaultMetric = (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void

/** process_cpu_{user,system,}_seconds_total, as prom-client names and computes them: the CPU since the last scrape is added at each. */
function cpuCounters (registry: Registry): void {
  let last = { user: 0, system: 0 } // the first scrape counts the CPU since the process started
  const user = new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers: [registry],
    collect () {
      const now = process.cpuUsage()
      user.inc((now.user - last.user) / 1e6)
      system.inc((now.system - last.system) / 1e6)
      total.inc((now.user - last.user + now.system - last.system) / 1e6)
      last = now
    },
  })
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers: [registry] })
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers: [registry] })
}

const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram

/**
 * nodejs_gc_duration_seconds with prom-client's name, `kind` label and buckets. prom-client's own
 * observer reads only the first entry of each batch Node delivers, so collections that end in
 * the same turn go uncounted; this one takes them all.
 */
function gcObserved (registry: Registry): void {
  const hist = new Histogram({
    name: 'nodejs_gc_duration_seconds',
    help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    labelNames: ['kind'],
    buckets: [0.001, 0.01, 0.1, 1, 2, 5],
    registers: [registry],
  })
  const kinds: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' }
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) hist.observe({ kind: kinds[(e as unknown as { detail: { kind: number } }).detail.kind] ?? 'minor' }, e.duration / 1000)
  })
  obs.observe({ entryTypes: ['gc'] })
}

let processRegistry: Registry | undefined

/** The registry of Node's process metrics, built on first use. */
export function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    cpuCounters(processRegistry)
    gcObserved(processRegistry)
    for (const name of PROCESS_METRICS) (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(processRegistry, { eventLoopMonitoringPrecision: 10 })
  }
  return processRegistry
}
