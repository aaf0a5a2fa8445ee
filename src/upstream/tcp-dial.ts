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

/** For a name: the addresses not tried yet, and the port. */
const rest = new WeakMap<Conn, { addresses: dns.LookupAddress[], port: number }>()

/**
 * Starts a connect to `host:port` on a new handle. A numeric address is used as it is; a name is
 * resolved with dns.lookup() first and its addresses are tried in the order the OS gives, as
 * net.connect does (`localhost` may be ::1 and 127.0.0.1). The outcome comes as
 * `owner.dialed(conn, status)`, never before this returns.
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
    dns.lookup(host, { all: true }, (err, addresses) => {
      if (conn.closed) return
      const first = addresses?.[0]
      if (err !== null || first === undefined) return owner.dialed(conn, LOOKUP_FAILED)
      if (addresses.length > 1) rest.set(conn, { addresses: addresses.slice(1), port })
      start(conn, first.address, port, first.family === 6)
    })
  }
  return conn
}

function start (conn: Conn, address: string, port: number, ipv6: boolean): void {
  const err = connectHandle(conn.handle, address, port, ipv6, onConnect)
  // A connect that fails before it starts (ENETUNREACH, EINVAL) goes on to the next address too.
  if (err !== 0) process.nextTick(failed, conn, err)
}

function onConnect (status: number, handle: TcpHandle): void {
  const conn = connOf(handle)
  // A handle given up for the next address reports its cancelled connect here.
  if (handle !== conn.handle) return
  if (status < 0) failed(conn, status)
  else report(conn, status)
}

/** Tries the name's next address on a new handle, or reports the failure when none is left. */
function failed (conn: Conn, status: number): void {
  const more = conn.closed ? undefined : rest.get(conn)
  const next = more?.addresses.shift()
  if (more === undefined || next === undefined) return report(conn, status)
  conn.rehandle()
  start(conn, next.address, more.port, next.family === 6)
}

function report (conn: Conn, status: number): void {
  if (!conn.closed) (conn.owner as DialOwner).dialed(conn, status)
}
