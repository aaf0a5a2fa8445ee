import { fork, spawn, type ChildProcess } from 'node:child_process'
import net, { type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { systemClock } from '../../src/clock.js'
import type { BalanceName, ServerConfig, TcpListenerConfig, UpstreamConfig } from '../../src/config/types.js'
import { TcpListener } from '../../src/listener/tcp-listener.js'
import { channels, type TcpConnectionEnd, type TcpConnectionStart } from '../../src/observability/events.js'
import { Upstream } from '../../src/upstream/upstream.js'
import { waitFor } from './wait.js'
import { reservePort } from './ports.js'

/** A server entry: `host:port`, or that plus options. */
export type ServerSpec = string | { address: string, weight?: number, backup?: boolean, maxConnections?: number }

export function serverConfig (spec: ServerSpec): ServerConfig {
  const s = typeof spec === 'string' ? { address: spec } : spec
  const i = s.address.lastIndexOf(':')
  const host = s.address.slice(0, i).replace(/^\[(.*)\]$/, '$1')
  return {
    text: s.address,
    host,
    port: Number(s.address.slice(i + 1)),
    weight: s.weight ?? 1,
    backup: s.backup ?? false,
    maxConnections: s.maxConnections ?? 0,
  }
}

export function upstreamConfig (
  name: string,
  servers: readonly ServerSpec[],
  opts: { balance?: BalanceName, connectTimeout?: number } = {},
): UpstreamConfig {
  return {
    name,
    balance: opts.balance ?? 'round-robin',
    servers: servers.map(serverConfig),
    connectTimeout: opts.connectTimeout ?? 2000,
    retries: 1,
    slowStart: 0,
  }
}

/** A tcp listener config on 127.0.0.1:0 with the normaliser's defaults, overridden by `opts`. */
export function tcpListenerConfig (opts: Partial<TcpListenerConfig> = {}): TcpListenerConfig {
  return {
    name: 'tcp',
    protocol: 'tcp',
    listen: { text: '127.0.0.1:0', host: '127.0.0.1', port: 0 },
    routes: [],
    proxyProtocol: 'off',
    idleTimeout: 300_000,
    maxConnections: 0,
    prereadTimeout: 5000,
    ...opts,
  }
}

export interface TcpProxy {
  readonly listener: TcpListener
  readonly upstreams: Map<string, Upstream>
  readonly port: number
  close (): Promise<void>
}

/** Builds Upstreams and a TcpListener directly (no runtime) and binds it. */
export async function startTcpProxy (listener: Partial<TcpListenerConfig>, upstreams: readonly UpstreamConfig[]): Promise<TcpProxy> {
  const map = new Map<string, Upstream>()
  for (const uc of upstreams) map.set(uc.name, new Upstream(uc, { clock: systemClock, random: Math.random }))
  const l = new TcpListener(tcpListenerConfig(listener), { upstreams: map, clock: systemClock, random: Math.random })
  await l.listen()
  return {
    listener: l,
    upstreams: map,
    port: l.address().port,
    close: async () => {
      await l.stopAccepting()
      l.destroy()
      await l.drained()
    },
  }
}

/** Collects tcpConnectionStart / tcpConnectionEnd events until stop(). */
export function recordTcpEvents (): { starts: TcpConnectionStart[], ends: TcpConnectionEnd[], stop (): void } {
  const starts: TcpConnectionStart[] = []
  const ends: TcpConnectionEnd[] = []
  const onStart = (m: unknown): void => { starts.push(m as TcpConnectionStart) }
  const onEnd = (m: unknown): void => { ends.push(m as TcpConnectionEnd) }
  channels.tcpConnectionStart.subscribe(onStart)
  channels.tcpConnectionEnd.subscribe(onEnd)
  return {
    starts,
    ends,
    stop: () => {
      channels.tcpConnectionStart.unsubscribe(onStart)
      channels.tcpConnectionEnd.unsubscribe(onEnd)
    },
  }
}

export interface TestTcpServer {
  readonly port: number
  readonly address: string
  readonly server: net.Server
  /** Connections accepted so far. */
  readonly accepted: number
  close (): Promise<void>
}

/** A plain TCP server on `host`:0 (allowHalfOpen, so half-close can be observed). */
export async function startTcpServer (onSocket: (socket: net.Socket) => void, host = '127.0.0.1'): Promise<TestTcpServer> {
  let accepted = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onSocket(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    server,
    get accepted () { return accepted },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Echoes every byte and ends when the client ends. */
export function echo (socket: net.Socket): void {
  socket.pipe(socket)
}

/** A port that refuses connections (bound, then closed). */
export async function closedPort (): Promise<number> {
  return await reservePort()
}

export function connect (port: number, host = '127.0.0.1', opts: net.TcpNetConnectOpts | object = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, allowHalfOpen: true, ...opts })
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  })
}

/** Everything the socket delivers until its end (or close). */
export function readAll (socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {})
    let done = false
    const finish = (): void => { if (!done) { done = true; resolve(Buffer.concat(chunks)) } }
    socket.on('end', finish)
    socket.on('close', finish)
  })
}

/**
 * Resolves with how the socket closed: 'end' (FIN seen first; answered with our own FIN),
 * 'reset' (an error such as ECONNRESET) or 'close'.
 */
