/*
 * The pair's wire format and its checks (pure: no sockets, no clock).
 *
 *   signed:  "TDM1" | HMAC-SHA256(secret, "TDM1" | body) (32 bytes) | body (UTF-8 JSON)
 *   hint:    "TDMX" | body (UTF-8 JSON {"k":"authfail","id":…})   unsigned, see below
 *
 * Every signed body carries the sender's id, a boot id (its start time on its own clock, then a
 * random part) and a sequence that grows with every message of that boot, so replay protection
 * needs no clock agreement: a receiver keeps, per sender, the current boot, a window of recent
 * sequences, and the boots it has seen superseded. A boot replaces the current one only when it
 * started later (by the sender's own clock, compared with itself) or when its message echoes one
 * of this node's recent messages: a message recorded from an earlier run then cannot retire the
 * peer's current run, which would leave the receiver deaf to it; the echo covers a peer whose
 * clock went back across its restart. The peer is known by its id and signature, never by address.
 *
 * The unsigned "auth failed" hint lets a node with the right secret tell one with a wrong secret
 * (and vice versa) that its messages fail: both then report a configuration fault within a
 * heartbeat. A forged hint can only raise that alarm; it never changes a role.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { PeerHeartbeat } from './election.js'

const SIGNED = Buffer.from('TDM1')
const HINT = Buffer.from('TDMX')
const MAC_BYTES = 32
/** Heartbeats must fit one UDP datagram on any link. */
export const MAX_DATAGRAM = 1400
/** Largest state frame on the TCP channel (a full snapshot of 100,000 buckets is ~10 MB). */
export const MAX_FRAME = 64 * 1024 * 1024
/** Sequences this far behind the newest are too old to tell from a replay. */
export const REPLAY_WINDOW = 1024
/** An echo of one of our last this many messages proves its sender heard us just now (at 2 links
 * and 5 heartbeats a second, the last 25 s at least). */
const FRESH_ECHO = 256

/** A heartbeat on the wire: what the election needs to know of its sender (PeerHeartbeat), with
 * the id in the envelope and the priority under a shorter name. */
export type Heartbeat = Omit<PeerHeartbeat, 'id' | 'priority'> & {
  readonly k: 'hb'
  readonly prio: number
  /** Which of the sender's `peers` addresses (links) this copy went to. */
  readonly via?: number
}

export interface StateMessage {
  readonly k: 'state'
  /** A full snapshot (replaces what the receiver holds) or a batch of changes. */
  readonly full: boolean
  /** Source name (`servers`, `ratelimits`) → its Replicated state. */
  readonly parts: Readonly<Record<string, unknown>>
}

/** Standby → active on the state channel: a full snapshot was applied. */
export interface StateAck {
  readonly k: 'ack'
}

export type Payload = Heartbeat | StateMessage | StateAck
export type Envelope = Payload & {
  readonly id: string
  readonly boot: string
  readonly seq: number
  /** `boot:seq` of the last message the sender accepted from the receiver. */
  readonly echo?: string
}

export type Rejection = 'oversize' | 'malformed' | 'unauthenticated' | 'replayed' | 'unknown-sender'

export type Decoded =
  | { ok: true, message: Envelope }
  | { ok: false, reason: Rejection, /** The sender id a failed message claims, if readable. */ claimed?: string }
  | { ok: 'hint', from: string }

/** Signs outgoing messages with this process's id, boot id and sequence. */
export class Signer {
  readonly boot: string
  private last = 0
  /** What to echo of the peer's messages (Verifier.lastSeen); none when unset. */
  echo: () => string | undefined = () => undefined

  /** `startedAt`: this process's start on its own wall clock (ms). */
  constructor (readonly id: string, private readonly secret: string, startedAt = Date.now()) {
    this.boot = `${startedAt.toString(36)}.${randomBytes(6).toString('hex')}`
  }

  /** The sequence of the last message signed. */
  get seq (): number { return this.last }

  encode (payload: Payload): Buffer {
    const echo = this.echo()
    const body = Buffer.from(JSON.stringify({ ...payload, id: this.id, boot: this.boot, seq: ++this.last, ...(echo === undefined ? {} : { echo }) }))
    return Buffer.concat([SIGNED, mac(this.secret, body), body])
  }

  /** The unsigned hint sent back to a sender whose messages fail authentication. */
  hint (): Buffer {
    return Buffer.concat([HINT, Buffer.from(JSON.stringify({ k: 'authfail', id: this.id }))])
  }
}

function mac (secret: string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(SIGNED).update(body).digest()
}

interface SenderState {
  boot: string
  top: number
  seen: Set<number>
  retired: Set<string>
}

/**
 * Checks incoming messages: size, signature, kind, sender and replay. The first authenticated
 * sender other than ourselves becomes the peer; any other id is then rejected as unknown. `kinds`
 * are the payloads this channel carries: a heartbeat recorded off UDP and sent as a state frame
 * is malformed here before its boot is looked at. `own` signs this node's messages (for echoes).
 */
export class Verifier {
  private peer: string | undefined
  private state: SenderState | undefined

