import t from 'tap'
import type { Test } from 'tap'
import { createRng } from '../../lib/testing.js'
import {
  CloseReason, decodeFrames, decodeFramesReference, decodePacket, decodePacketReference, Delivery, encodeFrames,
  encodePacket, FrameType, limits, MAGIC, PacketType, VERSION, type Frame, type Packet,
} from '../../lib/wire/codec.js'

// The hand-written decoders (lib/wire/decode.ts) against protobufjs + the
// codec's validation (decode*Reference), on valid, mutated and crafted input.

type Rng = () => number

const PACKET_KEYS = ['magic', 'version', 'type', 'connectionId', 'packetNumber', 'handshake', 'payload']
const HANDSHAKE_KEYS = ['connectionId', 'epoch', 'nonce', 'cookie', 'proof', 'keyId', 'maxDatagram', 'reason', 'padding']
const FRAME_KEYS = ['type', 'channel', 'delivery', 'sequence', 'fragmentIndex', 'fragmentCount', 'data', 'largest',
  'ackDelayUs', 'firstRange', 'ranges', 'reason', 'messages']
const BYTES = new Set(['payload', 'nonce', 'cookie', 'proof', 'padding', 'data'])

/** What a bytes field is: its kind (frozen empty array, Buffer, Uint8Array) and where it points into `input`. */
function describeBytes(v: unknown, input: Uint8Array): unknown {
  // Empty: protobufjs gives a frozen empty array, the new decoder a zero-length Buffer (checked separately).
  if ((v as ArrayLike<number>).length === 0) return { empty: true }
  const u = v as Uint8Array
  return {
    kind: u.constructor.name, len: u.length, sameMemory: u.buffer === input.buffer,
    at: u.byteOffset - input.byteOffset, // a view into the input, so offset and length fix the content
  }
}

/** Every schema field read through the object (prototype defaults included), with exact types. */
function describeMessage(m: Record<string, unknown>, keys: string[], input: Uint8Array): unknown {
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const v = m[k]
    if (BYTES.has(k)) out[k] = describeBytes(v, input)
    else if (k === 'handshake') out[k] = v == null ? v : describeMessage(v as Record<string, unknown>, HANDSHAKE_KEYS, input)
    else if (k === 'ranges') out[k] = { isArray: Array.isArray(v), values: [...(v as number[])] }
    else if (k === 'messages') out[k] = { isArray: Array.isArray(v), values: (v as Uint8Array[]).map((b) => describeBytes(b, input)) }
    else out[k] = { type: typeof v, value: Object.is(v, -0) ? '-0' : v }
  }
  return out
}

function describePacket(r: Packet | string, input: Uint8Array): string {
  return JSON.stringify(typeof r === 'string' ? r : describeMessage(r as unknown as Record<string, unknown>, PACKET_KEYS, input))
}

function describeFrames(r: Frame[] | string, input: Uint8Array): string {
  if (typeof r === 'string') return JSON.stringify(r)
  return JSON.stringify({ isArray: Array.isArray(r), frames: r.map((f) => describeMessage(f as unknown as Record<string, unknown>, FRAME_KEYS, input)) })
}

/** The new decoder's objects are plain, with exactly the schema's fields as own properties, and every bytes field a Uint8Array. */
function plainShape(r: unknown, keys: string[]): boolean {
  if (typeof r === 'string') return true
  const o = r as Record<string, unknown>
  for (const k of keys) if (BYTES.has(k) && !(o[k] instanceof Uint8Array)) return false
  if (keys === FRAME_KEYS && !(o.messages as unknown[]).every((b) => b instanceof Uint8Array)) return false
  return Object.getPrototypeOf(o) === Object.prototype && Object.keys(o).join() === keys.join()
}

class Checker {
  cases = 0
  outcomes = new Map<string, number>()
  failures: string[] = []

  constructor(readonly what: 'packet' | 'frames') {}

