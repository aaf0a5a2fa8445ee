// Does what the Docker image does, without Docker: `npm pack`, install the tarball with
// `--omit=dev` into an empty folder outside the repo, then run the installed `tandem` binary:
// `check` on every example, `schema`, and `demo` answering through its proxy until SIGTERM.
// A file left out of package.json `files`, or a runtime import of a devDependency, fails here.
// Needs `dist/` (npm test builds first) and the npm registry.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/wait.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEMO_BACKENDS = ['alpha', 'bravo', 'charlie']

interface RunResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

// The parent `npm test` exports its own package's context (npm_package_*, npm_config_local_prefix,
// INIT_CWD); a child npm must not think it is still working in the repo. User npm config
// (registry, cafile, cache) passes through. NODE_PATH could hide a missing dependency.
function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_package_|npm_lifecycle_)|^(npm_config_local_prefix|npm_config_call|npm_command|init_cwd|node_path)$/i.test(k)) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

const children = new Set<ChildProcess>()

/** Runs a command to completion, killing it after `timeoutMs`. Never rejects on a non-zero exit. */
async function run (cmd: string, args: string[], cwd: string, timeoutMs: number, env = cleanEnv()): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.once('error', (err) => { clearTimeout(timer); children.delete(child); reject(err) })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      children.delete(child)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

function describeRun (what: string, r: RunResult): string {
  return `${what}: exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`
}

/** Distinct free loopback ports: all held open at once, then released. */
async function freePorts (n: number): Promise<number[]> {
  const servers: net.Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer()
      servers.push(s)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(0, '127.0.0.1', () => { resolve() })
      })
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map(async (s) => { await new Promise((resolve) => s.close(resolve)) }))
  }
}

