/**
 * Which packet numbers arrived: duplicate detection on receive (a bitmap over
 * the last `window` packet numbers) and the ranges an ACK frame reports (kept
 * newest first as [low, high] pairs, bounded in count; the oldest are
 * forgotten, having been reported in earlier ACKs). A packet older than the
 * window is treated as already seen.
 */
import { seqDiff } from './seq.js'

/** One inclusive range of packet numbers, `low` ≤ `high` in serial order. */
export interface AckRange {
  low: number
  high: number
}

/** ACK contents in wire form (see protocol.proto `Frame`). */
export interface AckFields {
  largest: number
  firstRange: number
  ranges: number[]
}

export class ReceivedPackets {
  /** Newest first, disjoint, non-adjacent. */
  readonly ranges: AckRange[] = []
  readonly #maxRanges: number
  readonly #window: number
  /**
   * A ring of `window` bits: packet `largest - i` (0 ≤ i < window) is bit
   * `(#top - i) mod window`. A new largest clears only the bits it steps
   * over instead of shifting the whole bitmap.
   */
  readonly #bits: Uint32Array
  /** Bit index of `#largest`. */
  #top = 0
  #largest = 0
  #any = false

  /**
   * @param maxRanges most ranges remembered for ACKs. Default 64.
   * @param window packet numbers behind the largest checked for duplicates (multiple of 32). Default 8192.
   */
  constructor(maxRanges = 64, window = 8192) {
    this.#maxRanges = maxRanges
    this.#window = window
    this.#bits = new Uint32Array(window >>> 5)
  }

  /** How many packet numbers behind the largest are checked for duplicates. */
  get window(): number {
    return this.#window
  }

  /** Largest packet number received, or undefined before any. */
  get largest(): number | undefined {
    return this.#any ? this.#largest : undefined
  }

  /** True when `pn` was seen already, or is too old to tell. */
  has(pn: number): boolean {
    if (!this.#any) return false
    const behind = seqDiff(this.#largest, pn)
    if (behind < 0) return false
    if (behind >= this.#window) return true
    const i = this.#index(behind)
    return (this.#bits[i >>> 5] & (1 << (i & 31))) !== 0
  }

  /** Bit index of the packet `behind` (0 ≤ behind < window) packets before the largest. */
  #index(behind: number): number {
    const i = this.#top - behind
    return i < 0 ? i + this.#window : i
  }

  /** Record `pn` as received. Call only when `has(pn)` is false. */
  add(pn: number): void {
    this.#mark(pn)
    const r = this.ranges
    for (let i = 0; i < r.length; i++) {
      const cur = r[i]
      const aboveHigh = seqDiff(pn, cur.high)
      if (aboveHigh > 0) {
        if (aboveHigh === 1) {
          cur.high = pn
        } else {
          r.splice(i, 0, { low: pn, high: pn })
          this.#trim()
        }
        return
      }
      if (seqDiff(pn, cur.low) >= 0) return // already inside
      if (seqDiff(cur.low, pn) === 1) {
        cur.low = pn
        const next = r[i + 1]
        if (next !== undefined && seqDiff(cur.low, next.high) === 1) {
          cur.low = next.low
          r.splice(i + 1, 1)
        }
        return
      }
    }
    r.push({ low: pn, high: pn })
    this.#trim()
  }

  #mark(pn: number): void {
    const bits = this.#bits
    if (!this.#any) {
      this.#any = true
      this.#largest = pn
      this.#top = 0
      bits[0] = 1
      return
    }
    const ahead = seqDiff(pn, this.#largest)
    if (ahead > 0) {
      // Step the top over the packet numbers skipped, clearing their bits.
      const window = this.#window
      if (ahead >= window) {
        bits.fill(0)
        this.#top = 0
      } else {
        let top = this.#top
        for (let k = 1; k < ahead; k++) {
          if (++top === window) top = 0
          bits[top >>> 5] &= ~(1 << (top & 31))
        }
        if (++top === window) top = 0
        this.#top = top
      }
      const t = this.#top
      bits[t >>> 5] |= 1 << (t & 31)
      this.#largest = pn
    } else {
      const i = this.#index(-ahead)
      bits[i >>> 5] |= 1 << (i & 31)
    }
  }

  #trim(): void {
    if (this.ranges.length > this.#maxRanges) this.ranges.length = this.#maxRanges
  }

  /**
   * The ACK frame fields for the current state, with at most `maxRanges`
   * ranges, written into `out` (its `ranges` emptied first) — reused by the
   * sender for every packet, so an ACK allocates nothing.
   */
  toAck(maxRanges = 16, out: AckFields = { largest: 0, firstRange: 0, ranges: [] }): AckFields {
    const r = this.ranges
    const first = r[0]
    const ranges = out.ranges
    while (ranges.length > 0) ranges.pop() // not `length = 0`, a runtime call
    let prevLow = first.low
    for (let i = 1; i < r.length && i <= maxRanges; i++) {
      ranges.push(seqDiff(prevLow, r[i].high) - 1, seqDiff(r[i].high, r[i].low))
      prevLow = r[i].low
    }
    out.largest = first.high
    out.firstRange = seqDiff(first.high, first.low)
    return out
  }
}

/**
 * Whether ACK fields are consistent: at most `maxRanges` additional ranges
 * (gap/length pairs), none running past 2^31 packet numbers below
 * `largest`. {@link decodeAckRanges} and the connection's ack handling
 * (which walks the ranges without building them) both check this first.
 */
export function validAckFields(ack: AckFields, maxRanges: number): boolean {
  const rs = ack.ranges
  if (rs.length > maxRanges * 2 || (rs.length & 1) !== 0) return false
  let span = ack.firstRange
  if (span > 0x7fffffff) return false
  for (let i = 0; i < rs.length; i += 2) {
    span += rs[i] + 1 + rs[i + 1] + 1
    if (span > 0x7fffffff) return false
  }
  return true
}

/**
 * Decode ACK fields into ranges, newest first. Returns null when the fields
 * are inconsistent (a range running below packet number `floor`, more than
 * `maxRanges`, negative values). Range sizes are the caller's to clamp
 * against what it has in flight.
 */
export function decodeAckRanges(ack: AckFields, maxRanges: number): AckRange[] | null {
  if (!validAckFields(ack, maxRanges)) return null
  const out: AckRange[] = [{ low: (ack.largest - ack.firstRange) >>> 0, high: ack.largest >>> 0 }]
  let low = out[0].low
  for (let i = 0; i < ack.ranges.length; i += 2) {
    const high = (low - ack.ranges[i] - 1) >>> 0
    const lo = (high - ack.ranges[i + 1]) >>> 0
    out.push({ low: lo, high })
    low = lo
  }
  return out
}
