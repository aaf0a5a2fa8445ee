// Removes what the schema rejected from a copy of the raw config (pure), so the cross-reference
// and lint passes can still run and `tandem check` reports every problem of a file at once.
//
// Only object keys are removed: an unknown key, or a value of the wrong type or range (its
// default then applies, as if it were not written). Array elements and named entries (an
// upstream, a rate limit) are never removed: indices would shift under the positions of later
// errors, and a missing upstream would make every route to it a false "unknown upstream". When
// the schema's errors can only be cleared that way, pruning gives up and the caller reports the
// schema errors alone.
import type { ErrorObject } from 'ajv'

const NAMED = /^\/(upstreams|rateLimits)\/[^/]+$/

function segments (ptr: string): string[] {
  return ptr === '' ? [] : ptr.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

/** The key to delete for one schema error: [parent pointer, key], or undefined when unsafe. */
function target (e: ErrorObject, raw: unknown): [string[], string] | undefined {
  if (e.keyword === 'if' || e.keyword === 'propertyNames') return undefined
  let path = segments(e.instancePath)
  if (e.keyword === 'additionalProperties') {
    path = [...path, String((e.params as { additionalProperty: unknown }).additionalProperty)]
  } else if (typeof e.propertyName === 'string') {
    path = [...path, e.propertyName]
  }
  if (path.length === 0 || NAMED.test('/' + path.join('/'))) return undefined
  const key = path[path.length - 1] as string
  const parentPath = path.slice(0, -1)
  let parent: unknown = raw
  for (const s of parentPath) parent = (parent as Record<string, unknown> | undefined)?.[s]
  // Array elements stay (see the file comment); so do keys of something that is not an object.
  if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) return undefined
  return [parentPath, key]
}

/**
 * Deletes from `raw` (mutated) the keys behind `errors`. Returns false when an error cannot be
 * cleared by deleting a key; `raw` may then be partly pruned and must not be used.
 */
export function pruneRejected (raw: unknown, errors: readonly ErrorObject[]): boolean {
  const deletions: Array<[string[], string]> = []
  for (const e of errors) {
    if (e.keyword === 'if') continue
    const t = target(e, raw)
    if (t === undefined) return false
    deletions.push(t)
  }
  for (const [parentPath, key] of deletions) {
    let parent: unknown = raw
    for (const s of parentPath) parent = (parent as Record<string, unknown> | undefined)?.[s]
    if (parent !== null && typeof parent === 'object') delete (parent as Record<string, unknown>)[key]
  }
  return true
}
