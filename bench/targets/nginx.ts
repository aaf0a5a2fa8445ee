// nginx as the reference: one worker, upstream keep-alive, X-Forwarded-* like the others, its own
// prefix directory with config, pid, logs and temp paths, on a free loopback port.
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, startChild, stopChild, waitReady, type RunningTarget } from './child.js'

export const NGINX = '/usr/sbin/nginx'

/** One worker, files under `dir`, no access log, long keep-alive: the start of every http config here. */
function preamble (dir: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/tmp/${t};`).join('\n')}
  keepalive_requests 1000000;
  keepalive_timeout 65s;`
}

function config (dir: string, port: number, upstreamPorts: readonly number[]): string {
  const servers = upstreamPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')
  return `# Written by bench/targets/nginx.ts
${preamble(dir)}
  upstream app {
${servers}
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`
}

/** Starts nginx in the foreground pinned to `cpu`, or returns undefined when it is not installed. */
export async function startNginx (dir: string, upstreamPorts: readonly number[], host: string, path: string, cpu?: number): Promise<RunningTarget | undefined> {
  if (!existsSync(NGINX)) return undefined
  const prefix = join(dir, 'nginx')
  await mkdir(join(prefix, 'tmp'), { recursive: true })
  const port = await freePort()
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, config(prefix, port, upstreamPorts))
  // -e: the startup error log, before the config's own error_log applies (avoids /var/log).
  const child = startChild(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], cpu)
  child.stdout?.resume()
  const url = `http://127.0.0.1:${port}${path}`
  try {
    await waitReady(url, host, 'nginx', child)
  } catch (err) {
    await stopChild(child, 'SIGKILL')
    throw err
  }
  return { name: 'nginx', url, pid: child.pid, stop: async () => { await stopChild(child, 'SIGTERM') } }
}

/**
 * nginx as the benchmark's upstream (one worker on the load CPU): a fixed small answer on `count`
 * ports. A Node upstream would saturate the load core before the fastest proxies do and make them
 * all look alike; nginx needs a fraction of the CPU per answer.
 */
export async function startNginxUpstream (dir: string, count: number, cpu?: number): Promise<{ ports: number[], target: RunningTarget } | undefined> {
  if (!existsSync(NGINX)) return undefined
  const prefix = join(dir, 'nginx-upstream')
  await mkdir(join(prefix, 'tmp'), { recursive: true })
  const ports: number[] = []
  for (let i = 0; i < count; i++) ports.push(await freePort())
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `# Written by bench/targets/nginx.ts (upstream)
${preamble(prefix)}
  default_type text/plain;
  server {
${ports.map((p) => `    listen 127.0.0.1:${p};`).join('\n')}
    location = /healthz { return 200 "ok\\n"; }
    location / { return 200 "hello, world\\n"; }
  }
}
`)
  const child = startChild(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], cpu)
  child.stdout?.resume()
  const url = `http://127.0.0.1:${ports[0] as number}/healthz`
  try {
    await waitReady(url, '127.0.0.1', 'nginx upstream', child)
  } catch (err) {
    await stopChild(child, 'SIGKILL')
    throw err
  }
  return { ports, target: { name: 'upstream', url, pid: child.pid, stop: async () => { await stopChild(child, 'SIGTERM') } } }
}
