/**
 * Hand-written decoders for `Packet` and `Frames`, the two decodings done per
 * received datagram. They return exactly what protobufjs's reflection decoder
 * followed by the codec's validation returns (test/wire/decode.test.ts
 * compares them on valid, mutated and crafted input), with one plain object
 * per frame and no protobufjs reader or message prototypes:
 *
 *  - unset fields read as 0; an unset or empty bytes field is a frozen empty
 *    array (protobufjs's default), a set one a view into the input (a Buffer
 *    when the input is a Buffer);
 *  - a scalar field that appears twice: the last one wins; a repeated
 *    `handshake` merges into the first; `ranges` accepts packed and unpacked
 *    values and appends them all;
 *  - enum fields are int32: a 10-byte varint decodes to a negative number,
 *    which the validation below (like the codec's) does not reject for
 *    `delivery` and `reason`;
 *  - unknown fields are skipped by wire type as protobufjs skips them: varints
 *    of any length, groups (3) to their matching end tag within 100 levels;
 *    wire types 4, 6 and 7 and field number 0 are undecodable;
 *  - known varint fields read at most 10 bytes (the low 32 bits count), tags
 *    at most 5 (the last below 16), lengths at most 5 (the last below 8);
 *  - any decoding error makes the whole datagram 'undecodable', even after a
 *    frame that failed validation ('bad-frame').
 *
 * One difference that no comparison sees: a frame without `ranges` shares one
 * frozen empty array where protobufjs allocates a new one (nothing writes to
 * a decoded frame's `ranges`).
 */
import { Buffer } from 'node:buffer'
import {
  CloseReason, Delivery, FrameType, limits, PacketType, validBatch, VERSION,
  type Frame, type Handshake, type MalformedReason, type Packet,
} from './codec.js'

/**
 * Every empty or unset bytes field: one zero-length Buffer (nothing can be
 * written into it). protobufjs returns a frozen empty *array* there, which
 * reached applications as the data of an empty message; this decoder
 * returns a real Uint8Array.
 */
const EMPTY: Uint8Array = Buffer.alloc(0)
/** `ranges` of every frame that carries none. */
const NO_RANGES = Object.freeze([]) as unknown as number[]
/** `messages` of every frame that is not a batch (shared, like NO_RANGES). */
const NO_MESSAGES = Object.freeze([]) as unknown as Uint8Array[]
/** protobufjs's Reader.recursionLimit: deepest nesting of skipped groups. */
const RECURSION_LIMIT = 100

/** Read position of the functions below; each reader advances it on success. */
let pos = 0

/** Set by {@link readMiddle}: a fifth byte follows the fourth. */
let continues = false

/**
 * Bytes two to four of a varint whose first byte, `first`, is at `pos - 1`
 * and has its continuation bit set: the value of the 28 bits so far, `pos`
 * after the last byte read and {@link continues} set when a fifth follows;
 * -1 when the input ends first. One loop whose every operation a two-byte
 * value runs: a length first met in real traffic (a packet number past 2^14,
 * an ACK delay over 16 ms) then runs trained code, where an unrolled decoder
 * (or a loop increment skipped by the first exit) met an operation V8 had no
 * feedback for and threw the optimized readFrame away ("insufficient type
 * feedback", in every node of the bench's clusters).
 */
function readMiddle(b: Uint8Array, end: number, first: number): number {
  let p = pos
  let v = first & 0x7f
  let shift = 7
  let more: boolean
  let room: boolean
  do {
    if (p >= end) return -1
    const x = b[p++]
    v |= (x & 0x7f) << shift
    shift += 7
    more = x >= 0x80
    room = shift < 28
  } while (more && room)
  pos = p
  continues = more
  return v
}

