import { describe, expect, it } from 'vitest'
import { TrustedProxies, unmapV4 } from '../../../src/listener/client-ip.js'

describe('TrustedProxies', () => {
  const cases: Array<{ name: string, trusted: string[], peer: string, xff?: string | string[], client: string }> = [
    { name: 'no trusted proxies: the peer, whatever XFF says', trusted: [], peer: '198.51.100.7', xff: '1.2.3.4', client: '198.51.100.7' },
    { name: 'untrusted peer: XFF ignored', trusted: ['10.0.0.0/8'], peer: '198.51.100.7', xff: '1.2.3.4', client: '198.51.100.7' },
    { name: 'trusted peer: rightmost XFF entry', trusted: ['10.0.0.0/8'], peer: '10.1.2.3', xff: '1.2.3.4, 203.0.113.5', client: '203.0.113.5' },
    { name: 'a chain of trusted hops is skipped', trusted: ['10.0.0.0/8'], peer: '10.1.2.3', xff: '203.0.113.5, 10.9.9.9', client: '203.0.113.5' },
    { name: 'repeated XFF headers are joined', trusted: ['10.0.0.0/8'], peer: '10.1.2.3', xff: ['203.0.113.5', '10.9.9.9'], client: '203.0.113.5' },
    { name: 'garbage in XFF stops the walk', trusted: ['10.0.0.0/8'], peer: '10.1.2.3', xff: 'nonsense, 10.9.9.9', client: '10.9.9.9' },
    { name: 'IPv4-mapped peer matches an IPv4 rule', trusted: ['127.0.0.1'], peer: '::ffff:127.0.0.1', xff: '192.0.2.1', client: '192.0.2.1' },
    { name: 'IPv6 CIDR', trusted: ['fd00::/8'], peer: 'fd00::1', xff: '2001:db8::9', client: '2001:db8::9' },
    { name: 'no XFF: the peer', trusted: ['10.0.0.0/8'], peer: '10.1.2.3', client: '10.1.2.3' },
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(new TrustedProxies(c.trusted).clientIp(c.peer, c.xff)).toBe(c.client)
    })
  }

  it('unmapV4 strips only IPv4-mapped prefixes', () => {
    expect(unmapV4('::ffff:10.0.0.1')).toBe('10.0.0.1')
    expect(unmapV4('::ffff:abcd')).toBe('::ffff:abcd')
    expect(unmapV4('2001:db8::1')).toBe('2001:db8::1')
  })
})
