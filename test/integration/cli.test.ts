import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { writeFileSync } from 'node:fs'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'
import { runCli, writeConfig, type CliRun } from '../helpers/cli.js'
import { httpConfig } from '../helpers/tandem.js'

let upstreams: TestUpstream[] = []
let runs: CliRun[] = []

afterEach(async () => {
  for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL')
  runs = []
  await Promise.all(upstreams.map(async (u) => { await u.close() }))
  upstreams = []
})

function yaml (address: string, extra = ''): string {
  return httpConfig({ servers: [address], log: '{ level: info, access: true }', top: `shutdownTimeout: 5s\n${extra}` })
}

async function started (run: CliRun): Promise<number> {
  const m = await run.waitForOutput(/"port":(\d+)/)
  return Number(m[1])
}

describe('tandem CLI', () => {
  it('check prints FILE: ok and exits 0; an invalid file exits 2 with FILE:LINE:COL lines', async () => {
    const good = writeConfig(yaml('127.0.0.1:9'))
    const ok = runCli(['check', '-c', good])
    runs.push(ok)
    expect(await ok.exited).toBe(0)
    expect(ok.stdout).toBe(`${good}: ok\n`)
    const badYaml = yaml('127.0.0.1:9').replace('    servers:', '    balance: fastest\n    servers:')
    const line = badYaml.split('\n').indexOf('    balance: fastest') + 1
    const bad = writeConfig(badYaml)
    const no = runCli(['check', '-c', bad])
    runs.push(no)
    expect(await no.exited).toBe(2)
    expect(no.stderr).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:5: upstreams\\.web\\.balance: `, 'm'))
  })

  it('check reports schema and cross-reference errors of a file together, one per line', async () => {
    const file = 'test/fixtures/config/invalid-all-at-once.yaml'
    const run = runCli(['check', '-c', file])
    runs.push(run)
    expect(await run.exited).toBe(2)
    expect(run.stdout).toBe('')
    expect(run.stderr.trim().split('\n')).toEqual([
      `${file}:9:36: upstreams.web.servers[1].weight: must be an integer 1..256`,
      `${file}:10:5: upstreams.web.helth: unknown key (did you mean "health"?)`,
      `${file}:18:9: listeners[0].routes[0].upstream: unknown upstream "api"`,
    ])
  })

  it('check accepts a route an earlier one shadows (first match wins) with a located warning on stderr', async () => {
    const text = httpConfig({ servers: ['127.0.0.1:9'], routes: '      - match: { pathPrefix: / }\n        upstream: web\n      - match: { pathPrefix: /api }\n        upstream: web' })
    const line = text.split('\n').indexOf('      - match: { pathPrefix: /api }') + 1
    const file = writeConfig(text)
    const run = runCli(['check', '-c', file])
    runs.push(run)
    expect(await run.exited).toBe(0)
    expect(run.stdout).toBe(`${file}: ok\n`)
    expect(run.stderr).toBe(`${file}:${line}:9: listeners[0].routes[1]: warning: never matches: route "route-1" (routes[0]) comes first and matches everything it would\n`)
  })

  it('a bad command line (unknown option, -c without a file) exits 2 with the usage', async () => {
    for (const args of [['--bogus'], ['run', '-c']]) {
      const r = runCli(args)
      runs.push(r)
      expect(await r.exited, args.join(' ')).toBe(2)
      expect(r.stderr, args.join(' ')).toMatch(/^tandem: .+\n[^]*usage:\n/)
    }
  })

  it('--help and COMMAND --help list options, signals, environment and exit codes', async () => {
    const general = runCli(['--help'])
    runs.push(general)
    expect(await general.exited).toBe(0)
    for (const word of ['tandem run -c FILE', 'tandem check -c FILE', 'tandem demo', '--version', 'SIGHUP', 'SIGTERM', '${NAME:-default}', 'Exit codes:', '  2  invalid config']) {
      expect(general.stdout).toContain(word)
    }
    const cases: Array<[string[], string[]]> = [
      [['run', '--help'], ['usage: tandem run -c FILE', '-c, --config FILE', 'SIGHUP', 'shutdownDelay', 'Exit codes:']],
      [['check', '-h'], ['usage: tandem check -c FILE', 'Every problem is reported at once', '  2  the file is invalid']],
      [['demo', '--help'], ['usage: tandem demo', 'TANDEM_DEMO_ADMIN_PORT', 'TANDEM_DEMO_BACKEND_PORT_3']],
      [['help', 'schema'], ['usage: tandem schema', 'JSON Schema']],
    ]
    for (const [args, words] of cases) {
      const r = runCli(args)
      runs.push(r)
      expect(await r.exited, args.join(' ')).toBe(0)
      for (const w of words) expect(r.stdout, args.join(' ')).toContain(w)
    }
  })

  it('run exits 1 with one clear line when the port is in use', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams = [u]
    const file = writeConfig(yaml(u.address).replace('127.0.0.1:0', `127.0.0.1:${u.port}`))
    const run = runCli(['run', '-c', file])
    runs.push(run)
    expect(await run.exited).toBe(1)
    expect(run.stderr.trim().split('\n')).toHaveLength(1)
    expect(run.stderr).toMatch(/address already in use/)
  })

  it('SIGTERM lets a 2 s request in flight finish, then exits 0', async () => {
    const u = await startUpstream({ name: 'slow', delayMs: 2000 })
    upstreams = [u]
    const run = runCli(['-c', writeConfig(yaml(u.address))])
    runs.push(run)
    const port = await started(run)
    const inflight = request(`http://127.0.0.1:${port}/slow`)
    await waitFor(() => u.count === 1, 5000)
    run.child.kill('SIGTERM')
    const res = await inflight
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('slow')
    expect(await run.exited).toBe(0)
    // The access line for that request was flushed before exit.
    const access = run.stdout.split('\n').filter((l) => l.includes('"component":"access"'))
    expect(access).toHaveLength(1)
    const line = JSON.parse(access[0]!) as Record<string, unknown>
    expect(line).toMatchObject({ level: 'info', listener: 'public', method: 'GET', path: '/slow', status: 200, upstream: 'web', server: u.address })
    // Levels are words on every line, as operators grep for them.
    expect(run.stdout).toContain('"level":"info"')
    expect(run.stdout).not.toMatch(/"level":\d/)
    expect(typeof line.totalMs).toBe('number')
  })

  it('log.access writes access lines whatever log.level says (level: warn)', async () => {
    const u = await startUpstream({ name: 'u' })
    upstreams = [u]
    const port = await closedPort()
    const text = httpConfig({ servers: [u.address], log: '{ level: warn, access: true }' }).replace('127.0.0.1:0', `127.0.0.1:${port}`)
    const run = runCli(['run', '-c', writeConfig(text)])
    runs.push(run)
    await waitFor(async () => (await request(`http://127.0.0.1:${port}/logged`).then(async (r) => { await r.body.text(); return r.statusCode }, () => 0)) === 200, 10_000, 20, 'tandem serving')
    const m = await run.waitForOutput(/^\{.*"component":"access".*$/m)
    expect(JSON.parse(m[0])).toMatchObject({ method: 'GET', path: '/logged', status: 200, upstream: 'web' })
    // The level still holds for everything else: no info line such as "tandem started".
    expect(run.stdout).not.toContain('"tandem started"')
  })

  it('SIGHUP and POST /api/reload apply a changed file; an invalid one is refused and the old config serves', async () => {
    const one = await startUpstream({ name: 'one' })
    const two = await startUpstream({ name: 'two' })
    upstreams = [one, two]
    const [port, adminPort] = [await closedPort(), await closedPort()]
    const text = (address: string): string => yaml(address, `admin: { listen: 127.0.0.1:${adminPort} }`).replace('127.0.0.1:0', `127.0.0.1:${port}`)
    const file = writeConfig(text(one.address))
    const run = runCli(['run', '-c', file])
    runs.push(run)
    await started(run)
    const body = async (): Promise<string> => await (await request(`http://127.0.0.1:${port}/`)).body.text()
    expect(await body()).toBe('one')

    writeFileSync(file, text(two.address))
    run.child.kill('SIGHUP')
    await waitFor(async () => await body() === 'two', 5000, 50, 'SIGHUP reload')

    writeFileSync(file, text(one.address).replace('    servers:', '    balance: fastest\n    servers:'))
    const refused = await request(`http://127.0.0.1:${adminPort}/api/reload`, { method: 'POST' })
    expect(refused.statusCode).toBe(400)
    const errors = (await refused.body.json() as { errors: string[] }).errors
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/upstreams\.web\.balance: /)
    expect(await body()).toBe('two')

    writeFileSync(file, text(one.address))
    const ok = await request(`http://127.0.0.1:${adminPort}/api/reload`, { method: 'POST' })
    expect(ok.statusCode).toBe(200)
    const summary = await ok.body.json() as { changes: { listeners: { kept: string[] }, servers: { added: string[], removed: string[] } } }
    expect(summary.changes.listeners.kept).toEqual(['public'])
    expect(summary.changes.servers).toEqual({ added: [`web/${one.address}`], removed: [`web/${two.address}`] })
    expect(await body()).toBe('one')
    const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`)).body.text()
    expect(metrics).toMatch(/tandem_config_reloads_total\{result="success"\} 2/)
    expect(metrics).toMatch(/tandem_config_reloads_total\{result="failure"\} 1/)
    run.child.kill('SIGTERM')
    expect(await run.exited).toBe(0)
  })
})
