// Schema check, then normalisation and cross-reference lints: a raw YAML value becomes a frozen
// Config, or every problem lands in `problems` (pure). The later passes assume the schema's
// shapes; when the schema finds errors they run on a copy with the rejected parts pruned, so a
// file's cross-reference errors show together with its schema errors.
import { createRequire } from 'node:module'
import type { ErrorObject, ValidateFunction } from 'ajv'
import type { Config } from './types.js'
import { normalise, type ConfigMeta } from './normalise.js'
import { lint } from './lint.js'
import { didYouMean } from './suggest.js'
import type { Problems } from './positions.js'
import { pointer } from './positions.js'
import { pruneRejected } from './prune.js'

let compiled: ValidateFunction | undefined

/** The schema's validator, compiled ahead of time by validator-source.ts (no ajv compiler at run time). */
function validator (): ValidateFunction {
  return compiled ??= createRequire(import.meta.url)('./schema-validator.cjs') as ValidateFunction
}

const typeWords: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'empty',
}

function typeMessage (t: unknown): string {
  const types = Array.isArray(t) ? t : [t]
  return 'must be ' + types.map((x) => typeWords[String(x)] ?? String(x)).join(' or ')
}

function messageFor (e: ErrorObject): string {
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>
  const suggestion = e.keyword === 'enum' && typeof e.data === 'string'
    ? didYouMean(e.data, (parent.enum as string[] | undefined) ?? [])
    : ''
  if (typeof parent.errorMessage === 'string') return parent.errorMessage + suggestion
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'type': return typeMessage(p.type)
    case 'enum': return `must be one of: ${((parent.enum as unknown[] | undefined) ?? []).join(', ')}${suggestion}`
    case 'minItems': return p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} items`
    case 'maxItems': return `must have at most ${String(p.limit)} items`
    case 'minProperties': return 'must not be empty'
    case 'minimum': return `must be >= ${String(p.limit)}`
    case 'maximum': return `must be <= ${String(p.limit)}`
    case 'minLength': return 'must not be empty'
    case 'pattern': return `must match ${String(p.pattern)}`
    case 'const': return `must be ${JSON.stringify(p.allowedValue)}`
    case 'not': return 'not allowed here'
    default: return e.message ?? 'is invalid'
  }
}

/** Turns one ajv error into a positioned problem; `if` errors only echo their `then` errors. */
function report (e: ErrorObject, problems: Problems): void {
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'if':
      return
    case 'additionalProperties': {
      const key = String(p.additionalProperty)
      const known = Object.keys(((e.parentSchema ?? {}) as { properties?: object }).properties ?? {})
      problems.add(e.instancePath + pointer(key), `unknown key${didYouMean(key, known)}`, 'key')
      return
    }
    case 'required':
      problems.add(e.instancePath + pointer(String(p.missingProperty)), 'is required', 'parent')
      return
    case 'propertyNames':
      return // reported through the name's own error, which carries propertyName
    default:
      if (typeof e.propertyName === 'string') {
        problems.add(e.instancePath + pointer(e.propertyName), messageFor(e), 'key')
        return
      }
      problems.add(e.instancePath, messageFor(e))
  }
}

// A variable's value is text; where the schema wants a number or boolean, `weight: ${W}` should
// still work. Only substituted scalars are re-typed: a literal "3" for an integer stays an error.
// Durations and sizes take a string or integer milliseconds/bytes: `connectTimeout: ${CT}` with
// CT=2000 fails their string pattern, not the type, and is re-typed the same way.
function coerceSubstituted (raw: unknown, errors: ErrorObject[], substituted: ReadonlySet<string>): boolean {
  let changed = false
  for (const e of errors) {
    if (!substituted.has(e.instancePath) || typeof e.data !== 'string') continue
    const allowed = [((e.parentSchema ?? {}) as { type?: unknown }).type].flat()
    const wanted = e.keyword === 'type'
      ? [(e.params as { type: unknown }).type].flat()
      : (e.keyword === 'pattern' || e.keyword === 'errorMessage') && allowed.includes('integer') ? ['integer'] : []
    const text = e.data.trim()
    let v: number | boolean | undefined
    if ((wanted.includes('integer') && /^[-+]?[0-9]+$/.test(text)) ||
      (wanted.includes('number') && text !== '' && Number.isFinite(Number(text)))) v = Number(text)
    else if (wanted.includes('boolean') && (text === 'true' || text === 'false')) v = text === 'true'
    if (v === undefined) continue
    const segs = e.instancePath.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    const last = segs.pop() as string
    let parent = raw as Record<string, unknown>
    for (const s of segs) parent = parent[s] as Record<string, unknown>
    parent[last] = v
    changed = true
  }
  return changed
}

/** Recursively freezes plain objects and arrays; accessors (the lazy hash) are left uncalled. */
export function deepFreeze<T> (v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const d of Object.values(Object.getOwnPropertyDescriptors(v))) if ('value' in d) deepFreeze(d.value)
  }
  return v
}

/** Pruning a key can expose another error (a required key): a few rounds, then give up. */
const PRUNE_ROUNDS = 4

/**
 * Runs normalisation and lints over `raw` minus what the schema rejected, reporting into
 * `problems`; does nothing when the rejected parts cannot be pruned safely (see prune.ts).
 */
function crossCheckPruned (raw: unknown, errors: readonly ErrorObject[], problems: Problems, meta: ConfigMeta): void {
  const copy = structuredClone(raw)
  const validate = validator()
  let pending = errors
  for (let round = 0; round < PRUNE_ROUNDS; round++) {
    if (!pruneRejected(copy, pending)) return
    if (validate(copy)) {
      lint(normalise(copy as Record<string, unknown>, problems, meta), problems)
      return
    }
    pending = validate.errors ?? []
  }
}

/**
 * Validates a raw config value (as parsed from YAML, variables substituted). Returns the frozen
 * Config, or undefined when anything was reported into `problems` (including earlier problems).
 */
export function validateConfig (
  raw: unknown,
  problems: Problems,
  meta: ConfigMeta,
  substituted: ReadonlySet<string> = new Set(),
): Config | undefined {
  const validate = validator()
  let valid = validate(raw)
  if (!valid && coerceSubstituted(raw, validate.errors ?? [], substituted)) valid = validate(raw)
  if (!valid) {
    const errors = validate.errors ?? []
    for (const e of errors) report(e, problems)
    crossCheckPruned(raw, errors, problems, meta)
    return undefined
  }
  const config = normalise(raw as Record<string, unknown>, problems, meta)
  lint(config, problems)
  if (problems.size > 0) return undefined
  const warnings = problems.warnings()
  if (warnings.length > 0) (config as { warnings?: readonly string[] }).warnings = warnings
  return deepFreeze(config)
}