/** A varint read as uint32 (the low 32 bits of at most 10 bytes); -1 when malformed. */
function readVarint(b: Uint8Array, end: number): number {
  let p = pos
  if (p >= end) return -1
  let x = b[p++]
  pos = p
  if (x < 0x80) return x
  let v = readMiddle(b, end, x)
  if (v < 0 || !continues) return v
  p = pos
  if (p >= end) return -1
  x = b[p++]
  v = (v | (x & 0x0f) << 28) >>> 0
  if (x < 0x80) {
    pos = p
    return v
  }
  for (let i = 0; i < 5; i++) {
    if (p >= end) return -1
    if (b[p++] < 0x80) {
      pos = p
      return v
    }
  }
  return -1
}

/**
 * A tag (`top` = 15) or a length (`top` = 7): at most 5 bytes, the fifth at
 * most `top`. -1 when malformed.
 */
function readShort(b: Uint8Array, end: number, top: number): number {
  let p = pos
  if (p >= end) return -1
  const x = b[p++]
  pos = p
  if (x < 0x80) return x
  const v = readMiddle(b, end, x)
  if (v < 0 || !continues) return v
  p = pos
  if (p >= end) return -1
  const last = b[p++]
  if (last > top) return -1
  pos = p
  return (v | last << 28) >>> 0
}

function readFixed32(b: Uint8Array, p: number): number {
  return (b[p] | b[p + 1] << 8 | b[p + 2] << 16 | b[p + 3] << 24) >>> 0
}

/** The bytes of a length-delimited field: a view, or EMPTY; null when malformed. */
function readBytes(b: Uint8Array, end: number): Uint8Array | null {
  const n = readShort(b, end, 7)
  if (n < 0 || pos + n > end) return null
  const start = pos
  pos += n
  return n === 0 ? EMPTY : b.subarray(start, pos)
}

/** Skip the field whose tag was just read, as protobufjs's Reader.skipType. False when malformed. */
function skipField(b: Uint8Array, end: number, tag: number, depth: number): boolean {
  if (depth > RECURSION_LIMIT) return false
  const field = tag >>> 3
  if (field === 0) return false
  switch (tag & 7) {
    case 0:
      do {
        if (pos >= end) return false
      } while (b[pos++] >= 0x80)
      return true
    case 1:
      if (pos + 8 > end) return false
      pos += 8
      return true
    case 2: {
      const n = readShort(b, end, 7)
      if (n < 0 || pos + n > end) return false
      pos += n
      return true
    }
    case 3:
      for (;;) {
        const t = readShort(b, end, 15)
        if (t < 0 || t >>> 3 === 0) return false
        if ((t & 7) === 4) return t >>> 3 === field
        if (!skipField(b, end, t, depth + 1)) return false
      }
    case 5:
      if (pos + 4 > end) return false
      pos += 4
      return true
    default:
      return false
  }
}

function newHandshake(): Handshake {
  return {
    connectionId: 0, epoch: 0, nonce: EMPTY, cookie: EMPTY, proof: EMPTY,
    keyId: 0, maxDatagram: 0, reason: 0, padding: EMPTY,
  }
}

/** Read a Handshake body ending at `end` into `h` (a repeated field merges). False when malformed. */
function readHandshake(b: Uint8Array, end: number, h: Handshake): boolean {
  while (pos < end) {
    const tag = readShort(b, end, 15)
    if (tag < 0) return false
    switch (tag) {
      case 0x0d: // connection_id
      case 0x15: // epoch
      case 0x35: { // key_id
        if (pos + 4 > end) return false
        const v = readFixed32(b, pos)
        pos += 4
        if (tag === 0x0d) h.connectionId = v
        else if (tag === 0x15) h.epoch = v
        else h.keyId = v
        continue
      }
      case 0x1a: // nonce
      case 0x22: // cookie
      case 0x2a: // proof
      case 0x72: { // padding
        const v = readBytes(b, end)
        if (v === null) return false
        if (tag === 0x1a) h.nonce = v
        else if (tag === 0x22) h.cookie = v
        else if (tag === 0x2a) h.proof = v
        else h.padding = v
        continue
      }
      case 0x38: // max_datagram
      case 0x40: { // reason (enum: int32)
        const v = readVarint(b, end)
        if (v < 0) return false
        if (tag === 0x38) h.maxDatagram = v
        else h.reason = v | 0
        continue
      }
      default:
        if (!skipField(b, end, tag, 1)) return false
    }
  }
  return true
}

