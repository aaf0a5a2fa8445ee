// The early phase of one proxied TCP stream: what the client sends before its upstream exists is
// kept (bounded, tcp-early.ts) for replay, and a preread may wait for enough of it to pick the
// route (the TLS ClientHello of an SNI route, as nginx's `ssl_preread`). TcpForward's base class
// rather than a member, so a stream stays one object and allocates no closures.
import { EarlyBytes } from './tcp-early.js'
import type { Conn } from './tcp-relay.js'

/** Called while early bytes are awaited: on a chunk the gate lets through, on client end, and on timeout. */
export type EarlyHook<F> = (forward: F, timedOut: boolean) => void

/** Says whether a chunk can change the hook's verdict, so the hook need not re-read every chunk. */
export interface EarlyGate { push (chunk: Buffer): boolean }

export type Phase = 'early' | 'connecting' | 'relay' | 'done'

export abstract class TcpPreread {
  protected abstract readonly client: Conn
  protected phase: Phase = 'early'
  protected readonly early = new EarlyBytes()
  protected hook?: EarlyHook<this>
  protected gate?: EarlyGate
  /** The preread or connect-attempt deadline. */
  protected phaseTimer?: NodeJS.Timeout

  /** Bytes the client sent that have not been forwarded yet. */
  earlyBytes (): Buffer {
    return this.early.bytes()
  }

  /** True once the client has half-closed (sent FIN). */
  get clientHasEnded (): boolean {
    return this.client.eof
  }

  /**
   * Awaits early bytes (TLS ClientHello) for at most `timeoutMs` in all (as nginx's
   * `preread_timeout`); `hook` decides when there is enough.
   */
  preread (timeoutMs: number, hook: EarlyHook<this>, gate?: EarlyGate): void {
    if (this.phase !== 'early') return
    this.hook = hook
    this.gate = gate
    if (this.early.length > 0) gate?.push(this.early.bytes())
    this.phaseTimer = setTimeout(onPrereadTimer, timeoutMs, this)
    if (this.early.length > 0 || this.client.eof) hook(this, false)
  }

  protected stopPreread (): void {
    if (this.hook === undefined) return
    this.hook = undefined
    this.gate = undefined
    clearTimeout(this.phaseTimer)
    this.phaseTimer = undefined
  }

  /** @internal Keeps (copies) a chunk read before the upstream exists. False pauses the client. */
  stash (chunk: Buffer): boolean {
    const more = this.early.push(chunk)
    if (this.hook !== undefined && (this.gate === undefined || this.gate.push(chunk))) this.hook(this, false)
    return more
  }

  /** @internal */
  prereadTimedOut (): void {
    this.phaseTimer = undefined
    this.hook?.(this, true)
  }
}

function onPrereadTimer (stream: TcpPreread): void { stream.prereadTimedOut() }
