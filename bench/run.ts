// `npm run bench`: the HTTP benchmark, the TCP one, then idle-connection RSS, each in its own process
// so each pins its own threads. Exits non-zero if either fails.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const scripts = ['http.js', 'tcp.js', 'idle-rss.js']
  .map((name) => fileURLToPath(new URL(name, import.meta.url)))
  .filter((file) => existsSync(file))

let failed = false
for (const script of scripts) {
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: 'inherit' })
    child.once('exit', (c) => { resolve(c) })
  })
  if (code !== 0) {
    process.stderr.write(`bench: ${script} exited with ${code}\n`)
    failed = true
  }
}
process.exit(failed ? 1 : 0)
