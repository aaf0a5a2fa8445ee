import { AdminServer } from '../admin/server.js'
import { systemClock } from '../clock.js'
import type { Answer } from '../admin/api.js'
import { loadConfigFile } from '../config/load.js'
import type { Config } from '../config/types.js'
import { ConfigErrors } from '../errors.js'
import { channels } from '../observability/events.js'
import { attachLogs, createLogger, type Logger } from '../observability/log.js'
import type { PeerNode } from '../peer/node.js'
import { bindsListeners, createPeer, handOverBeforeShutdown } from './pair.js'
import { reloadRuntime } from './reload.js'
import { Runtime } from './runtime.js'
import { runShutdown } from './shutdown.js'

function shuttingDown (): Answer {
  return { status: 503, body: { errors: ['shutting down'] } }
}

export interface Serving {
  readonly runtime: Runtime
  readonly admin: AdminServer | undefined
  /** The pair node with `peer:` configured; it outlives reloads. */
  readonly peer: PeerNode | undefined
  readonly log: Logger
  /** Re-reads the config file: 200 with what changed, 400 with the errors (SIGHUP, POST /api/reload). */
  reload (): Promise<Answer>
  /** Graceful stop; resolves after everything is closed. */
  shutdown (signal: string): Promise<void>
}

/**
 * The running process around one Runtime at a time: logs, the admin server, reloads from the
 * config file and graceful shutdown. Throws a system error when a listener cannot bind.
 */
