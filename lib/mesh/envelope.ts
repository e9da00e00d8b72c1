/**
 * Hand-written codec for the `MeshControl` envelopes sent once per
 * application message between nodes: REQUEST, REPLY and PUBLISH. Encoding
 * writes exactly the bytes protobufjs writes for the same fields (proto3:
 * fields equal to their default are left out; test/mesh/envelope.test.ts
 * compares them byte for byte). Decoding takes the common shape — only the
 * fields these kinds use, short varints, an ASCII topic — straight to a
 * {@link MeshControl} and hands anything else to the protobufjs decoder
 * ({@link decodeControl}), so every input decodes to what `decodeControl`
 * returns (the differential test feeds both mutated and random input).
 *
 * Why: protobufjs's generic writer and reader built a message object and a
 * writer per request, reply and publication (~1 µs warm, several right
 * after an idle wait), on the path between the socket and the handler.
 */
import { Buffer } from 'node:buffer'
import { decodeControl, MeshKind, TOPIC_MAX_LENGTH, APP_CHANNELS, type MeshControl, type PeerInfo, type RemovedPeer } from './control.js'

/** Tags (field number << 3 | wire type) of the fields the envelopes use. */
const KIND_TAG = 0x08 // 1, varint
const CORRELATION_TAG = 0x58 // 11, varint
const DATA_TAG = 0x62 // 12, length-delimited
const TOPIC_TAG = 0x6a // 13, length-delimited
const CHANNEL_TAG = 0x70 // 14, varint
const FAILED_TAG = 0x78 // 15, varint (bool)

/** Unset bytes (shared; nothing writes into a decoded envelope's data). */
const EMPTY: Uint8Array = Buffer.alloc(0)
/** `peers` and `removed` of every fast-decoded envelope (shared, frozen). */
const NO_PEERS = Object.freeze([]) as unknown as PeerInfo[]
const NO_REMOVED = Object.freeze([]) as unknown as RemovedPeer[]

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5
}

function writeVarint(out: Uint8Array, o: number, v: number): number {
  while (v >= 0x80) {
    out[o++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  out[o++] = v
  return o
}

/**
 * @internal Envelopes encoded so far, by this process: a test seam (re-exported
 * by lib/testing.ts) that shows a publication is encoded once, not once per
 * subscriber.
 */
export const envelopesEncoded = { count: 0 }

/** Bytes of an optional uint32 field (0 when the value is the default). */
function uintField(v: number): number {
  return v === 0 ? 0 : 1 + varintSize(v)
}

/** Bytes of an optional length-delimited field of `n` bytes (0 when empty). */
function bytesField(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n) + n
}

/**
 * A REQUEST envelope: `{ kind: REQUEST, correlation, data }`, the bytes
 * `encodeControl` writes for it. `correlation` is a uint32.
 */
export function encodeRequest(correlation: number, data: Uint8Array): Buffer {
  envelopesEncoded.count++
  const out = Buffer.allocUnsafe(2 + uintField(correlation) + bytesField(data.length))
  out[0] = KIND_TAG
  out[1] = MeshKind.REQUEST
  writeTail(out, 2, correlation, data)
  return out
}

/** A REPLY envelope: `{ kind: REPLY, correlation, data, failed }`, the bytes `encodeControl` writes for it. */
export function encodeReply(correlation: number, data: Uint8Array, failed: boolean): Buffer {
  envelopesEncoded.count++
  const out = Buffer.allocUnsafe(2 + uintField(correlation) + bytesField(data.length) + (failed ? 2 : 0))
  out[0] = KIND_TAG
  out[1] = MeshKind.REPLY
  const o = writeTail(out, 2, correlation, data)
  if (failed) {
    out[o] = FAILED_TAG
    out[o + 1] = 1
  }
  return out
}

/** The correlation and data fields (11, 12) at `o`; returns the offset after them. */
function writeTail(out: Buffer, o: number, correlation: number, data: Uint8Array): number {
  if (correlation !== 0) {
    out[o++] = CORRELATION_TAG
    o = writeVarint(out, o, correlation)
  }
  if (data.length !== 0) {
    out[o++] = DATA_TAG
    o = writeVarint(out, o, data.length)
    out.set(data, o)
    o += data.length
  }
  return o
}

/**
 * A PUBLISH envelope: `{ kind: PUBLISH, topic, channel, data }`, the bytes
 * `encodeControl` writes for it. The topic is UTF-8 encoded.
 */
export function encodePublish(topic: string, channel: number, data: Uint8Array): Buffer {
  envelopesEncoded.count++
  const topicBytes = Buffer.byteLength(topic, 'utf8')
  const out = Buffer.allocUnsafe(2 + bytesField(data.length) + bytesField(topicBytes) + uintField(channel))
  out[0] = KIND_TAG
  out[1] = MeshKind.PUBLISH
  let o = writeTail(out, 2, 0, data)
  if (topicBytes !== 0) {
    out[o++] = TOPIC_TAG
    o = writeVarint(out, o, topicBytes)
    o += out.write(topic, o, 'utf8')
  }
  if (channel !== 0) {
    out[o++] = CHANNEL_TAG
    writeVarint(out, o, channel)
  }
  return out
}

/** Read position of {@link readUint32}; it advances it on success. */
let pos = 0

/**
 * A varint of at most 5 bytes whose value fits 32 bits (the fifth byte at
 * most 0x0f), or -1: longer, larger or truncated varints go to protobufjs,
 * which has its own rules for them.
 */
function readUint32(b: Uint8Array, end: number): number {
  let v = 0
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) return -1
    const x = b[pos++]
    v |= (x & 0x7f) << shift
    if (x < 0x80) return v >>> 0
  }
  if (pos >= end) return -1
  const x = b[pos++]
  if (x > 0x0f) return -1
  return (v | x << 28) >>> 0
}

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice

