import type { IncomingMessage } from 'node:http'
import type { HttpRouter } from '../router/http-router.js'
import { tunnelAllowed } from '../upstream/upgrade-heads.js'
import { requestTarget } from './request-target.js'

/**
 * Whether node:http should hand this request's socket to the listener's 'upgrade' handler: its
 * route lets every protocol it offers tunnel (see tunnelAllowed). Any other request with
 * Upgrade is a plain one, the header dropped.
 */
export function tunnels (router: HttpRouter, req: IncomingMessage): boolean {
  if (req.headers.upgrade === undefined) return false
  const target = requestTarget(req.url ?? '/', req.rawHeaders, req.httpVersionMajor, req.httpVersionMinor)
  if (!target.ok) return false
  const route = router.match(req.method ?? 'GET', target.host, target.path, req.headers)
  return route !== undefined && tunnelAllowed(req, route.upgrades)
}
