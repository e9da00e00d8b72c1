/**
 * Which packet numbers arrived: duplicate detection on receive and the ranges
 * an ACK frame reports. Ranges are kept newest first as [low, high] pairs and
 * bounded in count; packets older than the oldest tracked range are treated
 * as already seen (a duplicate or too old to matter).
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

  /** @param maxRanges most ranges remembered (older ones are forgotten). Default 32. */
  constructor(maxRanges = 32) {
    this.#maxRanges = maxRanges
  }

  /** Largest packet number received, or undefined before any. */
  get largest(): number | undefined {
    return this.ranges.length > 0 ? this.ranges[0].high : undefined
  }

  /** True when `pn` was seen already, or is older than anything remembered. */
  has(pn: number): boolean {
    const r = this.ranges
    if (r.length === 0) return false
    for (let i = 0; i < r.length; i++) {
      if (seqDiff(pn, r[i].high) > 0) return false
      if (seqDiff(pn, r[i].low) >= 0) return true
    }
    // Older than the oldest remembered range: refuse rather than risk a duplicate.
    return r.length >= this.#maxRanges
  }

  /** Record `pn` as received. Call only when `has(pn)` is false. */
  add(pn: number): void {
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

  #trim(): void {
    if (this.ranges.length > this.#maxRanges) this.ranges.length = this.#maxRanges
  }

  /** The ACK frame fields for the current state, with at most `maxRanges` ranges. */
  toAck(maxRanges = 16): AckFields {
    const r = this.ranges
    const first = r[0]
    const ranges: number[] = []
    let prevLow = first.low
    for (let i = 1; i < r.length && i <= maxRanges; i++) {
      ranges.push(seqDiff(prevLow, r[i].high) - 1, seqDiff(r[i].high, r[i].low))
      prevLow = r[i].low
    }
    return { largest: first.high, firstRange: seqDiff(first.high, first.low), ranges }
  }
}

/**
 * Decode ACK fields into ranges, newest first. Returns null when the fields
 * are inconsistent (a range running below packet number `floor`, more than
 * `maxRanges`, negative values). Range sizes are the caller's to clamp
 * against what it has in flight.
 */
export function decodeAckRanges(ack: AckFields, maxRanges: number): AckRange[] | null {
  if (ack.ranges.length > maxRanges * 2 || (ack.ranges.length & 1) !== 0) return null
  if (ack.firstRange > 0x7fffffff) return null
  const out: AckRange[] = [{ low: (ack.largest - ack.firstRange) >>> 0, high: ack.largest >>> 0 }]
  let low = out[0].low
  let span = ack.firstRange
  for (let i = 0; i < ack.ranges.length; i += 2) {
    const gap = ack.ranges[i]
    const len = ack.ranges[i + 1]
    span += gap + 1 + len + 1
    if (span > 0x7fffffff) return null
    const high = (low - gap - 1) >>> 0
    const lo = (high - len) >>> 0
    out.push({ low: lo, high })
    low = lo
  }
  return out
}
