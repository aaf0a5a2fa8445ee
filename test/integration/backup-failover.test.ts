// A primary that refuses before any check has judged it (no health checks, or fewer than `fall`
// of them yet) counts as up, so backups are not candidates; the attempt that failed on every up
// primary must still reach them (the spec's "fail over to other and backup servers"). Regression:
// the retry left the primaries out and found nothing, so the client got 502 or an empty close.
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { httpConfig, startProxy, type RunningTandem } from '../helpers/tandem.js'
import { connect, echo, readAll, startTcpProxy, startTcpServer, upstreamConfig, type TcpProxy, type TestTcpServer } from '../helpers/tcp.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('failover to backups when every up primary refused', () => {
  it('HTTP: the request is answered by the backup; the primary is charged the failed connects', async () => {
    const backup: TestUpstream = await startUpstream({ name: 'backup' })
    cleanups.push(async () => { await backup.close() })
    const refused = `127.0.0.1:${await closedPort()}`
    const proxy: RunningTandem = await startProxy(httpConfig({ servers: [refused, `{ address: ${backup.address}, backup: true }`] }))
    cleanups.push(async () => { await proxy.stop() })
    for (let i = 0; i < 3; i++) {
      const res = await request(proxy.url() + '/')
      expect([res.statusCode, await res.body.text()]).toEqual([200, 'backup'])
    }
    expect(backup.count).toBe(3)
    const primary = proxy.runtime.upstreams.get('web')!.servers[0]!
    expect(primary.failures).toBe(3)
  })

  it('HTTP: with a primary still untried and up, the backup is not used', async () => {
    const other = await startUpstream({ name: 'other' })
    const backup = await startUpstream({ name: 'backup' })
    cleanups.push(async () => { await other.close(); await backup.close() })
    const refused = `127.0.0.1:${await closedPort()}`
    const proxy = await startProxy(httpConfig({ servers: [refused, other.address, `{ address: ${backup.address}, backup: true }`] }))
    cleanups.push(async () => { await proxy.stop() })
    for (let i = 0; i < 4; i++) {
      const res = await request(proxy.url() + '/')
      expect([res.statusCode, await res.body.text()]).toEqual([200, 'other'])
    }
    expect([other.count, backup.count]).toEqual([4, 0])
  })

  it('TCP: the stream is relayed by the backup', async () => {
    const backup: TestTcpServer = await startTcpServer(echo)
    cleanups.push(async () => { await backup.close() })
    const refused = `127.0.0.1:${await closedPort()}`
    const proxy: TcpProxy = await startTcpProxy({ upstream: 'u' }, [upstreamConfig('u', [refused, { address: backup.address, backup: true }])])
    cleanups.push(async () => { await proxy.close() })
    const c = await connect(proxy.port)
    const got = readAll(c)
    c.end('ping')
    expect((await got).toString()).toBe('ping')
  })
})
