// Config file → YAML document with positions → plain value with ${ENV} substituted → validate.
// Substitution happens on parsed scalars, not on the text, so every position stays true and an
// environment value can never inject YAML structure.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml'
import type { Document, Node as YamlNode } from 'yaml'
import { ConfigErrors } from '../errors.js'
import type { Config } from './types.js'
import { PositionMap, Problems, pointer } from './positions.js'
import type { Where } from './positions.js'
import { validateConfig } from './validate.js'

const VAR_RE = /^([A-Za-z_][A-Za-z0-9_]*)(:-([\s\S]*))?$/

/** `${NAME}` / `${NAME:-default}` (default also when set but empty); `$${` is a literal `${`. */
export function substituteEnv (text: string, env: NodeJS.ProcessEnv): { value: string } | { error: string } {
  let out = ''
  let i = 0
  for (;;) {
    const at = text.indexOf('${', i)
    if (at < 0) return { value: out + text.slice(i) }
    if (at > 0 && text[at - 1] === '$') {
      out += text.slice(i, at - 1) + '${'
      i = at + 2
      continue
    }
    const end = text.indexOf('}', at)
    if (end < 0) return { error: `unclosed "\${" in "${text}"` }
    const m = VAR_RE.exec(text.slice(at + 2, end))
    if (m === null) return { error: `invalid variable reference "${text.slice(at, end + 1)}"` }
    const name = m[1] as string
    const set = env[name]
    let value: string
    if (m[2] === undefined) {
      if (set === undefined) return { error: `environment variable ${name} is not set (use \${${name}:-default} for a default)` }
      value = set
    } else {
      value = set === undefined || set === '' ? (m[3] ?? '') : set
    }
    out += text.slice(i, at) + value
    i = end + 1
  }
}

class Converter {
  private readonly stack = new Set<YamlNode>()
  /** Pointers of scalars that took a variable's value; validate may re-type them. */
  readonly substituted = new Set<string>()
  // Caps alias expansion so a "billion laughs" file fails fast instead of exhausting memory.
  private aliasBudget = 10_000

  constructor (
    private readonly doc: Document,
    private readonly lc: LineCounter,
    private readonly env: NodeJS.ProcessEnv,
    private readonly problems: Problems,
    private readonly positions: PositionMap,
  ) {}

  where (offset: number): Where { return this.lc.linePos(offset) }

  convert (node: unknown, ptr: string, key: Where | undefined, isIndex: boolean, fallback: Where): unknown {
    const here = isAlias(node) || isScalar(node) || isMap(node) || isSeq(node)
      ? this.where(node.range?.[0] ?? 0)
      : fallback
    this.positions.set(ptr, here, key, isIndex)
    if (isAlias(node)) {
      if (--this.aliasBudget < 0) {
        if (this.aliasBudget === -1) this.problems.add(ptr, 'too many alias expansions (more than 10000)')
        return null
      }
      const target = node.resolve(this.doc)
      if (target === undefined || this.stack.has(target)) {
        this.problems.add(ptr, target === undefined ? `unknown alias *${node.source}` : `alias *${node.source} refers to itself`)
        return null
      }
      this.stack.add(target)
      const v = this.convert(target, ptr, key, isIndex, here)
      this.stack.delete(target)
      this.positions.set(ptr, here, key, isIndex)
      return v
    }
    if (isScalar(node)) {
      if (typeof node.value !== 'string') return node.value
      if (!node.value.includes('${')) return node.value
      const r = substituteEnv(node.value, this.env)
      if ('error' in r) {
        this.problems.add(ptr, r.error)
        this.problems.silence(ptr)
        return ''
      }
      this.substituted.add(ptr)
      return r.value
    }
    if (isSeq(node)) return node.items.map((item, i) => this.convert(item, ptr + pointer(i), undefined, true, here))
    if (isMap(node)) return this.convertMap(node.items, ptr, here)
    return null
  }

  private convertMap (items: unknown[], ptr: string, here: Where): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    const firstSeen = new Map<string, Where>()
    const merges: unknown[] = []
    for (const pair of items) {
      if (!isPair(pair)) continue
      const k = pair.key
      const keyWhere = isScalar(k) && k.range !== undefined && k.range !== null ? this.where(k.range[0]) : here
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.problems.addAt(keyWhere, this.positions.display(ptr), 'keys must be plain strings')
        continue
      }
      const name = String(k.value)
      if (name === '<<' && k.type === 'PLAIN') {
        merges.push(this.convert(pair.value, ptr + pointer('<<'), keyWhere, false, keyWhere))
        continue
      }
      const childPtr = ptr + pointer(name)
      const first = firstSeen.get(name)
      if (first !== undefined) {
        this.problems.addAt(keyWhere, this.positions.display(childPtr), `duplicate key (first at line ${first.line})`)
        continue
      }
      firstSeen.set(name, keyWhere)
      define(out, name, this.convert(pair.value, childPtr, keyWhere, false, keyWhere))
    }
    // YAML merge keys (<<: *base): explicit keys win, earlier merged maps win over later ones.
    for (const m of merges.flat()) {
      if (m === null || typeof m !== 'object' || Array.isArray(m)) {
        this.problems.add(ptr + pointer('<<'), 'merge key (<<) must refer to a mapping or a list of mappings')
        continue
      }
      for (const [k, v] of Object.entries(m)) if (!Object.hasOwn(out, k)) define(out, k, v)
    }
    return out
  }
}

// defineProperty, not assignment, so a key named __proto__ stays an ordinary (and unknown) key.
function define (o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

/** Parses and validates config text. Throws ConfigErrors with every problem found. */
export function parseConfig (
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  meta: { configFile?: string, hash?: string } = {},
): Config {
  const hash = meta.hash ?? createHash('sha256').update(text).digest('hex')
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text
  const lc = new LineCounter()
  const doc = parseDocument(src, { lineCounter: lc, prettyErrors: false, uniqueKeys: false })
  const positions = new PositionMap()
  const problems = new Problems(file, positions)
  for (const e of doc.errors) problems.addAt(lc.linePos(e.pos[0]), '(syntax)', e.message)
  if (problems.size > 0) throw new ConfigErrors(problems.errors())

  const conv = new Converter(doc, lc, env, problems, positions)
  const raw = conv.convert(doc.contents, '', undefined, false, { line: 1, col: 1 })
  const config = validateConfig(raw, problems, { file: meta.configFile ?? file, hash }, conv.substituted)
  if (config === undefined || problems.size > 0) throw new ConfigErrors(problems.errors())
  return config
}

/**
 * Reads and validates a config file. An unreadable file throws a plain Error (exit 1); an invalid
 * one throws ConfigErrors whose lines name the file as given (exit 2).
 */
export async function loadConfigFile (path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message
    throw new Error(`cannot read config file ${path}: ${why}`, { cause: err })
  }
  const hash = createHash('sha256').update(bytes).digest('hex')
  return parseConfig(bytes.toString('utf8'), path, env, { configFile: resolve(path), hash })
}
