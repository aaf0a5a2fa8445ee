import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { AdminAccess } from '../../../src/admin/access.js'
import type { AdminConfig } from '../../../src/config/types.js'

const TOKEN = 't0ken-0123456789'
const access = (host: string, token?: string): AdminAccess => new AdminAccess({ listen: { host, port: 9090 }, hosts: [], ...(token === undefined ? {} : { token }) } as unknown as AdminConfig)
/** A request as node:http hands it over: where it arrived, and its headers. */
const req = (localAddress: string, headers: Record<string, string>): IncomingMessage => ({ socket: { localAddress }, headers }) as unknown as IncomingMessage

describe('admin access: the Host check follows where a request arrived', () => {
  it('a read that arrives on a network address answers any Host; writes still need the token', () => {
    const a = access('0.0.0.0', TOKEN)
    for (const local of ['10.0.0.5', '::ffff:10.0.0.5', '2001:db8::5']) {
      expect(a.hostRefusal(req(local, { host: 'tandem-a:9090' }), '/api/status'), local).toBeUndefined()
    }
    expect(a.writeRefusal(req('10.0.0.5', { host: 'tandem-a:9090' }))?.status).toBe(401)
    expect(a.writeRefusal(req('10.0.0.5', { host: 'tandem-a:9090', authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' }))?.status).toBe(403)
    expect(a.writeRefusal(req('10.0.0.5', { host: 'tandem-a:9090', authorization: `Bearer ${TOKEN}` }))).toBeUndefined()
  })

  // Regression: the read rule was decided by the listen address, so a wildcard listen skipped the
  // check for loopback connections too, and a page rebinding its name to 127.0.0.1 read the status.
  it('a read that arrives on loopback is checked, on a wildcard listen too', () => {
    for (const [listen, local] of [['0.0.0.0', '127.0.0.1'], ['::', '::1'], ['0.0.0.0', '::ffff:127.0.0.1'], ['127.0.0.1', '127.0.0.1']] as const) {
      const a = access(listen, TOKEN)
      expect(a.hostRefusal(req(local, { host: 'evil.example:9090' }), '/api/status')?.status, `${listen} ${local}`).toBe(403)
      expect(a.hostRefusal(req(local, { host: 'evil.example:9090', authorization: `Bearer ${TOKEN}` }), '/api/status'), `${listen} ${local}`).toBeUndefined()
      expect(a.hostRefusal(req(local, { host: '127.0.0.1:9090' }), '/metrics')).toBeUndefined()
      expect(a.hostRefusal(req(local, { host: 'evil.example:9090' }), '/healthz')).toBeUndefined()
    }
  })
})
