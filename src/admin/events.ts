// Server-Sent Events for GET /api/events: a `status` snapshot about every second and an event on
// each state change as it happens: `server` (a server's state), `weight`, `role` and `sync` (the
// pair), `reload`. One timer and one subscription per channel serve every client,
// and both exist only while someone listens; each snapshot is serialised once for all clients.
// The dashboard's series come on the same stream: `history` (10 minutes of points and recent
// events) once on connect, then a `tick` with each new point.
import type { ServerResponse } from 'node:http'
import { channels, type ConfigReload, type PeerRoleChange, type PeerSync, type ServerStateChange, type ServerWeightChange } from '../observability/events.js'

const STATUS_EVERY_MS = 1000
// A client that stops reading is dropped once this much is queued for it, rather than buffered.
const MAX_QUEUED = 1 << 20
/** Event streams open at once: dashboards and tails, not a crowd (the endpoint needs no token). */
export const MAX_CLIENTS = 32

export class EventStream {
  private readonly clients = new Set<ServerResponse>()
  /** Per client, what may queue before it counts as not reading: more for one that got a big history. */
  private readonly allowance = new WeakMap<ServerResponse, number>()
  private timer: NodeJS.Timeout | undefined
  /** The history frame, built once per dashboard point for every client that connects meanwhile. */
  private historyFrame: Buffer | undefined

  /**
   * `snapshot` builds the status JSON; called once per tick while clients are connected.
   * `history`, when given, is sent to each new client after its first snapshot.
   */
  constructor (private readonly snapshot: () => unknown, private readonly history?: () => unknown) {}

  get size (): number { return this.clients.size }

  /**
   * Takes over `res` as an event stream until the client goes away or close() runs; answers 503
   * past MAX_CLIENTS (each stream may hold MAX_QUEUED and the history).
   */
  add (res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5', connection: 'close' })
      res.end(JSON.stringify({ error: `too many event streams (${MAX_CLIENTS}); close one, or poll /api/status` }) + '\n')
      return
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    })
    res.write('retry: 2000\n\n')
    this.clients.add(res)
    const drop = (): void => { this.remove(res) }
    res.on('close', drop)
    res.on('error', drop)
    if (this.clients.size === 1) this.start()
    this.send(res, frame('status', this.snapshotJson()))
    if (this.history !== undefined) {
      // Ten minutes of points for a large config can pass MAX_QUEUED on its own. One Buffer for
      // all: clients connecting in the same second cost no serialisation and share its memory.
      const bytes = this.historyFrame ??= Buffer.from(frame('history', JSON.stringify(this.history())))
      this.allowance.set(res, MAX_QUEUED + bytes.length)
      this.send(res, bytes)
    }
  }

  /** Sends one event to every client; `data` is serialised once, and only when someone listens. */
  publish (event: string, data: unknown): void {
    // A new point: the history a new client gets must now include it.
    if (event === 'tick') this.historyFrame = undefined
    if (this.clients.size === 0) return
    this.broadcast(frame(event, JSON.stringify(data)))
  }

  /** Ends every stream and stops the timer. */
  close (): void {
    for (const res of this.clients) res.end()
    this.clients.clear()
    this.stop()
  }

  /** Each state change as its own event, with the fields the channel publishes (copied: publishers may reuse theirs). */
  private readonly changes: ReadonlyArray<readonly [{ subscribe: (f: (m: unknown) => void) => void, unsubscribe: (f: (m: unknown) => void) => unknown }, (m: unknown) => void]> = [
    [channels.serverState, (m) => {
      const e = m as ServerStateChange
      this.broadcast(frame('server', JSON.stringify({ upstream: e.upstream, server: e.server, from: e.from, to: e.to, reason: e.reason })))
    }],
    [channels.serverWeight, (m) => {
      const e = m as ServerWeightChange
      this.broadcast(frame('weight', JSON.stringify({ upstream: e.upstream, server: e.server, weight: e.weight })))
    }],
    [channels.peerRole, (m) => {
      const e = m as PeerRoleChange
      this.broadcast(frame('role', JSON.stringify({ from: e.from, to: e.to, term: e.term, reason: e.reason })))
    }],
    [channels.peerSync, (m) => { this.broadcast(frame('sync', JSON.stringify({ inSync: (m as PeerSync).inSync }))) }],
    [channels.configReload, (m) => { this.broadcast(frame('reload', JSON.stringify({ result: (m as ConfigReload).result }))) }],
  ]

  private start (): void {
    for (const [channel, on] of this.changes) channel.subscribe(on)
    this.timer = setInterval(() => { this.broadcast(frame('status', this.snapshotJson())) }, STATUS_EVERY_MS)
    this.timer.unref()
  }

  private stop (): void {
    if (this.timer === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
    this.historyFrame = undefined
    for (const [channel, on] of this.changes) channel.unsubscribe(on)
  }

  private remove (res: ServerResponse): void {
    if (!this.clients.delete(res)) return
    if (this.clients.size === 0) this.stop()
  }

  private snapshotJson (): string {
    try {
      return JSON.stringify(this.snapshot())
    } catch (err) {
      return JSON.stringify({ error: (err as Error).message })
    }
  }

  private broadcast (text: string): void {
    for (const res of this.clients) this.send(res, text)
  }

  private send (res: ServerResponse, text: string | Buffer): void {
    if (res.writableLength > (this.allowance.get(res) ?? MAX_QUEUED)) {
      this.remove(res)
      res.destroy()
      return
    }
    res.write(text)
  }
}

function frame (event: string, json: string): string {
  // JSON.stringify never emits a raw newline, so the data fits on one `data:` line.
  return `event: ${event}\ndata: ${json}\n\n`
}
