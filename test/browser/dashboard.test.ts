// The dashboard in a real browser (Debian chromium through playwright-core): it loads without a
// console error, shows every server, its charts advance as traffic flows, a drain click changes
// the server in the page and in /api/status, and a token-protected admin asks for the token.
// Screenshots (desktop light and dark, phone) go to test-artifacts/ for people to look at.
import { mkdirSync } from 'node:fs'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CLIENTS } from '../../src/admin/events.js'
import { AdminServer } from '../../src/admin/server.js'
import { parseConfig } from '../../src/config/load.js'
import { Runtime } from '../../src/runtime/runtime.js'
import { browserMissing, launchBrowser, type TestBrowser } from '../helpers/browser.js'
import { startUpstream, type TestUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))
const TOKEN = 'dashboard-token-0123456789'
const missing = browserMissing()

interface Setup { runtime: Runtime, admin: AdminServer, ups: TestUpstream[], base: string, proxy: string }

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function setup (opts: { token?: boolean } = {}): Promise<Setup> {
  const ups: TestUpstream[] = []
  for (const name of ['alpha', 'bravo', 'charlie']) {
    const u = await startUpstream({ name })
    ups.push(u)
    cleanups.push(() => u.close())
  }
  const yaml = `
admin:
  listen: 127.0.0.1:0
${opts.token === true ? `  token: ${TOKEN}\n` : ''}log: { level: silent, access: false }
upstreams:
  web:
    balance: round-robin
    servers:
      - { address: ${ups[0]!.address}, weight: 2 }
      - address: ${ups[1]!.address}
      - { address: ${ups[2]!.address}, backup: true }
    health: { type: http, path: /, interval: 500ms, timeout: 400ms, rise: 2, fall: 3 }
  cache:
    servers:
      - address: ${ups[2]!.address}
listeners:
  - name: public
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: web
  - name: raw
    protocol: tcp
    listen: 127.0.0.1:0
    upstream: cache
`
  const config = parseConfig(yaml, 'dashboard-test.yaml')
  const runtime = new Runtime(config)
  await runtime.start()
  cleanups.push(async () => { await runtime.stop(1000) })
  const admin = new AdminServer(config.admin!, { runtime: () => runtime, version: '9.9.9-test' })
  await admin.listen()
  cleanups.push(() => admin.close())
  return { runtime, admin, ups, base: `http://127.0.0.1:${admin.address().port}/`, proxy: `http://127.0.0.1:${runtime.listeners[0]!.address().port}/` }
}

