import { describe, expect, it } from 'vitest'
import { afterError, isServerFailureStatus, type AttemptState, type UpstreamError } from '../../../src/upstream/retry-policy.js'

const base: AttemptState = { idempotent: true, headersSent: false, responseStarted: false, replayable: true, freshRetryUsed: false, attempts: 1, retries: 1 }
const err = (code: string, bytesRead?: number): UpstreamError => Object.assign(new Error(code), { code, ...(bytesRead !== undefined && { socket: { bytesRead } }) })

describe('afterError', () => {
  it('a reset on a reused socket before any response byte: the keep-alive race, idempotent only', () => {
    expect(afterError(err('UND_ERR_SOCKET', 120), base)).toEqual({ action: 'fresh' })
    expect(afterError(err('ECONNRESET'), base)).toEqual({ action: 'fresh' })
    expect(afterError(err('UND_ERR_SOCKET', 120), { ...base, idempotent: false })).toEqual({ action: 'fail', reason: 'reset', code: 'UPSTREAM_RESET' })
    expect(afterError(err('UND_ERR_SOCKET', 120), { ...base, freshRetryUsed: true })).toEqual({ action: 'next', reason: 'reset', code: 'UPSTREAM_RESET' })
  })

  it('a reset after response bytes is never a race and never re-sent', () => {
    expect(afterError(err('UND_ERR_SOCKET', 30), { ...base, responseStarted: true })).toEqual({ action: 'fail', reason: 'reset', code: 'UPSTREAM_RESET' })
    expect(afterError(err('UND_ERR_SOCKET', 30), { ...base, headersSent: true, responseStarted: true })).toEqual({ action: 'fail', reason: 'reset', code: 'UPSTREAM_RESET' })
  })

  it('a reset on a fresh socket: next server for idempotent methods, within retries', () => {
    expect(afterError(err('UND_ERR_SOCKET', 0), base)).toEqual({ action: 'next', reason: 'reset', code: 'UPSTREAM_RESET' })
    expect(afterError(err('UND_ERR_SOCKET', 0), { ...base, attempts: 2 })).toEqual({ action: 'fail', reason: 'reset', code: 'UPSTREAM_RESET' })
    expect(afterError(err('UND_ERR_SOCKET', 0), { ...base, idempotent: false })).toEqual({ action: 'fail', reason: 'reset', code: 'UPSTREAM_RESET' })
  })

  it('a failed connect may go elsewhere for any method, unless a body was already streamed', () => {
    expect(afterError(err('ECONNREFUSED'), { ...base, idempotent: false })).toEqual({ action: 'next', reason: 'connect', code: 'UPSTREAM_CONNECT_FAILED' })
    expect(afterError(err('UND_ERR_CONNECT_TIMEOUT'), { ...base, idempotent: false })).toEqual({ action: 'next', reason: 'timeout', code: 'UPSTREAM_CONNECT_TIMEOUT' })
    expect(afterError(err('ECONNREFUSED'), { ...base, replayable: false })).toEqual({ action: 'fail', reason: 'connect', code: 'UPSTREAM_CONNECT_FAILED' })
  })

  it('a response timeout is never retried; a request undici cannot build is the client\'s', () => {
    expect(afterError(err('UND_ERR_HEADERS_TIMEOUT'), base)).toEqual({ action: 'fail', reason: 'timeout', code: 'UPSTREAM_TIMEOUT' })
    expect(afterError(err('UND_ERR_INVALID_ARG'), base)).toEqual({ action: 'client' })
  })

  it('the proxy out of descriptors or memory blames nobody upstream and retries nothing', () => {
    for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']) expect(afterError(err(code), base)).toEqual({ action: 'local' })
  })
})

describe('isServerFailureStatus', () => {
  // Was 500, 502, 503 and 504 only: a server answering 507 (or any other 5xx) for ever was never
  // ejected, against the spec's "consecutive failures (..., 5xx)".
  it('counts every 5xx but 501 (a client provokes it with a method the server lacks)', () => {
    const all = [200, 400, 404, 429, 499, 500, 501, 502, 503, 504, 505, 507, 511, 599, 600]
    expect(all.filter(isServerFailureStatus)).toEqual([500, 502, 503, 504, 505, 507, 511, 599])
  })
})