describe('the npm package, installed with --omit=dev (what the Docker image runs)', () => {
  let work = ''
  let app = ''
  let bin = ''
  let exampleFiles: string[] = []

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first (npm test does)')
    work = await mkdtemp(join(tmpdir(), 'tandem-e2e-'))
    const packDir = join(work, 'pack')
    app = join(work, 'app')
    await mkdir(packDir)
    await mkdir(app)

    const pack = await run('npm', ['pack', '--pack-destination', packDir, '--silent'], ROOT, 120_000)
    if (pack.code !== 0) throw new Error(describeRun('npm pack', pack))
    const tarballs = (await readdir(packDir)).filter((f) => f.endsWith('.tgz'))
    if (tarballs.length !== 1) throw new Error(`npm pack wrote ${tarballs.length} tarballs: ${tarballs.join(', ')}`)

    // An empty project, as `npm init -y` would write it (without reading the user's init module).
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'tandem-e2e-app', version: '1.0.0', private: true }) + '\n')
    const install = await run('npm', [
      'install', '--omit=dev', '--no-audit', '--no-fund', '--no-save', '--loglevel=error', join(packDir, tarballs[0] as string),
    ], app, 300_000)
    if (install.code !== 0) throw new Error(describeRun('npm install <tarball>', install))
    bin = join(app, 'node_modules', '.bin', 'tandem')
    exampleFiles = (await readdir(join(ROOT, 'examples'))).sort()
  }, 420_000)

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL')
    if (work !== '') await rm(work, { recursive: true, force: true })
  }, 30_000)

  it('installs the bin, no devDependency, and reports the package version', async () => {
    expect(existsSync(bin)).toBe(true)
    const installed = await readdir(join(app, 'node_modules'))
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string, devDependencies?: Record<string, string> }
    for (const dev of Object.keys(pkg.devDependencies ?? {})) {
      if (dev.startsWith('@')) continue // scoped type packages; the unscoped ones are the runtime risk
      expect(installed, `devDependency ${dev} must not be installed`).not.toContain(dev)
    }
    const r = await run(bin, ['--version'], app, 30_000)
    expect(r.code, describeRun('tandem --version', r)).toBe(0)
    expect(r.stdout).toBe(`${pkg.version}\n`)
  }, 60_000)

  it('ships every file of examples/', async () => {
    expect(exampleFiles.length).toBeGreaterThan(0)
    const shipped = (await readdir(join(app, 'node_modules', 'tandem', 'examples'))).sort()
    expect(shipped).toEqual(exampleFiles)
  }, 30_000)

  it('`tandem check` passes on every example config', async () => {
    // docker-compose.yml is not a tandem config (test/integration/examples.test.ts checks it).
    const configs = exampleFiles.filter((f) => /\.ya?ml$/.test(f) && f !== 'docker-compose.yml')
    expect(configs).toContain('demo.yaml')
    for (const f of configs) {
      const rel = join('node_modules', 'tandem', 'examples', f)
      const r = await run(bin, ['check', '-c', rel], app, 30_000)
      expect(r.code, describeRun(`tandem check -c ${rel}`, r)).toBe(0)
      expect(r.stdout).toBe(`${rel}: ok\n`)
    }
  }, 180_000)

  it('`tandem schema` prints the JSON Schema, the one shipped beside the examples', async () => {
    const r = await run(bin, ['schema'], app, 30_000)
    expect(r.code, describeRun('tandem schema', r)).toBe(0)
    const schema = JSON.parse(r.stdout) as { $schema?: string, properties?: Record<string, unknown> }
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(Object.keys(schema.properties ?? {})).toContain('upstreams')
    // The examples' `$schema=./tandem.schema.json` comment points editors at the shipped copy:
    // it must be what this version prints.
    const shipped = join(app, 'node_modules', 'tandem', 'examples', 'tandem.schema.json')
    if (exampleFiles.includes('tandem.schema.json')) expect(JSON.parse(await readFile(shipped, 'utf8'))).toEqual(schema)
  }, 60_000)

  it('`tandem demo` answers through its proxy and exits 0 on SIGTERM', async () => {
    const [proxyPort, adminPort, b1, b2, b3] = await freePorts(5)
    const env = cleanEnv({
      TANDEM_DEMO_PORT: String(proxyPort),
      TANDEM_DEMO_ADMIN_PORT: String(adminPort),
      TANDEM_DEMO_BACKEND_PORT_1: String(b1),
      TANDEM_DEMO_BACKEND_PORT_2: String(b2),
      TANDEM_DEMO_BACKEND_PORT_3: String(b3),
    })
    const child = spawn(bin, ['demo'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => { resolve({ code, signal }) })
    })
    let exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
    void exited.then((e) => { exit = e; children.delete(child) })
    const output = (): string => `--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`

    await waitFor(() => {
      if (exit !== undefined) throw new Error(`tandem demo exited early (${exit.code ?? exit.signal})\n${output()}`)
      return /proxy:\s+http:\/\/\S+/.test(stdout)
    }, 30_000, 50, 'the demo printing its proxy URL')
    const proxyUrl = (/proxy:\s+(http:\/\/\S+)/.exec(stdout) as RegExpExecArray)[1] as string
    expect(proxyUrl).toBe(`http://127.0.0.1:${proxyPort}/`)

    // Health checks may hold the servers down for their first `rise` checks: 503 until then.
    let first: { status: number, body: string } = { status: 0, body: '' }
    await waitFor(async () => {
      const res = await request(proxyUrl, { headersTimeout: 5000, bodyTimeout: 5000 })
      first = { status: res.statusCode, body: await res.body.text() }
      if (first.status !== 200 && first.status !== 503) throw new Error(`demo proxy answered ${first.status}: ${first.body}\n${output()}`)
      return first.status === 200
    }, 30_000, 200, 'a 200 through the demo proxy')
    const seen = new Set<string>([(JSON.parse(first.body) as { backend: string }).backend])
    for (let i = 0; i < 6; i++) {
      const res = await request(`${proxyUrl}hello?i=${i}`, { headersTimeout: 5000, bodyTimeout: 5000 })
      expect(res.statusCode).toBe(200)
      const body = JSON.parse(await res.body.text()) as { backend: string, path: string }
      expect(body.path).toBe(`/hello?i=${i}`)
      seen.add(body.backend)
    }
    for (const name of seen) expect(DEMO_BACKENDS).toContain(name)

    // The admin server the demo printed is part of the package too.
    const admin = /admin:\s+(http:\/\/[^/\s]+)\//.exec(stdout)?.[1]
    expect(admin, output()).toBe(`http://127.0.0.1:${adminPort}`)
    const health = await request(`${admin as string}/healthz`, { headersTimeout: 5000, bodyTimeout: 5000 })
    expect(health.statusCode).toBe(200)
    expect((await health.body.text()).trim()).toBe('ok')
    const dashboard = await request(`${admin as string}/`, { headersTimeout: 5000, bodyTimeout: 5000 })
    expect(dashboard.statusCode).toBe(200)
    expect(String(dashboard.headers['content-type'])).toMatch(/^text\/html/)
    const page = await dashboard.body.text()
    expect(page).toMatch(/<html/i)
    // Every file the page loads comes from the installed package (uPlot from its own dependency,
    // no CDN): byte for byte what the repo has, so a file left out of the package fails here.
    const assets = [...page.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1] as string).sort()
    expect(assets).toEqual(['assets/app.css', 'assets/app.js', 'assets/charts.js', 'assets/format.js', 'assets/servers.js', 'assets/uplot.css', 'assets/uplot.js'])
    const own = (name: string): string => join(ROOT, 'src', 'admin', 'dashboard', name)
    const sources: Record<string, string> = {
      'assets/app.css': own('app.css'),
      'assets/app.js': own('app.js'),
      'assets/charts.js': own('charts.js'),
      'assets/format.js': own('format.js'),
      'assets/servers.js': own('servers.js'),
      'assets/uplot.css': join(ROOT, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'),
      'assets/uplot.js': join(ROOT, 'node_modules', 'uplot', 'dist', 'uPlot.iife.min.js'),
    }
    for (const a of assets) {
      const res = await request(`${admin as string}/${a}`, { headersTimeout: 5000, bodyTimeout: 5000 })
      const body = Buffer.from(await res.body.arrayBuffer())
      expect(res.statusCode, `${a}: ${body.toString('utf8', 0, 300)}`).toBe(200)
      expect(body.equals(await readFile(sources[a] as string)), `${a} differs from ${sources[a] as string}`).toBe(true)
    }

    child.kill('SIGTERM')
    const done = await Promise.race([
      exited,
      new Promise<undefined>((resolve) => { setTimeout(() => { resolve(undefined) }, 20_000).unref() }),
    ])
    expect(done, `tandem demo did not stop within 20 s of SIGTERM\n${output()}`).toEqual({ code: 0, signal: null })
  }, 120_000)
})
