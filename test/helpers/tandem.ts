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

export interface HttpConfigOptions {
  /** `host:port` addresses, or YAML flow mappings such as `{ address: …, weight: 3 }`. */
  servers: string[]
  /** Extra lines under `upstreams.web` (4-space indented), e.g. `    retries: 0`. */
  upstream?: string
  /** Extra lines under the listener (4-space indented). */
  listener?: string
  /** Replaces the catch-all route (6-space indented list items). */
  routes?: string
  /** Extra top-level lines (admin, shutdownTimeout …). */
  top?: string
  log?: string
}

/** One upstream `web` behind one HTTP listener `public` on 127.0.0.1:0. */
export function httpConfig (o: HttpConfigOptions): string {
  const servers = o.servers.map((s) => `      - ${s.startsWith('{') ? s : `{ address: ${s} }`}`).join('\n')
  return `
log: ${o.log ?? '{ level: silent, access: false }'}
${o.top ?? ''}
upstreams:
  web:
${o.upstream ?? ''}
    servers:
${servers}
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
${o.listener ?? ''}
    routes:
${o.routes ?? '      - match: { pathPrefix: / }\n        upstream: web'}
`
}

/** One upstream `echo` (at `address`) behind one TCP listener `l4` on 127.0.0.1:0. */
export function tcpConfig (address: string): string {
  return `
log: { level: silent, access: false }
upstreams:
  echo:
    servers: [{ address: ${address} }]
listeners:
  - name: l4
    protocol: tcp
    listen: 127.0.0.1:0
    upstream: echo
`
}
