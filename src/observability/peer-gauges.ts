import type { Registry } from 'prom-client'

/** What the pair's gauges read at scrape time (PeerNode satisfies it). */
export interface PeerGauges {
  readonly peerUp: boolean
  readonly inSync: boolean
}

/**
 * tandem_peer_up and tandem_peer_in_sync, declared on every node (the spec lists them; a scrape
 * that looks for the names finds them) but sampled only with `peer:`: a standalone node has no
 * peer to be down, and a 0 there would fire the shipped TandemPeerDown alert on every one of
 * them. prom-client's Gauge always samples an unlabelled gauge, so these are custom collectors
 * (prom-client's Metric contract: name, help, type, get()), as FastHistogram is.
 * Before the node starts (the admin comes up first) nothing is heard and nothing is in sync.
 */
export function registerPeerGauges (registry: Registry, getPeer: (() => PeerGauges | undefined) | undefined): void {
  const gauge = (name: string, help: string, read: (p: PeerGauges | undefined) => boolean): void => {
    const get = (): object => ({
      name,
      help,
      type: 'gauge',
      aggregator: 'sum',
      values: getPeer === undefined ? [] : [{ value: read(getPeer()) ? 1 : 0, labels: {} }],
    })
    registry.registerMetric({ name, help, type: 'gauge', aggregator: 'sum', get, reset () {} } as unknown as Parameters<Registry['registerMetric']>[0])
  }
  gauge('tandem_peer_up', '1 while the other node\'s heartbeats arrive (no sample without peer:).', (p) => p?.peerUp === true)
  gauge('tandem_peer_in_sync', '1 while this standby holds the active\'s full state (active: while its standby does; no sample without peer:).', (p) => p?.inSync === true)
}
