// The dashboard's static files: the page, its script and style (src/admin/dashboard/, copied
// beside the compiled server by `npm run build`) and uPlot from the installed `uplot` package.
// Read once on first use and kept in memory: about 60 KB in all, and no file I/O per request.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export interface Asset {
  type: string
  body: Buffer
}

const require = createRequire(import.meta.url)
const own = (name: string): string => fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url))

/** URL path → where the file is and its content type. The only files the admin server serves. */
const FILES: Record<string, { path: () => string, type: string }> = {
  '/': { path: () => own('index.html'), type: 'text/html; charset=utf-8' },
  '/assets/format.js': { path: () => own('format.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/charts.js': { path: () => own('charts.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/servers.js': { path: () => own('servers.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/app.js': { path: () => own('app.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/app.css': { path: () => own('app.css'), type: 'text/css; charset=utf-8' },
  '/assets/uplot.js': { path: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/uplot.css': { path: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
}

export const ASSET_PATH = /^\/(?:assets\/[a-z.]+)?$/

/**
 * Scripts and styles come from this origin only; no inline code. uPlot sizes its elements
 * through the CSSOM, which style-src does not restrict.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const cache = new Map<string, Promise<Asset>>()

/** The asset at `urlPath`, or undefined for a path that is not one. Rejects when the file is missing from the install. */
export async function asset (urlPath: string): Promise<Asset | undefined> {
  const file = FILES[urlPath]
  if (file === undefined) return undefined
  let loaded = cache.get(urlPath)
  if (loaded === undefined) {
    loaded = readFile(file.path()).then((body) => ({ type: file.type, body }))
    // A failed read is not cached: the next request tries again.
    loaded.catch(() => { cache.delete(urlPath) })
    cache.set(urlPath, loaded)
  }
  return await loaded
}
