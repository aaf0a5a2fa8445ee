import { proxyHeader } from './proxy-protocol.js'

/** Bytes kept from the client before the upstream is connected; beyond this the client is paused. */
const EARLY_LIMIT = 64 * 1024

/**
 * What the client sent before its upstream exists: the TLS ClientHello an SNI route waits for,
 * or the first bytes of a protocol where the client speaks first. Replayed, once, after the
 * PROXY header; kept while connects fail over, so the next server gets them too.
 */
export class EarlyBytes {
  /** Bytes held. */
  length = 0
  private chunks?: Buffer[]

  /** Copies `chunk` (its memory is the relay's shared read buffer); false once the limit is reached. */
  push (chunk: Buffer): boolean {
    ;(this.chunks ??= []).push(Buffer.from(chunk))
    this.length += chunk.length
    return this.length < EARLY_LIMIT
  }

  /** Everything held, as one Buffer (joined once). */
  bytes (): Buffer {
    const chunks = this.chunks
    if (chunks === undefined) return Buffer.alloc(0)
    if (chunks.length === 1) return chunks[0] as Buffer
    const joined = Buffer.concat(chunks, this.length)
    this.chunks = [joined]
    return joined
  }

  /**
   * The first write to the upstream: the PROXY header (unless `version` is off) and the early
   * bytes, as one Buffer; undefined when there is nothing to send. The bytes are released.
   */
  replay (version: 'off' | 'v1' | 'v2', client: { address?: string, port?: number }, local: { address: string, port: number } | undefined): Buffer | undefined {
    const early = this.length > 0 ? this.bytes() : undefined
    this.chunks = undefined
    if (version === 'off') return early
    const header = proxyHeader(version, client.address === undefined
      ? undefined
      : { sourceAddress: client.address, sourcePort: client.port ?? 0, destAddress: local?.address ?? '', destPort: local?.port ?? 0 })
    return early === undefined ? header : Buffer.concat([header, early])
  }
}
