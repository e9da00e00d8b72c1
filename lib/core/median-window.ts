/**
 * The last N values of a series (a ring in a typed array, no allocation per
 * value) and their median, computed when read. Used for the RTT users see
 * (`RttEstimator.pathRtt`) and the demo's request round trips: a few
 * slow values do not move a median, where they pull a mean up for long.
 */
export class MedianWindow {
  readonly #values: Float64Array
  #count = 0
  #next = 0

  /** @param size - Values kept, at least 1. */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`MedianWindow size must be an integer ≥ 1, got ${size}`)
    this.#values = new Float64Array(size)
  }

  /** Values held (up to the size). */
  get count(): number {
    return this.#count
  }

  /** Keep `value`, dropping the oldest once full. */
  add(value: number): void {
    this.#values[this.#next] = value
    this.#next = this.#next + 1 === this.#values.length ? 0 : this.#next + 1
    if (this.#count < this.#values.length) this.#count++
  }

  /** The median of the values held (the mean of the middle two for an even count); NaN when empty. */
  median(): number {
    const n = this.#count
    if (n === 0) return NaN
    const sorted = this.#values.slice(0, n).sort()
    const mid = n >>> 1
    return n % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }
}
