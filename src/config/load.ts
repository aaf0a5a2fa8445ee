// Config file → YAML document with positions → plain value with ${ENV} substituted → validate.
// Substitution happens on parsed scalars, not on the text, so every position stays true and an
// environment value can never inject YAML structure.
import { constants, type Stats } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { resolve } from 'node:path'
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml'
import type { Alias, Document, Node as YamlNode } from 'yaml'
import { ConfigErrors } from '../errors.js'
import type { Config } from './types.js'
import { PositionMap, Problems, pointer } from './positions.js'
import type { Where } from './positions.js'
import { validateConfig } from './validate.js'
import { sha256 } from '../node-builtins.js'

/**
 * The config's SHA-256 in hex (as `sha256sum` prints it for the file), computed when first read:
 * the admin API's status or a reload's answer. node:crypto then stays unloaded in a config that
 * needs it nowhere else (see node-builtins.ts).
 */
function lazySha256Hex (data: string | Uint8Array): () => string {
  let hex: string | undefined
  return () => (hex ??= sha256(data).toString('hex'))
}

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

/** Aliases followed in one file; real configs use a handful. */
export const MAX_ALIAS_EXPANSIONS = 10_000
/** Values (scalars, lists, mappings) one file may expand to; a 1,000-route config has about 10,000. */
export const MAX_CONFIG_VALUES = 100_000

class Converter {
  private readonly stack = new Set<YamlNode>()
  /** Pointers of scalars that took a variable's value; validate may re-type them. */
  readonly substituted = new Set<string>()
  // Caps alias expansion so a "billion laughs" file fails fast instead of exhausting memory:
  // both the number of aliases followed and the number of values they expand to.
  private aliasBudget = MAX_ALIAS_EXPANSIONS
  private valueBudget = MAX_CONFIG_VALUES

  /** Each alias's target, found in one pass: yaml's Alias.resolve() walks the whole document per call. */
  private readonly targets = new Map<Alias, YamlNode>()
  /** The outermost alias being expanded, where a budget error is reported. */
  private expanding: { ptr: string, where: Where } | undefined

  constructor (
    private readonly doc: Document,
    private readonly lc: LineCounter,
    private readonly env: NodeJS.ProcessEnv,
    private readonly problems: Problems,
    private readonly positions: PositionMap,
  ) {
    // An alias refers to the last anchor of its name before it, in document order (YAML 1.2).
    const anchors = new Map<string, YamlNode>()
    visit(doc, (_key, node) => {
      if (isAlias(node)) {
        const target = anchors.get(node.source)
        if (target !== undefined) this.targets.set(node, target)
      } else if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor !== undefined) {
        anchors.set(node.anchor, node)
      }
    })
  }

  where (offset: number): Where { return this.lc.linePos(offset) }

  /** True when an expansion budget ran out (the value is incomplete). */
  get exhausted (): boolean { return this.aliasBudget < 0 || this.valueBudget < 0 }

  convert (node: unknown, ptr: string, key: Where | undefined, isIndex: boolean, fallback: Where): unknown {
    const here = isAlias(node) || isScalar(node) || isMap(node) || isSeq(node)
      ? this.where(node.range?.[0] ?? 0)
      : fallback
    if (--this.valueBudget < 0) {
      // Reported at the alias being expanded (what the user wrote), not deep inside its target.
      if (this.valueBudget === -1) {
        const at = this.expanding ?? { ptr, where: here }
        this.problems.addAt(at.where, this.positions.display(at.ptr), `the config expands to more than ${MAX_CONFIG_VALUES} values (through aliases); refused`)
      }
      return null
    }
    this.positions.set(ptr, here, key, isIndex)
    if (isAlias(node)) {
      if (--this.aliasBudget < 0) {
        if (this.aliasBudget === -1) this.problems.add(ptr, `too many alias expansions (more than ${MAX_ALIAS_EXPANSIONS})`)
        return null
      }
      const target = this.targets.get(node)
      if (target === undefined || this.stack.has(target)) {
        this.problems.add(ptr, target === undefined ? `unknown alias *${node.source}` : `alias *${node.source} refers to itself`)
        return null
      }
      this.stack.add(target)
      const outermost = this.expanding === undefined
      if (outermost) this.expanding = { ptr, where: here }
      const v = this.convert(target, ptr, key, isIndex, here)
      if (outermost) this.expanding = undefined
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
  meta: { configFile?: string, hash?: () => string } = {},
): Config {
  const hash = meta.hash ?? lazySha256Hex(text)
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text
  const lc = new LineCounter()
  const doc = parseDocument(src, { lineCounter: lc, prettyErrors: false, uniqueKeys: false })
  const positions = new PositionMap()
  const problems = new Problems(file, positions)
  for (const e of doc.errors) problems.addAt(lc.linePos(e.pos[0]), '(syntax)', e.message)
  if (problems.size > 0) throw new ConfigErrors(problems.errors())

  const conv = new Converter(doc, lc, env, problems, positions)
  const raw = conv.convert(doc.contents, '', undefined, false, { line: 1, col: 1 })
  // A refused expansion is not validated: its value is cut short, and checking it would cost again.
  if (conv.exhausted) throw new ConfigErrors(problems.errors())
  const config = validateConfig(raw, problems, { file: meta.configFile ?? file, hash }, conv.substituted)
  if (config === undefined || problems.size > 0) throw new ConfigErrors(problems.errors())
  return config
}

/**
 * Reads and validates a config file. An unreadable file throws a plain Error (exit 1); an invalid
 * one throws ConfigErrors whose lines name the file as given (exit 2).
 */
export async function loadConfigFile (path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const bytes = await readConfigBytes(path)
  return parseConfig(bytes.toString('utf8'), path, env, { configFile: resolve(path), hash: lazySha256Hex(bytes) })
}

/** Config files larger than this are refused before reading (real ones are a few KiB). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024

/**
 * The file's bytes, refusing at once what is not a regular file of at most MAX_CONFIG_BYTES: a
 * FIFO would block the open or the read, /dev/zero would never end, a directory has no text.
 * O_NONBLOCK keeps the open of a FIFO without a writer from hanging; fstat then refuses it.
 */
async function readConfigBytes (path: string): Promise<Buffer> {
  const refuse = (why: string, cause?: unknown): Error => new Error(`cannot read config file ${path}: ${why}`, { cause })
  let fh: FileHandle
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw refuse(e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message, err)
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw refuse(`not a regular file (${fileKind(st)})`)
    if (st.size > MAX_CONFIG_BYTES) throw refuse(`larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB (${st.size} bytes)`)
    // Read at most one byte past the limit, in case the file grows between fstat and read.
    const buf = Buffer.alloc(Math.min(st.size, MAX_CONFIG_BYTES) + 1)
    let n = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n)
      if (bytesRead === 0) break
      n += bytesRead
      if (n === buf.length) break
    }
    if (n > MAX_CONFIG_BYTES) throw refuse(`larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB`)
    return buf.subarray(0, n)
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('cannot read config file')) throw err
    throw refuse((err as Error).message, err)
  } finally {
    await fh.close()
  }
}

function fileKind (st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  return 'not a file'
}
