// A reload that keeps the Redis connection (same url and timeout) hands it the new prefix and
// onError only once it commits. Regression: a reload refused at bind time (EADDRINUSE) had
// already switched the running store to the new prefix, so every client's bucket restarted empty
// under it, while the spec says a refused config leaves the running one serving.
import net from 'node:net'
import type { Redis } from 'ioredis'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/load.js'
import { reloadRuntime } from '../../src/runtime/reload.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { haveRedis, redisAdmin, startRedis, type TestRedis } from '../helpers/redis.js'
import { closedPort, startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

let redis: TestRedis
let admin: Redis
let upstream: TestUpstream

beforeAll(async () => {
  if (!haveRedis) return
  redis = await startRedis()
  admin = await redisAdmin(redis)
  upstream = await startUpstream({ name: 'u' })
}, 30_000)

afterAll(async () => {
  if (!haveRedis) return
  admin.disconnect()
  await redis.stop()
  await upstream.close()
})

function config (port: number, prefix: string, extraListener = ''): string {
  return `
log: { level: silent, access: false }
rateLimits:
  api: { key: client-ip, rate: 1/m, burst: 5 }
rateLimitStore:
  redis: { url: "${redis.url}", prefix: "${prefix}", timeout: 1s, onError: deny }
upstreams:
  web: { servers: [ { address: ${upstream.address} } ] }
listeners:
  - name: web
    protocol: http
    listen: 127.0.0.1:${port}
    rateLimit: api
    routes: [ { match: { pathPrefix: / }, upstream: web } ]
${extraListener}`
}

describe.skipIf(!haveRedis)('reload with a kept Redis store', () => {
  it('a refused reload leaves the running prefix (and so every bucket) as it was; a committed one switches', async () => {
    const port = await closedPort()
    const runtime = new Runtime(parseConfig(config(port, 'A:'), 'r.yaml'))
    await runtime.start()
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const taken = (blocker.address() as net.AddressInfo).port
    let current = runtime
    try {
      await waitFor(() => runtime.limiters.redis?.available === true, 10_000, 10, 'redis store connected')
      const get = async (): Promise<number> => { const r = await request(`http://127.0.0.1:${port}/`); await r.body.text(); return r.statusCode }
      expect(await get()).toBe(200)
      expect(await admin.keys('*')).toEqual(['A:api:127.0.0.1'])

      const clash = `  - name: clash\n    protocol: http\n    listen: 127.0.0.1:${taken}\n    routes: [ { match: { pathPrefix: / }, upstream: web } ]\n`
      await expect(reloadRuntime(runtime, parseConfig(config(port, 'B:', clash), 'r.yaml'))).rejects.toThrow(/EADDRINUSE/)
      expect(await get()).toBe(200)
      expect((await admin.keys('*')).sort()).toEqual(['A:api:127.0.0.1'])

      const { runtime: next, retired } = await reloadRuntime(runtime, parseConfig(config(port, 'B:'), 'r.yaml'))
      current = next
      await retired
      expect(next.limiters.redis).toBe(runtime.limiters.redis)
      expect(await get()).toBe(200)
      expect((await admin.keys('*')).sort()).toEqual(['A:api:127.0.0.1', 'B:api:127.0.0.1'])
    } finally {
      blocker.close()
      await current.stop(1000)
    }
  })
})
