import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

export interface CliRun {
  readonly child: ChildProcess
  stdout: string
  stderr: string
  readonly exited: Promise<number | null>
  /** Resolves with the first stdout text matching `re`; rejects after `timeoutMs`. */
  waitForOutput (re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
}

/** Writes `yaml` to a temp file and returns its path. */
export function writeConfig (yaml: string, name = 'tandem.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-test-'))
  const file = join(dir, name)
  writeFileSync(file, yaml)
  return file
}

/** Runs the built CLI (dist/) as a child process. */
export function runCli (args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const run: CliRun = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => { child.on('exit', (code) => { resolve(code) }) }),
    async waitForOutput (re, timeoutMs = 10_000) {
      return await new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = run.stdout.match(re)
          if (m !== null) { cleanup(); resolve(m); return true }
          return false
        }
        const timer = setTimeout(() => { cleanup(); reject(new Error(`no output matching ${String(re)}; stdout: ${run.stdout}\nstderr: ${run.stderr}`)) }, timeoutMs)
        const onData = (): void => { check() }
        // 'close', not 'exit': the child's last lines may still be in the pipe when it exits.
        const onExit = (code: number | null, signal: string | null): void => { if (!check()) { cleanup(); reject(new Error(`exited (${code ?? signal}) before ${String(re)}; stdout: ${run.stdout.slice(-2000)}\nstderr: ${run.stderr}`)) } }
        const cleanup = (): void => { clearTimeout(timer); child.stdout?.off('data', onData); child.off('close', onExit) }
        child.stdout?.on('data', onData)
        child.on('close', onExit)
        check()
      })
    },
  }
  child.stdout?.on('data', (c: Buffer) => { run.stdout += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { run.stderr += c.toString() })
  return run
}
