// Process plumbing shared by the benchmark targets: start a child pinned to a CPU, read its
// one-line JSON handshake, wait until it answers HTTP, stop it. Every wait has a deadline.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import type { Writable } from 'node:stream'
import { NODE_ENV, NODE_FLAGS } from './node-flags.js'

export { NODE_ENV, NODE_FLAGS }

/** A target under load: where to send requests, and how to take it down. */
export interface RunningTarget {
  readonly name: string
  readonly url: string
  readonly pid?: number
  /** tandem's admin server (the default variant), for /metrics. */
  readonly admin?: string
  stop (): Promise<void>
}

export const HAS_TASKSET = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

const TICKS = 100 // USER_HZ of /proc/PID/stat on Linux

/** utime + stime of a process in seconds, or undefined where /proc is not there. */
export function cpuSeconds (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) / TICKS
  } catch { return undefined }
}

/** CPU seconds of a process and all its descendants (nginx's master and workers, say). */
export function treeCpuSeconds (pid: number | undefined): number | undefined {
  const own = cpuSeconds(pid)
  if (own === undefined || pid === undefined) return own
  let kids: number[] = []
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {}
  return kids.reduce((sum, k) => sum + (treeCpuSeconds(k) ?? 0), own)
}

/** Busy and total jiffies of one CPU from /proc/stat, to tell whether that core was saturated. */
export function cpuTimes (cpu: number): { busy: number, total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
    if (line === undefined) return undefined
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = (v[3] ?? 0) + (v[4] ?? 0)
    const total = v.reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  } catch { return undefined }
}

/**
 * Spawns `cmd args`, under `taskset -c cpu` when taskset exists. stdout is piped (or goes to
 * `stdout`, another child's stdin), stderr inherited.
 */
export function startChild (cmd: string, args: readonly string[], cpu?: number, stdout?: Writable): ChildProcess {
  const argv = HAS_TASKSET && cpu !== undefined ? ['taskset', '-c', String(cpu), cmd, ...args] : [cmd, ...args]
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', stdout ?? 'pipe', 'inherit'], env: { ...process.env, ...NODE_ENV } })
  children.add(child)
  child.once('exit', () => { children.delete(child) })
  return child
}

/** The first stdout line, parsed as JSON; rejects if the child exits or stays silent. */
export async function readHandshake<T> (child: ChildProcess, what: string, timeoutMs = 15_000): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => { finish(new Error(`${what}: no handshake within ${timeoutMs} ms`)) }, timeoutMs)
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8')
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      try {
        finish(undefined, JSON.parse(buf.slice(0, nl)) as T)
      } catch (err) {
        finish(new Error(`${what}: bad handshake ${JSON.stringify(buf.slice(0, nl))}: ${(err as Error).message}`))
      }
    }
    const onExit = (code: number | null): void => { finish(new Error(`${what} exited (${code}) before its handshake`)) }
    const finish = (err?: Error, value?: T): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
      child.stdout?.resume() // keep draining whatever else it prints
      if (err !== undefined) reject(err)
      else resolve(value as T)
    }
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** A loopback port that was free a moment ago (listen on 0, close). */
export async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
  const port = (s.address() as net.AddressInfo).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

async function getStatus (url: string, host: string): Promise<number> {
  return await new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers: { host }, timeout: 2000 }, (res) => {
      res.resume()
      res.once('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.once('timeout', () => { req.destroy() })
    req.once('error', () => { resolve(0) })
  })
}

/** Polls until `url` answers 200 (a proxy's health checks may hold its servers down at first). */
export async function waitReady (url: string, host: string, what: string, child?: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 0
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`)
    last = await getStatus(url, host)
    if (last === 200) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what}: ${url} did not answer 200 within ${timeoutMs} ms (last status ${last})`)
}

/** Signals the child and waits for it to exit; SIGKILL after `timeoutMs`. */
export async function stopChild (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill(signal)
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  await exited
  clearTimeout(timer)
}

/**
 * The targets in the order round `round` (from 1) runs them: odd rounds forward, even rounds
 * backward (ABBA), so that a VM's drift within a round, and what one target leaves behind for the
 * next, cancel out rather than always favour the same target.
 */
export function roundOrder<T> (targets: readonly T[], round: number): readonly T[] {
  return round % 2 === 1 ? targets : [...targets].reverse()
}