  check(input: Uint8Array, label: string): void {
    this.cases++
    let mine: string, ref: string, shapeOk: boolean, outcome: string
    if (this.what === 'packet') {
      const a = decodePacket(input)
      const b = decodePacketReference(input)
      mine = describePacket(a, input)
      ref = describePacket(b, input)
      shapeOk = plainShape(a, PACKET_KEYS) && (typeof a === 'string' || a.handshake == null || plainShape(a.handshake, HANDSHAKE_KEYS))
      outcome = typeof a === 'string' ? a : 'ok'
    } else {
      const a = decodeFrames(input)
      const b = decodeFramesReference(input)
      mine = describeFrames(a, input)
      ref = describeFrames(b, input)
      shapeOk = typeof a === 'string' || a.every((f) => plainShape(f, FRAME_KEYS))
      outcome = typeof a === 'string' ? a : 'ok'
    }
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1)
    if ((mine !== ref || !shapeOk) && this.failures.length < 5) {
      this.failures.push(`${label}: ${Buffer.from(input).toString('hex')}\n  new: ${mine}\n  ref: ${ref}${shapeOk ? '' : '\n  (not a plain object with the schema fields)'}`)
    }
  }

  /** Every truncation and every single-bit flip of `input`. */
  mutate(input: Uint8Array, label: string): void {
    for (let n = 0; n < input.length; n++) this.check(input.subarray(0, n), `${label} cut to ${n}`)
    const copy = Buffer.from(input)
    for (let i = 0; i < copy.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        copy[i] ^= 1 << bit
        this.check(copy, `${label} bit ${i}.${bit}`)
        copy[i] ^= 1 << bit
      }
    }
  }

  report(t: Test, expect: string[]): void {
    for (const f of this.failures) t.fail(f)
    t.equal(this.failures.length, 0, `${this.cases} ${this.what} inputs: same result as protobufjs + validation`)
    for (const o of expect) t.ok((this.outcomes.get(o) ?? 0) > 0, `outcome '${o}' exercised (${this.outcomes.get(o) ?? 0})`)
  }
}

// ---------------------------------------------------------------- wire builders

function varint(n: bigint | number, minBytes = 1): number[] {
  let v = BigInt.asUintN(70, BigInt(n))
  const out: number[] = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v !== 0n || out.length + 1 < minBytes) b |= 0x80
    out.push(b)
  } while (v !== 0n || out.length < minBytes)
  return out
}
/** A negative int32 as protobuf writes it: sign-extended, 10 bytes. */
const negative = (n: number): number[] => varint(BigInt.asUintN(64, BigInt(n)))
const tag = (field: number, wt: number, minBytes = 1): number[] => varint(field * 8 + wt, minBytes)
const fixed32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]
const delimited = (field: number, body: number[]): number[] => [...tag(field, 2), ...varint(body.length), ...body]
const HEADER = [0x0d, ...fixed32(MAGIC)]
const packetOf = (...fields: number[][]): Buffer => Buffer.from([...HEADER, ...fields.flat()])
const framesOf = (...frames: number[][]): Buffer => Buffer.from(frames.flatMap((f) => delimited(1, f)))

const edges = [0, 1, 2, 127, 128, 255, 256, 16383, 16384, 65535, 65536, 65537, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]

function pickU32(r: Rng): number {
  return r() < 0.5 ? edges[Math.floor(r() * edges.length)] : Math.floor(r() * 2 ** 32)
}
function pickSmall(r: Rng, max: number): number {
  return r() < 0.9 ? Math.floor(r() * max) : pickU32(r)
}
function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256)
  return b
}

function randomHandshake(r: Rng, type: number): Record<string, unknown> {
  const size = (): number => (r() < 0.1 ? limits.maxHandshakeField + 1 : [0, 1, 16, 32, 64][Math.floor(r() * 5)])
  return {
    connectionId: pickU32(r), epoch: pickU32(r), nonce: randomBytes(r, size()), cookie: randomBytes(r, size()),
    proof: randomBytes(r, size()), keyId: pickU32(r), maxDatagram: pickU32(r),
    reason: type === PacketType.REJECT ? Math.floor(r() * 9) : 0,
    padding: type === PacketType.HELLO || r() < 0.2 ? Buffer.alloc(Math.floor(r() * 600)) : Buffer.alloc(0),
  }
}

function randomPacket(r: Rng): Buffer {
  const type = r() < 0.05 ? Math.floor(r() * 9) : 1 + Math.floor(r() * 6)
  const p: Record<string, unknown> = {
    magic: MAGIC, version: r() < 0.05 ? VERSION + 1 : VERSION, type, connectionId: pickU32(r), packetNumber: pickU32(r),
  }
  if (type === PacketType.DATA) {
    if (r() < 0.05) p.handshake = randomHandshake(r, type)
    p.payload = randomBytes(r, [0, 1, 64, 127, 128, 1200][Math.floor(r() * 6)])
  } else if (r() > 0.05) {
    p.handshake = randomHandshake(r, type)
  }
  return encodePacket(p) as Buffer
}

