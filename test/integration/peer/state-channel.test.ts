// The state channel (TCP) of a pair, against a real PeerTransport on loopback. Two defects an
// audit found: every new state connection got a fresh replay checker, so a snapshot frame
// recorded on one connection and sent again on a new one was applied (a standby reverted a
// drain); and any TCP connect closed the live state connection before a byte was checked, so
// a bare connect cost the standby its sync.
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Signer, type Rejection, type StateMessage } from '../../../src/peer/messages.js'
import { PeerTransport } from '../../../src/peer/transport.js'
import { reservePort } from '../../helpers/ports.js'
import { waitFor } from '../../helpers/wait.js'

const SECRET = 'state-channel-secret-0123456789'

interface Seen { states: StateMessage[], lost: number, rejected: Rejection[] }

let transport: PeerTransport | undefined
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await transport?.close()
  transport = undefined
})

async function standby (): Promise<{ port: number, seen: Seen }> {
  const seen: Seen = { states: [], lost: 0, rejected: [] }
  // Not port 0: TCP binds the port UDP got, and in the ephemeral range a client socket of another
  // test (thousands in TIME_WAIT after a load test) may hold that number for TCP.
  for (let attempt = 1; ; attempt++) {
    const port = await reservePort()
    const t = new PeerTransport({ id: 'lb-b', secret: SECRET, listen: { host: '127.0.0.1', port, text: `127.0.0.1:${port}` }, peers: [], heartbeat: 200 }, {
      heartbeat () {},
      state (m) { seen.states.push(m) },
      stateLost () { seen.lost++ },
      rejected (reason) { seen.rejected.push(reason) },
      hint () {},
      error () {},
    })
    try {
      await t.start()
      transport = t
      return { port: t.address().port, seen }
    } catch (err) {
      await t.close().catch(() => {})
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw err
    }
  }
}

function frame (body: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

async function connection (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  sockets.push(socket)
  socket.on('error', () => {})
  await new Promise<void>((resolve) => { socket.once('connect', resolve) })
  return socket
}

function closed (socket: net.Socket): Promise<void> {
  return new Promise((resolve) => { if (socket.destroyed) resolve(); else socket.once('close', () => { resolve() }) })
}

const drained: StateMessage = { k: 'state', full: true, parts: { servers: { 'web/127.0.0.1:8081': { admin: 'drain' } } } }
const enabled: StateMessage = { k: 'state', full: true, parts: { servers: { 'web/127.0.0.1:8081': { admin: 'enabled' } } } }

describe('the state channel', () => {
  it('a frame recorded on one connection and sent on a new one is dropped as replayed', async () => {
    const { port, seen } = await standby()
    const active = new Signer('lb-a', SECRET)
    const recorded = frame(active.encode(enabled))
    const first = await connection(port)
    first.write(recorded)
    first.write(frame(active.encode(drained)))
    await waitFor(() => seen.states.length === 2, 5000, 5, 'both frames applied')
    const replay = await connection(port)
    replay.write(recorded)
    await closed(replay)
    expect(seen.rejected).toEqual(['replayed'])
    expect(seen.states.map((m) => m.parts)).toEqual([enabled.parts, drained.parts])
    // The live connection was not replaced by the replaying one.
    expect(seen.lost).toBe(0)
    expect(first.destroyed).toBe(false)
  })

  it('a connection that sends nothing, or garbage, does not cut the live one; a valid newer one replaces it', async () => {
    const { port, seen } = await standby()
    const active = new Signer('lb-a', SECRET)
    const live = await connection(port)
    live.write(frame(active.encode(drained)))
    await waitFor(() => seen.states.length === 1, 5000, 5, 'first frame applied')
    const silent = await connection(port)
    const garbage = await connection(port)
    garbage.write(frame(Buffer.from('TDM1' + 'x'.repeat(64))))
    await closed(garbage)
    live.write(frame(active.encode(enabled)))
    await waitFor(() => seen.states.length === 2, 5000, 5, 'the live connection still carries frames')
    expect(seen.lost).toBe(0)
    expect(seen.rejected).toEqual(['unauthenticated'])
    // The active reconnects: its first frame authenticates, and the old connection is closed.
    const next = await connection(port)
    next.write(frame(active.encode(drained)))
    await closed(live)
    await waitFor(() => seen.states.length === 3, 5000, 5, 'frame on the new connection applied')
    expect(seen.lost).toBe(0)
    expect(silent.destroyed).toBe(false)
  })

  it('a connection with no valid frame within 10 heartbeats (at least 2 s) is closed', async () => {
    const { port } = await standby()
    const silent = await connection(port)
    const started = Date.now()
    await closed(silent)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900)
  }, 10_000)
})
