import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Notifier } from '../../../src/peer/notify.js'

const quiet = { info () {}, warn () {}, error () {} }

describe('onChange notifier', () => {
  it('runs calls in order, one at a time, with NEW OLD ID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-notify-'))
    const log = join(dir, 'log')
    const script = join(dir, 'n.sh')
    // Each call marks its start and end; overlapping calls would interleave the marks.
    writeFileSync(script, `#!/bin/sh\necho "start $1 $2 $3" >> ${log}\nsleep 0.05\necho "end $1" >> ${log}\n`, { mode: 0o755 })
    const n = new Notifier(script, 'lb-a', 5000, quiet)
    const runs = [n.run('standby', 'init'), n.run('active', 'standby'), n.run('fault', 'active')]
    const results = await Promise.all(runs)
    expect(results.map((r) => r.code)).toEqual([0, 0, 0])
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'start standby init lb-a', 'end standby',
      'start active standby lb-a', 'end active',
      'start fault active lb-a', 'end fault',
    ])
  })

  it('kills a hung call at the timeout (with what it started) and goes on', async () => {
    const errors: string[] = []
    const n = new Notifier('sleep 30; true', 'lb-a', 200, { ...quiet, error: (_o: object, m: string) => { errors.push(m) } })
    const t0 = Date.now()
    const hung = await n.run('active', 'standby')
    expect(hung.timedOut).toBe(true)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(errors).toEqual(['onChange killed after onChangeTimeout'])
    // The queue goes on after a killed call.
    const after = new Notifier('echo', 'lb-a', 2000, quiet)
    await after.run('fault', 'active')
    expect(await after.run('standby', 'fault')).toMatchObject({ code: 0, output: 'standby fault lb-a', timedOut: false })
  })

  it('a call ends when the script exits, though a background job it started holds its output open', async () => {
    // Was: the call waited for the pipes to close, was killed at the timeout with the job, and
    // held every later call back that long (an `arping … &` in a notify script).
    const dir = mkdtempSync(join(tmpdir(), 'tandem-notify-'))
    const pidFile = join(dir, 'bg.pid')
    const errors: string[] = []
    const n = new Notifier(`echo moved; sleep 5 & echo $! > ${pidFile}; exit 0; #`, 'lb-a', 3000, { ...quiet, error: (_o: object, m: string) => { errors.push(m) } })
    const t0 = Date.now()
    const r = await n.run('active', 'standby')
    expect(Date.now() - t0).toBeLessThan(1500)
    expect(r).toMatchObject({ code: 0, timedOut: false, output: 'moved' })
    expect(errors).toEqual([])
    const bg = Number(readFileSync(pidFile, 'utf8'))
    // The background job goes on (only a timed-out call's group is killed).
    expect(() => process.kill(bg, 0)).not.toThrow()
    process.kill(bg, 'SIGKILL')
  })

  it('a failing command is logged, not thrown', async () => {
    const errors: string[] = []
    const r = await new Notifier('exit 3', 'lb-a', 2000, { ...quiet, error: (_o: object, m: string) => { errors.push(m) } }).run('active', 'init')
    expect(r.code).toBe(3)
    expect(errors).toEqual(['onChange failed'])
  })
})
