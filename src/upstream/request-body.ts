import type { Readable } from 'node:stream'

/**
 * A client's request body as the attempts upstream read it. It streams with backpressure: a
 * chunk is read from the client only when an attempt asks for one, and nothing waits for the
 * whole body. The first `limit` bytes are kept, so a retry (another server after a refused
 * connect) sends them again before it reads on; past that a body can no longer be replayed.
 * One reader of the client stream serves every attempt: a failed attempt's read may still be
 * pending, and two readers of one stream would split its chunks between them.
 */
export class ReplayableBody {
  /** Client bytes read so far (each counted once, however many attempts sent it). */
  bytes = 0
  private readonly kept: Buffer[] = []
  private keptBytes = 0
  /** Chunks read from the client; those past `kept.length` were not kept. */
  private count = 0
  private ended = false
  private pending: Promise<IteratorResult<Buffer>> | undefined
  private readonly source: AsyncIterator<Buffer>

  constructor (req: Readable, private readonly limit: number) {
    this.source = req.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]()
  }

  /** Another attempt may send the body from its start: everything read so far was kept. */
  get replayable (): boolean { return this.count === this.kept.length }

  /** One attempt's body: what earlier attempts read, then the rest from the client. */
  async * attempt (): AsyncGenerator<Buffer> {
    let pos = 0
    for (;;) {
      if (pos < this.kept.length) {
        yield this.kept[pos++] as Buffer
        continue
      }
      // Read for another attempt and not kept: this one cannot send the body whole.
      if (pos < this.count) throw new Error('request body no longer replayable')
      if (this.ended) return
      const r = await this.read()
      if (r.done === true) return
      pos++
      yield r.value
    }
  }

  private async read (): Promise<IteratorResult<Buffer>> {
    this.pending ??= this.source.next().then((r) => {
      this.pending = undefined
      if (r.done === true) {
        this.ended = true
        return r
      }
      const chunk = r.value
      this.bytes += chunk.length
      if (this.kept.length === this.count && this.keptBytes + chunk.length <= this.limit) {
        this.kept.push(chunk)
        this.keptBytes += chunk.length
      }
      this.count++
      return r
    })
    return await this.pending
  }
}
