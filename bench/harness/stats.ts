/**
 * Small statistics and output helpers for the bench: exact percentiles,
 * medians of repetitions, one-line formatting, and a progress bar.
 */

/**
 * The `p`-th percentile of `sorted` (ascending) by the nearest-rank method:
 * the smallest value such that at least `p` % of the values are ≤ it.
 * `p` = 0 gives the minimum, 100 the maximum. Exact: always one of the
 * inputs, never an interpolation. `NaN` for an empty input.
 */
export function percentileOfSorted (sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be from 0 to 100, got ${p}`)
  const n = sorted.length
  if (n === 0) return NaN
  // p * n / 100 is computed in floating point: 99.9 * 1000 / 100 is
  // 999.0000000000001, which must still be rank 999. Round that noise away.
  const rank = Math.ceil(Math.round(p * n * 1e6) / 1e8)
  return sorted[Math.min(n, Math.max(1, rank)) - 1]!
}

/** A new ascending, numerically sorted copy of `values`. */
export function sortedCopy (values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort()
}

/** The `p`-th percentile of `values` (any order); see {@link percentileOfSorted}. */
export function percentile (values: ArrayLike<number>, p: number): number {
  return percentileOfSorted(sortedCopy(values), p)
}

/** The median: the mean of the two middle values for an even count. `NaN` when empty. */
export function median (values: ArrayLike<number>): number {
  const s = sortedCopy(values)
  const n = s.length
  if (n === 0) return NaN
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

/** Distribution summary of one sample (units are the caller's, µs in the bench). */
export interface Summary {
  readonly count: number
  readonly min: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

/** Summarise a sample. Every field is `NaN` (count 0) when it is empty. */
export function summarize (values: ArrayLike<number>): Summary {
  const s = sortedCopy(values)
  let sum = 0
  for (let i = 0; i < s.length; i++) sum += s[i]!
  return {
    count: s.length,
    min: s.length > 0 ? s[0]! : NaN,
    p50: percentileOfSorted(s, 50),
    p90: percentileOfSorted(s, 90),
    p99: percentileOfSorted(s, 99),
    p999: percentileOfSorted(s, 99.9),
    max: s.length > 0 ? s[s.length - 1]! : NaN,
    mean: s.length > 0 ? sum / s.length : NaN,
  }
}

/**
 * Field-wise median of the summaries of several repetitions (the count is
 * the total). This is the figure to report: robust to one noisy run.
 */
export function medianSummary (runs: readonly Summary[]): Summary {
  const field = (k: keyof Summary): number => median(runs.map((r) => r[k]))
  return {
    count: runs.reduce((a, r) => a + r.count, 0),
    min: field('min'),
    p50: field('p50'),
    p90: field('p90'),
    p99: field('p99'),
    p999: field('p999'),
    max: field('max'),
    mean: field('mean'),
  }
}

/** A duration given in µs, with a readable unit: `850ns`, `92.1µs`, `1.25ms`, `3.20s`. */
export function formatMicros (us: number): string {
  if (!Number.isFinite(us)) return '—'
  if (us < 1) return `${Math.round(us * 1000)}ns`
  if (us < 1000) return `${us < 100 ? us.toFixed(1) : us.toFixed(0)}µs`
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)}ms`
  return `${(us / 1_000_000).toFixed(2)}s`
}

/** A rate with a readable unit: `950/s`, `12.3k/s`, `1.25M/s`. */
export function formatRate (perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '—'
  if (perSecond < 1000) return `${perSecond.toFixed(0)}/s`
  if (perSecond < 1_000_000) return `${(perSecond / 1000).toFixed(1)}k/s`
  return `${(perSecond / 1_000_000).toFixed(2)}M/s`
}

/** `p50 92.1µs  p99 140µs  p99.9 310µs  max 1.20ms  (n=10000)` for a summary in µs. */
export function formatSummary (s: Summary): string {
  return `p50 ${formatMicros(s.p50)}  p99 ${formatMicros(s.p99)}  p99.9 ${formatMicros(s.p999)}  max ${formatMicros(s.max)}  (n=${s.count})`
}

/**
 * One readable line: `label` padded to a column, then the parts separated
 * by two spaces. `label` is padded to `width` (default 34) characters.
 */
export function formatLine (label: string, parts: readonly string[], width = 34): string {
  return `${label.padEnd(width)} ${parts.join('  ')}`
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Where to draw. Default `process.stderr`. */
  readonly stream?: NodeJS.WriteStream
  /** Bar width in characters. Default 24. */
  readonly width?: number
}

/**
 * A one-line progress bar redrawn in place on stderr. Draws nothing unless
 * the stream is a TTY, so logs and CI output stay clean.
 */
export class Progress {
  readonly #stream: NodeJS.WriteStream
  readonly #enabled: boolean
  readonly #width: number
  #total: number
  #done = 0
  #label = ''
  #lastDraw = 0

  constructor (total: number, options: ProgressOptions = {}) {
    this.#stream = options.stream ?? process.stderr
    this.#enabled = this.#stream.isTTY === true
    this.#width = options.width ?? 24
    this.#total = Math.max(1, total)
  }

  /** Whether anything is drawn at all. */
  get enabled (): boolean {
    return this.#enabled
  }

  /** Set what is being done now (shown after the bar). */
  label (text: string): void {
    this.#label = text
    this.#draw(true)
  }

  /** Mark `n` (default 1) more steps done. */
  tick (n = 1): void {
    this.#done = Math.min(this.#total, this.#done + n)
    this.#draw(false)
  }

  /** Erase the bar (call before printing a result line, and at the end). */
  clear (): void {
    if (this.#enabled) this.#stream.write('\r\x1b[2K')
  }

  #draw (force: boolean): void {
    if (!this.#enabled) return
    const now = Date.now()
    if (!force && now - this.#lastDraw < 50 && this.#done < this.#total) return
    this.#lastDraw = now
    const filled = Math.round(this.#width * this.#done / this.#total)
    const pct = Math.floor(100 * this.#done / this.#total)
    const cols = this.#stream.columns ?? 80
    const line = `[${'#'.repeat(filled)}${'-'.repeat(this.#width - filled)}] ${String(pct).padStart(3)}% ${this.#label}`
    this.#stream.write(`\r\x1b[2K${line.slice(0, cols - 1)}`)
  }
}
