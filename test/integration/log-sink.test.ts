// The log's stdout sink (src/observability/log-sink.ts) on a real pipe or file, in a child process
// whose fd 1 is it: every line arrives, in order, after flush; a reader that stops reading makes
// the child drop (and count) lines instead of growing without bound.
import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { accessLine } from '../../src/observability/access-log.js'
import type { HttpRequestEnd } from '../../src/observability/events.js'

const DIST = fileURLToPath(new URL('../../dist/observability/', import.meta.url))

/** A child that logs `lines` info lines of `pad` bytes each, then flushes and reports drops on stderr. */
function child (lines: number, pad: number): ReturnType<typeof spawn> {
  const script = `
    import { createLogger, attachLogs } from '${DIST}log.js'
    import { channels } from '${DIST}events.js'
    let dropped = 0
    channels.error.subscribe((e) => { if (e.component === 'log') dropped++ })
    const log = createLogger({ level: 'info', access: false })
    attachLogs(log, { level: 'info', access: false })
    const pad = 'x'.repeat(${pad})
    for (let i = 0; i < ${lines}; i++) log.info({ seq: i, pad }, 'line')
    const rss = Math.round(process.memoryUsage().rss / 1048576)
    // A reader that never reads never drains: flush is bounded by the caller (as shutdown is).
    const exit = () => { process.stderr.write('dropped ' + dropped + ' rss ' + rss + '\\n'); process.exit(0) }
    log.flush(exit)
    setTimeout(exit, 500).unref()
  `
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
}

async function run (p: ReturnType<typeof spawn>, readStdout: boolean): Promise<{ out: string, err: string, code: number | null }> {
  let out = ''
  let err = ''
  p.stderr?.on('data', (c: Buffer) => { err += c.toString() })
  if (readStdout) p.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  const code = await new Promise<number | null>((resolve) => { p.once('exit', resolve) })
  return { out, err, code }
}

/** The i-th request end: path lengths that cross batch boundaries, strings JSON must escape, one line longer than a batch. */
function requestEnd (i: number): HttpRequestEnd {
  const odd = ['ü', '/😀', '\u0000', '"\\', '\ud800'][i % 5] as string
  const path = i === 777 ? '/' + 'p'.repeat(100_000) : '/' + 'x'.repeat(i % 300) + (i % 7 === 0 ? odd : '')
  return {
    listener: 'public', route: i % 3 === 0 ? '' : 'app', method: 'GET', host: i % 11 === 0 ? odd : 'www.example.com', path, status: 200 + (i % 4),
    client: '127.0.0.1', upstream: i % 5 === 0 ? undefined : 'web', server: i % 5 === 0 ? undefined : '127.0.0.1:8081', bytesIn: 0, bytesOut: i * 1013,
    upstreamMs: i % 2 === 0 ? undefined : i / 97, totalMs: i / 89, error: i % 13 === 0 ? 'UPSTREAM_TIMEOUT' : undefined, limit: undefined, retries: i % 3,
  }
}

/** A child whose access log (on the pipe) writes `count` request ends. */
function accessChild (count: number, stdout: 'pipe' | number = 'pipe'): ReturnType<typeof spawn> {
  const script = `
    import { createLogger, attachLogs } from '${DIST}log.js'
    import { publishHttpEnd } from '${DIST}events.js'
    const requestEnd = ${requestEnd.toString()}
    const log = createLogger({ level: 'info', access: true })
    attachLogs(log, { level: 'info', access: true })
    for (let i = 0; i < ${count}; i++) publishHttpEnd(requestEnd(i))
    log.flush(() => { process.exit(0) })
  `
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', stdout, 'pipe'] })
}

/** Each line equals what accessLine() writes for the request end of its index, with the line's own time and pid. */
function expectAccessLines (out: string, count: number): void {
  const lines = out.split('\n')
  expect(lines.pop()).toBe('')
  expect(lines).toHaveLength(count)
  lines.forEach((line, i) => {
    const { time, pid } = JSON.parse(line) as { time: string, pid: number }
    expect(line + '\n').toBe(accessLine('http', requestEnd(i), time, pid))
  })
}

describe('log sink on a file', () => {
  it('access lines to a file are batched and written in place the same way, all of them, in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tandem-log-'))
    const file = join(dir, 'access.log')
    const fd = openSync(file, 'w')
    try {
      const r = await run(accessChild(3000, fd), false)
      expect(r.code).toBe(0)
      expectAccessLines(await readFile(file, 'utf8'), 3000)
    } finally {
      closeSync(fd)
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

describe('log sink on a pipe', () => {
  it('access lines written in place on the pipe are, byte for byte, the lines accessLine() writes', async () => {
    const r = await run(accessChild(3000), true)
    expect(r.code).toBe(0)
    expectAccessLines(r.out, 3000)
  }, 30_000)

  it('50,000 lines arrive whole and in order, none dropped', async () => {
    const r = await run(child(50_000, 100), true)
    expect(r.code).toBe(0)
    expect(r.err).toMatch(/^dropped 0 rss \d+\n$/)
    const lines = r.out.trimEnd().split('\n')
    expect(lines).toHaveLength(50_000)
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: 50_000 }, (_, i) => i))
  }, 30_000)

  it('a reader that does not read: past 16 MiB waiting, lines are dropped and counted, memory stays bounded', async () => {
    // 60,000 lines of ~1 KiB: about 60 MiB, far past the pipe buffer and the 16 MiB bound.
    const p = child(60_000, 1000)
    const r = await run(p, false)
    expect(r.code).toBe(0)
    const dropped = Number(/dropped (\d+)/.exec(r.err)?.[1])
    expect(dropped).toBeGreaterThan(30_000)
    expect(dropped).toBeLessThan(60_000)
    // 60 MiB were logged; at most 16 MiB of them (plus the pipe's 64 KiB) were held at once.
    expect(Number(/rss (\d+)/.exec(r.err)?.[1])).toBeLessThan(200)
  }, 30_000)
})

describe('syncOut (a file or terminal): a destination that stops taking bytes', () => {
  it('a batch that meets EAGAIN for 100 ms is dropped and counted once; the write returns', async () => {
    // A non-blocking pipe whose reader never reads stands in for a stalled terminal (Ctrl-S):
    // writeSync fills the pipe, then meets EAGAIN until the wait runs out.
    const { syncOut } = await import('../../src/observability/log-sink.js')
    const reader = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] })
    try {
      const fd = (reader.stdin as unknown as { _handle: { fd: number } })._handle.fd
      expect(fd).toBeGreaterThan(2)
      let drops = 0
      let done = 0
      const out = syncOut(fd, () => { drops++ })
      const started = performance.now()
      out.write(Buffer.alloc(1024 * 1024, 0x61), () => { done++ })
      const ms = performance.now() - started
      expect({ drops, done }).toEqual({ drops: 1, done: 1 })
      expect(ms).toBeGreaterThanOrEqual(100)
      expect(ms).toBeLessThan(2000)
    } finally {
      reader.kill('SIGKILL')
    }
  })
})
