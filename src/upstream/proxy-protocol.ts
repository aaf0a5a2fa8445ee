import { isIPv4, isIPv6 } from 'node:net'

/**
 * PROXY protocol header encoders (HAProxy's proxy-protocol.txt, versions 1 and 2). Pure.
 * The header is written first on the upstream connection so the server learns the real client.
 */
export interface ProxyAddresses {
  /** The client's address as Node reports it (may be IPv4-mapped IPv6 on a dual-stack socket). */
  readonly sourceAddress: string
  readonly sourcePort: number
  /** The address the client connected to (the listener's side of the accepted socket). */
  readonly destAddress: string
  readonly destPort: number
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V2_PROXY = 0x21 // version 2, command PROXY
const V2_TCP4 = 0x11
const V2_TCP6 = 0x21
const V2_UNSPEC = 0x00

type Family = { kind: 'tcp4', src: Uint8Array, dst: Uint8Array } | { kind: 'tcp6', src: Uint8Array, dst: Uint8Array }

export function proxyHeader (version: 'v1' | 'v2', addresses: ProxyAddresses | undefined): Buffer {
  return version === 'v1' ? encodeProxyV1(addresses) : encodeProxyV2(addresses)
}

/** `PROXY TCP4|TCP6 src dst sport dport\r\n`, or `PROXY UNKNOWN\r\n` when the family is unknown. */
export function encodeProxyV1 (a: ProxyAddresses | undefined): Buffer {
  const fam = a === undefined ? undefined : family(a)
  if (a === undefined || fam === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  const text = fam.kind === 'tcp4'
    ? `PROXY TCP4 ${v4Text(fam.src)} ${v4Text(fam.dst)} ${a.sourcePort} ${a.destPort}\r\n`
    : `PROXY TCP6 ${v6Text(fam.src)} ${v6Text(fam.dst)} ${a.sourcePort} ${a.destPort}\r\n`
  return Buffer.from(text, 'latin1')
}

/** The binary header; AF_UNSPEC (the receiver then uses the connection's own endpoints) when unknown. */
export function encodeProxyV2 (a: ProxyAddresses | undefined): Buffer {
  const fam = a === undefined ? undefined : family(a)
  const addrLen = fam === undefined ? 0 : fam.kind === 'tcp4' ? 12 : 36
  const out = Buffer.allocUnsafe(16 + addrLen)
  V2_SIGNATURE.copy(out, 0)
  out[12] = V2_PROXY
  out[13] = fam === undefined ? V2_UNSPEC : fam.kind === 'tcp4' ? V2_TCP4 : V2_TCP6
  out.writeUInt16BE(addrLen, 14)
  if (a === undefined || fam === undefined) return out
  const ipLen = fam.src.length
  out.set(fam.src, 16)
  out.set(fam.dst, 16 + ipLen)
  out.writeUInt16BE(a.sourcePort, 16 + 2 * ipLen)
  out.writeUInt16BE(a.destPort, 18 + 2 * ipLen)
  return out
}

/**
 * One family for both ends, as the protocol demands. Two IPv4 (or IPv4-mapped) ends give TCP4;
 * if either end is real IPv6, an IPv4 end is mapped into IPv6 (`::ffff:a.b.c.d`), as HAProxy does.
 */
function family (a: ProxyAddresses): Family | undefined {
  if (!validPort(a.sourcePort) || !validPort(a.destPort)) return undefined
  const src = ipBytes(a.sourceAddress)
  const dst = ipBytes(a.destAddress)
  if (src === undefined || dst === undefined) return undefined
  const src4 = asV4(src)
  const dst4 = asV4(dst)
  if (src4 !== undefined && dst4 !== undefined) return { kind: 'tcp4', src: src4, dst: dst4 }
  return { kind: 'tcp6', src: asV6(src), dst: asV6(dst) }
}

function validPort (p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 65535
}

/** 4 or 16 bytes; undefined when the text is not an IP address. */
export function ipBytes (text: string): Uint8Array | undefined {
  const zone = text.indexOf('%')
  const ip = zone >= 0 ? text.slice(0, zone) : text
  if (isIPv4(ip)) return v4Bytes(ip)
  if (isIPv6(ip)) return v6Bytes(ip)
  return undefined
}

function v4Bytes (ip: string): Uint8Array {
  const parts = ip.split('.')
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i])
  return out
}

/** Precondition: `ip` passed isIPv6 (so `::` occurs at most once and groups are valid). */
function v6Bytes (ip: string): Uint8Array {
  const out = new Uint8Array(16)
  const gap = ip.indexOf('::')
  const head = gap >= 0 ? ip.slice(0, gap) : ip
  const tail = gap >= 0 ? ip.slice(gap + 2) : ''
  const headGroups = groups(head)
  const tailGroups = groups(tail)
  for (let i = 0; i < headGroups.length; i++) writeGroup(out, i, headGroups[i] as number)
  const start = 8 - tailGroups.length
  for (let i = 0; i < tailGroups.length; i++) writeGroup(out, start + i, tailGroups[i] as number)
  return out
}

/** 16-bit groups; an embedded dotted quad at the end counts as two groups. */
function groups (part: string): number[] {
  if (part === '') return []
  const out: number[] = []
  for (const g of part.split(':')) {
    if (g.includes('.')) {
      const b = v4Bytes(g)
      out.push(((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number))
    } else {
      out.push(parseInt(g, 16))
    }
  }
  return out
}

function writeGroup (out: Uint8Array, index: number, value: number): void {
  out[index * 2] = value >> 8
  out[index * 2 + 1] = value & 0xff
}

/** The IPv4 address of a 4-byte or IPv4-mapped (`::ffff:0:0/96`) address. */
function asV4 (b: Uint8Array): Uint8Array | undefined {
  if (b.length === 4) return b
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return undefined
  return b[10] === 0xff && b[11] === 0xff ? b.subarray(12) : undefined
}

function asV6 (b: Uint8Array): Uint8Array {
  if (b.length === 16) return b
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out.set(b, 12)
  return out
}

function v4Text (b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
}

/** RFC 5952 text: lower case, the longest run (of two or more) of zero groups as `::`, mapped IPv4 dotted. */
function v6Text (b: Uint8Array): string {
  const v4 = asV4(b)
  if (v4 !== undefined) return `::ffff:${v4Text(v4)}`
  const g: number[] = []
  for (let i = 0; i < 16; i += 2) g.push(((b[i] as number) << 8) | (b[i + 1] as number))
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':')
  if (bestStart < 0) return hex(0, 8)
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`
}
