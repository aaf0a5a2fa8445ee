// What a default config keeps out of the process (bench/idle-rss): node:crypto (with OpenSSL's
// digest code about 2 MiB of RSS) until the config hash is first read, and undici (about 25 MiB)
// while the lean path serves every request. The proxy runs in a plain Node child from dist/, so
// that nothing the test runner loaded itself counts.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const dist = (p: string): string => JSON.stringify(fileURLToPath(new URL(`../../dist/${p}`, import.meta.url)))
const dir = mkdtempSync(join(tmpdir(), 'tandem-footprint-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const CONFIG = `# a default config: access log, admin and metrics on, active health checks
admin:
  listen: 127.0.0.1:0
upstreams:
  app:
    servers:
      - address: 127.0.0.1:UPSTREAM_PORT
    health: { type: http, path: /healthz, interval: 1s }
listeners:
  - name: web
    protocol: http
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: / }
        upstream: app
`

// The child: an upstream answering fixed bytes, serve() on the config, one GET through the
// proxy, then what is loaded before and after the hash is read, as one line on stderr.
const CHILD = `
import net from 'node:net'
import { createRequire } from 'node:module'
import { readFileSync, writeFileSync } from 'node:fs'
import { loadConfigFile } from ${dist('config/load.js')}
import { serve } from ${dist('runtime/serve.js')}
// A health check or pooled connection the proxy resets at shutdown must not end the child.
const upstream = net.createServer((s) => s.on('error', () => {}).on('data', () => s.write('HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n')))
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const file = process.argv[2]
writeFileSync(file, readFileSync(file, 'utf8').replace('UPSTREAM_PORT', String(upstream.address().port)))
const serving = await serve(await loadConfigFile(file), 'test')
const port = serving.runtime.listeners[0].address().port
const answer = await new Promise((resolve, reject) => {
  const c = net.connect(port, '127.0.0.1', () => c.write('GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'))
  let got = ''
  c.setTimeout(5000, () => c.destroy(new Error('no answer')))
  c.on('data', (d) => { got += d; if (got.endsWith('ok\\n')) { c.destroy(); resolve(got) } }).on('error', reject)
})
const loaded = () => ({
  crypto: process.moduleLoadList.includes('NativeModule crypto'),
  undici: Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/undici/')),
})
const before = loaded()
const hash = serving.runtime.config.hash
process.stderr.write('RESULT ' + JSON.stringify({ status: answer.split('\\r\\n')[0], before, hash, after: loaded() }) + '\\n')
await serving.shutdown('SIGTERM')
upstream.close()
`

describe('startup footprint', () => {
  it('a default config serving a lean GET loads neither node:crypto nor undici; reading the hash loads crypto and gives the file\'s SHA-256', async () => {
    const file = join(dir, 'tandem.yaml')
    writeFileSync(file, CONFIG)
    const entry = join(dir, 'child.mjs')
    writeFileSync(entry, CHILD)
    const child = spawn(process.execPath, [entry, file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
    const code = await new Promise((resolve) => child.once('close', resolve))
    clearTimeout(timer)
    expect(code, err).toBe(0)
    // No RESULT line parses as null and fails the comparison with the child's stderr shown.
    expect(JSON.parse(/^RESULT (.*)$/m.exec(err)?.[1] ?? 'null'), err).toEqual({
      status: 'HTTP/1.1 200 OK',
      before: { crypto: false, undici: false },
      hash: createHash('sha256').update(readFileSync(file)).digest('hex'),
      after: { crypto: true, undici: false },
    })
  })
})
