/*
 * onChange: the user's hook on role changes (move a virtual IP, as keepalived's notify scripts).
 * Calls run one at a time in the order asked, never overlapping; a call ends when the script
 * exits (what it left running in the background goes on); one still running after the timeout
 * is killed with its whole process group; output and failures are logged and never stop
 * the node. Runs in child processes, so a slow hook never delays a heartbeat.
 */
import { spawn } from 'node:child_process'

export interface NotifyLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export interface NotifyResult {
  newRole: string
  oldRole: string
  code: number | null
  signal: string | null
  timedOut: boolean
  output: string
}

/** Output kept per call for the log. */
const MAX_OUTPUT = 4096
/** After the script exits, how long its output pipes may stay open (held by a background job). */
const OUTPUT_GRACE_MS = 100

export class Notifier {
  private queue: Promise<void> = Promise.resolve()
  private pending = 0

  /**
   * `command` runs through /bin/sh with NEW_ROLE OLD_ROLE NODE_ID appended as arguments, so it may
   * carry its own arguments ("./notify.sh eth0").
   */
  constructor (
    private readonly command: string,
    private readonly nodeId: string,
    private readonly timeoutMs: number,
    private readonly log: NotifyLog,
    private readonly onDone: (r: NotifyResult) => void = () => {},
  ) {}

  /** Calls queued or running. */
  get busy (): number { return this.pending }

  /** Queues one call; resolves when it has finished (or was killed). */
  async run (newRole: string, oldRole: string): Promise<NotifyResult> {
    this.pending++
    const result = this.queue.then(async () => await this.exec(newRole, oldRole))
    this.queue = result.then(() => {}, () => {})
    try {
      return await result
    } finally {
      this.pending--
    }
  }

  /** Resolves when every queued call has finished. */
  async idle (): Promise<void> {
    await this.queue
  }

  private async exec (newRole: string, oldRole: string): Promise<NotifyResult> {
    return await new Promise((resolve) => {
      let output = ''
      let timedOut = false
      const child = spawn('/bin/sh', ['-c', `${this.command} "$@"`, 'tandem-onchange', newRole, oldRole, this.nodeId], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, so a kill reaches whatever the script started.
        detached: true,
      })
      const keep = (c: Buffer): void => { if (output.length < MAX_OUTPUT) output += c.toString('utf8').slice(0, MAX_OUTPUT - output.length) }
      child.stdout.on('data', keep)
      child.stderr.on('data', keep)
      const timer = setTimeout(() => {
        timedOut = true
        try { process.kill(-(child.pid as number), 'SIGKILL') } catch { child.kill('SIGKILL') }
      }, this.timeoutMs)
      let finished = false
      const done = (code: number | null, signal: string | null): void => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        child.stdout.destroy()
        child.stderr.destroy()
        const r: NotifyResult = { newRole, oldRole, code, signal, timedOut, output: output.trim() }
        const fields = { command: this.command, newRole, oldRole, code, signal, output: r.output }
        if (timedOut) this.log.error({ ...fields, timeoutMs: this.timeoutMs }, 'onChange killed after onChangeTimeout')
        else if (code !== 0) this.log.error(fields, 'onChange failed')
        else this.log.info(fields, 'onChange ran')
        this.onDone(r)
        resolve(r)
      }
      child.once('error', (err) => { output += String(err.message); done(null, null) })
      // The call ends when the script exits, not when every process holding its output has closed
      // it: a backgrounded `arping … &` keeps running without holding up the next call. What is
      // still in the pipes is read for a moment first.
      child.once('exit', (code, signal) => {
        const late = setTimeout(() => { done(code, signal) }, OUTPUT_GRACE_MS)
        child.once('close', () => { clearTimeout(late); done(code, signal) })
      })
    })
  }
}