export async function serve (config: Config, version: string, cleanup: () => Promise<void> = async () => {}): Promise<Serving> {
  const log = createLogger(config.log)
  let detach = attachLogs(log, config.log)
  let runtime = new Runtime(config)
  for (const warning of config.warnings ?? []) log.warn({ warning }, 'config warning')
  let admin: AdminServer | undefined
  let reloading: Promise<Answer> | undefined
  /** The one reload queued behind the running one; every request that comes meanwhile shares it. */
  let followUp: Promise<Answer> | undefined
  /**
   * Runtimes a reload replaced whose retire still runs (in-flight work on listeners the new
   * config dropped): a shutdown drains and closes them under its own deadline too.
   */
  const retiring = new Set<Runtime>()
  let stopping: Promise<void> | undefined
  // --- pair: a node starts as standby and serves only once elected -----------------------------
  let peer: PeerNode | undefined
  if (config.peer !== undefined) {
    runtime.role = 'standby'
    if (config.peer.onChange === undefined && config.peer.standby === 'open') log.warn('peer: standby open without onChange: both nodes stay bound; only a moving address keeps clients on the active')
  }
  // --- end pair ----------------------------------------------------------------------------------

  const reload = async (): Promise<Answer> => {
    let next: Config
    try {
      next = await loadConfigFile(runtime.config.file)
    } catch (err) {
      channels.configReload.publish({ result: 'failure' })
      const errors = err instanceof ConfigErrors ? err.errors.map((e) => e.message) : [(err as Error).message]
      log.error({ errors }, 'reload refused; the running config stays')
      return { status: 400, body: { errors } }
    }
    try {
      for (const warning of next.warnings ?? []) log.warn({ warning }, 'config warning')
      const { runtime: started, summary, retired } = await reloadRuntime(runtime, next, () => peer?.election.role ?? runtime.role)
      const replaced = runtime
      runtime = started
      detach()
      log.level = next.log.level
      detach = attachLogs(log, next.log)
      retiring.add(replaced)
      void retired.then((clean) => { log.info({ clean }, 'previous config retired') }, () => {})
        .finally(() => { retiring.delete(replaced) })
      log.info({ summary, hash: next.hash }, 'config reloaded')
      // Both are built once from the config at start; an operator who edited them (a token added,
      // say) must hear that the edit did not take, in the log and in the answer.
      const warnings: string[] = []
      if (JSON.stringify(next.peer) !== JSON.stringify(config.peer)) warnings.push('peer: settings changed in the file take effect at the next restart (the pair outlives reloads)')
      if (JSON.stringify(next.admin) !== JSON.stringify(config.admin)) warnings.push('admin: settings changed in the file take effect at the next restart (the admin server outlives reloads)')
      for (const w of warnings) log.warn(w)
      return { status: 200, body: { reloaded: true, hash: next.hash, changes: summary, ...(warnings.length === 0 ? {} : { warnings }) } }
    } catch (err) {
      const message = `cannot apply the new config: ${(err as Error).message}`
      log.error({ err }, 'reload failed; the running config stays')
      return { status: 400, body: { errors: [message] } }
    }
  }

  const runReload = async (): Promise<Answer> => {
    reloading = reload().finally(() => { reloading = undefined })
    return await reloading
  }

  const serialisedReload = async (): Promise<Answer> => {
    if (stopping !== undefined) return shuttingDown()
    if (reloading === undefined) return await runReload()
    // One reload at a time. The one running read the file before this request came, so it may
    // miss the edit this request announces: one more reload follows it, shared by every request
    // that comes meanwhile, so the last request always sees the file's latest contents applied.
    followUp ??= reloading.then(async () => {
      followUp = undefined
      return stopping !== undefined ? shuttingDown() : await runReload()
    })
    return await followUp
  }

  try {
    // Built first so that its metrics count from the start (a peer's first rejected messages, say);
    // it listens once the runtime and the peer run.
    if (config.admin !== undefined) admin = new AdminServer(config.admin, { runtime: () => runtime, version, reload: serialisedReload, ...(config.peer === undefined ? {} : { peer: () => peer }) })
    await runtime.start({ bind: bindsListeners(config.peer, runtime.role) })
    if (config.peer !== undefined) {
      peer = await createPeer(config.peer, () => runtime, log)
      await peer.start()
    }
    await admin?.listen()
  } catch (err) {
    await peer?.close()
    await runtime.stop(0)
    await admin?.close()
    detach()
    throw err
  }
  log.info({ listeners: runtime.listeners.map((l) => ({ name: l.name, ...l.address() })), ...(admin === undefined ? {} : { admin: admin.address() }) }, 'tandem started')

  const shutdown = async (signal: string): Promise<void> => {
    stopping ??= (async () => {
      const signalledAt = systemClock.now()
      const current = runtime.config
      log.info({ signal, delayMs: current.shutdownDelay, timeoutMs: current.shutdownTimeout }, 'shutting down')
      // The deadline counts from the signal; an active node of a pair hands over first.
      admin?.setShuttingDown()
      await handOverBeforeShutdown(peer, current.peer, log)
      peer?.retire()
      const { clean, elapsedMs } = await runShutdown({
        delayMs: current.shutdownDelay,
        timeoutMs: current.shutdownTimeout,
        clock: systemClock,
        notReady: () => { admin?.setShuttingDown() },
        stopAccepting: async () => {
          // A reload under way may swap the Runtime; stop the one that ends up serving.
          await reloading?.catch(() => {})
          await runtime.stopAccepting()
        },
        drained: async () => { await Promise.all([runtime, ...retiring].map(async (r) => { await r.drained() })) },
        closeRest: async () => {
          // What a retire still drains is cut at this deadline too, and awaited: the ends of what
          // was cut must be published before the log detaches.
          const gone = new Set([...retiring].flatMap((r) => r.listeners.filter((l) => !runtime.listeners.includes(l))))
          await Promise.all([runtime.closeAll(), ...[...gone].map(async (l) => { await l.destroy() })])
        },
      }, signalledAt)
      log.info({ clean, elapsedMs }, clean ? 'stopped' : 'stopped; work still open at the deadline was closed')
      await peer?.close()
      await admin?.close()
      await cleanup()
      detach()
      await new Promise<void>((resolve) => { log.flush(() => { resolve() }) })
    })()
    await stopping
  }

  return {
    get runtime () { return runtime },
    get admin () { return admin },
    get peer () { return peer },
    log,
    reload: serialisedReload,
    shutdown,
  }
}
