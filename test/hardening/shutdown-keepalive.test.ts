// A keep-alive connection idle at the moment its listener stops accepting (audit of
// reload/shutdown, defect 8): its client may have the next request on the wire already, and a
// close with bytes unread resets it, which a client cannot safely retry for a POST. The
// connection gets the grace a fresh one gets: a request in it is answered, with
// `Connection: close`, and the connection closes after it.
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A proxy, its upstream, and one client connection that has had one answer and is idle now. */
async function servedOnce (request = 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n'): Promise<{ up: TestUpstream, proxy: RunningTandem, c: net.Socket, text: () => string, closed: () => boolean }> {
  const up = await startUpstream({ name: 'u' })
  cleanups.push(async () => { await up.close() })
  const proxy = await startProxy(httpConfig({ servers: [up.address] }))
  const c = net.connect(proxy.port(), '127.0.0.1')
  let text = ''
  let closed = false
  c.on('error', () => {})
  c.setEncoding('latin1').on('data', (d: string) => { text += d })
  c.on('close', () => { closed = true })
  c.write(request)
  await waitFor(() => text.endsWith('\r\n\r\nu'), 5000, 5, 'the first answer')
  return { up, proxy, c, text: () => text, closed: () => closed }
}

type Served = Awaited<ReturnType<typeof servedOnce>>

/** Stops the listener, then sends `request` on the idle connection: it is answered, with `Connection: close`, and the connection closes. */
async function answeredAfterStop (served: Served, request: string): Promise<void> {
  const first = served.text()
  await served.proxy.runtime.listeners[0]!.stopAccepting()
  served.c.write(request)
  await waitFor(served.closed, 5000, 5, 'the connection closed')
  const second = served.text().slice(first.length)
  expect(second).toMatch(/^HTTP\/1\.1 200 /)
  expect(second.toLowerCase()).toContain('\r\nconnection: close\r\n')
  expect(second.endsWith('\r\n\r\nu')).toBe(true)
  expect(served.up.count).toBe(2)
}

describe('shutdown and idle keep-alive connections (lean path)', () => {
  it('a request that comes on an idle used connection just after the listener stopped accepting is answered with Connection: close (was: the connection was destroyed)', async () => {
    const served = await servedOnce()
    const { proxy } = served
    cleanups.push(async () => { await proxy.stop() })
    const first = served.text()
    expect(first).toMatch(/^HTTP\/1\.1 200 /)
    expect(first.toLowerCase()).not.toContain('connection: close')
    // The connection is idle now; the client's next request leaves just as serving stops.
    await answeredAfterStop(served, 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n')
    expect(await proxy.stop(2000)).toBe(true)
  })

  it('an idle used connection on which nothing comes is closed after the grace, and the drain does not wait for more', async () => {
    const { up, proxy, closed } = await servedOnce()
    const t0 = Date.now()
    // Clean: the hold ends with its grace, well inside the 10 s allowed.
    expect(await proxy.stop(10_000)).toBe(true)
    expect(Date.now() - t0).toBeLessThan(5000)
    await waitFor(closed, 5000, 5, 'the connection closed')
    expect(up.count).toBe(1)
  })

  // Regression: on the general path (node:http), http.Server's close() closed idle keep-alive
  // connections at once, so the same request was reset there.
  it('the same on the general path (HTTP/1.0 keep-alive): answered with Connection: close', async () => {
    const keepAlive = 'HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n'
    const served = await servedOnce('GET /1 ' + keepAlive)
    cleanups.push(async () => { await served.proxy.stop() })
    expect(served.text().toLowerCase()).toContain('\r\nconnection: keep-alive\r\n')
    await answeredAfterStop(served, 'GET /2 ' + keepAlive)
  })
})
