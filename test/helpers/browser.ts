// Debian's chromium driven by playwright-core (no browser download): a fresh profile per launch,
// and every console error or uncaught page error collected so a test can assert there are none.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

export const CHROMIUM = process.env.TANDEM_CHROMIUM ?? '/usr/bin/chromium'

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing (): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install chromium, or set TANDEM_CHROMIUM)`
}

export interface TestBrowser {
  context: BrowserContext
  /** A new tab at `viewport`, with `errors` collecting console errors and page errors. */
  page (viewport: { width: number, height: number }, options?: { dark?: boolean }): Promise<{ page: Page, errors: string[], close: () => Promise<void> }>
  close (): Promise<void>
}

export async function launchBrowser (): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'tandem-chromium-'))
  // A persistent context is how playwright takes our own fresh --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    deviceScaleFactor: 1,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  })
  return {
    context,
    async page (viewport, options = {}) {
      const page = await context.newPage()
      page.setDefaultTimeout(15_000)
      await page.setViewportSize(viewport)
      await page.emulateMedia({ colorScheme: options.dark === true ? 'dark' : 'light' })
      const errors: string[] = []
      page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`) })
      page.on('pageerror', (e) => { errors.push(`page: ${e.message}`) })
      return { page, errors, close: async () => { await page.close() } }
    },
    async close () {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