/**
 * Decode and validate a datagram. Returns the packet, or the reason it was
 * rejected. Never throws.
 */
export function decodePacket(data: Uint8Array): Packet | MalformedReason {
  const end = data.length
  if (end < 5) return 'short'
  // hasMagic: field 1 (fixed32) = MAGIC, first.
  if (data[0] !== 0x0d || data[1] !== 0x48 || data[2] !== 0x53 || data[3] !== 0x4d || data[4] !== 0x57) return 'bad-magic'
  let magic = 0
  let version = 0
  let type = 0
  let connectionId = 0
  let packetNumber = 0
  let handshake: Handshake | null = null
  let payload = EMPTY
  pos = 0
  while (pos < end) {
    const tag = readShort(data, end, 15)
    if (tag < 0) return 'undecodable'
    switch (tag) {
      case 0x0d: // magic
      case 0x25: // connection_id
      case 0x2d: { // packet_number
        if (pos + 4 > end) return 'undecodable'
        const v = readFixed32(data, pos)
        pos += 4
        if (tag === 0x0d) magic = v
        else if (tag === 0x25) connectionId = v
        else packetNumber = v
        continue
      }
      case 0x10: // version
      case 0x18: { // type (enum: int32)
        const v = readVarint(data, end)
        if (v < 0) return 'undecodable'
        if (tag === 0x10) version = v
        else type = v | 0
        continue
      }
      case 0x32: { // handshake
        const n = readShort(data, end, 7)
        if (n < 0 || pos + n > end) return 'undecodable'
        if (handshake === null) handshake = newHandshake()
        if (!readHandshake(data, pos + n, handshake)) return 'undecodable'
        continue
      }
      case 0x7a: { // payload
        const v = readBytes(data, end)
        if (v === null) return 'undecodable'
        payload = v
        continue
      }
      default:
        if (!skipField(data, end, tag, 0)) return 'undecodable'
    }
  }
  if (version !== VERSION) return 'bad-version'
  if (type < PacketType.HELLO || type > PacketType.REJECT) return 'bad-type'
  if (type === PacketType.DATA) {
    if (handshake !== null) return 'bad-handshake'
  } else {
    if (handshake === null) return 'bad-handshake'
    const max = limits.maxHandshakeField
    if (handshake.nonce.length > max || handshake.cookie.length > max || handshake.proof.length > max ||
      handshake.reason > CloseReason.SUPERSEDED) return 'bad-handshake'
  }
  return { magic, version, type, connectionId, packetNumber, handshake, payload }
}

/**
 * Read a Frame body from `pos` to `end`; null when malformed. The hot path:
 * one-byte tags and values are read inline with a local position, anything
 * longer by the readers above.
 */
