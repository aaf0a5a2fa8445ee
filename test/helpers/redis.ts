import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import { closedPort } from './upstream.js'
import { waitFor } from './wait.js'

/** Where .ci/run installs redis-server; tests that need it skip themselves when it is missing. */
export const REDIS_SERVER = '/usr/bin/redis-server'
export const haveRedis = existsSync(REDIS_SERVER)

/** A throwaway redis-server on 127.0.0.1, no persistence, that a test can pause, kill and restart. */
export interface TestRedis {
  readonly port: number
  readonly url: string
  readonly pid: number | undefined
  /** SIGSTOP: connections stay open, nothing answers (a hung server, not a refusing one). */
  pause (): void
  /** SIGCONT after pause(). */
  resume (): void
  /** SIGKILL; resolves once the process is gone (connections are refused from then on). */
  kill (): Promise<void>
  /** Starts a fresh, empty server on the same port (after kill or stop). */
  restart (): Promise<void>
  /** SIGTERM (SIGCONT first, should it be paused); resolves once it exited. */
  stop (): Promise<void>
}

export async function startRedis (): Promise<TestRedis> {
  const port = await closedPort()
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const launch = async (): Promise<void> => {
    const c = spawn(REDIS_SERVER, [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
    ], { stdio: 'ignore' })
    let gone = false
    exited = new Promise((resolve) => c.once('exit', () => { gone = true; resolve() }))
    child = c
    await waitFor(async () => {
      if (gone) throw new Error(`redis-server on ${port} exited at start`)
      return await ping(port)
    }, 10_000, 25, `redis-server on ${port}`)
  }
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    if (sig !== 'SIGKILL') c.kill('SIGCONT')
    c.kill(sig)
    await exited
  }
  await launch()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child?.pid },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    kill: async () => { await signal('SIGKILL') },
    restart: async () => { await signal('SIGKILL'); await launch() },
    stop: async () => { await signal('SIGTERM') },
  }
}

/** True when a PING on a fresh connection gets +PONG within a second. */
function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    const done = (ok: boolean): void => { clearTimeout(timer); s.destroy(); resolve(ok) }
    const timer = setTimeout(() => { done(false) }, 1000)
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', (d: Buffer) => { done(d.toString().startsWith('+PONG')) })
    s.on('error', () => { done(false) })
    s.on('close', () => { done(false) })
  })
}

/** A plain client of `redis` for a test's own reads and flushes (no retries: errors surface). */
export async function redisAdmin (redis: TestRedis): Promise<import('ioredis').Redis> {
  const { Redis } = await import('ioredis')
  const admin = new Redis(redis.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 })
  admin.on('error', () => {})
  await admin.connect()
  return admin
}
