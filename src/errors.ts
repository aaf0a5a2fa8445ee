/**
 * Stable error codes and the single place that maps them to HTTP statuses.
 * Client-facing bodies come from here too, so they never carry upstream addresses.
 */
export const ErrorCodes = {
  NO_ROUTE: 404,
  RATE_LIMITED: 429,
  BAD_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  METHOD_NOT_ALLOWED: 405,
  VERSION_NOT_SUPPORTED: 505,
  HEADERS_TOO_LARGE: 431,
  /** A transfer coding tandem does not implement (RFC 9112 §6.1). */
  NOT_IMPLEMENTED: 501,
  /** An Expect other than 100-continue (RFC 9110 §10.1.1). */
  EXPECTATION_FAILED: 417,
  UPSTREAM_FAILED: 502,
  UPSTREAM_CONNECT_FAILED: 502,
  UPSTREAM_RESET: 502,
  NO_SERVER_UP: 503,
  /** This process ran out of descriptors or memory: the server is not to blame. */
  PROXY_OVERLOADED: 503,
  /** Waited `timeouts.response` in tandem's queue for a connection to the server: not the server's fault. */
  QUEUE_TIMEOUT: 503,
  /** A pair's standby (or fault) node with `standby: open`: bound, but only the active serves. */
  NOT_ACTIVE: 503,
  UPSTREAM_TIMEOUT: 504,
  UPSTREAM_CONNECT_TIMEOUT: 504,
} as const

export type ErrorCode = keyof typeof ErrorCodes

const messages: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
}

export class TandemError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message?: string, options?: ErrorOptions) {
    super(message ?? code, options)
    this.name = 'TandemError'
    this.code = code
  }
}

export function httpStatusFor (err: unknown): number {
  if (err instanceof TandemError) return ErrorCodes[err.code]
  return 502
}

/** Short body for a status; never includes details of the upstream. */
export function statusText (status: number): string {
  return messages[status] ?? 'Error'
}

/** A problem in a config file, located by line and column (1-based). */
export class ConfigError extends Error {
  constructor (
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${file}:${line}:${col}: ${path}: ${detail}`)
    this.name = 'ConfigError'
  }
}

/** Thrown by the loader with every problem found, not only the first. */
export class ConfigErrors extends Error {
  constructor (readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'))
    this.name = 'ConfigErrors'
  }
}
