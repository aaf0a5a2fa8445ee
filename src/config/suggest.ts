// "Did you mean" for config typos (pure): the closest candidate by edit distance, only when it is
// close enough that the suggestion is more likely right than noise.

/** Optimal string alignment distance (Levenshtein plus adjacent transposition). */
export function editDistance (a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array<number>(rows * cols).fill(0)
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1)
      }
      d[i * cols + j] = v
    }
  }
  return d[rows * cols - 1]!
}

/** The candidate closest to `word` (case-insensitively), or undefined when none is close. */
export function suggest (word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase()
  const limit = Math.max(1, Math.floor(w.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase())
    if (dist < bestDistance) {
      best = c
      bestDistance = dist
    }
  }
  return bestDistance <= limit ? best : undefined
}

/** ` (did you mean "x"?)` or the empty string. */
export function didYouMean (word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates)
  return s === undefined ? '' : ` (did you mean "${s}"?)`
}
