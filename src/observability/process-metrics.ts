// Node's process metrics (process_*, nodejs_*), once per process: prom-client installs an
// event-loop monitor per call that cannot be removed, so every registry shares these objects.
// prom-client's own modules, not its index (which also loads the Pushgateway: https, zlib, tls).
import { createRequire } from 'node:module'
import v8 from 'node:v8'
import type * as PromClient from 'prom-client'

const load = createRequire(import.meta.url)
const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter
const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry
type Registry = PromClient.Registry

/**
 * prom-client's default process metrics, two of them built here:
 * - nodejs_gc_duration_seconds (gcHistogram below): prom-client's observer makes Node build a
 *   PerformanceEntry in JS at every garbage collection, one every ~200 requests under load,
 *   which measured 5–20% of the proxy's CPU per request (bench/http.ts: 30.3 µs against 25.8
 *   without it; 26.2 with gcHistogram);
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

/** V8's GC types as GCProfiler names them → prom-client's `kind` label. */
const GC_KINDS: Record<string, string> = {
  Scavenge: 'minor',
  MinorMarkSweep: 'minor',
  MarkSweepCompact: 'major',
  IncrementalMarking: 'incremental',
  ProcessWeakCallbacks: 'weakcb',
}
/** How often the profiler's records are folded into the histogram (bounds what it holds). */
const GC_FOLD_MS = 1000

/**
 * nodejs_gc_duration_seconds, prom-client's name, kinds and buckets, from v8.GCProfiler: V8
 * records each collection natively and the records are read once a second, where prom-client's
 * PerformanceObserver builds an entry in JavaScript at every collection.
 */
function gcHistogram (registry: Registry): void {
  const hist = new Histogram({
    name: 'nodejs_gc_duration_seconds',
    help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    labelNames: ['kind'],
    buckets: [0.001, 0.01, 0.1, 1, 2, 5],
    registers: [registry],
    collect () { fold() },
  })
  let profiler = new v8.GCProfiler()
  profiler.start()
  const fold = (): void => {
    const records = profiler.stop()
    profiler = new v8.GCProfiler()
    profiler.start()
    for (const r of records?.statistics ?? []) hist.observe({ kind: GC_KINDS[r.gcType] ?? 'minor' }, r.cost / 1e6)
  }
  setInterval(fold, GC_FOLD_MS).unref()
}

let processRegistry: Registry | undefined

/** The registry of Node's process metrics, built on first use. */
export function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    cpuCounters(processRegistry)
    gcHistogram(processRegistry)
    for (const name of PROCESS_METRICS) (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(processRegistry, { eventLoopMonitoringPrecision: 10 })
  }
  return processRegistry
}