/** An ASCII string (what topics are in practice), or null: anything else is decoded by protobufjs. */
function readAscii(b: Uint8Array, start: number, end: number): string | null {
  for (let i = start; i < end; i++) if (b[i] >= 0x80) return null
  return latin1Slice.call(b, start, end)
}

/**
 * Decode and validate a control message received from a peer node: the
 * envelopes of REQUEST, REPLY and PUBLISH (and any other kind made of the
 * same fields) without protobufjs; everything else through
 * {@link decodeControl}. Returns what `decodeControl` returns — null for
 * anything malformed; never throws.
 */
export function decodeEnvelope(data: Uint8Array): MeshControl | null {
  const end = data.length
  let kind = 0
  let correlation = 0
  let payload = EMPTY
  let topic = ''
  let channel = 0
  let failed = false
  pos = 0
  while (pos < end) {
    const tag = data[pos++]
    switch (tag) {
      case KIND_TAG: {
        // An enum (int32): one byte here; longer (or negative) ones go to protobufjs.
        if (pos >= end || data[pos] >= 0x80) return decodeControl(data)
        kind = data[pos++]
        break
      }
      case CORRELATION_TAG:
      case CHANNEL_TAG: {
        const v = readUint32(data, end)
        if (v < 0) return decodeControl(data)
        if (tag === CORRELATION_TAG) correlation = v
        else channel = v
        break
      }
      case FAILED_TAG: {
        if (pos >= end || data[pos] > 1) return decodeControl(data)
        failed = data[pos++] === 1
        break
      }
      case DATA_TAG:
      case TOPIC_TAG: {
        const n = readUint32(data, end)
        if (n < 0 || n > end - pos) return decodeControl(data)
        const start = pos
        pos += n
        if (tag === DATA_TAG) {
          payload = data.subarray(start, pos)
        } else {
          const s = readAscii(data, start, pos)
          if (s === null) return decodeControl(data)
          topic = s
        }
        break
      }
      default:
        return decodeControl(data)
    }
  }
  // The validation decodeControl applies, for the fields read here.
  if (kind < MeshKind.REGISTER || kind > MeshKind.PUBLISH || topic.length > TOPIC_MAX_LENGTH || channel >= APP_CHANNELS) return null
  return {
    kind, id: '', epoch: 0, version: 0, baseVersion: 0, peers: NO_PEERS, removed: NO_REMOVED, complete: false,
    reason: '', holder: '', correlation, data: payload, topic, channel, failed,
  }
}
