// The config's SHA-256 in hex, as `sha256sum` prints it for the file, computed when first read
// (the admin API's status, a reload's answer), so that node:crypto stays unloaded (see crypto()).
import { crypto } from '../node-builtins.js'

/** SHA-256 of `data`, hex. */
export function sha256Hex (data: string | Uint8Array): string {
  return crypto().createHash('sha256').update(data).digest('hex')
}

/** sha256Hex(data) on first call, the same string after. */
export function lazySha256Hex (data: string | Uint8Array): () => string {
  let hex: string | undefined
  return () => (hex ??= sha256Hex(data))
}
