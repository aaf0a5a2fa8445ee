import { existsSync } from 'node:fs'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { BalanceName } from '../../src/config/types.js'
import { REDIS_SERVER, startRedis, startTcpProxy, upstreamConfig, type RedisServer, type ServerSpec } from '../helpers/tcp.js'
import { waitFor } from '../helpers/wait.js'

// .ci/run installs redis-server; on a dev machine without it the file reports itself skipped.
const haveRedis = existsSync(REDIS_SERVER)

let a: RedisServer
let b: RedisServer
const admins: Redis[] = []

beforeAll(async () => {
  if (!haveRedis) return
  ;[a, b] = await Promise.all([startRedis(), startRedis()])
  for (const r of [a, b]) admins.push(new Redis({ port: r.port, host: '127.0.0.1', lazyConnect: true }))
  await Promise.all(admins.map(async (r) => { await r.connect() }))
}, 30_000)

afterAll(async () => {
  for (const r of admins) r.disconnect()
  await Promise.all([a?.close(), b?.close()])
})

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
  await Promise.all(admins.map(async (r) => await r.flushall()))
})

async function proxyFor (balance: BalanceName, servers: ServerSpec[]): Promise<number> {
  const p = await startTcpProxy({ upstream: 'cache' }, [upstreamConfig('cache', servers, { balance })])
  cleanups.push(() => p.close())
  return p.port
}

/** A client through the proxy that records every error it sees. */
async function client (port: number, errors: unknown[]): Promise<Redis> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
  r.on('error', (e) => errors.push(e))
  cleanups.push(() => { r.disconnect() })
  await r.connect()
  return r
}

/** Clients connected to each server now, not counting our own admin connection. */
async function counts (): Promise<[number, number]> {
  const n = async (r: Redis): Promise<number> => ((await r.client('LIST')) as string).trim().split('\n').length - 1
  return [await n(admins[0]!), await n(admins[1]!)]
}

/** The port of the Redis server a client landed on, asked through the proxy. */
async function landedOn (r: Redis): Promise<number> {
  const info = await r.info('server')
  return Number(/tcp_port:(\d+)/.exec(info)?.[1])
}

describe.skipIf(!haveRedis)('tcp listener in front of real redis-server', () => {
  it('SET/GET through the proxy with zero errors', async () => {
    const port = await proxyFor('round-robin', [a.address, b.address])
    const errors: unknown[] = []
    const clients = await Promise.all([1, 2, 3, 4, 5, 6].map(async () => await client(port, errors)))
    const big = 'v'.repeat(300_000)
    await Promise.all(clients.map(async (r, ci) => {
      const pipe = r.pipeline()
      for (let i = 0; i < 500; i++) pipe.set(`k:${ci}:${i}`, `value-${ci}-${i}`)
      pipe.set(`big:${ci}`, big)
      for (let i = 0; i < 500; i++) pipe.get(`k:${ci}:${i}`)
      pipe.get(`big:${ci}`)
      const results = (await pipe.exec()) ?? []
      expect(results).toHaveLength(1002)
      expect(results.every(([err]) => err === null)).toBe(true)
      expect(results.slice(0, 501).every(([, v]) => v === 'OK')).toBe(true)
      expect(results.slice(501, 1001).map(([, v]) => v)).toEqual(Array.from({ length: 500 }, (_, i) => `value-${ci}-${i}`))
      expect(results[1001]![1]).toBe(big)
    }))
    expect(errors).toEqual([])
    // The keys really live on two separate servers, split by connection.
    const sizes = await Promise.all(admins.map(async (r) => await r.dbsize()))
    expect(sizes).toEqual([3 * 501, 3 * 501])
  })

  it('round-robin shares connections by weight: 1:1 gives 5/5, 3:1 gives 6/2', async () => {
    const errors: unknown[] = []
    const even = await proxyFor('round-robin', [a.address, b.address])
    for (let i = 0; i < 10; i++) await client(even, errors)
    await waitFor(async () => (await counts()).join() === '5,5', 5000, 20, '5/5')

    for (const c of cleanups.splice(0).reverse()) await c()
    await waitFor(async () => (await counts()).join() === '0,0', 5000, 20, 'all closed')

    const weighted = await proxyFor('round-robin', [{ address: a.address, weight: 3 }, b.address])
    for (let i = 0; i < 8; i++) await client(weighted, errors)
    await waitFor(async () => (await counts()).join() === '6,2', 5000, 20, '6/2')
    expect(errors).toEqual([])
  })

  it('least-connections sends new streams to the server with fewer open streams', async () => {
    const errors: unknown[] = []
    const port = await proxyFor('least-connections', [a.address, b.address])
    const clients: Redis[] = []
    for (let i = 0; i < 6; i++) clients.push(await client(port, errors))
    await waitFor(async () => (await counts()).join() === '3,3', 5000, 20, '3/3')

    // Close the three on a: the next two must both go to a (round-robin would split them).
    const where = await Promise.all(clients.map(landedOn))
    clients.forEach((c, i) => { if (where[i] === a.port) c.disconnect() })
    await waitFor(async () => (await counts()).join() === '0,3', 5000, 20, '0/3')
    const next = [await client(port, errors), await client(port, errors)]
    expect(await Promise.all(next.map(landedOn))).toEqual([a.port, a.port])
    expect(await counts()).toEqual([2, 3])
    expect(errors).toEqual([])
  })
})