  constructor (
    private readonly ownId: string,
    private readonly secret: string,
    private readonly maxBytes: number,
    private readonly kinds: readonly Payload['k'][] = ['hb', 'state', 'ack'],
    private readonly own?: Signer,
  ) {}

  get peerId (): string | undefined { return this.peer }

  /** `boot:seq` of the newest message accepted from the peer, for our echo. */
  get lastSeen (): string | undefined { return this.state === undefined ? undefined : `${this.state.boot}:${this.state.top}` }

  decode (data: Buffer): Decoded {
    if (data.length > this.maxBytes) return { ok: false, reason: 'oversize' }
    if (data.length >= HINT.length && data.subarray(0, HINT.length).equals(HINT)) {
      const body = parse(data.subarray(HINT.length))
      if (body?.k === 'authfail' && typeof body.id === 'string' && body.id !== this.ownId) return { ok: 'hint', from: body.id.slice(0, 64) }
      return { ok: false, reason: 'malformed' }
    }
    if (data.length < SIGNED.length + MAC_BYTES + 2 || !data.subarray(0, SIGNED.length).equals(SIGNED)) return { ok: false, reason: 'malformed' }
    const body = data.subarray(SIGNED.length + MAC_BYTES)
    if (!timingSafeEqual(data.subarray(SIGNED.length, SIGNED.length + MAC_BYTES), mac(this.secret, body))) {
      const claimed = parse(body)?.id
      return typeof claimed === 'string' ? { ok: false, reason: 'unauthenticated', claimed: claimed.slice(0, 64) } : { ok: false, reason: 'unauthenticated' }
    }
    const m = parse(body)
    if (m === undefined || typeof m.id !== 'string' || typeof m.boot !== 'string' || !Number.isSafeInteger(m.seq) || !isPayload(m) ||
      !this.kinds.includes(m.k as Payload['k']) || (m.echo !== undefined && typeof m.echo !== 'string')) {
      return { ok: false, reason: 'malformed' }
    }
    // Our own id from another run: a second node configured with this node's id (a fault to report).
    if (m.id === this.ownId) return m.boot === this.own?.boot ? { ok: false, reason: 'unknown-sender' } : { ok: false, reason: 'unknown-sender', claimed: m.id }
    if (this.peer !== undefined && m.id !== this.peer) return { ok: false, reason: 'unknown-sender' }
    if (!this.fresh(m.boot, m.seq as number, m.echo as string | undefined)) return { ok: false, reason: 'replayed' }
    this.peer = m.id
    return { ok: true, message: m as unknown as Envelope }
  }

  /** Accepts each (boot, seq) once; a superseded boot never again; an earlier run never over a later one. */
  private fresh (boot: string, seq: number, echo: string | undefined): boolean {
    let s = this.state
    if (s === undefined || s.boot !== boot) {
      if (s?.retired.has(boot) === true) return false
      if (s !== undefined && !(startOf(boot) > startOf(s.boot)) && !this.echoesUs(echo)) return false
      const retired = s?.retired ?? new Set<string>()
      if (s !== undefined) retired.add(s.boot)
      // Bounded: a peer restarts a handful of times, an attacker cannot mint signed boots.
      if (retired.size > 64) retired.delete(retired.values().next().value as string)
      s = { boot, top: 0, seen: new Set(), retired }
      this.state = s
    }
    if (seq <= s.top - REPLAY_WINDOW || s.seen.has(seq)) return false
    s.seen.add(seq)
    if (seq > s.top) {
      s.top = seq
      if (s.seen.size > REPLAY_WINDOW) for (const old of s.seen) if (old <= seq - REPLAY_WINDOW) s.seen.delete(old)
    }
    return true
  }

  /** The message answers one of our recent messages: its sender runs now. */
  private echoesUs (echo: string | undefined): boolean {
    if (echo === undefined || this.own === undefined) return false
    const colon = echo.lastIndexOf(':')
    const seq = Number(echo.slice(colon + 1))
    return echo.slice(0, colon) === this.own.boot && Number.isSafeInteger(seq) && seq <= this.own.seq && this.own.seq - seq < FRESH_ECHO
  }
}

/** The sender's start time in a boot id; NaN for another format. */
function startOf (boot: string): number {
  const dot = boot.indexOf('.')
  return dot > 0 ? parseInt(boot.slice(0, dot), 36) : NaN
}

function parse (body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

const ROLES = new Set(['active', 'standby', 'fault'])

function isPayload (m: Record<string, unknown>): boolean {
  switch (m.k) {
    case 'hb':
      return Number.isSafeInteger(m.term) && Number.isSafeInteger(m.prio) && typeof m.role === 'string' && ROLES.has(m.role) &&
        typeof m.preempt === 'boolean' && typeof m.starting === 'boolean' && typeof m.handover === 'boolean' &&
        typeof m.yielding === 'boolean' && typeof m.inSync === 'boolean' && typeof m.conflict === 'boolean'
    case 'state':
      return typeof m.full === 'boolean' && typeof m.parts === 'object' && m.parts !== null && !Array.isArray(m.parts)
    case 'ack':
      return true
    default:
      return false
  }
}