export function closeKind (socket: net.Socket): Promise<{ kind: 'end' | 'reset' | 'close', code?: string }> {
  return new Promise((resolve) => {
    let kind: 'end' | 'reset' | 'close' = 'close'
    let code: string | undefined
    socket.on('end', () => { if (kind === 'close') kind = 'end'; socket.end() })
    socket.on('error', (e: NodeJS.ErrnoException) => { kind = 'reset'; code = e.code })
    socket.on('close', () => resolve(code === undefined ? { kind } : { kind, code }))
    socket.resume()
  })
}

/** A decoded PROXY protocol header, v1 or v2, and how many bytes it took. */
export interface ProxyHeader {
  version: 1 | 2
  command: 'PROXY' | 'LOCAL'
  family: 'TCP4' | 'TCP6' | 'UNKNOWN'
  sourceAddress?: string
  destAddress?: string
  sourcePort?: number
  destPort?: number
  length: number
}

/** An independent decoder for tests (the proxy only encodes); undefined until complete. */
export function parseProxyHeader (buf: Buffer): ProxyHeader | undefined {
  const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
  if (buf.length >= 16 && buf.subarray(0, 12).equals(sig)) {
    const len = buf.readUInt16BE(14)
    if (buf.length < 16 + len) return undefined
    const command = (buf[12] as number) & 0x0f ? 'PROXY' : 'LOCAL'
    const fam = buf[13]
    const base = { version: 2 as const, command: command as 'PROXY' | 'LOCAL', length: 16 + len }
    if (fam === 0x11) {
      const ip = (o: number): string => [...buf.subarray(o, o + 4)].join('.')
      return { ...base, family: 'TCP4', sourceAddress: ip(16), destAddress: ip(20), sourcePort: buf.readUInt16BE(24), destPort: buf.readUInt16BE(26) }
    }
    if (fam === 0x21) {
      const ip = (o: number): string => {
        const groups: string[] = []
        for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(o + i).toString(16))
        return groups.join(':')
      }
      return { ...base, family: 'TCP6', sourceAddress: ip(16), destAddress: ip(32), sourcePort: buf.readUInt16BE(48), destPort: buf.readUInt16BE(50) }
    }
    return { ...base, family: 'UNKNOWN' }
  }
  const end = buf.indexOf('\r\n')
  if (end < 0) return undefined
  const parts = buf.subarray(0, end).toString('latin1').split(' ')
  if (parts[0] !== 'PROXY') throw new Error(`not a PROXY header: ${JSON.stringify(parts)}`)
  if (parts[1] === 'UNKNOWN') return { version: 1, command: 'PROXY', family: 'UNKNOWN', length: end + 2 }
  return {
    version: 1,
    command: 'PROXY',
    family: parts[1] as 'TCP4' | 'TCP6',
    sourceAddress: parts[2],
    destAddress: parts[3],
    sourcePort: Number(parts[4]),
    destPort: Number(parts[5]),
    length: end + 2,
  }
}

/** Fully expanded lower-case IPv6 groups, to compare with the v2 decoder's output. */
export function expandV6 (ip: string): string {
  const [head = '', tail] = ip.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0')
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16).toString(16)).join(':')
}

export interface RedisServer {
  readonly port: number
  readonly address: string
  close (): Promise<void>
}

export const REDIS_SERVER = '/usr/bin/redis-server'

/** Starts a throwaway redis-server (no persistence) on a free port and waits until it answers. */
export async function startRedis (): Promise<RedisServer> {
  const port = await closedPort()
  const child: ChildProcess = spawn(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
  ], { stdio: 'ignore' })
  let exited = false
  child.on('exit', () => { exited = true })
  await waitFor(async () => {
    if (exited) throw new Error(`redis-server on ${port} exited`)
    return await ping(port)
  }, 10_000, 50, `redis-server on ${port}`)
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: async () => {
      if (exited) return
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await gone
    },
  }
}

function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => s.end('PING\r\n'))
    s.on('data', (d: Buffer) => { resolve(d.toString().startsWith('+PONG')); s.destroy() })
    s.on('error', () => resolve(false))
    s.on('close', () => resolve(false))
  })
}

export interface ProxyProcess {
  readonly port: number
  readonly pid: number
  /** Highest RSS the child reported since the last resetPeak(). */
  peakRss (): number
  /** RSS samples received since the last resetPeak(). */
  samples (): number
  /** Starts a new peak from the child's next sample; resolves with that sample. */
  resetPeak (): Promise<number>
  close (): Promise<void>
}

/** Runs a TcpListener in its own process (through vite-node, which compiles the TS) and tracks its RSS. */
export async function startTcpProxyProcess (listener: Partial<TcpListenerConfig>, upstreams: readonly UpstreamConfig[]): Promise<ProxyProcess> {
  const entry = fileURLToPath(new URL('./tcp-proxy-process.ts', import.meta.url))
  const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url))
  const child = fork(viteNode, [entry, JSON.stringify({ listener, upstreams })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let peak = 0
  let samples = 0
  let onSample: ((rss: number) => void) | undefined
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`proxy process exited with ${code}`)))
    child.on('message', (m: { port?: number, rss?: number }) => {
      if (m.port !== undefined) resolve(m.port)
      if (m.rss !== undefined) {
        peak = Math.max(peak, m.rss)
        samples++
        onSample?.(m.rss)
      }
    })
  })
  return {
    port,
    pid: child.pid as number,
    peakRss: () => peak,
    samples: () => samples,
    resetPeak: () => new Promise((resolve) => {
      onSample = (rss) => { onSample = undefined; peak = rss; samples = 0; resolve(rss) }
    }),
    close: async () => {
      if (child.exitCode !== null) return
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await gone
    },
  }
}
