import { describe, it, expect } from 'vitest'
import { backupsAfter, candidates } from '../../../src/balancer/candidates.js'
import { makeServer } from './helpers.js'

const names = (list: ReadonlyArray<{ address: string }>): string[] => list.map((s) => s.address)

describe('candidates()', () => {
  it('returns every up server with room, in input order', () => {
    const servers = ['c:1', 'a:1', 'b:1'].map((a) => makeServer(a))
    expect(names(candidates(servers, 0))).toEqual(['c:1', 'a:1', 'b:1'])
  })

  it('leaves out down, drained and disabled servers', () => {
    const [a, b, c, d] = [makeServer('a:1'), makeServer('b:1'), makeServer('c:1'), makeServer('d:1')]
    b.healthy = false
    c.adminState = 'drain'
    d.adminState = 'disabled'
    expect(names(candidates([a, b, c, d], 0))).toEqual(['a:1'])
  })

  it('leaves out a passively ejected server until its ejection ends', () => {
    const a = makeServer('a:1')
    const b = makeServer('b:1')
    b.ejectedUntil = 1000
    expect(names(candidates([a, b], 999))).toEqual(['a:1'])
    expect(names(candidates([a, b], 1000))).toEqual(['a:1', 'b:1'])
  })

  it('leaves out a server at maxConnections; 0 means unlimited', () => {
    const limited = makeServer('l:1', { maxConnections: 2 })
    const unlimited = makeServer('u:1', { maxConnections: 0 })
    unlimited.active = 100000
    limited.active = 1
    expect(names(candidates([limited, unlimited], 0))).toEqual(['l:1', 'u:1'])
    limited.active = 2
    expect(names(candidates([limited, unlimited], 0))).toEqual(['u:1'])
  })

  it('keeps backups out while any primary is up', () => {
    const p1 = makeServer('p1:1')
    const p2 = makeServer('p2:1')
    const b1 = makeServer('b1:1', { backup: true })
    p1.healthy = false
    expect(names(candidates([b1, p1, p2], 0))).toEqual(['p2:1'])
  })

  it('serves the up backups with room once no primary is up', () => {
    const p1 = makeServer('p1:1')
    const p2 = makeServer('p2:1')
    const b1 = makeServer('b1:1', { backup: true })
    const b2 = makeServer('b2:1', { backup: true, maxConnections: 1 })
    const b3 = makeServer('b3:1', { backup: true })
    const b4 = makeServer('b4:1', { backup: true })
    p1.healthy = false
    p2.adminState = 'drain'
    b2.active = 1
    b3.adminState = 'disabled'
    expect(names(candidates([p1, b1, p2, b2, b3, b4], 0))).toEqual(['b1:1', 'b4:1'])
    b2.active = 0
    expect(names(candidates([p1, b1, p2, b2, b3, b4], 0))).toEqual(['b1:1', 'b2:1', 'b4:1'])
  })

  it('returns nothing (503) when the up primaries are all full, rather than spilling onto backups', () => {
    const p = makeServer('p:1', { maxConnections: 1 })
    const b = makeServer('b:1', { backup: true })
    p.active = 1
    expect(candidates([p, b], 0)).toEqual([])
  })

  it('treats an ejected primary as not up, so backups take over', () => {
    const p = makeServer('p:1')
    const b = makeServer('b:1', { backup: true })
    p.ejectedUntil = 500
    expect(names(candidates([p, b], 100))).toEqual(['b:1'])
    expect(names(candidates([p, b], 500))).toEqual(['p:1'])
  })

  it('returns an empty list for no servers or all down', () => {
    expect(candidates([], 0)).toEqual([])
    const a = makeServer('a:1')
    a.healthy = false
    const b = makeServer('b:1', { backup: true })
    b.healthy = false
    expect(candidates([a, b], 0)).toEqual([])
  })
})

describe('backupsAfter()', () => {
  it('gives the up backups with room once every up primary was tried for this request', () => {
    const p1 = makeServer('p1:1')
    const p2 = makeServer('p2:1')
    const b1 = makeServer('b1:1', { backup: true })
    const b2 = makeServer('b2:1', { backup: true, maxConnections: 1 })
    const b3 = makeServer('b3:1', { backup: true })
    b2.active = 1
    b3.healthy = false
    expect(names(backupsAfter([p1, b1, p2, b2, b3], new Set([p1, p2]), 0))).toEqual(['b1:1'])
    expect(names(backupsAfter([p1, b1, p2, b2, b3], new Set([p1, p2, b1]), 0))).toEqual([])
  })

  it('gives nothing while an up primary is untried, even a full one (overload is a 503, not an outage)', () => {
    const p1 = makeServer('p1:1')
    const p2 = makeServer('p2:1', { maxConnections: 1 })
    const b = makeServer('b:1', { backup: true })
    p2.active = 1
    expect(backupsAfter([p1, p2, b], new Set([p1]), 0)).toEqual([])
    p2.healthy = false
    expect(names(backupsAfter([p1, p2, b], new Set([p1]), 0))).toEqual(['b:1'])
  })
})
