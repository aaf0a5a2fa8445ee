// Node's process metrics (process_*, nodejs_*), once per process: prom-client installs an
// event-loop monitor per call that cannot be removed, so every registry shares these objects.
// prom-client's own modules, not its index (which also loads the Pushgateway: https, zlib, tls).
import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'

const load = createRequire(import.meta.url)
const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter
const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry
type Registry = PromClient.Registry

/**
 * prom-client's default process metrics but two:
 * - nodejs_gc_duration_seconds: its observer makes Node build a PerformanceEntry in JS at every
 *   garbage collection, one every ~200 requests under load, which measured 5–10% of the proxy's
 *   CPU per request (bench/http.ts, tandem vs a build without it);
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

let processRegistry: Registry | undefined

/** The registry of Node's process metrics, built on first use. */
export function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    cpuCounters(processRegistry)
    for (const name of PROCESS_METRICS) (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(processRegistry, { eventLoopMonitoringPrecision: 10 })
  }
  return processRegistry
}
