// nginx `stream` as a TCP reference (one worker): two servers (stream, conns) in front of the
// benchmark upstream. Needs the stream module (Debian: libnginx-mod-stream); skipped without it.
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { freePort, startChild, stopChild } from './child.js'
import type { RunningTcpTarget } from './haproxy.js'
import { NGINX } from './nginx.js'

const MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}

/** Starts nginx stream pinned to `cpu`, or returns undefined without nginx or its stream module. */
export async function startNginxStream (dir: string, sourcePort: number, greetPort: number, cpu?: number): Promise<RunningTcpTarget | undefined> {
  if (!existsSync(NGINX) || !existsSync(MODULE)) return undefined
  const prefix = join(dir, 'nginx-stream')
  await mkdir(prefix, { recursive: true })
  const stream = await freePort()
  const conns = await freePort()
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `# Written by bench/targets/nginx-stream.ts
load_module ${MODULE};
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
stream {
  server { listen 127.0.0.1:${stream}; proxy_pass 127.0.0.1:${sourcePort}; }
  server { listen 127.0.0.1:${conns}; proxy_pass 127.0.0.1:${greetPort}; }
}
`)
  const child = startChild(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], cpu)
  child.stdout?.resume()
  const deadline = Date.now() + 10_000
  while (!(await accepts(stream) && await accepts(conns))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child, 'SIGKILL')
      throw new Error('nginx stream did not start listening within 10 s')
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { name: 'nginx stream', stream, conns, pid: child.pid, stop: async () => { await stopChild(child) } }
}
