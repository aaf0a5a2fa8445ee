import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'

/** python3, which the blackhole needs; tests that use it skip without. */
export const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p))

export interface Blackhole {
  readonly port: number
  close (): void
}

/**
 * A loopback port where connects hang until the caller's timeout: a socket that listens with
 * backlog 0 and never accepts, its one queue slot taken by a filler connection, so the kernel
 * drops further SYNs. Node cannot make one (net.Server always accepts), hence python3.
 */
export async function startBlackhole (): Promise<Blackhole> {
  const child = spawn(PYTHON as string, ['-c', [
    'import socket, sys',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n')], { stdio: ['pipe', 'pipe', 'ignore'] })
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => { resolve(Number(d.toString().trim())) }))
  const filler = net.connect(port, '127.0.0.1')
  filler.on('error', () => {})
  await new Promise((resolve) => filler.once('connect', resolve))
  return {
    port,
    close () {
      filler.destroy()
      child.kill()
    },
  }
}
