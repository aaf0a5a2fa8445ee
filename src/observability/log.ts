import pino, { type Logger } from 'pino'
import type { LogConfig } from '../config/types.js'
import { accessLine, isoClock, type LineSink } from './access-log.js'
import { channels, type HttpRequestEnd, type ServerStateChange, type TcpConnectionEnd } from './events.js'

export type { Logger }

/**
 * One pino root per process, writing asynchronously so the hot path never blocks on stdout.
 * `dest` lets tests and embedders capture the lines.
 */
export function createLogger (config: LogConfig, dest?: pino.DestinationStream): Logger {
  const stream = dest ?? pino.destination({ dest: 1, sync: false })
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
  const access = log.child({ component: 'access' })
  const upstreams = log.child({ component: 'upstream' })
  // Access lines bypass pino's object path (see access-log.ts) but go to the same destination,
  // after pino's own level check.
  const sink = (log as unknown as Record<symbol, LineSink>)[pino.symbols.streamSym] as LineSink
  const time = isoClock()
  const pid = process.pid
  const onHttp = (m: unknown): void => {
    if (access.isLevelEnabled('info')) sink.write(accessLine('http', m as HttpRequestEnd, time(), pid))
  }
  const onTcp = (m: unknown): void => {
    if (access.isLevelEnabled('info')) sink.write(accessLine('tcp', m as TcpConnectionEnd, time(), pid))
  }
  const onState = (m: unknown): void => {
    const e = m as ServerStateChange
    upstreams.warn({ upstream: e.upstream, server: e.server, from: e.from, to: e.to, reason: e.reason }, 'server state changed')
  }
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
  }
}
