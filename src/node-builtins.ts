// Node's `http` and `util` through require, not ES imports. An ES import of a built-in builds its
// namespace by reading every export, and reading `http.WebSocket` (a lazy getter) loads Node's
// bundled undici with http2, tls and zlib: 12 MiB of RSS that tandem never uses (`util` costs
// 1 MiB the same way). bench/idle-rss shows the difference; `import type` is free and stays.
import { createRequire } from 'node:module'
import type * as Crypto from 'node:crypto'
import type * as Http from 'node:http'
import type * as Util from 'node:util'

const load = createRequire(import.meta.url)
export const http = load('node:http') as typeof Http
export const util = load('node:util') as typeof Util

let cryptoModule: typeof Crypto | undefined
/**
 * node:crypto, loaded on first use: with OpenSSL's digest code it costs about 2 MiB of RSS, and
 * a default config (no admin token, rate limit or pair) never needs it.
 */
export function crypto (): typeof Crypto {
  return cryptoModule ??= load('node:crypto') as typeof Crypto
}

/** SHA-256 of `data` (config hashes, admin tokens, over-long rate-limit keys). */
export function sha256 (data: string | Uint8Array): Buffer {
  return crypto().createHash('sha256').update(data).digest()
}
