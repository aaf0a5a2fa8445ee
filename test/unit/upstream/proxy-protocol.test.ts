import { describe, expect, it } from 'vitest'
import { encodeProxyV1, encodeProxyV2, ipBytes, proxyHeader } from '../../../src/upstream/proxy-protocol.js'

const SIG = '0d0a0d0a000d0a515549540a'

function addrs (sourceAddress: string, destAddress: string, sourcePort = 56324, destPort = 443) {
  return { sourceAddress, sourcePort, destAddress, destPort }
}

describe('PROXY protocol v1', () => {
  it('encodes each family exactly', () => {
    const table: Array<[string, ReturnType<typeof addrs> | undefined, string]> = [
      ['ipv4', addrs('192.0.2.1', '198.51.100.2'), 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n'],
      ['ipv6', addrs('2001:db8::1', '2001:DB8:0:0:0:0:0:2'), 'PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n'],
      ['both ends ipv4-mapped become TCP4', addrs('::ffff:127.0.0.1', '::ffff:10.0.0.5'), 'PROXY TCP4 127.0.0.1 10.0.0.5 56324 443\r\n'],
      ['hex-written mapped address', addrs('::ffff:7f00:1', '127.0.0.2'), 'PROXY TCP4 127.0.0.1 127.0.0.2 56324 443\r\n'],
      ['ipv4 client on an ipv6 address maps into TCP6', addrs('192.0.2.1', '2001:db8::2'), 'PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 443\r\n'],
      ['loopback v6 and a zone id', addrs('fe80::1%eth0', '::1', 1, 65535), 'PROXY TCP6 fe80::1 ::1 1 65535\r\n'],
      ['unknown address', addrs('not-an-ip', '127.0.0.1'), 'PROXY UNKNOWN\r\n'],
      ['bad port', addrs('127.0.0.1', '127.0.0.1', 70000), 'PROXY UNKNOWN\r\n'],
      ['no addresses at all', undefined, 'PROXY UNKNOWN\r\n'],
    ]
    for (const [what, a, want] of table) expect(encodeProxyV1(a).toString('latin1'), what).toBe(want)
  })

  it('stays within the 107-byte limit for the longest addresses', () => {
    const long = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
    const h = encodeProxyV1(addrs(long, long, 65535, 65535))
    expect(h.toString('latin1')).toBe(`PROXY TCP6 ${long} ${long} 65535 65535\r\n`)
    expect(h.length).toBeLessThanOrEqual(107)
  })

  it('compresses the longest zero run, leftmost on a tie', () => {
    expect(encodeProxyV1(addrs('2001:db8:0:0:1:0:0:1', '::')).toString('latin1'))
      .toBe('PROXY TCP6 2001:db8::1:0:0:1 :: 56324 443\r\n')
    expect(encodeProxyV1(addrs('1:0:2:3:4:5:6:7', '1:2:3:4:5:6:7:0')).toString('latin1'))
      .toBe('PROXY TCP6 1:0:2:3:4:5:6:7 1:2:3:4:5:6:7:0 56324 443\r\n')
  })
})

describe('PROXY protocol v2', () => {
  it('TCP4: signature, version/command, family, length, addresses, ports', () => {
    expect(encodeProxyV2(addrs('192.0.2.1', '198.51.100.2')).toString('hex')).toBe(
      SIG + '21' + '11' + '000c' + 'c0000201' + 'c6336402' + 'dc04' + '01bb')
  })

  it('TCP6', () => {
    expect(encodeProxyV2(addrs('2001:db8::1', '::1', 1, 2)).toString('hex')).toBe(
      SIG + '21' + '21' + '0024' +
      '20010db8000000000000000000000001' + '00000000000000000000000000000001' + '0001' + '0002')
  })

  it('IPv4-mapped ends become TCP4; a mixed pair maps the IPv4 end', () => {
    expect(encodeProxyV2(addrs('::ffff:127.0.0.1', '127.0.0.1', 5, 6)).toString('hex')).toBe(
      SIG + '2111000c' + '7f000001' + '7f000001' + '0005' + '0006')
    expect(encodeProxyV2(addrs('10.1.2.3', '::1', 5, 6)).toString('hex')).toBe(
      SIG + '21210024' + '00000000000000000000ffff0a010203' + '00000000000000000000000000000001' + '0005' + '0006')
  })

  it('unknown addresses give AF_UNSPEC with no address block', () => {
    expect(encodeProxyV2(undefined).toString('hex')).toBe(SIG + '21000000')
    expect(encodeProxyV2(addrs('x', 'y')).toString('hex')).toBe(SIG + '21000000')
  })

  it('proxyHeader picks the version', () => {
    const a = addrs('127.0.0.1', '127.0.0.1', 1, 2)
    expect(proxyHeader('v1', a).equals(encodeProxyV1(a))).toBe(true)
    expect(proxyHeader('v2', a).equals(encodeProxyV2(a))).toBe(true)
  })
})

describe('ipBytes', () => {
  it('parses every IPv6 spelling to 16 bytes', () => {
    const hex = (s: string): string | undefined => { const b = ipBytes(s); return b === undefined ? undefined : Buffer.from(b).toString('hex') }
    expect(hex('::')).toBe('0'.repeat(32))
    expect(hex('::1')).toBe('0'.repeat(31) + '1')
    expect(hex('1::')).toBe('0001' + '0'.repeat(28))
    expect(hex('1:2:3:4:5:6:7:8')).toBe('00010002000300040005000600070008')
    expect(hex('64:ff9b::192.0.2.33')).toBe('0064ff9b0000000000000000c0000221')
    expect(hex('::ffff:1.2.3.4')).toBe('00000000000000000000ffff01020304')
    expect(hex('fe80::abcd%25eth0')).toBe('fe80000000000000000000000000abcd')
    expect(hex('10.20.30.40')).toBe('0a141e28')
    expect(hex('1.2.3')).toBeUndefined()
    expect(hex('example.com')).toBeUndefined()
  })
})
