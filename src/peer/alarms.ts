// What a pair node says about messages it drops: each rejection counted (the metric) and logged
// once per burst, and the configuration faults (a wrong secret, a second node with our id) raised
// loudly at error and shown as `peer.configFault` while they last.
import type { Clock } from '../clock.js'
import { BurstGate } from '../observability/burst.js'
import { channels } from '../observability/events.js'
import type { Rejection } from './messages.js'
import type { NotifyLog } from './notify.js'

/** Auth failures older than this no longer keep the configuration fault raised. */
const FAULT_MEMORY = 5000

export class PeerAlarms {
  private readonly gate: BurstGate
  private faultAt = Number.NEGATIVE_INFINITY
  private faultText = ''

  constructor (private readonly ownId: string, private readonly clock: Clock, private readonly log: NotifyLog) {
    this.gate = new BurstGate(clock)
  }

  get configFault (): string | null {
    return this.clock.now() - this.faultAt < FAULT_MEMORY ? this.faultText : null
  }

  /** A message was dropped; `claimed` is the sender id it named, if readable. */
  rejected (reason: Rejection, claimed?: string): void {
    channels.peerRejected.publish({ reason })
    if (reason === 'unauthenticated' && claimed !== undefined && claimed !== this.ownId) {
      this.fault(`messages from peer ${claimed} fail authentication (secret mismatch?)`)
      return
    }
    if (reason === 'unknown-sender' && claimed === this.ownId) {
      this.fault(`another node sends as this node's id ${claimed}: each node of the pair needs its own peer.id`)
      return
    }
    const pass = this.gate.pass(`rejected:${reason}`)
    if (pass !== undefined) this.log.warn({ reason, suppressed: pass.suppressed }, 'peer message dropped')
  }

  /** A socket error on the pair's links (logged once per burst per place). */
  transportError (err: Error, where: string): void {
    const pass = this.gate.pass(`error:${where}`)
    if (pass !== undefined) this.log.warn({ err: err.message, where, suppressed: pass.suppressed }, 'peer transport error')
  }

  /** The peer's unsigned hint: our messages fail its authentication. */
  hint (from: string): void {
    this.fault(`peer ${from} reports that our messages fail its authentication (secret mismatch?)`)
  }

  private fault (text: string): void {
    this.faultAt = this.clock.now()
    this.faultText = text
    const pass = this.gate.pass(`fault:${text}`)
    if (pass !== undefined) this.log.error({ suppressed: pass.suppressed }, text)
  }
}
