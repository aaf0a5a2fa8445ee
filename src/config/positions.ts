// Where each value of the parsed YAML came from, keyed by JSON pointer (the form ajv reports),
// and the collector that turns (pointer, message) into positioned ConfigErrors.
import { ConfigError } from '../errors.js'

/** A 1-based line and column. */
export interface Where { readonly line: number, readonly col: number }

interface Entry { key?: Where, value: Where, isIndex: boolean }

/** Builds a JSON pointer from path segments. */
export function pointer (...segments: Array<string | number>): string {
  return segments.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('')
}

function segmentsOf (ptr: string): string[] {
  if (ptr === '') return []
  return ptr.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

export class PositionMap {
  private readonly entries = new Map<string, Entry>()

  set (ptr: string, value: Where, key: Where | undefined, isIndex: boolean): void {
    this.entries.set(ptr, key === undefined ? { value, isIndex } : { key, value, isIndex })
  }

  /** Position of the key naming `ptr` (for unknown keys), else of its value. */
  key (ptr: string): Where { return this.nearest(ptr, true) }

  /** Position of the value at `ptr`, or of the nearest ancestor that exists. */
  value (ptr: string): Where { return this.nearest(ptr, false) }

  private nearest (ptr: string, wantKey: boolean): Where {
    for (let p = ptr; ; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) {
      const e = this.entries.get(p)
      if (e !== undefined) return (wantKey ? e.key : undefined) ?? e.value
      if (p === '') return { line: 1, col: 1 }
    }
  }

  /** `upstreams.web.servers[1].weight`: dotted keys, `[i]` for list indexes; `(root)` for the top. */
  display (ptr: string): string {
    let out = ''
    let p = ''
    for (const seg of segmentsOf(ptr)) {
      p += pointer(seg)
      const isIndex = this.entries.get(p)?.isIndex ?? false
      out += isIndex ? `[${seg}]` : (out === '' ? seg : `.${seg}`)
    }
    return out === '' ? '(root)' : out
  }
}

/** Where in an entry an error points: its key (or, for a list item, its value), or the parent. */
export type At = 'key' | 'value' | 'parent'

/** Collects errors for one file; sorted and de-duplicated on the way out. */
export class Problems {
  private readonly list: Array<{ where: Where, path: string, message: string, ptr: string }> = []
  private readonly notes: Array<{ where: Where, path: string, message: string, ptr: string }> = []
  private readonly silenced = new Set<string>()

  constructor (readonly file: string, readonly positions: PositionMap) {}

  add (ptr: string, message: string, at: At = 'value'): void {
    if (this.silenced.has(ptr)) return
    // A bad value is reported where its key starts, as the spec's `tandem.yaml:14:9:` example
    // does for `        weight: 0`; a list item (no key) at its value.
    const where = at === 'parent'
      ? this.positions.value(ptr.slice(0, Math.max(0, ptr.lastIndexOf('/'))))
      : this.positions.key(ptr)
    this.list.push({ where, path: this.positions.display(ptr), message, ptr })
  }

  /** A warning: valid, but probably not what was meant; the config is still accepted. */
  warn (ptr: string, message: string): void {
    this.notes.push({ where: this.positions.value(ptr), path: this.positions.display(ptr), message: `warning: ${message}`, ptr })
  }

  /** Warnings as `FILE:LINE:COL: path: warning: message`, in file order. */
  warnings (): string[] {
    return located(this.file, this.notes).map((e) => e.message)
  }

  /** Adds at an explicit position (YAML syntax errors have no pointer). */
  addAt (where: Where, path: string, message: string): void {
    this.list.push({ where, path, message, ptr: '' })
  }

  /** Later errors at `ptr` are dropped: a value already reported as broken would only add noise. */
  silence (ptr: string): void { this.silenced.add(ptr) }

  get size (): number { return this.list.length }

  errors (): ConfigError[] {
    return located(this.file, this.list)
  }
}

/** In file order, each distinct line once. */
function located (file: string, list: ReadonlyArray<{ where: Where, path: string, message: string }>): ConfigError[] {
  const sorted = [...list].sort((a, b) =>
    a.where.line - b.where.line || a.where.col - b.where.col ||
    (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0))
  const seen = new Set<string>()
  const out: ConfigError[] = []
  for (const e of sorted) {
    const err = new ConfigError(file, e.where.line, e.where.col, e.path, e.message)
    if (seen.has(err.message)) continue
    seen.add(err.message)
    out.push(err)
  }
  return out
}
