/**
 * Replay protection: a sliding window over 32-bit wrapping packet numbers.
 *
 * Use on every protected packet, in this order:
 *
 * 1. `check(pn)` — false: drop (duplicate or too old), count, stop;
 * 2. `open` the packet — failure: drop, count, stop (do NOT commit:
 *    an attacker must not be able to advance or fill the window);
 * 3. `commit(pn)`.
 *
 * Packet numbers compare in serial-number arithmetic, `((a - b) | 0) > 0`
 * means a is after b, so the window works across 0xFFFFFFFF → 0. A packet
 * more than 2^31 - 1 ahead of the largest seen counts as behind it (and is
 * rejected as too old); the AEAD limits keep a session far from that.
 *
 * @module
 */

/** Default window size, in packet numbers. */
export const DEFAULT_REPLAY_WINDOW = 1024
/** Largest window size accepted, in packet numbers. */
export const MAX_REPLAY_WINDOW = 65536

/**
 * Remembers which of the last `size` packet numbers (up to the largest
 * committed) were received. Memory: `size / 8` bytes, allocated once.
 */
export class ReplayWindow {
  /** Window size in packet numbers. */
  readonly size: number
  readonly #bits: Uint32Array
  readonly #mask: number
  #largest = 0
  #empty = true

  /**
   * @param size - how far behind the largest committed packet number a
   *   packet is still accepted, in packet numbers: a power of two,
   *   32 .. {@link MAX_REPLAY_WINDOW}. Default {@link DEFAULT_REPLAY_WINDOW}.
   * @throws {RangeError} on any other size.
   */
  constructor(size = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < 32 || size > MAX_REPLAY_WINDOW || (size & (size - 1)) !== 0) {
      throw new RangeError(`size must be a power of two, 32..${MAX_REPLAY_WINDOW}; got ${size}`)
    }
    this.size = size
    this.#mask = size - 1
    this.#bits = new Uint32Array(size >>> 5)
  }

  /** The largest committed packet number, or `undefined` before the first commit. */
  get largest(): number | undefined {
    return this.#empty ? undefined : this.#largest
  }

  /**
   * Whether a packet with this number would be accepted: newer than the
   * largest committed, or within the window and not yet committed. Never
   * throws; a value that is not a uint32 is not accepted.
   */
  check(pn: number): boolean {
    if (!(pn >= 0 && pn <= 0xffffffff && Number.isInteger(pn))) return false
    if (this.#empty) return true
    const diff = (pn - this.#largest) | 0
    if (diff > 0) return true
    if (-diff >= this.size) return false
    return !this.#has(pn)
  }

  /**
   * Record `pn` as received (after it authenticated). Slides the window
   * forward when `pn` is the newest.
   *
   * @returns true if recorded; false if `check(pn)` would have refused it
   *   (duplicate, too old, not a uint32) — then nothing changes.
   */
  commit(pn: number): boolean {
    if (!this.check(pn)) return false
    if (this.#empty) {
      this.#empty = false
      this.#largest = pn
      this.#set(pn)
      return true
    }
    const diff = (pn - this.#largest) | 0
    if (diff > 0) {
      if (diff >= this.size) {
        this.#bits.fill(0)
      } else {
        // Slots of the numbers skipped over now stand for new, unseen numbers.
        for (let i = 1; i <= diff; i++) this.#clear(this.#largest + i)
      }
      this.#largest = pn
    }
    this.#set(pn)
    return true
  }

  #has(pn: number): boolean {
    const slot = pn & this.#mask
    return (this.#bits[slot >>> 5] & (1 << (slot & 31))) !== 0
  }

  #set(pn: number): void {
    const slot = pn & this.#mask
    this.#bits[slot >>> 5] |= 1 << (slot & 31)
  }

  #clear(pn: number): void {
    const slot = pn & this.#mask
    this.#bits[slot >>> 5] &= ~(1 << (slot & 31))
  }
}
