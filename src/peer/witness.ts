/*
 * The witness against split brain, probed continuously so that a decision never waits on a
 * connect timeout; the election (election.ts) applies the hysteresis and the fencing rules.
 *
 *  - TcpWitness: a reference node. One TCP connect every heartbeat / 2, at most one in flight,
 *    each bounded by heartbeat / 2; every result is reported.
 *  - RedisArbiter: one key per pair holding the active node's lease. A Lua script sets it only
 *    when absent or already ours (SET NX semantics plus renewal, atomically), with PX = the dead
 *    time; another deletes it only when ours. Attempts run every heartbeat while the election
 *    wants the lease, and the result carries when the request was sent: the lease is ours until
 *    sentAt + PX at the earliest, whatever the network delay.
 */
import net from 'node:net'
import type { Redis } from 'ioredis'
import type { HostPort } from '../config/types.js'
import { sha256 } from '../node-builtins.js'
import { connectRedis } from '../redis/connect.js'

export interface Witness {
  readonly kind: 'tcp' | 'redis'
  readonly address: string
  start (): void
  stop (): Promise<void>
}

export class TcpWitness implements Witness {
  readonly kind = 'tcp' as const
  readonly address: string
  private timer: NodeJS.Timeout | undefined
  private socket: net.Socket | undefined
  private stopped = false

  constructor (private readonly target: HostPort, private readonly heartbeat: number, private readonly report: (ok: boolean) => void) {
    this.address = target.text
  }

  start (): void {
    this.stopped = false
    this.probe()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.socket?.destroy()
  }

  private probe (): void {
    if (this.stopped) return
    const started = Date.now()
    const budget = Math.max(20, this.heartbeat / 2)
    const socket = net.connect({ host: this.target.host, port: this.target.port })
    this.socket = socket
    let done = false
    const finish = (ok: boolean): void => {
      if (done) return
      done = true
      clearTimeout(deadline)
      socket.destroy()
      if (this.stopped) return
      this.report(ok)
      // Next probe half a heartbeat after the previous one started, never two at once.
      this.timer = setTimeout(() => { this.probe() }, Math.max(0, budget - (Date.now() - started)))
      this.timer.unref()
    }
    const deadline = setTimeout(() => { finish(false) }, budget)
    socket.once('connect', () => { finish(true) })
    socket.once('error', () => { finish(false) })
  }
}

/** Takes the lease when absent or ours; renews ours. Returns 1 when ours afterwards. */
const ACQUIRE = `
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

export interface LeaseResult {
  held: boolean
  reachable: boolean
  sentAt: number
}

export class RedisArbiter implements Witness {
  readonly kind = 'redis' as const
  readonly address: string
  readonly key: string
  private client: Redis | undefined
  private timer: NodeJS.Timeout | undefined
  private inflight = false
  private stopped = false

  /**
   * `pairKey` names the pair (both nodes derive it from the shared secret, so two pairs sharing
   * one Redis never meet); `holder` names this process. `want` asks the election each round.
   */
  constructor (
    private readonly url: string,
    pairKey: string,
    private readonly holder: string,
    private readonly leaseMs: number,
    private readonly heartbeat: number,
    private readonly now: () => number,
    private readonly want: () => boolean,
    private readonly report: (r: LeaseResult) => void,
  ) {
    this.key = `tandem:peer-lease:${sha256('tandem-pair\0' + pairKey).toString('hex').slice(0, 24)}`
    const u = new URL(url)
    this.address = `${u.hostname}:${u.port === '' ? '6379' : u.port}`
  }

  start (): void {
    this.stopped = false
    this.client = connectRedis(this.url, { commandTimeout: Math.max(20, Math.floor(this.heartbeat / 2)) })
    this.round()
  }

  /** Try now instead of at the next round (the peer just went silent). */
  poke (): void {
    if (!this.inflight && !this.stopped) {
      if (this.timer !== undefined) clearTimeout(this.timer)
      this.round()
    }
  }

  /** Gives the lease up (a handover) so the new active can take it at once. */
  async release (): Promise<void> {
    try { await this.client?.eval(RELEASE, 1, this.key, this.holder) } catch {}
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.client?.disconnect()
  }

  private round (): void {
    if (this.stopped) return
    this.timer = setTimeout(() => { this.round() }, this.heartbeat)
    this.timer.unref()
    if (this.inflight || this.client === undefined) return
    this.inflight = true
    const sentAt = this.now()
    // A node that needs no lease still pings, so its status shows whether the arbiter answers.
    const attempt = this.want() ? this.client.eval(ACQUIRE, 1, this.key, this.holder, String(this.leaseMs)) : this.client.ping().then(() => 0)
    attempt.then(
      (r) => { this.report({ held: r === 1, reachable: true, sentAt }) },
      () => { this.report({ held: false, reachable: false, sentAt }) },
    ).finally(() => { this.inflight = false })
  }
}
