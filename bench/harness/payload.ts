/**
 * Bench message payloads: what the agents put inside every variant's
 * messages, and how receivers check them.
 *
 * Layout (little-endian):
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 1 | kind ({@link Kind}) |
 * | 1 | 2 | run id (distinguishes repetitions, so a late message is never counted twice) |
 * | 3 | 4 | sequence number |
 * | 7 | size − 7 | filler: a fixed pseudo-random pattern starting at offset `seq mod 251` |
 *
 * The filler depends on the sequence number, so a message delivered with
 * another message's bytes, truncated, or corrupted is detected by one
 * `memcmp` of the whole payload.
 */

/** Payload kinds. */
export const Kind = {
  Ping: 1,
  Pong: 2,
  Data: 3,
  Broadcast: 4,
  BroadcastAck: 5,
  Stream: 6,
} as const

/** Bytes before the filler. */
export const PAYLOAD_HEADER_BYTES = 7

/** Smallest payload the agents send (header plus a few filler bytes). */
export const MIN_PAYLOAD_BYTES = 16

/** Largest payload the agents send. */
export const MAX_PAYLOAD_BYTES = 1 << 20

const PATTERN_PERIOD = 251
const PATTERN = makePattern(MAX_PAYLOAD_BYTES + PATTERN_PERIOD)

function makePattern (length: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  let x = 0x9e3779b9
  for (let i = 0; i < length; i++) {
    // xorshift32: cheap, deterministic, no runs
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    b[i] = x & 0xff
  }
  return b
}

/** Throws a RangeError unless `size` is an integer payload size the agents support. */
export function checkPayloadSize (size: number, option = 'size'): void {
  if (!Number.isInteger(size) || size < MIN_PAYLOAD_BYTES || size > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`${option} must be an integer from ${MIN_PAYLOAD_BYTES} to ${MAX_PAYLOAD_BYTES} bytes, got ${size}`)
  }
}

/** A new payload of `size` bytes (ownership passes to the caller). */
export function makePayload (kind: number, run: number, seq: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  b[0] = kind
  b.writeUInt16LE(run, 1)
  b.writeUInt32LE(seq >>> 0, 3)
  const off = seq % PATTERN_PERIOD
  PATTERN.copy(b, PAYLOAD_HEADER_BYTES, off, off + size - PAYLOAD_HEADER_BYTES)
  return b
}

/** Kind byte of a payload, or -1 when it is too short to be one of ours. */
export function payloadKind (b: Buffer): number {
  return b.length >= PAYLOAD_HEADER_BYTES ? b[0]! : -1
}

/** Run id of a payload that {@link payloadKind} accepted. */
export function payloadRun (b: Buffer): number {
  return b.readUInt16LE(1)
}

/** Sequence number of a payload that {@link payloadKind} accepted. */
export function payloadSeq (b: Buffer): number {
  return b.readUInt32LE(3)
}

/**
 * Whether `b` is exactly the payload {@link makePayload} builds for its own
 * header's kind, run and sequence number and the given `size`.
 */
export function checkPayload (b: Buffer, size: number): boolean {
  if (b.length !== size) return false
  const off = b.readUInt32LE(3) % PATTERN_PERIOD
  return PATTERN.compare(b, PAYLOAD_HEADER_BYTES, size, off, off + size - PAYLOAD_HEADER_BYTES) === 0
}