function readFrame(b: Uint8Array, end: number): Frame | null {
  let type = 0
  let channel = 0
  let delivery = 0
  let sequence = 0
  let fragmentIndex = 0
  let fragmentCount = 0
  let data = EMPTY
  let largest = 0
  let ackDelayUs = 0
  let firstRange = 0
  let ranges = NO_RANGES
  let reason = 0
  let messages = NO_MESSAGES
  let p = pos
  while (p < end) {
    let tag = b[p]
    if (tag < 0x80) {
      p++
    } else {
      pos = p
      tag = readShort(b, end, 15)
      if (tag < 0) return null
      p = pos
    }
    switch (tag) {
      case 0x08: // type (enum: int32)
      case 0x10: // channel
      case 0x18: // delivery (enum: int32)
      case 0x28: // fragment_index
      case 0x30: // fragment_count
      case 0x48: // ack_delay_us
      case 0x50: // first_range
      case 0x60: { // reason (enum: int32)
        let v = b[p]
        if (p < end && v < 0x80) {
          p++
        } else {
          pos = p
          v = readVarint(b, end)
          if (v < 0) return null
          p = pos
        }
        switch (tag) {
          case 0x08: type = v | 0; break
          case 0x10: channel = v; break
          case 0x18: delivery = v | 0; break
          case 0x28: fragmentIndex = v; break
          case 0x30: fragmentCount = v; break
          case 0x48: ackDelayUs = v; break
          case 0x50: firstRange = v; break
          default: reason = v | 0
        }
        continue
      }
      case 0x25: // sequence
      case 0x45: { // largest
        if (p + 4 > end) return null
        const v = (b[p] | b[p + 1] << 8 | b[p + 2] << 16 | b[p + 3] << 24) >>> 0
        p += 4
        if (tag === 0x25) sequence = v
        else largest = v
        continue
      }
      case 0x3a: // data
      case 0x6a: { // messages (one entry of a batch)
        let n = b[p]
        if (p < end && n < 0x80) {
          p++
        } else {
          pos = p
          n = readShort(b, end, 7)
          if (n < 0) return null
          p = pos
        }
        if (p + n > end) return null
        const bytes = n === 0 ? EMPTY : b.subarray(p, p + n)
        p += n
        if (tag === 0x3a) {
          data = bytes
        } else {
          if (messages === NO_MESSAGES) messages = []
          messages.push(bytes)
        }
        continue
      }
      case 0x58: { // ranges, one unpacked value
        pos = p
        const v = readVarint(b, end)
        if (v < 0) return null
        p = pos
        if (ranges === NO_RANGES) ranges = []
        ranges.push(v)
        continue
      }
      case 0x5a: { // ranges, packed
        pos = p
        const n = readShort(b, end, 7)
        if (n < 0 || pos + n > end) return null
        const stop = pos + n
        if (ranges === NO_RANGES) ranges = []
        while (pos < stop) {
          const v = readVarint(b, stop)
          if (v < 0) return null
          ranges.push(v)
        }
        p = pos
        continue
      }
      default:
        pos = p
        if (!skipField(b, end, tag, 1)) return null
        p = pos
    }
  }
  pos = p
  return { type, channel, delivery, sequence, fragmentIndex, fragmentCount, data, largest, ackDelayUs, firstRange, ranges, reason, messages }
}

function validFrame(f: Frame): boolean {
  switch (f.type) {
    case FrameType.DATA:
      return !(f.channel >= limits.maxChannels || f.delivery > Delivery.RELIABLE_ORDERED ||
        f.fragmentCount > limits.maxFragments ||
        (f.fragmentCount > 1 ? f.fragmentIndex >= f.fragmentCount : f.fragmentIndex !== 0) ||
        (f.messages.length > 0 && !validBatch(f)))
    case FrameType.ACK:
      return f.ranges.length <= limits.maxAckRanges * 2 && (f.ranges.length & 1) === 0
    case FrameType.PING:
      return true
    case FrameType.CLOSE:
      return f.reason <= CloseReason.SUPERSEDED
    default:
      return false
  }
}

/** Decode and validate a `Frames` payload. Never throws. */
export function decodeFrames(payload: Uint8Array): Frame[] | MalformedReason {
  const end = payload.length
  const frames: Frame[] = []
  let valid = true
  let p = 0
  while (p < end) {
    if (payload[p] === 0x0a && p + 1 < end && payload[p + 1] < 0x80) {
      // The usual entry: tag 1 (length-delimited) and a one-byte length.
      pos = p + 2
      p = pos + payload[p + 1]
    } else {
      pos = p
      const tag = readShort(payload, end, 15)
      if (tag < 0) return 'undecodable'
      if (tag !== 0x0a) {
        if (!skipField(payload, end, tag, 0)) return 'undecodable'
        p = pos
        continue
      }
      const n = readShort(payload, end, 7)
      if (n < 0) return 'undecodable'
      p = pos + n
    }
    if (p > end) return 'undecodable'
    const f = readFrame(payload, p)
    if (f === null) return 'undecodable'
    // A decoding error later in the payload still wins over 'bad-frame'.
    if (valid && !validFrame(f)) valid = false
    frames.push(f)
  }
  return valid ? frames : 'bad-frame'
}
