import { Duplex } from 'node:stream'
import tls from 'node:tls'
import { beforeAll, describe, expect, it } from 'vitest'
import { createSniMatcher, MAX_HELLO_RECORDS, parseClientHello, RecordBoundaries } from '../../../src/listener/sni.js'

/** The first flight a real node:tls client sends, captured from an in-memory stream (no socket). */
function captureClientHello (servername?: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let timer: NodeJS.Timeout | undefined
    const wire = new Duplex({
      read () {},
      write (chunk: Buffer, _enc, cb) {
        chunks.push(chunk)
        // The hello is written in one go; settle on the next macrotask.
        clearTimeout(timer)
        timer = setTimeout(() => { resolve(Buffer.concat(chunks)); client.destroy() }, 0)
        cb()
      },
    })
    const client = tls.connect({ socket: wire, ...(servername === undefined ? {} : { servername }) })
    client.on('error', () => {})
  })
}

/** A ClientHello handshake message built by hand: header, body, optional extensions. */
function handshake (extensions?: Buffer): Buffer {
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]), Buffer.alloc(32, 7), // version, random
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // null compression
    extensions === undefined ? Buffer.alloc(0) : Buffer.concat([u16(extensions.length), extensions]),
  ])
  return Buffer.concat([Buffer.from([0x01]), u24(body.length), body])
}

function sniExtension (...names: Array<[number, Buffer | string]>): Buffer {
  const list = Buffer.concat(names.map(([type, name]) => {
    const b = Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1')
    return Buffer.concat([Buffer.from([type]), u16(b.length), b])
  }))
  const data = Buffer.concat([u16(list.length), list])
  return extension(0, data)
}

function extension (type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data])
}

/** Frames a handshake message into records of at most `size` bytes each. */
function records (hs: Buffer, size = 1 << 14): Buffer {
  const out: Buffer[] = []
  for (let o = 0; o < hs.length; o += size) {
    const frag = hs.subarray(o, o + size)
    out.push(Buffer.from([0x16, 0x03, 0x01]), u16(frag.length), frag)
  }
  return Buffer.concat(out)
}

function u16 (n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}

function u24 (n: number): Buffer {
  return Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff])
}

