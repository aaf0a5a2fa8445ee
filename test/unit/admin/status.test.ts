import { describe, expect, it } from 'vitest'
import { statusSnapshot } from '../../../src/admin/api.js'
import { ManualClock } from '../../../src/clock.js'
import { parseConfig } from '../../../src/config/load.js'
import { Runtime } from '../../../src/runtime/runtime.js'

const YAML = `
log: { level: silent, access: false }
upstreams:
  web:
    servers:
      - address: 10.0.0.1:80
      - { address: 10.0.0.2:80, weight: 4 }
      - address: 10.0.0.3:80
    health: { type: tcp, interval: 1s, timeout: 500ms, rise: 2, fall: 3 }
    passive: { failures: 2, ejectFor: 30s }
    slowStart: 10s
  plain:
    servers: [{ address: 10.0.0.9:80 }]
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes: [{ upstream: web }]
`

describe('status: the per-server fields the dashboard shows', () => {
  it('gives check progress, ejection time left and the slow-start ramp exactly', () => {
    const clock = new ManualClock(100_000)
    const runtime = new Runtime(parseConfig(YAML, 'status.yaml'), { clock })
    const [a, b, c] = runtime.upstreams.get('web')!.servers as [any, any, any]
    a.checkStreak = 2 // two failed checks while up
    b.healthy = false
    b.checkStreak = 1 // one pass while down
    c.ejectedUntil = 100_000 + 12_345
    a.upSince = 100_000 - 2_500 // 25% into a 10s slow start
    const servers = statusSnapshot(runtime, 'v').upstreams.find((u) => u.name === 'web')!.servers
    expect(servers.map((s) => [s.address, s.state, s.checks, s.ejectedForMs, s.slowStart, s.adminState])).toEqual([
      ['10.0.0.1:80', 'up', { toward: 'down', streak: 2, of: 3 }, 0, 0.25, 'enabled'],
      ['10.0.0.2:80', 'down', { toward: 'up', streak: 1, of: 2 }, 0, null, 'enabled'],
      ['10.0.0.3:80', 'down', { toward: 'down', streak: 0, of: 3 }, 12_345, null, 'enabled'],
    ])
    clock.advance(12_345)
    a.adminState = 'drain'
    const later = statusSnapshot(runtime, 'v').upstreams.find((u) => u.name === 'web')!.servers
    expect(later.map((s) => [s.state, s.ejectedForMs, s.slowStart, s.adminState])).toEqual([
      ['drain', 0, null, 'drain'], ['down', 0, null, 'enabled'], ['up', 0, null, 'enabled'],
    ])
    // Without health checks there is no progress to show.
    expect(statusSnapshot(runtime, 'v').upstreams.find((u) => u.name === 'plain')!.servers[0]!.checks).toBeNull()
  })
})
