import { describe, expect, it } from 'vitest'
import { clientResponseHeaders, safeReason, upstreamRequestHeaders } from '../../../src/upstream/headers.js'

const info = { peer: '192.0.2.10', proto: 'http' as const, trusted: false }

function pairs (flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!])
  return out
}

describe('upstreamRequestHeaders', () => {
  it('keeps Host and end-to-end headers in order and spelling, drops hop-by-hop ones', () => {
    const raw = ['Host', 'a.example', 'Connection', 'keep-alive, X-Trace', 'X-Trace', '1', 'Keep-Alive', 'timeout=5',
      'Transfer-Encoding', 'chunked', 'Proxy-Authorization', 'Basic x', 'Upgrade', 'h2c', 'Expect', '100-continue', 'Accept', '*/*', 'Cookie', 'a=1', 'Cookie', 'b=2']
    expect(pairs(upstreamRequestHeaders(raw, info))).toEqual([
      ['Host', 'a.example'], ['Accept', '*/*'], ['Cookie', 'a=1'], ['Cookie', 'b=2'],
      ['x-forwarded-for', '192.0.2.10'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'a.example'],
    ])
  })

  it('appends to every X-Forwarded-For the client sent', () => {
    const raw = ['host', 'h', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2']
    expect(upstreamRequestHeaders(raw, info)).toContain('1.1.1.1, 2.2.2.2, 192.0.2.10')
  })

  it('believes X-Forwarded-Proto and -Host only from a trusted peer', () => {
    const raw = ['host', 'inner', 'x-forwarded-proto', 'https', 'x-forwarded-host', 'outer.example']
    const untrusted = pairs(upstreamRequestHeaders(raw, info))
    expect(untrusted).toContainEqual(['x-forwarded-proto', 'http'])
    expect(untrusted).toContainEqual(['x-forwarded-host', 'inner'])
    const trusted = pairs(upstreamRequestHeaders(raw, { ...info, trusted: true }))
    expect(trusted).toContainEqual(['x-forwarded-proto', 'https'])
    expect(trusted).toContainEqual(['x-forwarded-host', 'outer.example'])
  })

  it('keeps Connection/Upgrade for an upgrade handshake and TE: trailers always', () => {
    const raw = ['host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'TE', 'trailers, deflate']
    const out = pairs(upstreamRequestHeaders(raw, info, true))
    expect(out.slice(0, 4)).toEqual([['host', 'h'], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['TE', 'trailers']])
  })
})

describe('Forwarded, X-Real-IP and Host', () => {
  const raw = ['Host', 'inner', 'Forwarded', 'for=6.6.6.6', 'X-Real-IP', '6.6.6.6', 'Accept', '*/*']

  it('drops Forwarded and X-Real-IP from an untrusted peer, keeps them from a trusted one', () => {
    expect(pairs(upstreamRequestHeaders(raw, info)).slice(0, 2)).toEqual([['Host', 'inner'], ['Accept', '*/*']])
    expect(pairs(upstreamRequestHeaders(raw, { ...info, trusted: true })).slice(0, 4)).toEqual([['Host', 'inner'], ['Forwarded', 'for=6.6.6.6'], ['X-Real-IP', '6.6.6.6'], ['Accept', '*/*']])
  })

  it('replaces Host, and X-Forwarded-Host with it, by an absolute-form authority; adds Host when missing', () => {
    const out = pairs(upstreamRequestHeaders(raw, { ...info, host: 'api.example' }))
    expect(out[0]).toEqual(['Host', 'api.example'])
    expect(out).toContainEqual(['x-forwarded-host', 'api.example'])
    expect(pairs(upstreamRequestHeaders(['Accept', '*/*'], { ...info, host: 'api.example' })).slice(0, 2)).toEqual([['Accept', '*/*'], ['host', 'api.example']])
  })
})

describe('safeReason', () => {
  it('keeps a visible-ASCII reason, replaces obs-text and control bytes with the standard one', () => {
    expect(safeReason(200, 'Fine Thanks')).toBe('Fine Thanks')
    expect(safeReason(200, 'Успешно')).toBe('OK')
    expect(safeReason(404, 'caf\u00e9')).toBe('Not Found')
    expect(safeReason(299, 'x\u0001')).toBe('')
    expect(safeReason(200, undefined)).toBe('OK')
  })
})

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers and those named in Connection, keeps repeated Set-Cookie', () => {
    const raw = ['Set-Cookie', 'a=1', 'Connection', 'close, X-Internal', 'X-Internal', 'v', 'Set-Cookie', 'b=2', 'Transfer-Encoding', 'chunked', 'Content-Type', 'text/plain']
      .map((s) => Buffer.from(s))
    expect(pairs(clientResponseHeaders(raw))).toEqual([['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Content-Type', 'text/plain']])
  })
})