describe('parseClientHello', () => {
  let named: Buffer
  let unnamed: Buffer
  beforeAll(async () => {
    named = await captureClientHello('API.Example.com')
    unnamed = await captureClientHello()
  })

  it('reads the server name of a real node:tls ClientHello, lower-cased', () => {
    expect(parseClientHello(named)).toEqual({ kind: 'tls', serverName: 'api.example.com' })
  })

  it('a real hello without SNI is TLS without a name', () => {
    expect(parseClientHello(unnamed)).toEqual({ kind: 'tls' })
  })

  it('every strict prefix of a hello needs more', () => {
    for (let n = 0; n < named.length; n++) {
      expect(parseClientHello(named.subarray(0, n)), `prefix ${n}`).toEqual({ kind: 'need-more' })
    }
  })

  it('reassembles a hello split over several records, and needs more until the last one', () => {
    const hs = named.subarray(5, 5 + named.readUInt16BE(3))
    for (const size of [Math.ceil(hs.length / MAX_HELLO_RECORDS), 100, 200]) {
      const framed = records(hs, size)
      expect(parseClientHello(framed), `records of ${size}`).toEqual({ kind: 'tls', serverName: 'api.example.com' })
      expect(parseClientHello(framed.subarray(0, framed.length - 1))).toEqual({ kind: 'need-more' })
    }
  })

  it(`a hello may span ${MAX_HELLO_RECORDS} records, not one more (regression: quadratic preread)`, () => {
    const hs = named.subarray(5, 5 + named.readUInt16BE(3))
    // n - 1 one-byte records, then the rest in one.
    const inRecords = (n: number): Buffer => Buffer.concat([records(hs.subarray(0, n - 1), 1), records(hs.subarray(n - 1))])
    expect(parseClientHello(inRecords(MAX_HELLO_RECORDS))).toEqual({ kind: 'tls', serverName: 'api.example.com' })
    expect(parseClientHello(inRecords(MAX_HELLO_RECORDS + 1))).toEqual({ kind: 'not-tls' })
    // The audit's bytes: a hello announced as 0xffffff bytes, then one byte per record, never complete.
    const attack = Buffer.from('160301000101' + '1603010001ff'.repeat(3) + '160301000100'.repeat(2800), 'hex')
    expect(parseClientHello(attack)).toEqual({ kind: 'not-tls' })
    expect(parseClientHello(attack.subarray(0, 6 * MAX_HELLO_RECORDS))).toEqual({ kind: 'need-more' })
  })

  it('ignores what follows the hello (early data, a second record)', () => {
    expect(parseClientHello(Buffer.concat([named, Buffer.from('trailing')]))).toEqual({ kind: 'tls', serverName: 'api.example.com' })
  })

  it('hand-built hellos: name after other extensions, no extensions, non-host entries, bad names', () => {
    const cases: Array<[string, Buffer, unknown]> = [
      ['sni after two others', handshake(Buffer.concat([extension(10, Buffer.from([0, 2, 0, 29])), extension(35, Buffer.alloc(0)), sniExtension([0, 'b.example.org'])])), { kind: 'tls', serverName: 'b.example.org' }],
      ['no extensions block', handshake(), { kind: 'tls' }],
      ['empty extensions block', handshake(Buffer.alloc(0)), { kind: 'tls' }],
      ['no sni extension', handshake(extension(10, Buffer.from([0, 2, 0, 29]))), { kind: 'tls' }],
      ['first host_name entry wins', handshake(sniExtension([1, 'x'], [0, 'first.test'], [0, 'second.test'])), { kind: 'tls', serverName: 'first.test' }],
      ['only a non-host entry', handshake(sniExtension([1, 'opaque'])), { kind: 'tls' }],
      ['name with a space', handshake(sniExtension([0, 'a b.test'])), { kind: 'tls' }],
      ['name with a NUL', handshake(sniExtension([0, Buffer.from('a\0.test', 'latin1')])), { kind: 'tls' }],
      ['empty name', handshake(sniExtension([0, ''])), { kind: 'tls' }],
    ]
    for (const [what, hs, expected] of cases) expect(parseClientHello(records(hs)), what).toEqual(expected)
  })

  it('not TLS: plain text protocols, wrong record or handshake types, bad lengths', () => {
    const hs = handshake(sniExtension([0, 'a.test']))
    const serverHello = Buffer.from(hs)
    serverHello[0] = 0x02
    const cases: Array<[string, Buffer]> = [
      ['http', Buffer.from('GET / HTTP/1.1\r\n')],
      ['redis', Buffer.from('*1\r\n$4\r\nPING\r\n')],
      ['proxy header', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
      ['alert record', Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])],
      ['record version 2', Buffer.from([0x16, 0x02, 0x00, 0x00, 0x05, 1, 0, 0, 1, 0])],
      ['empty record', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])],
      ['oversized record', Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01, 0x01])],
      ['server hello', records(serverHello)],
      ['server hello, first byte only', records(serverHello).subarray(0, 6)],
    ]
    for (const [what, bytes] of cases) expect(parseClientHello(bytes), what).toEqual({ kind: 'not-tls' })
  })

  it('malformed hello bodies are not trusted', () => {
    const good = handshake(sniExtension([0, 'a.test']))
    const extOverrun = Buffer.from(good)
    // The sni extension's own length (after the extensions length) claims more than exists.
    const extStart = 4 + 2 + 32 + 1 + 4 + 2 + 2
    extOverrun.writeUInt16BE(0xfff0, extStart + 2)
    const listOverrun = Buffer.from(good)
    listOverrun.writeUInt16BE(0x0100, extStart + 4)
    const truncated = Buffer.from(good.subarray(0, 4 + 2 + 32 + 1 + 1))
    truncated.writeUIntBE(truncated.length - 4, 1, 3)
    for (const [what, hs] of [['extension overrun', extOverrun], ['name list overrun', listOverrun], ['truncated body', truncated]] as const) {
      expect(parseClientHello(records(hs)), what).toEqual({ kind: 'not-tls' })
    }
  })

  it('an SSLv2-compatible hello is TLS without a name', () => {
    expect(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01]))).toEqual({ kind: 'tls' })
    expect(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]))).toEqual({ kind: 'tls' })
    expect(parseClientHello(Buffer.from([0x80, 0x2e, 0x01]))).toEqual({ kind: 'need-more' })
    expect(parseClientHello(Buffer.from([0x80, 0x2e, 0x05, 0x03]))).toEqual({ kind: 'not-tls' })
  })
})