function randomFrame(r: Rng, sometimesBad = true): Partial<Frame> {
  const bad = sometimesBad && r() < 0.1
  switch (Math.floor(r() * 4)) {
    case 0: {
      if (r() < 0.3) {
        // A batch: reliable, unfragmented, no data of its own (bad: any of those broken).
        const flaw = bad ? Math.floor(r() * 3) : -1
        const messages: Buffer[] = []
        for (let i = Math.floor(r() * 20); i > 0; i--) messages.push(randomBytes(r, [0, 1, 64, 127, 128, 300][Math.floor(r() * 6)]))
        return {
          type: FrameType.DATA,
          channel: pickSmall(r, limits.maxChannels),
          delivery: flaw === 0 ? Math.floor(r() * 2) : 2 + Math.floor(r() * 2),
          sequence: pickU32(r),
          fragmentIndex: flaw === 1 ? 1 : 0,
          fragmentCount: flaw === 1 ? 2 : (r() < 0.2 ? 1 : 0),
          data: flaw === 2 ? randomBytes(r, 5) : Buffer.alloc(0),
          messages,
        }
      }
      const count = [0, 0, 1, 2, 3, 16, limits.maxFragments][Math.floor(r() * 7)] + (bad ? 1 : 0)
      return {
        type: FrameType.DATA,
        channel: bad && r() < 0.5 ? limits.maxChannels + Math.floor(r() * 3) : pickSmall(r, limits.maxChannels),
        delivery: bad && r() < 0.5 ? 4 : Math.floor(r() * 4),
        sequence: pickU32(r),
        fragmentIndex: count > 1 ? Math.floor(r() * (count + (bad ? 1 : 0))) : (bad ? 1 : 0),
        fragmentCount: count,
        data: randomBytes(r, [0, 1, 64, 127, 128, 1000][Math.floor(r() * 6)]),
      }
    }
    case 1: {
      const n = r() < 0.1 ? 2 * limits.maxAckRanges : 2 * Math.floor(r() * 8)
      const ranges: number[] = []
      for (let i = 0; i < n + (bad ? 1 : 0); i++) ranges.push(r() < 0.8 ? Math.floor(r() * 300) : pickU32(r))
      return { type: FrameType.ACK, largest: pickU32(r), ackDelayUs: pickU32(r), firstRange: pickU32(r), ranges }
    }
    case 2:
      return { type: bad ? Math.floor(r() * 10) : FrameType.PING }
    default:
      return { type: FrameType.CLOSE, reason: Math.floor(r() * (bad ? 20 : 8)) }
  }
}

function randomFrames(r: Rng, max = 16): Buffer {
  const frames: Partial<Frame>[] = []
  const n = Math.floor(r() * max)
  for (let i = 0; i < n; i++) frames.push(randomFrame(r))
  return encodeFrames(frames) as Buffer
}

/** A Buffer at a non-zero offset of a larger allocation, like one from a receive pool. */
function pooled(b: Uint8Array): Buffer {
  const big = Buffer.alloc(b.length + 11, 0xee)
  big.set(b, 5)
  return big.subarray(5, 5 + b.length)
}

// ---------------------------------------------------------------- structured soup

/**
 * A field of random field number (known ones most often) and wire type, its
 * value encoded normally or overlong, sometimes truncated, oversized or
 * nested: input that gets past the tag and exercises every reader path.
 */
function soupField(r: Rng, known: number[], nested: (field: number) => ((r: Rng, depth: number) => number[]) | null, depth: number): number[] {
  const x = r()
  const field = x < 0.85 ? known[Math.floor(r() * known.length)] : [0, 13, 16, 99, 2 ** 29 - 1][Math.floor(r() * 5)]
  const wireRoll = r()
  const wt = wireRoll < 0.92 ? [0, 0, 2, 2, 5, 1][Math.floor(r() * 6)] : [3, 4, 6, 7][Math.floor(r() * 4)]
  const tagBytes = tag(field, wt, r() < 0.05 ? 2 + Math.floor(r() * 4) : 1)
  if (r() < 0.01) tagBytes[tagBytes.length - 1] |= 0x10 // fifth tag byte out of range (or garbage)
  switch (wt) {
    case 0: {
      const y = r()
      let value: number[]
      if (y < 0.6) value = varint(pickSmall(r, 9))
      else if (y < 0.75) value = varint(pickU32(r), 1 + Math.floor(r() * 10)) // overlong
      else if (y < 0.85) value = negative(-1 - Math.floor(r() * 2 ** 31))
      else if (y < 0.9) value = varint(BigInt(pickU32(r)) + (BigInt(Math.floor(r() * 2 ** 20)) << 32n)) // beyond 32 bits
      else if (y < 0.95) value = [...new Array(10 + Math.floor(r() * 4)).fill(0x80), 0] // 11+ bytes
      else value = [0x80, 0x80] // truncated
      return [...tagBytes, ...value]
    }
    case 1:
      return [...tagBytes, ...randomBytes(r, r() < 0.95 ? 8 : Math.floor(r() * 8))]
    case 5:
      return [...tagBytes, ...randomBytes(r, r() < 0.95 ? 4 : Math.floor(r() * 4))]
    case 2: {
      const make = nested(field)
      const body = make !== null && r() < 0.8 ? make(r, depth + 1) : [...randomBytes(r, Math.floor(r() * 70))]
      const y = r()
      let len: number[]
      if (y < 0.88) len = varint(body.length)
      else if (y < 0.92) len = varint(body.length, 2 + Math.floor(r() * 4)) // overlong length
      else if (y < 0.95) len = varint(body.length + 1 + Math.floor(r() * 3)) // past the end
      else if (y < 0.97) len = varint([0x7fffffff, 0x80000000, 0xffffffff, 0x10000000][Math.floor(r() * 4)])
      else if (y < 0.99) len = varint(body.length - 1 - Math.floor(r() * Math.min(body.length, 3)))
      else len = [0x80, 0x80, 0x80, 0x80, 0x80]
      return [...tagBytes, ...len, ...body]
    }
    case 3: {
      const inner: number[] = []
      const n = Math.floor(r() * 3)
      for (let i = 0; i < n; i++) inner.push(...soupField(r, [1, 2, 3, 4], () => null, depth + 1))
      const y = r()
      const end = y < 0.85 ? tag(field, 4) : y < 0.95 ? tag(field + 1, 4) : []
      return [...tagBytes, ...inner, ...end]
    }
    default:
      return tagBytes
  }
}

