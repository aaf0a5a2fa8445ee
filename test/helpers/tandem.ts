import { parseConfig } from '../../src/config/load.js'
import { Runtime } from '../../src/runtime/runtime.js'

export interface RunningTandem {
  readonly runtime: Runtime
  /** Base URL of the named listener (the first when omitted). */
  url (listener?: string): string
  port (listener?: string): number
  stop (timeoutMs?: number): Promise<boolean>
}

/** Starts a proxy in this process from YAML; listeners should use 127.0.0.1:0. */
export async function startProxy (yaml: string): Promise<RunningTandem> {
  const runtime = new Runtime(parseConfig(yaml, 'test.yaml'))
  await runtime.start()
  const port = (name?: string): number => {
    const l = name === undefined ? runtime.listeners[0] : runtime.listener(name)
    if (l === undefined) throw new Error(`no listener ${name ?? ''}`)
    return l.address().port
  }
  return {
    runtime,
    port,
    url: (name?: string) => `http://127.0.0.1:${port(name)}`,
    stop: async (timeoutMs = 1000) => await runtime.stop(timeoutMs),
  }
}
