import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { NODE_ENV, NODE_FLAGS } from '../../bench/targets/node-flags.js'
import { readdirSync, readFileSync } from 'node:fs'
import { CLI, writeConfig } from './cli.js'
import { waitFor } from './wait.js'

/** Soft and hard RLIMIT_NOFILE of a process, from /proc/PID/limits. */
export function fdLimits (pid: number | 'self' = 'self'): { soft: number, hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files')) ?? ''
  const [soft = '0', hard = '0'] = line.replace('Max open files', '').trim().split(/\s+/)
  const n = (v: string): number => v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v)
  return { soft: n(soft), hard: n(hard) }
}

/**
 * Makes sure this process may open `needed` descriptors, raising its soft limit up to the hard
 * one with prlimit(1) (no privilege needed). Returns why not when the hard limit is too low.
 */
export function ensureFdLimit (needed: number): string | undefined {
  const { soft, hard } = fdLimits()
  if (soft >= needed) return undefined
  if (hard < needed) return `needs ${needed} file descriptors; the hard limit is ${hard} (raise it with ulimit -Hn)`
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`])
  } catch (err) {
    return `cannot raise the descriptor limit with prlimit: ${(err as Error).message}`
  }
  return fdLimits().soft >= needed ? undefined : `the descriptor limit stayed at ${fdLimits().soft}`
}

export function fdCount (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

export function rssBytes (pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) * 1024
}

export interface ProxyProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly ports: { listeners: Record<string, number>, admin?: number }
  output (): string
  stop (): Promise<number | null>
}

/**
 * Runs the built CLI on `yaml` as a child process with `nofile` descriptors allowed and `gc()`
 * reachable through SIGUSR2 (for heap measurements); resolves once it has started.
 */
export async function startProxyProcess (yaml: string, nofile: number): Promise<ProxyProcess> {
  const gcOnSignal = 'data:text/javascript,process.on("SIGUSR2",()=>{globalThis.gc?.();process.stdout.write(JSON.stringify({gc:process.memoryUsage()})+"\\n")})'
  // Node's flags and malloc setting as the image has them (bench/targets/node-flags.ts), so that the
  // memory figures are those of the process operators run.
  const child = spawn('prlimit', [`--nofile=${nofile}:${nofile}`, '--', process.execPath, ...NODE_FLAGS, '--expose-gc', '--import', gcOnSignal, CLI, 'run', '-c', writeConfig(yaml)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...NODE_ENV } })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code) }) })
  await waitFor(() => out.includes('"tandem started"') || child.exitCode !== null, 15_000, 20, 'tandem started')
  const line = out.split('\n').find((l) => l.includes('"tandem started"'))
  if (line === undefined) throw new Error(`tandem did not start: ${out}`)
  const o = JSON.parse(line) as { pid: number, listeners: Array<{ name: string, port: number }>, admin?: { port: number } }
  return {
    child,
    pid: o.pid,
    ports: { listeners: Object.fromEntries(o.listeners.map((l) => [l.name, l.port])), ...(o.admin === undefined ? {} : { admin: o.admin.port }) },
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return await exited
    },
  }
}

/** Runs a full GC in the child and returns its heap use in bytes afterwards. */
export async function heapAfterGc (p: ProxyProcess): Promise<number> {
  const before = p.output().length
  p.child.kill('SIGUSR2')
  let used = 0
  await waitFor(() => {
    const m = /\{"gc":\{[^}]*"heapUsed":(\d+)/.exec(p.output().slice(before))
    if (m !== null) used = Number(m[1])
    return m !== null
  }, 10_000, 20, 'gc report')
  return used
}