function soup(r: Rng, known: number[], nested: (field: number) => ((r: Rng, depth: number) => number[]) | null,
  depth: number, maxFields: number): number[] {
  const out: number[] = []
  const n = Math.floor(r() * maxFields)
  for (let i = 0; i < n; i++) out.push(...soupField(r, known, nested, depth))
  return out
}

const packedRanges = (r: Rng): number[] => {
  const out: number[] = []
  const n = Math.floor(r() * 8)
  for (let i = 0; i < n; i++) out.push(...(r() < 0.9 ? varint(pickSmall(r, 300)) : varint(pickU32(r), 6)))
  return out
}
/** The body of one frame as protobufjs encodes it (its `Frames` entry without tag and length). */
function frameBody(f: Partial<Frame>): number[] {
  const e = encodeFrames([f])
  let i = 1
  while (e[i] & 0x80) i++
  return [...e.subarray(i + 1)]
}
const handshakeSoup = (r: Rng, depth: number): number[] => soup(r, [1, 2, 3, 4, 5, 6, 7, 8, 14], () => null, depth, 8)
const frameSoup = (r: Rng, depth: number): number[] => {
  // Mostly a real frame's fields, then a few soup fields on top.
  const base = r() < 0.7 ? frameBody(randomFrame(r)) : []
  return [...base, ...soup(r, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], (f) => (f === 11 ? packedRanges : null), depth, 4)]
}

function soupPacket(r: Rng): Buffer {
  const fields: number[] = []
  if (r() < 0.9) fields.push(...tag(2, 0), ...varint(VERSION))
  if (r() < 0.9) fields.push(...tag(3, 0), ...varint(1 + Math.floor(r() * 6)))
  fields.push(...soup(r, [1, 2, 3, 4, 5, 6, 15], (f) => (f === 6 ? handshakeSoup : null), 0, 6))
  return Buffer.from([...HEADER, ...fields])
}

function soupFrames(r: Rng): Buffer {
  const out: number[] = []
  const n = Math.floor(r() * 6)
  for (let i = 0; i < n; i++) {
    if (r() < 0.85) {
      const body = frameSoup(r, 1)
      out.push(...tag(1, 2), ...varint(body.length), ...body)
    } else {
      out.push(...soupField(r, [1, 2], (f) => (f === 1 ? frameSoup : null), 0))
    }
  }
  return Buffer.from(out)
}

// ---------------------------------------------------------------- tests

t.test('valid packets of every type, with edge values', async (t) => {
  const c = new Checker('packet')
  const r = createRng(1)
  for (let i = 0; i < 3000; i++) {
    const p = randomPacket(r)
    c.check(p, `random packet ${i}`)
    c.check(pooled(p), `random packet ${i} (pooled)`)
    c.check(new Uint8Array(p), `random packet ${i} (Uint8Array)`)
  }
  for (const type of [1, 2, 3, 4, 5, 6]) {
    for (const v of edges) {
      const handshake = type === PacketType.DATA ? undefined
        : { connectionId: v, epoch: v, keyId: v, maxDatagram: v, nonce: Buffer.alloc(0), cookie: Buffer.alloc(64, 1), proof: Buffer.alloc(1, 2) }
      const p = encodePacket({ magic: MAGIC, version: VERSION, type, connectionId: v, packetNumber: v, handshake, payload: type === 5 ? Buffer.alloc(v & 0x3ff) : undefined } as Partial<Packet>)
      c.check(p, `type ${type} value ${v}`)
    }
  }
  c.report(t, ['ok', 'bad-version', 'bad-type', 'bad-handshake'])
})

