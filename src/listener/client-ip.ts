import { BlockList, isIPv4, isIPv6 } from 'node:net'

const SEEN_MAX = 1024

/**
 * Finds the client address behind trusted proxies: walk X-Forwarded-For from the right and stop
 * at the first hop that is not a trusted proxy (nginx's real_ip_recursive). Pure.
 */
export class TrustedProxies {
  private readonly list = new BlockList()
  /**
   * Answers already given, by address string: BlockList.check builds a SocketAddress (a native
   * handle) per call, about 0.3 µs, and a request asks for its connection's peer every time.
   * Bounded, since X-Forwarded-For hops are the client's to choose.
   */
  private readonly seen = new Map<string, boolean>()
  readonly empty: boolean

  constructor (cidrs: readonly string[]) {
    this.empty = cidrs.length === 0
    for (const cidr of cidrs) {
      const [addr = '', bits] = cidr.split('/')
      const family = isIPv6(addr) ? 'ipv6' : 'ipv4'
      if (bits === undefined) this.list.addAddress(addr, family)
      else this.list.addSubnet(addr, Number(bits), family)
    }
  }

  trusts (address: string): boolean {
    if (this.empty) return false
    let yes = this.seen.get(address)
    if (yes === undefined) {
      const plain = unmapV4(address)
      yes = this.list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6')
      if (this.seen.size >= SEEN_MAX) this.seen.clear()
      this.seen.set(address, yes)
    }
    return yes
  }

  /** The client address: the socket peer, or the rightmost untrusted X-Forwarded-For entry. */
  clientIp (peer: string, xff: string | string[] | undefined): string {
    const direct = unmapV4(peer)
    if (xff === undefined || !this.trusts(direct)) return direct
    const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',')
    let client = direct
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmapV4((hops[i] ?? '').trim())
      if (!isIPv4(hop) && !isIPv6(hop)) break
      client = hop
      if (!this.trusts(hop)) break
    }
    return client
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so IPv4 rules and logs see the plain form. */
export function unmapV4 (address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}
