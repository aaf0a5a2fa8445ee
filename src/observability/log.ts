import pino, { type Logger } from 'pino'
import type { LogConfig } from '../config/types.js'
import { systemClock } from '../clock.js'
import { HttpPrefix, StringLines, accessLine, httpLineBound, isoClock, writeHttpLine, type LineBytes, type LineSink } from './access-log.js'
import { BurstGate } from './burst.js'
import { BatchSink, stdoutSink } from './log-sink.js'
import { channels, reportError, type HttpRequestEnd, type ProcessError, type RateLimitStoreState, type ServerStateChange, type TcpConnectionEnd } from './events.js'

export type { Logger }

const DROPPED = Object.assign(new Error('log lines dropped: stdout is not being read'), { code: 'LOG_DROPPED' })

/**
 * One pino root per process, writing asynchronously and in batches (log-sink.ts) so the hot path
 * never blocks on stdout.
 * `dest` lets tests and embedders capture the lines.
 */
export function createLogger (config: LogConfig, dest?: pino.DestinationStream): Logger {
  // A reader that stops reading (a stuck log shipper) must not grow the proxy without bound:
  // lines past the limit are dropped and counted (tandem_errors_total{component="log"}).
  const stream = dest ?? stdoutSink(() => { reportError('log', DROPPED) })
  return pino({
    level: config.level,
    // Words, as operators grep for them (`"level":"warn"`).
    formatters: { level: (label) => ({ level: label }) },
    base: { pid: process.pid },
    redact: { paths: ['token', 'secret', '*.token', '*.secret', 'headers.authorization'], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, stream)
}

/**
 * Subscribes the access log and state-change log to the core's events; returns the unsubscribe.
 * Access lines are written when a request or TCP connection ends, one plain object each.
 */
export function attachLogs (log: Logger, config: LogConfig): () => void {
  const upstreams = log.child({ component: 'upstream' })
  const ratelimit = log.child({ component: 'ratelimit' })
  // Access lines bypass pino's object path (see access-log.ts) but go to the same destination.
  // `log.access` alone decides them, as nginx's access_log beside its error_log level.
  const sink = (log as unknown as Record<symbol, LineSink>)[pino.symbols.streamSym] as LineSink
  const time = isoClock()
  const pid = process.pid
  const prefix = new HttpPrefix(pid)
  // HTTP lines are written in place: into the batch itself on stdout (BatchSink), decoded to a
  // string for any other sink.
  const lines: LineBytes = sink instanceof BatchSink ? sink : new StringLines(sink)
  const onHttp = (m: unknown): void => {
    const e = m as HttpRequestEnd
    const w = lines.reserve(httpLineBound(e))
    if (w === undefined) return
    writeHttpLine(w, e, prefix.at(Date.now()))
    lines.commit(w)
  }
  const onTcp = (m: unknown): void => {
    sink.write(accessLine('tcp', m as TcpConnectionEnd, time(), pid))
  }
  const onState = (m: unknown): void => {
    const e = m as ServerStateChange
    upstreams.warn({ upstream: e.upstream, server: e.server, from: e.from, to: e.to, reason: e.reason }, 'server state changed')
  }
  const errors = log.child({ component: 'errors' })
  const gate = new BurstGate(systemClock)
  const onError = (m: unknown): void => {
    const e = m as ProcessError
    const pass = gate.pass(e.component + '\0' + e.code)
    if (pass === undefined) return
    errors.error({ where: e.component, code: e.code, ...(pass.suppressed > 0 ? { suppressed: pass.suppressed } : {}) }, e.message)
  }
  channels.error.subscribe(onError)
  // The Redis store reports each outage once (not per request), and its end.
  const onStore = (m: unknown): void => {
    const e = m as RateLimitStoreState
    if (e.state === 'down') ratelimit.warn({ reason: e.reason, error: e.message }, 'rate-limit store (Redis) unavailable; answering by onError until it is back')
    else ratelimit.info('rate-limit store (Redis) is back; shared limiting resumed')
  }
  channels.rateLimitStoreState.subscribe(onStore)
  if (config.access) {
    channels.httpRequestEnd.subscribe(onHttp)
    channels.tcpConnectionEnd.subscribe(onTcp)
  }
  channels.serverState.subscribe(onState)
  return () => {
    if (config.access) {
      channels.httpRequestEnd.unsubscribe(onHttp)
      channels.tcpConnectionEnd.unsubscribe(onTcp)
    }
    channels.serverState.unsubscribe(onState)
    channels.error.unsubscribe(onError)
    channels.rateLimitStoreState.unsubscribe(onStore)
  }
}
