/**
 * Varint length-delimited framing, as protobuf's `writeDelimitedTo` /
 * `parseDelimitedFrom` speak it: each frame is its length as a base-128
 * varint, then that many bytes.
 *
 * {@link FrameDecoder} cuts a byte stream, arriving in chunks of any size,
 * into frames. It never holds more than the current chunk plus one partial
 * frame (at most `maxFrame` bytes): a frame that arrives whole in a chunk is
 * returned as a view of that chunk (no copy); a frame split across chunks is
 * assembled in one buffer of exactly its length, allocated once its length
 * is known. A declared length above `maxFrame` is an error before anything
 * of it is buffered.
 *
 * @module
 */

/** Longest varint length prefix accepted, in bytes (5 bytes hold any 32-bit length). */
import { Buffer } from 'node:buffer'
export const MAX_PREFIX_BYTES = 5

/** Why a {@link FrameDecoder} stopped. */
export type FrameError = 'too-large' | 'bad-length'

/** Bytes the varint encoding of `n` (0 ≤ n < 2^32) takes. */
export function varintLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

/** Write `n` (0 ≤ n < 2^32) as a varint at `offset`; returns the offset after it. */
export function writeVarint(n: number, buf: Uint8Array, offset: number): number {
  let v = n >>> 0
  while (v >= 0x80) {
    buf[offset++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[offset++] = v
  return offset
}

/** One frame: the varint length of `payload`, then `payload` (a copy, in one new buffer). */
export function encodeFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(varintLength(payload.length) + payload.length)
  const at = writeVarint(payload.length, out, 0)
  out.set(payload, at)
  return out
}

/**
 * Streaming frame decoder. Feed it with {@link push}, then call
 * {@link next} until it returns null before pushing the next chunk (frames
 * are read lazily, so a reader that must stop — flow control — simply stops
 * calling `next`). After an error `next` returns null for ever and
 * {@link error} says why.
 */
export class FrameDecoder {
  readonly #maxFrame: number
  #chunk: Buffer | null = null
  #pos = 0
  /** Length prefix being read across chunks. */
  #length = 0
  #shift = 0
  #prefixBytes = 0
  /** Body of a frame split across chunks, and how much of it is filled. */
  #partial: Buffer | null = null
  #filled = 0
  #error: FrameError | null = null
  #errorLength = 0

  /** @param maxFrame - largest frame accepted, bytes (the prefix excluded). */
  constructor(maxFrame: number) {
    if (!Number.isInteger(maxFrame) || maxFrame < 1 || maxFrame > 0xffffffff) {
      throw new RangeError(`maxFrame must be an integer 1..4294967295 (bytes), got ${maxFrame}`)
    }
    this.#maxFrame = maxFrame
  }

  /** Why decoding stopped, or null. */
  get error(): FrameError | null {
    return this.#error
  }

  /** The declared length that was too large (after a `'too-large'` error). */
  get errorLength(): number {
    return this.#errorLength
  }

  /** Whether bytes of an incomplete frame are held (the stream ended mid-frame if it ends now). */
  get midFrame(): boolean {
    return this.#prefixBytes > 0 || this.#partial !== null
  }

  /** Bytes of the current chunk not yet consumed. */
  get pending(): number {
    return this.#chunk === null ? 0 : this.#chunk.length - this.#pos
  }

  /**
   * Add the next chunk. When the previous one is not consumed yet (the reader
   * stopped calling `next`), the two are joined: the caller decides how much
   * it feeds a decoder it does not read (a socket reader pauses the socket).
   */
  push(chunk: Buffer): void {
    if (this.#error !== null) return
    const rest = this.pending
    this.#chunk = rest === 0 ? chunk : Buffer.concat([(this.#chunk as Buffer).subarray(this.#pos), chunk])
    this.#pos = 0
  }

  /** The next complete frame (a view; valid until the caller lets it go), or null when more bytes are needed or after an error. */
  next(): Buffer | null {
    const chunk = this.#chunk
    if (chunk === null || this.#error !== null) return null
    let pos = this.#pos
    const end = chunk.length
    for (;;) {
      if (this.#partial !== null) {
        const take = Math.min(this.#partial.length - this.#filled, end - pos)
        chunk.copy(this.#partial, this.#filled, pos, pos + take)
        this.#filled += take
        pos += take
        this.#consumed(pos)
        if (this.#filled < this.#partial.length) return null
        const frame = this.#partial
        this.#partial = null
        return frame
      }
      // Read (the rest of) the length prefix.
      while (pos < end) {
        const b = chunk[pos++] as number
        this.#length += (b & 0x7f) * 2 ** this.#shift
        this.#shift += 7
        this.#prefixBytes++
        if (b < 0x80) {
          this.#prefixBytes = -this.#prefixBytes // complete
          break
        }
        if (this.#prefixBytes >= MAX_PREFIX_BYTES) return this.#fail('bad-length', pos)
      }
      if (this.#prefixBytes >= 0) {
        this.#consumed(pos)
        return null
      }
      const length = this.#length
      this.#length = 0
      this.#shift = 0
      this.#prefixBytes = 0
      if (length > this.#maxFrame) {
        this.#errorLength = length
        return this.#fail('too-large', pos)
      }
      if (end - pos >= length) {
        const frame = chunk.subarray(pos, pos + length)
        this.#consumed(pos + length)
        return frame
      }
      this.#partial = Buffer.allocUnsafe(length)
      this.#filled = 0
    }
  }

  #consumed(pos: number): void {
    this.#pos = pos
    if (pos >= (this.#chunk as Buffer).length) this.#chunk = null
  }

  #fail(error: FrameError, pos: number): null {
    this.#error = error
    this.#pos = pos
    this.#chunk = null
    this.#partial = null
    return null
  }
}