t.test('valid frames of every type and delivery mode, with edge values', async (t) => {
  const c = new Checker('frames')
  const r = createRng(2)
  for (let i = 0; i < 3000; i++) {
    const f = randomFrames(r)
    c.check(f, `random frames ${i}`)
    c.check(pooled(f), `random frames ${i} (pooled)`)
    c.check(new Uint8Array(f), `random frames ${i} (Uint8Array)`)
  }
  for (const delivery of [0, 1, 2, 3]) {
    for (const v of edges) {
      const data = Buffer.alloc(v & 0xff, 9)
      c.check(encodeFrames([{ type: FrameType.DATA, channel: v, delivery, sequence: v, data }]), `data ${delivery} ${v}`)
      c.check(encodeFrames([{ type: FrameType.DATA, channel: 1, delivery, sequence: v, fragmentCount: v, fragmentIndex: v > 0 ? v - 1 : 0, data }]), `fragment ${delivery} ${v}`)
      c.check(encodeFrames([{ type: FrameType.ACK, largest: v, ackDelayUs: v, firstRange: v, ranges: [v, v, v, 0] }]), `ack ${v}`)
      c.check(encodeFrames([{ type: FrameType.CLOSE, reason: v }]), `close ${v}`)
    }
  }
  for (const n of [0, 2, 2 * limits.maxAckRanges - 1, 2 * limits.maxAckRanges, 2 * limits.maxAckRanges + 1, 2 * limits.maxAckRanges + 2]) {
    c.check(encodeFrames([{ type: FrameType.ACK, largest: 5, ranges: new Array(n).fill(0xffffffff) }]), `${n} ranges`)
  }
  c.check(Buffer.alloc(0), 'empty payload')
  c.check([] as unknown as Uint8Array, 'empty payload as an array (an empty packet payload)')
  c.report(t, ['ok', 'bad-frame'])
})

t.test('every truncation and single-bit flip', async (t) => {
  const pc = new Checker('packet')
  const fc = new Checker('frames')
  const r = createRng(3)
  const packets = [
    encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.HELLO, handshake: { connectionId: 7, epoch: 9, nonce: Buffer.alloc(32, 1), keyId: 3, maxDatagram: 1200, padding: Buffer.alloc(40) } } as unknown as Partial<Packet>),
    encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.CONNECT, connectionId: 0xffffffff, handshake: { connectionId: 1, epoch: 2, nonce: Buffer.alloc(32, 1), cookie: Buffer.alloc(24, 2), proof: Buffer.alloc(16, 3), keyId: 0xffffffff } } as unknown as Partial<Packet>),
    encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.REJECT, connectionId: 5, handshake: { epoch: 1, reason: CloseReason.BAD_KEY } } as unknown as Partial<Packet>),
    encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, connectionId: 0x01020304, packetNumber: 300, payload: randomFrames(r, 4) }),
  ]
  for (let i = 0; i < 6; i++) packets.push(randomPacket(r))
  for (const [i, p] of packets.entries()) pc.mutate(p.subarray(0, 200), `packet ${i}`)
  const frames = [
    encodeFrames([{ type: FrameType.ACK, largest: 1000, ackDelayUs: 250, firstRange: 3, ranges: [1, 2, 300, 4] }, ...new Array(3).fill({ type: FrameType.DATA, channel: 3, delivery: Delivery.RELIABLE_ORDERED, sequence: 77, data: Buffer.alloc(8, 5) })]),
    encodeFrames([{ type: FrameType.DATA, channel: 255, delivery: 3, sequence: 0xffffffff, fragmentIndex: 2, fragmentCount: 65536, data: Buffer.alloc(3) }, { type: FrameType.PING }, { type: FrameType.CLOSE, reason: 7 }]),
  ]
  for (let i = 0; i < 8; i++) frames.push(randomFrames(r, 5).subarray(0, 150))
  for (const [i, f] of frames.entries()) fc.mutate(f, `frames ${i}`)
  pc.report(t, ['ok', 'undecodable', 'bad-magic', 'bad-version', 'bad-type', 'bad-handshake'])
  fc.report(t, ['ok', 'undecodable', 'bad-frame'])
})

