import type { IncomingMessage } from 'node:http'
import type { HttpRequestEnd } from '../observability/events.js'
import type { Upstream } from './upstream.js'

/** What the listener decided about one request before it is forwarded. */
export interface ForwardRequest {
  readonly listener: string
  readonly route: string
  readonly upstream: Upstream
  /** Path and query as the upstream should see them (after stripPrefix). */
  readonly path: string
  /** Request headers for the upstream, already rewritten. */
  readonly headers: string[]
  readonly client: string
  readonly host: string
  readonly startedAt: number
  /** Headers the proxy adds to the client's response (rate-limit headers): name, value pairs. */
  readonly responseHeaders?: readonly string[] | undefined
}

/** The access-event fields every forwarded request (or upgrade) has. */
export function accessFields (req: Pick<IncomingMessage, 'method'>, fr: ForwardRequest, status: number, startedAt: number, now: number): Omit<HttpRequestEnd, 'bytesIn' | 'bytesOut' | 'retries'> {
  return {
    listener: fr.listener,
    route: fr.route,
    method: req.method ?? '',
    host: fr.host,
    path: fr.path,
    status,
    client: fr.client,
    upstream: fr.upstream.name,
    totalMs: now - startedAt,
  }
}
