import { afterEach } from 'vitest'
import { startRawUpstream, type RawReply, type RawUpstream, type ReceivedRequest } from './raw-http.js'
import { startProxy, type RunningTandem } from './tandem.js'

export interface RawFixture {
  /** A byte-recording raw upstream, closed after the test. */
  upstream (reply?: (r: ReceivedRequest) => RawReply): Promise<RawUpstream>
  /** An in-process proxy, stopped after the test (before the upstreams close). */
  proxy (yaml: string): Promise<RunningTandem>
}

/** Call once at a test file's top level: what a test starts through it is gone after each test. */
export function rawFixture (): RawFixture {
  const proxies: RunningTandem[] = []
  const upstreams: RawUpstream[] = []
  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.stop()
    await Promise.all(upstreams.splice(0).map(async (u) => { await u.close() }))
  })
  return {
    async upstream (reply) {
      const u = await startRawUpstream(reply)
      upstreams.push(u)
      return u
    },
    async proxy (yaml) {
      const p = await startProxy(yaml)
      proxies.push(p)
      return p
    },
  }
}
