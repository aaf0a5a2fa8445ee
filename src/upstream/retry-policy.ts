import type { ErrorCode } from '../errors.js'

/**
 * What to do after an attempt failed (pure): blame whom, and whether the request may be sent
 * again. A request is re-sent only when the server cannot have acted on it: it never got it (the
 * connect failed), or its method is idempotent and no byte of an answer came back. A POST that
 * may have reached a server is never sent twice (RFC 9110 §9.2.2).
 */

export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])
const RESET_ERRORS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED'])
/** undici refused to build the request from what the client sent: the client's fault (400). */
const REQUEST_ERRORS = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN'])
/** This process ran out of something (descriptors, buffers, memory): never the server's fault. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])
export type Failure = 'connect' | 'timeout' | 'reset' | 'status'

/**
 * Upstream statuses that count as a server failure for passive ejection: every 5xx but 501,
 * which a client provokes against a healthy server with a method it does not implement (PATCH,
 * say). 505 cannot be provoked: the proxy always speaks HTTP/1.1 upstream. No 4xx counts.
 */
export function isServerFailureStatus (status: number): boolean {
  return status >= 500 && status <= 599 && status !== 501
}

export interface UpstreamError extends Error {
  code?: string
  /** undici's socket details on UND_ERR_SOCKET. */
  socket?: { bytesRead?: number }
}

export interface AttemptState {
  readonly idempotent: boolean
  /** The response head was relayed to the client. */
  readonly headersSent: boolean
  /** A byte of this attempt's response arrived. */
  readonly responseStarted: boolean
  /** The upstream has seen no byte of a body we cannot send again. */
  readonly replayable: boolean
  readonly freshRetryUsed: boolean
  /** Attempts made so far, this one included. */
  readonly attempts: number
  readonly retries: number
}

export type RetryDecision =
  /** The client sent what no request can be built from: 400, no verdict on the server. */
  | { readonly action: 'client' }
  /** The proxy itself is out of resources (EMFILE): 503, no verdict on the server, no retry. */
  | { readonly action: 'local' }
  /** The keep-alive race: same server, new connection, no verdict on the server. */
  | { readonly action: 'fresh' }
  /** Blame the server; try another one if there is one. */
  | { readonly action: 'next', readonly reason: Failure, readonly code: ErrorCode }
  /** Blame the server and answer the client with `code`. */
  | { readonly action: 'fail', readonly reason: Failure, readonly code: ErrorCode }

export function classify (err: UpstreamError): { reason: Failure, code: ErrorCode } {
  const code = err.code ?? ''
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { reason: 'timeout', code: 'UPSTREAM_CONNECT_TIMEOUT' }
  if (CONNECT_ERRORS.has(code)) return { reason: 'connect', code: 'UPSTREAM_CONNECT_FAILED' }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { reason: 'timeout', code: 'UPSTREAM_TIMEOUT' }
  if (RESET_ERRORS.has(code)) return { reason: 'reset', code: 'UPSTREAM_RESET' }
  return { reason: 'reset', code: 'UPSTREAM_FAILED' }
}

/**
 * True when the socket had carried earlier exchanges: the keep-alive race, not a dead server.
 * Precondition: no byte of this response arrived, so every byte the socket read was an earlier
 * response's. (Errors without socket details, such as a bare ECONNRESET, count as reused.)
 */
function onReusedSocket (err: UpstreamError): boolean {
  return err.socket === undefined || (err.socket.bytesRead ?? 0) > 0
}

export function afterError (err: UpstreamError, s: AttemptState): RetryDecision {
  if (REQUEST_ERRORS.has(err.code ?? '')) return { action: 'client' }
  if (LOCAL_ERRORS.has(err.code ?? '')) return { action: 'local' }
  const { reason, code } = classify(err)
  const unanswered = !s.headersSent && !s.responseStarted && s.replayable
  if (unanswered && reason === 'reset' && s.idempotent && !s.freshRetryUsed && onReusedSocket(err)) return { action: 'fresh' }
  const neverSent = reason === 'connect' || code === 'UPSTREAM_CONNECT_TIMEOUT'
  const safe = (neverSent && !s.headersSent && s.replayable) || (unanswered && reason === 'reset' && s.idempotent)
  // The stale keep-alive retry on a new connection blames nobody: it is not taken from `retries`.
  const counted = s.attempts - (s.freshRetryUsed ? 1 : 0)
  return { action: safe && counted <= s.retries ? 'next' : 'fail', reason, code }
}
