import dns from 'node:dns'
import { isIP } from 'node:net'
import { connectHandle, newHandle, type TcpHandle } from './tcp-handle.js'
import { Conn, connOf, type ConnOwner } from './tcp-relay.js'

/** A Conn's owner that also hears how its connect ended. */
export interface DialOwner extends ConnOwner {
  /** 0 when connected, else a negative errno; not called once the Conn is closed. */
  dialed (conn: Conn, status: number): void
}

/** What a failed name lookup reports as its status (EAI_* codes have no errno of their own). */
const LOOKUP_FAILED = -3008 // UV_ENOTFOUND

/** isIP() per configured host, remembered: it is a regular expression test per connection otherwise. */
const families = new Map<string, number>()

/**
 * Starts a connect to `host:port` on a new handle. A numeric address is used as it is; a name is
 * resolved with dns.lookup() first (the first address, as the OS orders them). The outcome comes
 * as `owner.dialed(conn, status)`, never before this returns.
 */
export function dial (host: string, port: number, owner: DialOwner): Conn {
  const conn = new Conn(newHandle(), owner)
  let family = families.get(host)
  if (family === undefined) {
    family = isIP(host)
    if (families.size < 4096) families.set(host, family)
  }
  if (family !== 0) {
    start(conn, host, port, family === 6)
  } else {
    dns.lookup(host, (err, address, fam) => {
      if (conn.closed) return
      if (err !== null) owner.dialed(conn, LOOKUP_FAILED)
      else start(conn, address, port, fam === 6)
    })
  }
  return conn
}

function start (conn: Conn, address: string, port: number, ipv6: boolean): void {
  const err = connectHandle(conn.handle, address, port, ipv6, onConnect)
  if (err !== 0) process.nextTick(report, conn, err)
}

function onConnect (status: number, handle: TcpHandle): void {
  report(connOf(handle), status)
}

function report (conn: Conn, status: number): void {
  if (!conn.closed) (conn.owner as DialOwner).dialed(conn, status)
}
