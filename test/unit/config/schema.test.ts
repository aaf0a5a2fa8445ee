import { describe, it, expect } from 'vitest'
import { Ajv } from 'ajv'
import { configSchema } from '../../../src/config/schema.js'

type Node = Record<string, unknown>
interface Obj { properties: Record<string, Node> }
const root = configSchema as unknown as Obj & { properties: { listeners: { items: Obj }, upstreams: { additionalProperties: Obj }, peer: Obj } }

/** Every schema object that declares `type: object`, with its JSON path. */
function objects (node: unknown, path = '#', out: Array<[string, Node]> = []): Array<[string, Node]> {
  if (node === null || typeof node !== 'object') return out
  if (Array.isArray(node)) {
    node.forEach((n, i) => objects(n, `${path}/${i}`, out))
    return out
  }
  const n = node as Node
  if (n.type === 'object') out.push([path, n])
  for (const [k, v] of Object.entries(n)) {
    if (k === 'enum' || k === 'default' || k === 'const') continue
    objects(v, `${path}/${k}`, out)
  }
  return out
}

describe('configSchema', () => {
  it('is a valid draft-07 schema and survives JSON', () => {
    const ajv = new Ajv({ strict: false })
    const json = JSON.parse(JSON.stringify(configSchema)) as Node
    expect(json).toEqual(configSchema)
    expect(json.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(ajv.validateSchema(json)).toBe(true)
  })

  it('covers every section of the spec', () => {
    expect(Object.keys(root.properties)).toEqual([
      'admin', 'log', 'shutdownDelay', 'shutdownTimeout', 'upstreams', 'listeners', 'rateLimits', 'rateLimitStore', 'peer',
    ])
    expect(Object.keys(root.properties.listeners.items.properties)).toEqual([
      'name', 'protocol', 'listen', 'rateLimit', 'routes', 'trustedProxies', 'timeouts', 'maxHeaderSize',
      'upstream', 'proxyProtocol', 'idleTimeout', 'maxConnections', 'prereadTimeout',
    ])
    expect(Object.keys(root.properties.upstreams.additionalProperties.properties)).toEqual([
      'balance', 'servers', 'connectTimeout', 'retries', 'health', 'passive', 'slowStart',
    ])
    expect(Object.keys(root.properties.peer.properties)).toEqual([
      'id', 'listen', 'peers', 'secret', 'priority', 'preempt', 'heartbeat', 'deadAfter', 'witness', 'standby', 'onChange', 'onChangeTimeout',
    ])
  })

  it('forbids unknown keys and describes every property of every mapping', () => {
    const maps = new Set(['#/properties/upstreams', '#/properties/rateLimits'])
    const found = objects(configSchema)
    expect(found.length).toBeGreaterThan(15)
    for (const [path, schema] of found) {
      if (maps.has(path) || path.endsWith('/headers')) {
        expect(typeof schema.additionalProperties, path).toBe('object')
        continue
      }
      expect(schema.additionalProperties, path).toBe(false)
      expect(typeof schema.description, path).toBe('string')
      for (const [key, prop] of Object.entries(schema.properties as Record<string, Node>)) {
        expect(typeof prop.description, `${path}/properties/${key}`).toBe('string')
      }
    }
  })
})
