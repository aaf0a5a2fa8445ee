#!/usr/bin/env -S node --max-semi-space-size=2 --no-maglev
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { util } from './node-builtins.js'
import { loadConfigFile, parseConfig } from './config/load.js'
import { configSchema } from './config/schema.js'
import type { Config } from './config/types.js'
import type { DemoBackend } from './demo/backends.js'
import { ConfigErrors } from './errors.js'
import type { Logger } from './observability/log.js'
import { serve, type Serving } from './runtime/serve.js'
import { USAGE, helpText } from './cli-help.js'


export const VERSION: string = await readFile(new URL('../package.json', import.meta.url), 'utf8')
  .then((t) => (JSON.parse(t) as { version: string }).version, () => '0.0.0')

/** After the shutdown deadline, the longest the last steps (admin close, log flush) may take. */
const EXIT_GRACE_MS = 3000
/** How long a forced exit waits for the log to flush. */
const FLUSH_GRACE_MS = 1000

let crashLog: Logger | undefined

/**
 * An uncaught exception or unhandled rejection leaves the process in an unknown state: log it
 * (flushing the async log first), then exit 1, so a supervisor restarts a clean process.
 */
function crash (what: string, err: unknown): void {
  const log = crashLog
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
  if (log === undefined) {
    process.stderr.write(`tandem: ${what}: ${message}\n`)
    process.exit(1)
  }
  log.fatal({ err }, what)
  setTimeout(() => { process.exit(1) }, 1000).unref()
  log.flush(() => { process.exit(1) })
}
process.on('uncaughtException', (err) => { crash('uncaught exception', err) })
process.on('unhandledRejection', (reason) => { crash('unhandled rejection', reason) })

function fail (code: number, message: string): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n')
  process.exit(code)
}

async function load (file: string, text?: string): Promise<Config> {
  try {
    return text === undefined ? await loadConfigFile(file) : parseConfig(text, file)
  } catch (err) {
    if (err instanceof ConfigErrors) fail(2, err.message)
    fail(1, `tandem: ${(err as Error).message}`)
  }
}

/** Runs a proxy until SIGTERM/SIGINT; SIGHUP reloads. `cleanup` closes what the demo started. */
async function run (config: Config, cleanup?: () => Promise<void>): Promise<Serving> {
  let serving: Serving
  try {
    serving = await serve(config, VERSION, cleanup)
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string, port?: number }
    const where = e.address !== undefined ? ` ${e.address}:${e.port ?? ''}` : ''
    const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : e.message
    await cleanup?.()
    fail(1, `tandem: cannot listen on${where}: ${why}`)
  }
  crashLog = serving.log
  let signalled = false
  const stop = (signal: string): void => {
    if (signalled) {
      // A second signal is an operator who will not wait: leave now, not cleanly.
      serving.log.warn({ signal }, 'second signal during shutdown: exiting at once')
      serving.log.flush(() => { process.exit(1) })
      setTimeout(() => { process.exit(1) }, 200).unref()
      return
    }
    signalled = true
    // The sequence keeps the deadline itself; this only guards against a step that never ends
    // (a stuck log destination, a demo backend), so the process always goes. It must not fire
    // before the sequence may end: the delay, then the drain, after a pair's hand-over.
    const { shutdownDelay, shutdownTimeout, peer } = serving.runtime.config
    const handOverMs = peer === undefined ? 0 : peer.heartbeat * peer.deadAfter
    const guardMs = shutdownDelay + shutdownTimeout + handOverMs + EXIT_GRACE_MS
    setTimeout(() => {
      serving.log.warn({ afterMs: guardMs }, 'shutdown did not end in time: exiting')
      // The lines of what was cut are worth the wait, unless the destination itself is stuck.
      setTimeout(() => { process.exit(0) }, FLUSH_GRACE_MS).unref()
      serving.log.flush(() => { process.exit(0) })
    }, guardMs).unref()
    serving.shutdown(signal).then(() => { process.exit(0) }, (err: unknown) => { crash('shutdown failed', err) })
  }
  process.on('SIGTERM', () => { stop('SIGTERM') })
  process.on('SIGINT', () => { stop('SIGINT') })
  process.on('SIGHUP', () => { void serving.reload() })
  return serving
}

async function demo (): Promise<void> {
  const file = fileURLToPath(new URL('../examples/demo.yaml', import.meta.url))
  const config = await load(file)
  const servers = config.upstreams.demo?.servers ?? []
  const names = ['alpha', 'bravo', 'charlie']
  const backends: DemoBackend[] = []
  // Loaded here, not at start: `tandem run` has no use for the demo's servers.
  const { startDemoBackend } = await import('./demo/backends.js')
  try {
    for (const [i, s] of servers.entries()) {
      // The last backend is slower, so response-time balancing has something to show.
      backends.push(await startDemoBackend(names[i] ?? `backend-${i + 1}`, s.host, s.port, i === servers.length - 1 ? 40 : 0))
    }
  } catch (err) {
    await Promise.all(backends.map(async (b) => { await b.close() }))
    fail(1, `tandem: cannot start demo backends: ${(err as Error).message}`)
  }
  const { runtime, admin } = await run(config, async () => { await Promise.all(backends.map(async (b) => { await b.close() })) })
  const web = runtime.listeners[0]?.address()
  const lines = [
    'tandem demo is running',
    `  proxy:     http://${web?.host ?? '127.0.0.1'}:${web?.port ?? ''}/`,
  ]
  if (admin !== undefined) {
    const a = admin.address()
    lines.push(`  admin:     http://${a.host}:${a.port}/api/status`, `  metrics:   http://${a.host}:${a.port}/metrics`, `  dashboard: http://${a.host}:${a.port}/`)
  }
  lines.push(`  backends:  ${backends.map((b) => `${b.name} ${b.url}`).join(', ')}`, 'Ctrl-C stops it.')
  process.stdout.write(lines.join('\n') + '\n')
}

function parseCommandLine (argv: string[]): { values: { config?: string | undefined, help?: boolean | undefined, version?: boolean | undefined }, positionals: string[] } {
  try {
    return util.parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    })
  } catch (err) {
    // A bad command line is a usage error (exit 2, as the help says), not a runtime failure.
    return fail(2, `tandem: ${(err as Error).message}\n${USAGE}`)
  }
}

async function main (argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv)
  if (values.version === true) { process.stdout.write(VERSION + '\n'); return }
  const command = positionals[0] ?? (values.config !== undefined ? 'run' : undefined)
  if (command === 'help') { process.stdout.write(helpText(positionals[1]) + '\n'); return }
  if (values.help === true || command === undefined) { process.stdout.write(helpText(command) + '\n'); return }
  switch (command) {
    case 'run':
    case 'check': {
      const file = values.config ?? positionals[1]
      if (file === undefined) fail(2, `tandem ${command}: missing -c FILE\n${USAGE}`)
      const config = await load(file)
      if (command === 'check') {
        for (const w of config.warnings ?? []) process.stderr.write(w + '\n')
        process.stdout.write(`${file}: ok\n`)
        return
      }
      await run(config)
      return
    }
    case 'schema':
      process.stdout.write(JSON.stringify(configSchema, null, 2) + '\n')
      return
    case 'demo':
      await demo()
      return
    default:
      fail(2, `tandem: unknown command "${command}"\n${USAGE}`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  fail(1, `tandem: ${err instanceof Error ? err.message : String(err)}`)
})
