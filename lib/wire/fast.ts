/**
 * Hand-written encoders for the hottest encodings: the entries of DATA
 * frames (plain and batches) and of ACK frames inside `Frames`, and the
 * header of a DATA packet. They write exactly the bytes protobufjs writes for
 * the same fields — proto3: a field equal to its default (0, empty) is not
 * written — and test/wire/fast.test.ts and test/core/batch.test.ts prove
 * byte-for-byte equality. Decoding is hand-written too, in decode.ts.
 */
import { Buffer } from 'node:buffer'
import { FrameType, MAGIC, PacketType, varintSize, VERSION } from './codec.js'

function writeVarint(buf: Uint8Array, o: number, v: number): number {
  while (v >= 0x80) {
    buf[o++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[o++] = v
  return o
}

function writeFixed32(buf: Uint8Array, o: number, v: number): number {
  buf[o] = v & 0xff
  buf[o + 1] = (v >>> 8) & 0xff
  buf[o + 2] = (v >>> 16) & 0xff
  buf[o + 3] = v >>> 24
  return o + 4
}

/** Size of a DATA frame's `Frames` entry (tag, length, body); see {@link writeDataEntry}. */
export function dataEntrySize(channel: number, delivery: number, sequence: number,
  dataLength: number, fragmentIndex = 0, fragmentCount = 0): number {
  const body = dataBodySize(channel, delivery, sequence, dataLength, fragmentIndex, fragmentCount)
  return 1 + varintSize(body) + body
}

function dataBodySize(channel: number, delivery: number, sequence: number,
  dataLength: number, fragmentIndex: number, fragmentCount: number): number {
  let body = 2
  if (channel !== 0) body += 1 + varintSize(channel)
  if (delivery !== 0) body += 1 + varintSize(delivery)
  if (sequence !== 0) body += 5
  if (fragmentIndex !== 0) body += 1 + varintSize(fragmentIndex)
  if (fragmentCount !== 0) body += 1 + varintSize(fragmentCount)
  if (dataLength !== 0) body += 1 + varintSize(dataLength) + dataLength
  return body
}

/** The entry's tag and length, then the DATA frame's type, channel, delivery and sequence fields. */
function writeDataHead(out: Uint8Array, offset: number, body: number, channel: number, delivery: number, sequence: number): number {
  out[offset] = 0x0a
  let o = writeVarint(out, offset + 1, body)
  out[o++] = 0x08
  out[o++] = FrameType.DATA
  if (channel !== 0) {
    out[o++] = 0x10
    o = writeVarint(out, o, channel)
  }
  if (delivery !== 0) {
    out[o++] = 0x18
    o = writeVarint(out, o, delivery)
  }
  if (sequence !== 0) {
    out[o++] = 0x25
    o = writeFixed32(out, o, sequence)
  }
  return o
}

/**
 * Write the `Frames` entry (field 1: tag, length, body) of a DATA frame at
 * `offset` and return the offset after it: the same bytes as
 * `encodeFrameEntry({ type: DATA, channel, delivery, sequence,
 * fragmentIndex, fragmentCount, data })`. The caller sized `out` with
 * {@link dataEntrySize}.
 */
export function writeDataEntry(out: Uint8Array, offset: number, channel: number, delivery: number, sequence: number,
  data: Uint8Array, fragmentIndex = 0, fragmentCount = 0): number {
  const body = dataBodySize(channel, delivery, sequence, data.length, fragmentIndex, fragmentCount)
  let o = writeDataHead(out, offset, body, channel, delivery, sequence)
  if (fragmentIndex !== 0) {
    out[o++] = 0x28
    o = writeVarint(out, o, fragmentIndex)
  }
  if (fragmentCount !== 0) {
    out[o++] = 0x30
    o = writeVarint(out, o, fragmentCount)
  }
  if (data.length !== 0) {
    out[o++] = 0x3a
    o = writeVarint(out, o, data.length)
    out.set(data, o)
    o += data.length
  }
  return o
}

/** Bytes one message takes inside a batch: field 13's tag, length and the message. */
export function batchItemSize(length: number): number {
  return 1 + varintSize(length) + length
}

/**
 * Append one message to a batch under construction (`messages`, field 13,
 * of a DATA frame) at `offset`; returns the offset after it. The caller
 * made room: {@link batchItemSize}.
 */
export function writeBatchItem(out: Uint8Array, offset: number, data: Uint8Array): number {
  out[offset] = 0x6a
  const o = writeVarint(out, offset + 1, data.length)
  out.set(data, o)
  return o + data.length
}

/** The messages of a batch built with {@link writeBatchItem} (views of `items`). */
export function readBatchItems(items: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let o = 0; o < items.length;) {
    let n = 0
    let shift = 0
    let x = 0
    o++ // tag
    do {
      x = items[o++]
      n += (x & 0x7f) * 2 ** shift
      shift += 7
    } while (x >= 0x80)
    out.push(items.subarray(o, o + n))
    o += n
  }
  return out
}

/** Size of a batch DATA frame's `Frames` entry whose encoded messages take `itemsLength` bytes. */
export function batchEntrySize(channel: number, delivery: number, sequence: number, itemsLength: number): number {
  const body = dataBodySize(channel, delivery, sequence, 0, 0, 0) + itemsLength
  return 1 + varintSize(body) + body
}

/**
 * Write the `Frames` entry of a batch: a DATA frame whose `messages` (field
 * 13) are `items` — the bytes {@link writeBatchItem} wrote — numbered from
 * `sequence` (the first `length` bytes of `items`). The same bytes as
 * `encodeFrameEntry({ type: DATA, channel, delivery, sequence, messages })`.
 */
export function writeBatchEntry(out: Uint8Array, offset: number, channel: number, delivery: number, sequence: number,
  items: Uint8Array, length = items.length): number {
  const body = dataBodySize(channel, delivery, sequence, 0, 0, 0) + length
  const o = writeDataHead(out, offset, body, channel, delivery, sequence)
  out.set(length === items.length ? items : items.subarray(0, length), o)
  return o + length
}

/** Body length of an ACK frame (see {@link writeAckEntry}); `packed` is the bytes of its packed ranges. */
function ackBodySize(largest: number, ackDelayUs: number, firstRange: number, ranges: readonly number[], packed: number): number {
  let body = 2
  if (largest !== 0) body += 5
  if (ackDelayUs !== 0) body += 1 + varintSize(ackDelayUs)
  if (firstRange !== 0) body += 1 + varintSize(firstRange)
  if (ranges.length !== 0) body += 1 + varintSize(packed) + packed
  return body
}

function packedSize(ranges: readonly number[]): number {
  let packed = 0
  for (let i = 0; i < ranges.length; i++) packed += varintSize(ranges[i])
  return packed
}

/** Bytes {@link writeAckEntry} writes for these fields. */
export function ackEntrySize(largest: number, ackDelayUs: number, firstRange: number, ranges: readonly number[]): number {
  const body = ackBodySize(largest, ackDelayUs, firstRange, ranges, packedSize(ranges))
  return 1 + varintSize(body) + body
}

/**
 * Write the `Frames` entry of an ACK frame at `offset`; returns the offset
 * after it. The same bytes as `encodeFrameEntry({ type: ACK, largest,
 * ackDelayUs, firstRange, ranges })` (fields in number order, zeros left
 * out, `ranges` packed). Every packet of a request–response exchange carries
 * one, so it is not left to protobufjs's generic writer (~0.7 µs warm, ~4.5
 * µs right after an idle wait here), and it is written straight into the
 * packet (no buffer of its own).
 */
export function writeAckEntry(out: Uint8Array, offset: number, largest: number, ackDelayUs: number, firstRange: number, ranges: readonly number[]): number {
  const packed = packedSize(ranges)
  out[offset] = 0x0a
  let o = writeVarint(out, offset + 1, ackBodySize(largest, ackDelayUs, firstRange, ranges, packed))
  out[o++] = 0x08
  out[o++] = FrameType.ACK
  if (largest !== 0) {
    out[o++] = 0x45
    o = writeFixed32(out, o, largest)
  }
  if (ackDelayUs !== 0) {
    out[o++] = 0x48
    o = writeVarint(out, o, ackDelayUs)
  }
  if (firstRange !== 0) {
    out[o++] = 0x50
    o = writeVarint(out, o, firstRange)
  }
  if (ranges.length !== 0) {
    out[o++] = 0x5a
    o = writeVarint(out, o, packed)
    for (let i = 0; i < ranges.length; i++) o = writeVarint(out, o, ranges[i])
  }
  return o
}

/** {@link writeAckEntry} into a new buffer. */
export function encodeAckEntry(largest: number, ackDelayUs: number, firstRange: number, ranges: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(ackEntrySize(largest, ackDelayUs, firstRange, ranges))
  writeAckEntry(out, 0, largest, ackDelayUs, firstRange, ranges)
  return out
}

/** {@link writeDataEntry} into a new buffer. */
export function encodeDataEntry(channel: number, delivery: number, sequence: number,
  data: Uint8Array, fragmentIndex = 0, fragmentCount = 0): Buffer {
  const out = Buffer.allocUnsafe(dataEntrySize(channel, delivery, sequence, data.length, fragmentIndex, fragmentCount))
  writeDataEntry(out, 0, channel, delivery, sequence, data, fragmentIndex, fragmentCount)
  return out
}

/**
 * The header of a DATA packet up to and including the tag and length of
 * field 15 (`payload`, never empty): the same bytes protobufjs writes for
 * `{ magic, version, type: DATA, connectionId, packetNumber, payload }` up
 * to the payload's first byte. Its first {@link dataAadLength} bytes
 * (everything before the payload's tag) are the AEAD's associated data.
 */
export function encodeDataHeader(connectionId: number, packetNumber: number, payloadLength: number): Buffer {
  const out = Buffer.allocUnsafe(dataHeaderSize(connectionId, packetNumber, payloadLength))
  writeDataHeader(out, connectionId, packetNumber, payloadLength)
  return out
}

/** Length of {@link encodeDataHeader}'s result. */
export function dataHeaderSize(connectionId: number, packetNumber: number, payloadLength: number): number {
  return dataAadSize(connectionId, packetNumber) + 1 + varintSize(payloadLength)
}

/** Write {@link encodeDataHeader}'s bytes at the start of `out` (at least {@link dataHeaderSize} long); returns their length. */
export function writeDataHeader(out: Uint8Array, connectionId: number, packetNumber: number, payloadLength: number): number {
  const prefix = writeDataPrefix(out, connectionId, packetNumber)
  out[prefix] = PAYLOAD_TAG
  return writeVarint(out, prefix + 1, payloadLength)
}

/**
 * The associated data of a protected DATA packet: its header before the
 * payload's tag (magic, version, type, connection id, packet number). The
 * payload's tag and length are left out so that the next packet's
 * associated data is known before its size (the endpoint feeds it to the
 * cipher ahead of time); they are still authenticated, because the payload
 * must end the datagram: any other tag or length moves the ciphertext and
 * tag, and the datagram no longer opens.
 */
export function encodeDataAad(connectionId: number, packetNumber: number): Buffer {
  const out = Buffer.allocUnsafe(dataAadSize(connectionId, packetNumber))
  writeDataPrefix(out, connectionId, packetNumber)
  return out
}

/** The tag of field 15, `payload` (length-delimited). */
export const PAYLOAD_TAG = 0x7a
const CONNECTION_ID_TAG = 0x25
const PACKET_NUMBER_TAG = 0x2d
/** magic (5 bytes), version (2), type (2). */
const DATA_PREFIX_MIN = 9

/** Length of {@link encodeDataAad}'s result: where the payload's tag starts in {@link encodeDataHeader}'s. */
export function dataAadSize(connectionId: number, packetNumber: number): number {
  return DATA_PREFIX_MIN + (connectionId !== 0 ? 5 : 0) + (packetNumber !== 0 ? 5 : 0)
}

function writeDataPrefix(out: Uint8Array, connectionId: number, packetNumber: number): number {
  out[0] = 0x0d
  writeFixed32(out, 1, MAGIC)
  out[5] = 0x10
  out[6] = VERSION
  out[7] = 0x18
  out[8] = PacketType.DATA
  let o = DATA_PREFIX_MIN
  if (connectionId !== 0) {
    out[o++] = CONNECTION_ID_TAG
    o = writeFixed32(out, o, connectionId)
  }
  if (packetNumber !== 0) {
    out[o++] = PACKET_NUMBER_TAG
    o = writeFixed32(out, o, packetNumber)
  }
  return o
}