t.test('random bytes and splices of valid datagrams', async (t) => {
  const pc = new Checker('packet')
  const fc = new Checker('frames')
  const r = createRng(4)
  const packets = Array.from({ length: 40 }, () => randomPacket(r))
  const frames = Array.from({ length: 40 }, () => randomFrames(r, 6))
  for (let i = 0; i < 3000; i++) {
    const noise = randomBytes(r, Math.floor(r() * 64))
    fc.check(noise, `noise ${i}`)
    pc.check(Buffer.concat([Buffer.from(HEADER), noise]), `magic + noise ${i}`)
    const a = packets[Math.floor(r() * packets.length)]
    const b = packets[Math.floor(r() * packets.length)]
    pc.check(Buffer.concat([a.subarray(0, Math.floor(r() * (a.length + 1))), b.subarray(Math.floor(r() * (b.length + 1)))]), `packet splice ${i}`)
    const fa = frames[Math.floor(r() * frames.length)]
    const fb = frames[Math.floor(r() * frames.length)]
    fc.check(Buffer.concat([fa.subarray(0, Math.floor(r() * (fa.length + 1))), fb.subarray(Math.floor(r() * (fb.length + 1)))]), `frames splice ${i}`)
    fc.check(Buffer.concat([fa, fb]), `frames joined ${i}`)
  }
  pc.report(t, ['ok', 'undecodable'])
  fc.report(t, ['ok', 'undecodable', 'bad-frame'])
})

t.test('structured soup: unknown fields, every wire type, overlong and oversized values', async (t) => {
  const pc = new Checker('packet')
  const fc = new Checker('frames')
  const r = createRng(5)
  for (let i = 0; i < 20000; i++) {
    pc.check(soupPacket(r), `packet soup ${i}`)
    fc.check(soupFrames(r), `frames soup ${i}`)
  }
  pc.report(t, ['ok', 'undecodable', 'bad-type', 'bad-handshake'])
  fc.report(t, ['ok', 'undecodable', 'bad-frame'])
})

