/*
 * The per-request work around the proxying itself: the header pass (client headers → upstream
 * headers with X-Forwarded-*), the lean path's request-head parse and response-head rewrite, the
 * metrics update for one finished request, and one access line
 * (pino, JSON, written to a discarding stream so only tandem's and pino's CPU is measured).
 * Prints ops/s and ns per op. Run after `tsc -p bench`: node dist-bench/bench/micro/hotpath.js
 */
import type net from 'node:net'
import pino from 'pino'
import { pathToFileURL } from 'node:url'
import { channels, publishHttpEnd } from '../../src/observability/events.js'
import { attachLogs, createLogger } from '../../src/observability/log.js'
import { BatchSink } from '../../src/observability/log-sink.js'
import { createMetrics } from '../../src/observability/metrics.js'
import type { Runtime } from '../../src/runtime/runtime.js'
import { upstreamRequestHeaders } from '../../src/upstream/headers.js'
import { parseRequestHead } from '../../src/http1/request-head.js'
import { clientHead } from '../../src/http1/client-head.js'
import { parseResponseHead, type ResponseHead } from '../../src/http1/response-head.js'
import { measure } from './measure.js'

export interface MicroResult { name: string, opsPerSec: number }

/** What a browser sends on a plain GET, as node:http hands it over in rawHeaders. */
const BROWSER = [
  'Host', 'www.example.com',
  'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'Accept-Language', 'en-US,en;q=0.9',
  'Accept-Encoding', 'gzip, deflate, br',
  'Connection', 'keep-alive',
  'Cookie', 'session=0123456789abcdef; theme=dark',
  'Upgrade-Insecure-Requests', '1',
]

function end (i: number): Parameters<typeof publishHttpEnd>[0] {
  return { listener: 'public', route: 'app', method: 'GET', host: 'www.example.com', path: '/app/hello', status: 200, client: '127.0.0.1', upstream: 'app', server: i % 2 === 0 ? '127.0.0.1:8081' : '127.0.0.1:8082', bytesIn: 0, bytesOut: 13, upstreamMs: 0.8, totalMs: 1.1 + (i % 7) / 10 }
}

export function run (ms = 1000): MicroResult[] {
  const results: MicroResult[] = []
  let n = 0
  results.push({
    name: 'header pass (8 browser headers)',
    opsPerSec: measure(() => { n += upstreamRequestHeaders(BROWSER, { peer: '127.0.0.1', proto: 'http', trusted: false }).length }, ms),
  })
  if (n === 0) throw new Error('no headers')

  // The lean path's own parsing of the same request, and of a typical small response.
  let head = 'GET /app/hello HTTP/1.1\r\n'
  for (let i = 0; i < BROWSER.length; i += 2) head += `${BROWSER[i] as string}: ${BROWSER[i + 1] as string}\r\n`
  const request = Buffer.from(head + '\r\n', 'latin1')
  results.push({ name: 'lean request head parse (8 headers)', opsPerSec: measure(() => { if (parseRequestHead(request, 0, 16384) === 0) n++ }, ms) })
  const response = Buffer.from('HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 06:00:00 GMT\r\nContent-Type: text/plain\r\n' +
    'Content-Length: 13\r\nConnection: keep-alive\r\n\r\nhello, world\n', 'latin1')
  results.push({
    name: 'lean response head parse + client head',
    opsPerSec: measure(() => { n += clientHead(parseResponseHead(response, 0, 65536, false) as ResponseHead, undefined, 60, 'D').length }, ms),
  })

  const metrics = createMetrics(() => ({ listeners: [], upstreams: new Map(), clock: { now: () => 0 } }) as unknown as Runtime)
  results.push({ name: 'metrics update (one request end)', opsPerSec: measure((i) => { publishHttpEnd(end(i)) }, ms) })
  metrics.close()

  // A string destination: SonicBoom to /dev/null (buffered, flushed synchronously here: a tight loop never yields to let
  // async writes finish), so no pipe reader sets the pace.
  const sink = pino.destination({ dest: '/dev/null', sync: true, minLength: 4096 })
  let bytes = 0
  const write = sink.write.bind(sink)
  sink.write = (s: string) => { bytes += s.length; return write(s) }
  const log = createLogger({ level: 'info', access: true }, sink)
  const detach = attachLogs(log, { level: 'info', access: true })
  results.push({ name: 'access line, as a string (a stream given to createLogger)', opsPerSec: measure((i) => { publishHttpEnd(end(i)) }, ms) })
  detach()
  // As on a pipe (Docker, systemd): written in place into the batch; the batch "write" only counts.
  const pipe = { writableLength: 0, on: () => pipe, write: (b: Buffer, cb?: () => void) => { bytes += b.length; cb?.(); return true } }
  const pipeLog = createLogger({ level: 'info', access: true }, new BatchSink(pipe as unknown as net.Socket, () => {}))
  const detachPipe = attachLogs(pipeLog, { level: 'info', access: true })
  results.push({ name: 'access line, in place (pipe sink)', opsPerSec: measure((i) => { publishHttpEnd(end(i)) }, ms) })
  detachPipe()
  // The same line through pino's generic object path, for comparison (what tandem did before).
  const child = log.child({ component: 'access' })
  results.push({ name: 'access line via pino object path', opsPerSec: measure((i) => { child.info({ type: 'http', ...end(i) }) }, ms) })
  if (bytes === 0 || channels.httpRequestEnd.hasSubscribers) throw new Error('access line not written, or still subscribed')
  return results
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of run()) console.log(`${r.name.padEnd(40)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(12)} ops/s ${(1e9 / r.opsPerSec).toFixed(0).padStart(7)} ns/op`)
}
