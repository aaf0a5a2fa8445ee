// The dashboard's event stream on a real HTTP server and real clients.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { EventStream } from '../../src/admin/events.js'
import { waitFor } from '../helpers/wait.js'

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => { while (cleanups.length > 0) await cleanups.pop()!() })

/** Opens GET /, collecting the raw stream text until the test ends. */
function listen (port: number): { text: () => string } {
  let got = ''
  const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
    res.setEncoding('utf8')
    res.on('data', (c: string) => { got += c })
  })
  req.on('error', () => {})
  cleanups.push(() => { req.destroy() })
  return { text: () => got }
}

describe('admin event stream', () => {
  // Regression: the history (10 minutes of points per server: 20 MB at 500 servers) was
  // serialised again for every client that connected, blocking the proxy's event loop each time.
  it('builds the history once per dashboard point, for every client that connects meanwhile', async () => {
    let built = 0
    const history = (): unknown => { built++; return { points: [{ t: built }], events: [] } }
    const stream = new EventStream(() => ({ role: 'active' }), history)
    const server = http.createServer((_req, res) => { stream.add(res) })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    cleanups.push(async () => { stream.close(); server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
    const port = (server.address() as AddressInfo).port
    const first = [listen(port), listen(port), listen(port)]
    await waitFor(() => first.every((c) => c.text().includes('event: history')), 5000, 10, 'three histories')
    expect(built).toBe(1)
    for (const c of first) expect(c.text()).toContain('event: history\ndata: {"points":[{"t":1}],"events":[]}\n\n')
    stream.publish('tick', { points: [{ t: 2 }], events: [] })
    const late = listen(port)
    await waitFor(() => late.text().includes('event: history'), 5000, 10, 'the late history')
    expect(built).toBe(2)
    expect(late.text()).toContain('event: history\ndata: {"points":[{"t":2}],"events":[]}\n\n')
  })
})
