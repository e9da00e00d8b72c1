/**
 * Wire layer: bytes ⇄ messages. The schema is `protocol.proto`, loaded by
 * protobufjs reflection at start-up (protobufjs generates the same encoder and
 * decoder functions at run time that static code would contain). This module
 * also validates what protobuf cannot: magic, version, enum ranges and the
 * caps on every declared length and count. It knows nothing of sockets or time.
 * Received datagrams are decoded by the hand-written lib/wire/decode.ts,
 * which returns what protobufjs plus this validation returns.
 */
import { Buffer } from 'node:buffer'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'

/** First field of every datagram, fixed32: "WMSH". */
export const MAGIC = 0x574d5348
/**
 * Protocol version carried in every datagram; a datagram of another version
 * is dropped (`bad-version`). 2: handshake proofs cover both sides'
 * `max_datagram`, and the AEAD's associated data ends before the payload's
 * tag. 3: a DATA frame may carry a batch of messages (`Frame.messages`),
 * which a version 2 node would take for an empty message. 4: DATA payloads
 * are sealed with ChaCha20-Poly1305 (libsodium), keys expanded under new
 * labels; AES-256-GCM is gone (`lib/security/aead.ts`).
 */
export const VERSION = 4

export const PacketType = {
  HELLO: 1,
  CHALLENGE: 2,
  CONNECT: 3,
  ACCEPT: 4,
  DATA: 5,
  REJECT: 6,
} as const
export type PacketType = (typeof PacketType)[keyof typeof PacketType]

export const FrameType = {
  DATA: 1,
  ACK: 2,
  PING: 3,
  CLOSE: 4,
} as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

/** How a message is delivered. Ordering and sequencing are per channel. */
export const Delivery = {
  /** Fire and forget: may be lost, duplicated never, order not kept. */
  UNRELIABLE: 0,
  /** Newest wins: may be lost; a message older than one already delivered is dropped. */
  UNRELIABLE_SEQUENCED: 1,
  /** Delivered exactly once, in any order. */
  RELIABLE_UNORDERED: 2,
  /** Delivered exactly once, in send order within its channel. */
  RELIABLE_ORDERED: 3,
} as const
export type Delivery = (typeof Delivery)[keyof typeof Delivery]

export const CloseReason = {
  NONE: 0,
  NORMAL: 1,
  TIMEOUT: 2,
  PROTOCOL_ERROR: 3,
  SHUTDOWN: 4,
  BAD_KEY: 5,
  BAD_COOKIE: 6,
  SUPERSEDED: 7,
} as const
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason]

/** Handshake fields (see protocol.proto `Handshake`). */
export interface Handshake {
  connectionId: number
  epoch: number
  nonce: Uint8Array
  cookie: Uint8Array
  proof: Uint8Array
  keyId: number
  maxDatagram: number
  reason: number
  padding: Uint8Array
}

/** A decoded datagram (see protocol.proto `Packet`). */
export interface Packet {
  magic: number
  version: number
  type: number
  connectionId: number
  packetNumber: number
  handshake?: Handshake | null
  payload: Uint8Array
}

/** One frame (see protocol.proto `Frame`). Unset fields read as 0 / empty. */
export interface Frame {
  type: number
  channel: number
  delivery: number
  sequence: number
  fragmentIndex: number
  fragmentCount: number
  data: Uint8Array
  largest: number
  ackDelayUs: number
  firstRange: number
  ranges: number[]
  reason: number
  /** DATA, reliable only: a batch of whole messages numbered `sequence`, `sequence + 1`, …; empty for a plain frame. */
  messages: Uint8Array[]
}

function findProto(): string {
  // lib/wire/codec.ts in the source tree, dist/lib/wire/codec.js when built.
  for (const rel of ['../../protocol.proto', '../../../protocol.proto']) {
    const path = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(path)) return path
  }
  throw new Error('warpmesh: protocol.proto not found next to the package')
}

/** The loaded schema root, for tools and tests that decode with the schema alone. */
export const schema = protobuf.loadSync(findProto())
const PacketMsg = schema.lookupType('warpmesh.Packet')
const FramesMsg = schema.lookupType('warpmesh.Frames')

/** Caps applied to what a peer declares, before the value is used. */
export const limits = {
  /** Largest channel number + 1 the wire accepts. */
  maxChannels: 256,
  /** Largest fragment count of one message (1 MiB / 64-byte fragments is far above real use). */
  maxFragments: 65536,
  /** Most (gap, length) pairs in one ACK frame. */
  maxAckRanges: 256,
  /** Largest nonce / cookie / proof the handshake accepts, bytes. */
  maxHandshakeField: 64,
}

/** Why a datagram or frame was rejected; used as the counter key. */
export type MalformedReason =
  | 'short'
  | 'bad-magic'
  | 'bad-version'
  | 'bad-type'
  | 'undecodable'
  | 'bad-handshake'
  | 'bad-frame'