t.test('crafted inputs at each reader limit', async (t) => {
  const pc = new Checker('packet')
  const fc = new Checker('frames')
  const V = [...tag(2, 0), VERSION]
  const hs = (...fields: number[][]): number[] => delimited(6, fields.flat())
  const T = (type: number): number[] => [...tag(3, 0), type]
  const pk = (label: string, ...fields: number[][]): void => pc.check(packetOf(...fields), label)
  const fr = (label: string, ...frames: number[][]): void => fc.check(framesOf(...frames), label)
  const dataType = [...tag(1, 0), 1]

  pk('minimal DATA', V, T(5))
  pk('magic repeated: the last one wins, unchecked', V, T(5), [...tag(1, 5), ...fixed32(1)])
  pk('magic repeated as 0', V, T(5), [...tag(1, 5), ...fixed32(0)])
  const WRONG = VERSION + 1
  pk('version twice, ours last', [...tag(2, 0), WRONG], V, T(5))
  pk('version twice, another last', V, [...tag(2, 0), WRONG], T(5))
  pk('version 2^32 + another', [...tag(2, 0), ...varint(2n ** 32n + BigInt(WRONG))], T(5))
  pk('version overlong', [...tag(2, 0), ...varint(VERSION, 10)], T(5))
  pk('version 11 bytes', [...tag(2, 0), ...varint(VERSION, 11)], T(5))
  pk('version above 32 bits', [...tag(2, 0), ...varint(2n ** 32n + BigInt(VERSION))], T(5))
  pk('type negative (10 bytes)', V, [...tag(3, 0), ...negative(-1)])
  pk('type 2^32 + 5', V, [...tag(3, 0), ...varint(2n ** 32n + 5n)])
  pk('type as fixed32 (wrong wire type: skipped)', V, [...tag(3, 5), 5, 0, 0, 0])
  pk('payload empty', V, T(5), delimited(15, []))
  pk('payload then empty payload', V, T(5), delimited(15, [1, 2, 3]), delimited(15, []))
  pk('payload twice', V, T(5), delimited(15, [1, 2, 3]), delimited(15, [4]))
  pk('payload not last', V, delimited(15, [1, 2, 3]), T(5))
  pk('payload length past the end', V, T(5), [...tag(15, 2), 4, 1, 2, 3])
  pk('payload length 2^31-1', V, T(5), [...tag(15, 2), ...varint(0x7fffffff), 1])
  pk('payload length with fifth byte 8', V, T(5), [...tag(15, 2), 0x80, 0x80, 0x80, 0x80, 0x08, 1])
  pk('payload length overlong', V, T(5), [...tag(15, 2), ...varint(2, 5), 1, 2])
  pk('payload length 6 bytes', V, T(5), [...tag(15, 2), ...varint(2, 6), 1, 2])
  pk('empty handshake on HELLO', V, T(1), hs())
  pk('handshake on DATA', V, T(5), hs())
  pk('handshake twice merges', V, T(1), hs([...tag(1, 5), ...fixed32(9)], delimited(3, [1, 2])), hs([...tag(2, 5), ...fixed32(8)], delimited(3, [])))
  pk('handshake reason negative', V, T(6), hs([...tag(8, 0), ...negative(-5)]))
  pk('handshake reason 8', V, T(6), hs([...tag(8, 0), 8]))
  pk('handshake nonce 64 / 65', V, T(1), hs(delimited(3, new Array(64).fill(1))), hs(delimited(4, new Array(65).fill(1))))
  pk('handshake length past the end', V, T(1), [...tag(6, 2), 10, ...tag(1, 5)])
  pk('handshake field past its own end', V, T(1), [...tag(6, 2), 3, ...tag(1, 5), 1, 2, 3, 4])
  pk('handshake with unknown fields', V, T(1), hs([...tag(100, 0), 1], [...tag(9, 1), 1, 2, 3, 4, 5, 6, 7, 8], [...tag(3, 3), ...tag(3, 4)]))
  for (const wt of [3, 4, 6, 7]) {
    pk(`unknown field, wire type ${wt}`, V, T(5), tag(20, wt))
    pk(`known field 5, wire type ${wt}`, V, T(5), tag(5, wt))
    fr(`frame field, wire type ${wt}`, [...dataType, ...tag(20, wt)])
  }
  pk('group closed', V, T(5), tag(20, 3), [...tag(1, 0), 5], tag(20, 4))
  pk('group closed by another field', V, T(5), tag(20, 3), tag(21, 4))
  pk('group never closed', V, T(5), tag(20, 3), [...tag(1, 0), 5])
  pk('end group outside a group', V, T(5), tag(20, 4))
  pk('field number 0', V, T(5), [0, 1])
  pk('field number 0 inside a group', V, T(5), tag(20, 3), [0, 1], tag(20, 4))
  pk('largest field number', V, T(5), [...tag(2 ** 29 - 1, 0), 1])
  pk('tag with fifth byte 15', V, T(5), [0xf8, 0xff, 0xff, 0xff, 0x0f, 1])
  pk('tag with fifth byte 16', V, T(5), [0xf8, 0xff, 0xff, 0xff, 0x1f, 1])
  pk('tag overlong', V, [0x98, 0x80, 0x80, 0x80, 0x00, 5])
  pk('unknown varint of 20 bytes', V, T(5), [...tag(20, 0), ...new Array(19).fill(0xff), 1])
  pk('unknown varint truncated', V, T(5), [...tag(20, 0), 0xff])
  pk('unknown fixed64 truncated', V, T(5), [...tag(20, 1), 1, 2, 3])
  pk('unknown fixed32 truncated', V, T(5), [...tag(20, 5), 1, 2, 3])
  for (const q of [0, 1]) {
    for (const depth of [98, 99, 100, 101, 102]) {
      // `depth` nested groups, the innermost holding one varint field.
      const groups: number[] = []
      for (let i = 0; i < depth; i++) groups.push(...tag(20 + i, 3))
      groups.push(...tag(1, 0), 7)
      for (let i = depth - 1; i >= 0; i--) groups.push(...tag(20 + i, 4))
      const empty: number[] = []
      for (let i = 0; i < depth; i++) empty.push(...tag(20 + i, 3))
      for (let i = depth - 1; i >= 0; i--) empty.push(...tag(20 + i, 4))
      if (q === 0) {
        pk(`${depth} nested groups`, V, T(5), groups)
        pk(`${depth} nested empty groups`, V, T(5), empty)
        fc.check(Buffer.from(groups), `${depth} nested groups in Frames`)
      } else {
        pk(`${depth} nested groups in the handshake`, V, T(1), hs(groups))
        fr(`${depth} nested groups in a frame`, [...dataType, ...groups])
        fr(`${depth} nested empty groups in a frame`, [...dataType, ...empty])
      }
    }
  }

  fr('empty frame', [])
  fr('type negative', [...tag(1, 0), ...negative(-1)])
  fr('delivery negative passes validation', [...dataType, ...tag(3, 0), ...negative(-2)])
  fr('delivery 2^32 + 1 (low 32 bits)', [...dataType, ...tag(3, 0), ...varint(2n ** 32n + 1n)])
  fr('close reason negative passes validation', [...tag(1, 0), 4, ...tag(12, 0), ...negative(-(2 ** 31))])
  fr('channel 255 / 256', [...dataType, ...tag(2, 0), ...varint(255)], [...dataType, ...tag(2, 0), ...varint(256)])
  fr('channel set twice, last wins', [...dataType, ...tag(2, 0), ...varint(999), ...tag(2, 0), 0])
  fr('type set twice, last wins', [...tag(1, 0), 7, ...dataType])
  fr('fragment count 65536 / 65537', [...dataType, ...tag(6, 0), ...varint(65536), ...tag(5, 0), ...varint(65535)], [...dataType, ...tag(6, 0), ...varint(65537)])
  fr('fragment index without count', [...dataType, ...tag(5, 0), 1])
  fr('fragment count 1 index 0', [...dataType, ...tag(6, 0), 1])
  fr('data twice', [...dataType, ...delimited(7, [1, 2]), ...delimited(7, [3])])
  fr('data then empty', [...dataType, ...delimited(7, [1, 2]), ...delimited(7, [])])
  fr('data length past the frame, inside the payload', [...dataType, ...tag(7, 2), 5, 1], [...dataType])
  const ack = [...tag(1, 0), 2]
  fr('ranges unpacked', [...ack, ...tag(11, 0), 1, ...tag(11, 0), 2])
  fr('ranges packed and unpacked mixed', [...ack, ...delimited(11, [1, 2, 3]), ...tag(11, 0), 4])
  fr('ranges packed twice', [...ack, ...delimited(11, [1]), ...delimited(11, [2, ...varint(0xffffffff)])])
  fr('ranges packed empty', [...ack, ...delimited(11, [])])
  fr('ranges packed, value overlong', [...ack, ...delimited(11, [...varint(5, 10), 1])])
  fr('ranges packed, value 11 bytes', [...ack, ...delimited(11, [...varint(5, 11), 1])])
  fr('ranges packed, value across the end', [...ack, ...tag(11, 2), 1, 0x80, 0x01])
  fr('ranges packed, value negative', [...ack, ...delimited(11, [...negative(-1), 1])])
  fr('ranges packed, length past the frame', [...ack, ...tag(11, 2), 9, 1])
  fr('ranges as fixed32 (wrong wire type: skipped)', [...ack, ...tag(11, 5), 1, 2, 3, 4])
  fr('ranges: exactly the cap, packed', [...ack, ...delimited(11, new Array(2 * limits.maxAckRanges).fill(1))])
  fr('ranges: one pair over the cap, split', [...ack, ...delimited(11, new Array(2 * limits.maxAckRanges).fill(1)), ...tag(11, 0), 1, ...tag(11, 0), 1])
  fr('ranges: 1400 values', [...ack, ...delimited(11, new Array(1400).fill(3))])
  fc.check(Buffer.from([...delimited(1, [...tag(1, 0), 9]), ...tag(1, 2), 5, 1]), 'bad frame then an undecodable one')
  fc.check(Buffer.from([...delimited(1, [...tag(1, 0), 9]), ...delimited(1, [...tag(1, 0), 3])]), 'bad frame then a good one')
  fc.check(Buffer.from([...tag(2, 0), 1, ...delimited(1, [...tag(1, 0), 3])]), 'unknown field around the frames')
  fc.check(Buffer.from([...tag(1, 0), 1, ...delimited(1, [...tag(1, 0), 3])]), 'frames field with wire type 0')
  fc.check(Buffer.from([...tag(1, 2), ...varint(3, 5), ...tag(1, 0), 3]), 'frame length overlong')
  fc.check(Buffer.from([...tag(1, 2, 5), 2, ...tag(1, 0), 3]), 'frames tag overlong')
  fc.check(Buffer.from([...tag(1, 2), 0x80, 0x80, 0x80, 0x80, 0x07]), 'frame length 2^31-ish')
  fc.check(Buffer.from([...tag(1, 2), 0x80, 0x80, 0x80, 0x80, 0x08]), 'frame length with fifth byte 8')
  pc.report(t, ['ok', 'undecodable', 'bad-version', 'bad-type', 'bad-handshake'])
  fc.report(t, ['ok', 'undecodable', 'bad-frame'])
})

