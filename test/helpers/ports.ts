/*
 * Ports a test binds later (a child process's listen, peer or admin port, or a port to find
 * closed). Not from the kernel's ephemeral range, as binding port 0 and releasing it gives: the
 * kernel may hand that number to any outgoing connection before the test listens on it (CI saw
 * `address already in use` this way). Each vitest worker takes its own block below that range,
 * and a port is handed out once per process, free for both TCP and UDP when it is.
 */
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import net from 'node:net'

const SPAN = 1500
const BLOCKS = 8

/** Where the blocks start: below the kernel's ephemeral range, else above it. */
function firstBlock (): number {
  let low = 32768
  let high = 60999
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (a !== undefined && b !== undefined && a > 0 && b >= a) [low, high] = [a, b]
  } catch { /* not Linux: the defaults */ }
  if (low - BLOCKS * SPAN >= 1024) return low - BLOCKS * SPAN
  if (high + 1 + BLOCKS * SPAN <= 65536) return high + 1
  return 20_000
}

const BASE = firstBlock() + (Number(process.env.VITEST_POOL_ID ?? 0) % BLOCKS) * SPAN
let offset = Math.floor(Math.random() * SPAN)

async function bindable (port: number): Promise<boolean> {
  const tcp = net.createServer()
  const tcpOk = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => { resolve(false) })
    tcp.listen(port, '127.0.0.1', () => { resolve(true) })
  })
  if (tcpOk) await new Promise<void>((resolve) => { tcp.close(() => { resolve() }) })
  if (!tcpOk) return false
  const udp = dgram.createSocket('udp4')
  const udpOk = await new Promise<boolean>((resolve) => {
    udp.once('error', () => { resolve(false) })
    udp.bind(port, '127.0.0.1', () => { resolve(true) })
  })
  await new Promise<void>((resolve) => { try { udp.close(() => { resolve() }) } catch { resolve() } })
  return udpOk
}

/** A port nothing listens on now, free for TCP and UDP on 127.0.0.1, never handed out before here. */
export async function reservePort (): Promise<number> {
  for (let i = 0; i < SPAN; i++) {
    const port = BASE + (offset++ % SPAN)
    if (await bindable(port)) return port
  }
  throw new Error(`no free port in ${BASE}-${BASE + SPAN - 1}`)
}