/** Thrown internally by validation and caught by the decoders. */
class Malformed extends Error {
  constructor(readonly reason: MalformedReason) { super(reason) }
}

/** Encode a datagram. */
export function encodePacket(packet: Partial<Packet>): Uint8Array {
  return PacketMsg.encode(packet as protobuf.Message).finish()
}

const MAGIC_LE = Buffer.from([0x0d, MAGIC & 0xff, (MAGIC >>> 8) & 0xff, (MAGIC >>> 16) & 0xff, MAGIC >>> 24])

/** True when `data` starts with warpmesh's magic (5 bytes; no decoding). */
export function hasMagic(data: Uint8Array): boolean {
  if (data.length < 5) return false
  for (let i = 0; i < 5; i++) if (data[i] !== MAGIC_LE[i]) return false
  return true
}

/**
 * Decode and validate a datagram with protobufjs: the reference that
 * {@link decodePacket} (lib/wire/decode.ts) is tested against. Returns the
 * packet, or the reason it was rejected. Never throws.
 */
export function decodePacketReference(data: Uint8Array): Packet | MalformedReason {
  if (data.length < 5) return 'short'
  if (!hasMagic(data)) return 'bad-magic'
  let p: Packet
  try {
    p = PacketMsg.decode(data) as unknown as Packet
  } catch {
    return 'undecodable'
  }
  if (p.version !== VERSION) return 'bad-version'
  if (p.type < PacketType.HELLO || p.type > PacketType.REJECT) return 'bad-type'
  if (p.type === PacketType.DATA) {
    if (p.handshake != null) return 'bad-handshake'
  } else {
    const h = p.handshake
    if (h == null) return 'bad-handshake'
    if (h.nonce.length > limits.maxHandshakeField || h.cookie.length > limits.maxHandshakeField ||
      h.proof.length > limits.maxHandshakeField || h.reason > CloseReason.SUPERSEDED) return 'bad-handshake'
  }
  return p
}

// The decoders used per datagram: hand-written, with the same results as
// decodePacketReference and decodeFramesReference.
export { decodeFrames, decodePacket } from './decode.js'

/** Byte offset where `payload` starts: everything before it is the header. */
export function payloadOffset(data: Uint8Array, packet: Packet): number {
  return data.length - packet.payload.length
}

/** Encode one frame as it appears inside `Frames` (tag, length, body). */
export function encodeFrameEntry(frame: Partial<Frame>): Uint8Array {
  return FramesMsg.encode({ frames: [frame] } as unknown as protobuf.Message).finish()
}

/** Encode a complete `Frames` payload. */
export function encodeFrames(frames: Partial<Frame>[]): Uint8Array {
  return FramesMsg.encode({ frames } as unknown as protobuf.Message).finish()
}

function validateFrame(f: Frame): void {
  switch (f.type) {
    case FrameType.DATA:
      if (f.channel >= limits.maxChannels || f.delivery > Delivery.RELIABLE_ORDERED ||
        f.fragmentCount > limits.maxFragments ||
        (f.fragmentCount > 1 ? f.fragmentIndex >= f.fragmentCount : f.fragmentIndex !== 0) ||
        (f.messages.length > 0 && !validBatch(f))) {
        throw new Malformed('bad-frame')
      }
      return
    case FrameType.ACK:
      if (f.ranges.length > limits.maxAckRanges * 2 || (f.ranges.length & 1) !== 0) throw new Malformed('bad-frame')
      return
    case FrameType.PING:
      return
    case FrameType.CLOSE:
      if (f.reason > CloseReason.SUPERSEDED) throw new Malformed('bad-frame')
      return
    default:
      throw new Malformed('bad-frame')
  }
}

/** A batch (DATA with `messages`) is reliable, unfragmented and has no `data`. */
export function validBatch(f: Frame): boolean {
  return f.delivery >= Delivery.RELIABLE_UNORDERED && f.fragmentCount <= 1 && f.data.length === 0
}

/**
 * Decode and validate a `Frames` payload with protobufjs: the reference that
 * {@link decodeFrames} (lib/wire/decode.ts) is tested against. Never throws.
 */
export function decodeFramesReference(payload: Uint8Array): Frame[] | MalformedReason {
  try {
    const frames = (FramesMsg.decode(payload) as unknown as { frames: Frame[] }).frames
    for (let i = 0; i < frames.length; i++) validateFrame(frames[i])
    return frames
  } catch (err) {
    return err instanceof Malformed ? err.reason : 'undecodable'
  }
}

/**
 * Encoded size of a varint (`n` a u32): 7 bits a byte. Computed from the bit
 * length, not a chain of comparisons: a size first met in real traffic would
 * take a comparison V8 had no feedback for and throw away the optimized
 * encoder that inlined it.
 */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : ((38 - Math.clz32(n)) / 7) | 0
}

