import type { BalanceName } from '../config/types.js'
import type { Balancer } from './types.js'
import { RoundRobin } from './round-robin.js'
import { LeastConnections } from './least-connections.js'
import { ResponseTime } from './response-time.js'

const factories: Readonly<Record<BalanceName, () => Balancer>> = {
  'round-robin': () => new RoundRobin(),
  'least-connections': () => new LeastConnections(),
  'response-time': () => new ResponseTime(),
}

/** The spec's strategy names, in the order the docs list them. */
export const balanceNames = Object.keys(factories) as BalanceName[]

/** A fresh strategy instance; each Upstream owns its own. Config validation rejects unknown names. */
export function createBalancer (name: BalanceName): Balancer {
  const factory = factories[name]
  if (factory === undefined) throw new TypeError(`unknown balance strategy: ${String(name)}`)
  return factory()
}