/** Sends requests one after another until stopped: bounded by count and by time. */
function traffic (url: string, maxRequests = 4000, maxMs = 30_000): { stop: () => Promise<number> } {
  let stopped = false
  const deadline = Date.now() + maxMs
  const done = (async () => {
    let n = 0
    while (!stopped && n < maxRequests && Date.now() < deadline) {
      const res = await request(url)
      await res.body.text()
      n++
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return n
  })()
  return { stop: async () => { stopped = true; return await done } }
}

async function serverState (base: string, address: string): Promise<string> {
  const res = await request(base + 'api/status')
  const st = await res.body.json() as { upstreams: Array<{ name: string, servers: Array<{ address: string, state: string }> }> }
  return st.upstreams.find((u) => u.name === 'web')!.servers.find((s) => s.address === address)!.state
}

describe.skipIf(missing !== undefined)(`dashboard in chromium${missing === undefined ? '' : ` (skipped: ${missing})`}`, () => {
  let browser: TestBrowser
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    browser = await launchBrowser()
  })
  afterAll(async () => { await browser?.close() })

  it('shows every server, charts advance with traffic, drain changes the page and /api/status; screenshots', async () => {
    const s = await setup()
    const { page, errors, close } = await browser.page({ width: 1440, height: 900 })
    cleanups.push(close)
    await page.goto(s.base)
    for (const u of s.ups) await page.locator(`tr[data-server="web/${u.address}"]`).waitFor()
    expect(await page.locator('tr[data-server^="web/"]').count()).toBe(3)
    expect(await page.locator('tr[data-server^="cache/"]').count()).toBe(1)
    expect(await page.locator('#pair').isHidden()).toBe(true) // no `peer:` configured

    const load = traffic(s.proxy)
    cleanups.push(async () => await load.stop())
    const chart = page.locator('[data-chart="listener:public:requests"]')
    const lastOf = async (): Promise<{ t: number, v: number }> => ({
      t: Number(await chart.getAttribute('data-last-t')),
      v: Number(await chart.getAttribute('data-last')),
    })
    await waitFor(async () => (await lastOf()).v > 0, 15_000, 100, 'a requests/s point above zero')
    const first = await lastOf()
    await waitFor(async () => { const now = await lastOf(); return now.t > first.t && now.v > 0 }, 15_000, 100, 'the chart to advance by a second with traffic')
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(2)
    // The per-server chart and the share column follow the same points.
    await waitFor(async () => Number(await page.locator('[data-chart="upstream:web:requests"]').getAttribute('data-last')) > 0, 15_000, 100, 'per-server requests point')
    await waitFor(async () => /^\d+%$/.test(await page.locator(`tr[data-server="web/${s.ups[0]!.address}"] td.share`).innerText()), 15_000, 100, 'share column')

    const a = s.ups[0]!.address
    const row = page.locator(`tr[data-server="web/${a}"]`)
    expect(await row.getAttribute('data-state')).toBe('up')
    await waitFor(async () => /^fall \d\/3$/.test(await row.locator('td.checks').innerText()), 10_000, 100, 'rise/fall progress shown')
    await row.locator('button[data-action="drain"]').click()
    await waitFor(async () => await row.getAttribute('data-state') === 'drain', 10_000, 50, 'drain shown in the page')
    expect(await row.locator('.badge').innerText()).toMatch(/drain/i)
    expect(await serverState(s.base, a)).toBe('drain')
    expect(await row.locator('button[data-action="drain"]').isDisabled()).toBe(true)
    await waitFor(async () => (await page.locator('#events li[data-kind="server"]').count()) >= 1, 10_000, 100, 'the drain in the events list')

    const sent = await load.stop()
    expect(sent).toBeGreaterThan(0)
    await page.screenshot({ path: ARTIFACTS + 'dashboard-desktop.png', fullPage: true })
    expect(errors).toEqual([])

    const dark = await browser.page({ width: 1440, height: 900 }, { dark: true })
    cleanups.push(dark.close)
    await dark.page.goto(s.base)
    await dark.page.locator(`tr[data-server="web/${a}"][data-state="drain"]`).waitFor()
    await dark.page.locator('[data-chart="listener:public:requests"][data-points]').waitFor()
    await dark.page.screenshot({ path: ARTIFACTS + 'dashboard-desktop-dark.png', fullPage: true })
    expect(dark.errors).toEqual([])

    const phone = await browser.page({ width: 390, height: 844 })
    cleanups.push(phone.close)
    await phone.page.goto(s.base)
    await phone.page.locator(`tr[data-server="web/${a}"]`).waitFor()
    await phone.page.locator('[data-chart="listener:public:requests"][data-points]').waitFor()
    // Nothing wider than the phone except inside the tables' own scroll boxes.
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    await phone.page.screenshot({ path: ARTIFACTS + 'dashboard-phone.png', fullPage: true })
    expect(phone.errors).toEqual([])
  })

  it('asks for the admin token on 401, keeps it for the tab, and then disables and enables', async () => {
    const s = await setup({ token: true })
    const { page, errors, close } = await browser.page({ width: 1280, height: 800 })
    cleanups.push(close)
    const prompts: string[] = []
    page.on('dialog', (d) => { prompts.push(d.message()); void d.accept(TOKEN) })
    await page.goto(s.base)
    const b = s.ups[1]!.address
    const row = page.locator(`tr[data-server="web/${b}"]`)
    await row.waitFor()
    await row.locator('button[data-action="disable"]').click()
    await waitFor(async () => await row.getAttribute('data-state') === 'disabled', 10_000, 50, 'disabled shown in the page')
    expect(await serverState(s.base, b)).toBe('disabled')
    expect(prompts).toEqual(['This admin API needs its token (admin.token):'])
    await row.locator('button[data-action="enable"]').click()
    await waitFor(async () => await row.getAttribute('data-state') === 'up', 10_000, 50, 'enabled again')
    expect(prompts).toHaveLength(1) // the token was kept in sessionStorage
    // The browser's 401 answer is logged as a failed resource load; nothing else may be.
    expect(errors.filter((e) => !/401 \(Unauthorized\)/.test(e))).toEqual([])
  })

  // Regressions: an EventSource answered 503 (every stream slot taken) is closed for good by the
  // browser, so the page stayed on "reconnecting" forever; and the Weight button, once used,
  // stayed disabled until the card was rebuilt.
  it('reconnects after its event stream was refused (503); the Weight button works more than once', async () => {
    const s = await setup()
    const held: http.ClientRequest[] = []
    cleanups.push(() => { for (const r of held) r.destroy() })
    for (let i = 0; i < MAX_CLIENTS; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(s.base + 'api/events', (res) => { res.resume(); resolve() })
        req.on('error', reject)
        held.push(req)
      })
    }
    const { page, errors, close } = await browser.page({ width: 1280, height: 800 })
    cleanups.push(close)
    let prompts = 0
    page.on('dialog', (d) => { void d.accept(d.message().includes('weight') ? String(5 + prompts++) : '') })
    await page.goto(s.base)
    const conn = page.locator('#conn')
    await waitFor(async () => await conn.getAttribute('data-state') === 'lost', 10_000, 50, 'the refused stream shown')
    for (const r of held.splice(0)) r.destroy()
    await waitFor(async () => await conn.getAttribute('data-state') === 'live', 20_000, 100, 'live again')
    const b = s.ups[1]!.address
    const row = page.locator(`tr[data-server="web/${b}"]`)
    const weightCell = row.locator('td').nth(3)
    for (const want of ['5', '6']) {
      await row.locator('button[data-action="weight"]').click()
      await waitFor(async () => (await weightCell.innerText()).trim() === want, 10_000, 50, `weight ${want} shown`)
      await waitFor(async () => !(await row.locator('button[data-action="weight"]').isDisabled()), 10_000, 50, 'Weight usable again')
    }
    expect(errors.filter((e) => !/503 \(Service Unavailable\)/.test(e))).toEqual([])
  })

  it('renders the pair panel from the agreed status fields (a recorded stream, since this build may run no pair)', async () => {
    const s = await setup()
    const real = await (await request(s.base + 'api/status')).body.json() as Record<string, unknown>
    const now = Math.floor(Date.now() / 1000)
    const peer = {
      id: 'lb-b', term: 7, priority: 100, preempt: false, role: 'active', since: 12.5,
      other: { id: 'lb-a', role: 'standby', priority: 150, lastHeartbeatAgeMs: 83, up: true },
      links: [{ address: '127.0.0.1:7947', up: true, lastHeardAgeMs: 83 }, { address: '10.1.0.2:7947', up: false, lastHeardAgeMs: 9000 }],
      witness: { kind: 'redis', address: 'redis://127.0.0.1:6379', state: 'up', lease: true },
      inSync: true,
      configFault: null,
    }
    const points = Array.from({ length: 30 }, (_, i) => ({
      t: now - 30 + i,
      listeners: { public: { codes: [0, 50 + i, 0, 0, i % 7 === 0 ? 3 : 0], p50: 2, p95: 9, p99: 20, errorRate: 0, active: 3, conns: 0, bytesIn: 0, bytesOut: 0, limited: 0 } },
      servers: {},
    }))
    const history = {
      points,
      events: [
        { t: (now - 20) * 1000, kind: 'role', level: 'warn', text: 'role active → standby (step-down, term 6)' },
        { t: (now - 10) * 1000, kind: 'role', level: 'ok', text: 'role standby → active (peer-dead, term 7)' },
      ],
    }
    const body = `retry: 60000\n\nevent: status\ndata: ${JSON.stringify({ ...real, id: 'lb-b', role: 'active', peer })}\n\nevent: history\ndata: ${JSON.stringify(history)}\n\n`
    const { page, errors, close } = await browser.page({ width: 1440, height: 900 })
    cleanups.push(close)
    await page.route('**/api/events', async (route) => { await route.fulfill({ status: 200, contentType: 'text/event-stream', body }) })
    await page.goto(s.base)
    await page.locator('#pair').waitFor({ state: 'visible' })
    const text = async (id: string): Promise<string> => (await page.locator(id).innerText()).trim()
    expect((await text('#pair-role')).toLowerCase()).toBe('active')
    expect(await text('#pair-term')).toBe('7')
    expect((await text('#pair-peer-role')).toLowerCase()).toBe('standby')
    expect(await text('#pair-peer-id')).toBe('lb-a')
    expect(await text('#pair-heartbeat')).toBe('83 ms ago')
    expect(await text('#pair-links')).toBe('1/2 up')
    expect(await text('#pair-witness')).toBe('redis up · lease')
    expect(await text('#pair-sync')).toBe('in sync')
    expect(await page.locator('#pair-fault').isHidden()).toBe(true)
    expect(await page.locator('#events li[data-kind="role"]').count()).toBe(2)
    expect(await page.locator('[data-chart="listener:public:requests"]').getAttribute('data-marks')).toBe('2')
    await page.screenshot({ path: ARTIFACTS + 'dashboard-pair-panel.png', fullPage: false })
    expect(errors).toEqual([])
  })
})
