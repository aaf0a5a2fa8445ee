// HAProxy `mode tcp` as the TCP reference: one thread, two proxies (stream, conns) in front of
// the benchmark upstream, its own config in the run's temp dir, high loopback ports.
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { freePort, startChild, stopChild } from './child.js'

export const HAPROXY = '/usr/sbin/haproxy'

export interface RunningTcpTarget {
  readonly name: string
  readonly stream: number
  readonly conns: number
  readonly pid?: number
  stop (): Promise<void>
}

function config (stream: number, conns: number, sourcePort: number, greetPort: number): string {
  return `# Written by bench/targets/haproxy.ts
global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen stream
  bind 127.0.0.1:${stream}
  server source 127.0.0.1:${sourcePort}
listen conns
  bind 127.0.0.1:${conns}
  server greet 127.0.0.1:${greetPort}
`
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}

/** Starts HAProxy in the foreground pinned to `cpu`, or returns undefined when it is not installed. */
export async function startHaproxy (dir: string, sourcePort: number, greetPort: number, cpu?: number): Promise<RunningTcpTarget | undefined> {
  if (!existsSync(HAPROXY)) return undefined
  const stream = await freePort()
  const conns = await freePort()
  const file = join(dir, 'haproxy.cfg')
  await writeFile(file, config(stream, conns, sourcePort, greetPort))
  const child = startChild(HAPROXY, ['-q', '-db', '-f', file], cpu)
  child.stdout?.resume()
  const deadline = Date.now() + 10_000
  while (!(await accepts(stream) && await accepts(conns))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child, 'SIGKILL')
      throw new Error('haproxy did not start listening within 10 s')
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { name: 'haproxy', stream, conns, pid: child.pid, stop: async () => { await stopChild(child) } }
}