t.test('the decoded objects behave like protobufjs messages where the endpoint looks', async (t) => {
  const payload = encodeFrames([{ type: FrameType.DATA, data: Buffer.alloc(0) }, { type: FrameType.PING }])
  const p = decodePacket(encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, payload }))
  if (typeof p === 'string') throw new Error(p)
  t.equal(Buffer.isBuffer(p.payload), true, 'payload of a Buffer is a Buffer view')
  const frames = decodeFrames(p.payload) as Frame[]
  t.same(Array.from(frames[0].data), [], 'empty data reads as empty')
  t.ok(Buffer.isBuffer(frames[0].data) && frames[0].data.length === 0, 'as a zero-length Buffer, not protobufjs\'s frozen empty array')
  t.ok(Array.isArray((decodeFramesReference(p.payload) as Frame[])[0].data), '(protobufjs: an array)')
  const hs = decodePacket(encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.HELLO, handshake: {} as never }))
  if (typeof hs === 'string') throw new Error(hs)
  t.ok(hs.handshake!.nonce instanceof Uint8Array && hs.handshake!.nonce.length === 0, 'unset bytes fields are empty Uint8Arrays too')
  t.same(frames[1].ranges, [])
  t.same(Buffer.from(encodePacket({ ...p })), Buffer.from(encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, payload })), 're-encodes to the same bytes')
})