describe('RecordBoundaries', () => {
  const hs = handshake(sniExtension([0, 'a.test']))

  it('reports each completed record once, however the bytes are cut', () => {
    const framed = records(hs, 7)
    const count = Math.ceil(hs.length / 7)
    for (const cut of [1, 2, 5, 6, 12, 13, framed.length]) {
      const gate = new RecordBoundaries()
      const completions: number[] = []
      for (let o = 0; o < framed.length; o += cut) {
        if (gate.push(framed.subarray(o, o + cut))) completions.push(Math.min(o + cut, framed.length))
      }
      // A chunk completes a record when it reaches a record's end (every 12 bytes here).
      const ends = Array.from({ length: count }, (_, i) => Math.min((i + 1) * 12, framed.length))
      const expected = [...new Set(ends.map((end) => Math.min(Math.ceil(end / cut) * cut, framed.length)))]
      expect(completions, `chunks of ${cut}`).toEqual(expected)
    }
  })

  it('lets every chunk through once the bytes are not well-formed records', () => {
    for (const bytes of ['GET / HTTP/1.1\r\n', '\x80\x2e\x01', '\x16\x02', '\x16\x03\x01\x00\x00', '\x16\x03\x01\x40\x01']) {
      const gate = new RecordBoundaries()
      expect(gate.push(Buffer.from(bytes, 'latin1')), JSON.stringify(bytes)).toBe(true)
      expect(gate.push(Buffer.from('x')), JSON.stringify(bytes)).toBe(true)
    }
    const gate = new RecordBoundaries()
    expect(gate.push(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x02, 0x01]))).toBe(false)
    expect(gate.push(Buffer.from([0x00]))).toBe(true)
  })
})

describe('createSniMatcher', () => {
  const routes = [
    { name: 'exact', match: { sni: 'api.example.com' }, upstream: 'api' },
    { name: 'wild', match: { sni: '*.Example.com' }, upstream: 'wild' },
    { name: 'shadowed', match: { sni: 'www.example.com' }, upstream: 'never' },
    { name: 'other', match: { sni: '*.example.org' }, upstream: 'org' },
  ]
  const match = createSniMatcher(routes)

  it('exact and wildcard, case-insensitive, first match wins', () => {
    const table: Array<[string | undefined, string | undefined]> = [
      ['api.example.com', 'exact'],
      ['API.EXAMPLE.COM', 'exact'],
      ['www.example.com', 'wild'],
      ['a.b.example.com', 'wild'],
      ['example.com', undefined],
      ['xexample.com', undefined],
      ['.example.com', undefined],
      ['x.example.org', 'other'],
      ['example.net', undefined],
      [undefined, undefined],
    ]
    for (const [name, want] of table) expect(match(name)?.name, String(name)).toBe(want)
  })

  it('no routes match nothing', () => {
    expect(createSniMatcher([])('a.test')).toBeUndefined()
  })
})
