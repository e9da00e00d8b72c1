import t from 'tap'
import protobuf from 'protobufjs'
import { fileURLToPath } from 'node:url'
import {
  CloseReason, decodeFrames, decodePacket, Delivery, encodeFrameEntry, encodeFrames, encodePacket,
  FrameType, hasMagic, limits, MAGIC, PacketType, payloadOffset, varintSize, VERSION, type Frame, type Packet,
} from '../../lib/wire/codec.js'
import { A, B, connect, driveUntil, world } from '../endpoint/helpers.js'

const hs = {
  connectionId: 0x01020304, epoch: 0xdeadbeef, nonce: Buffer.alloc(32, 1), cookie: Buffer.alloc(24, 2),
  proof: Buffer.alloc(16, 3), keyId: 0xcafebabe, maxDatagram: 1200, reason: 0, padding: Buffer.alloc(0),
}

function roundTrip(p: Partial<Packet>): Packet {
  const bytes = encodePacket({ magic: MAGIC, version: VERSION, ...p })
  t.equal(hasMagic(bytes), true)
  const d = decodePacket(bytes)
  if (typeof d === 'string') throw new Error(d)
  return d
}

t.test('every packet type round-trips', async (t) => {
  for (const type of [PacketType.HELLO, PacketType.CHALLENGE, PacketType.CONNECT, PacketType.ACCEPT, PacketType.REJECT]) {
    const h = { ...hs, reason: type === PacketType.REJECT ? CloseReason.BAD_KEY : 0, padding: type === PacketType.HELLO ? Buffer.alloc(500) : Buffer.alloc(0) }
    const d = roundTrip({ type, connectionId: 77, handshake: h })
    t.equal(d.type, type)
    t.equal(d.connectionId, 77)
    t.equal(d.handshake!.connectionId, h.connectionId)
    t.equal(d.handshake!.epoch, h.epoch)
    t.same(Buffer.from(d.handshake!.nonce), h.nonce)
    t.same(Buffer.from(d.handshake!.cookie), h.cookie)
    t.same(Buffer.from(d.handshake!.proof), h.proof)
    t.equal(d.handshake!.keyId, h.keyId)
    t.equal(d.handshake!.maxDatagram, 1200)
    t.equal(d.handshake!.reason, h.reason)
    t.equal(d.handshake!.padding.length, h.padding.length)
  }
  const payload = Buffer.from('frames go here')
  const d = roundTrip({ type: PacketType.DATA, connectionId: 0xffffffff, packetNumber: 0xfffffffe, payload })
  t.equal(d.type, PacketType.DATA)
  t.equal(d.connectionId, 0xffffffff)
  t.equal(d.packetNumber, 0xfffffffe)
  t.same(Buffer.from(d.payload), payload)
  const bytes = encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, connectionId: 1, packetNumber: 2, payload })
  t.equal(payloadOffset(bytes, d), bytes.length - payload.length)
  t.same(Buffer.from(bytes.subarray(payloadOffset(bytes, d))), payload, 'payload is the tail of the datagram')
})

t.test('every frame type round-trips', async (t) => {
  const frames: Partial<Frame>[] = [
    { type: FrameType.DATA, channel: 255, delivery: Delivery.RELIABLE_ORDERED, sequence: 0xffffffff, fragmentIndex: 3, fragmentCount: 65536, data: Buffer.from('abc') },
    { type: FrameType.DATA, channel: 0, delivery: Delivery.UNRELIABLE, sequence: 0, data: Buffer.alloc(0) },
    { type: FrameType.ACK, largest: 0xfffffff0, ackDelayUs: 1234, firstRange: 7, ranges: [1, 2, 3, 4] },
    { type: FrameType.PING },
    { type: FrameType.CLOSE, reason: CloseReason.SUPERSEDED },
  ]
  const d = decodeFrames(encodeFrames(frames)) as Frame[]
  t.equal(d.length, 5)
  t.equal(d[0].channel, 255)
  t.equal(d[0].delivery, 3)
  t.equal(d[0].sequence, 0xffffffff)
  t.equal(d[0].fragmentIndex, 3)
  t.equal(d[0].fragmentCount, 65536)
  t.same(Buffer.from(d[0].data), Buffer.from('abc'))
  t.equal(d[1].data.length, 0)
  t.equal(d[2].largest, 0xfffffff0)
  t.equal(d[2].ackDelayUs, 1234)
  t.equal(d[2].firstRange, 7)
  t.same(d[2].ranges, [1, 2, 3, 4])
  t.equal(d[3].type, FrameType.PING)
  t.equal(d[4].reason, CloseReason.SUPERSEDED)
  // Entries concatenate into a Frames message.
  const joined = Buffer.concat(frames.map((f) => encodeFrameEntry(f)))
  t.same(joined, Buffer.from(encodeFrames(frames)))
})

t.test('varintSize at every boundary', async (t) => {
  for (const [n, s] of [[0, 1], [127, 1], [128, 2], [16383, 2], [16384, 3], [0x1fffff, 3], [0x200000, 4], [0xfffffff, 4], [0x10000000, 5], [0xffffffff, 5]]) {
    t.equal(varintSize(n), s, `${n}`)
    t.equal(protobuf.Writer.create().uint32(n).finish().length, s)
  }
})

t.test('validation rejects, never throws', async (t) => {
  const ok = { magic: MAGIC, version: VERSION }
  t.equal(decodePacket(Buffer.alloc(4)), 'short')
  t.equal(decodePacket(Buffer.from('hello world')), 'bad-magic')
  t.equal(decodePacket(encodePacket({ magic: MAGIC + 1, version: VERSION, type: 5 })), 'bad-magic')
  t.equal(decodePacket(encodePacket({ magic: MAGIC, version: VERSION + 1, type: 5 })), 'bad-version')
  t.equal(decodePacket(encodePacket({ ...ok, type: 0 })), 'bad-type')
  t.equal(decodePacket(encodePacket({ ...ok, type: 7 })), 'bad-type')
  t.equal(decodePacket(encodePacket({ ...ok, type: PacketType.DATA, handshake: hs })), 'bad-handshake')
  t.equal(decodePacket(encodePacket({ ...ok, type: PacketType.HELLO })), 'bad-handshake', 'handshake packet without handshake')
  for (const field of ['nonce', 'cookie', 'proof'] as const) {
    t.equal(decodePacket(encodePacket({ ...ok, type: PacketType.HELLO, handshake: { ...hs, [field]: Buffer.alloc(limits.maxHandshakeField + 1) } })), 'bad-handshake', field)
  }
  t.equal(decodePacket(encodePacket({ ...ok, type: PacketType.REJECT, handshake: { ...hs, reason: 8 } })), 'bad-handshake')
  const full = encodePacket({ ...ok, type: PacketType.DATA, connectionId: 1, packetNumber: 1, payload: Buffer.alloc(40) })
  t.equal(decodePacket(full.subarray(0, full.length - 1)), 'undecodable')
  const f = (x: Partial<Frame>): string | Frame[] => decodeFrames(encodeFrames([x]))
  t.equal(f({ type: FrameType.DATA, channel: 256 }), 'bad-frame')
  t.equal(f({ type: FrameType.DATA, channel: 999 }), 'bad-frame')
  t.equal(f({ type: FrameType.DATA, delivery: 4 }), 'bad-frame')
  t.equal(f({ type: FrameType.DATA, fragmentCount: 70000, fragmentIndex: 1 }), 'bad-frame')
  t.equal(f({ type: FrameType.DATA, fragmentCount: 3, fragmentIndex: 3 }), 'bad-frame')
  t.equal(f({ type: FrameType.DATA, fragmentCount: 0, fragmentIndex: 1 }), 'bad-frame')
  t.equal(f({ type: FrameType.DATA, fragmentCount: 1, fragmentIndex: 1 }), 'bad-frame')
  t.equal(f({ type: FrameType.ACK, ranges: [1] }), 'bad-frame')
  t.equal(f({ type: FrameType.ACK, ranges: new Array(2 * limits.maxAckRanges + 2).fill(0) }), 'bad-frame')
  t.not(typeof f({ type: FrameType.ACK, ranges: new Array(2 * limits.maxAckRanges).fill(0) }), 'string', 'exactly the cap is fine')
  t.equal(f({ type: FrameType.CLOSE, reason: 8 }), 'bad-frame')
  t.equal(f({ type: 0 }), 'bad-frame')
  t.equal(f({ type: 9 }), 'bad-frame')
  t.equal(decodeFrames(Buffer.from([0x0a, 0x05, 0x08])), 'undecodable')
  t.same(decodeFrames(Buffer.alloc(0)), [])
})

/** Decode the DATA datagrams of a run and compare with protobufjs encoding the full Packet. */
function checkFastPath(t: { equal(a: unknown, b: unknown, m: string): unknown }, sent: Buffer[]): { data: number, sizes: Set<number> } {
  let data = 0
  let mismatches = 0
  const sizes = new Set<number>()
  for (const d of sent) {
    const p = decodePacket(d)
    if (typeof p === 'string') { mismatches++; continue }
    if (p.type !== PacketType.DATA) continue
    data++
    sizes.add(varintSize(p.payload.length))
    const again = Buffer.from(encodePacket({ ...p }))
    if (!again.equals(d)) mismatches++
  }
  t.equal(mismatches, 0, `all ${data} DATA datagrams byte-for-byte equal to protobufjs's encoding`)
  return { data, sizes }
}


for (const keyed of [false, true]) {
  t.test(`DATA fast path equals protobufjs (${keyed ? 'keyed' : 'insecure'}); schema-only decode`, async (t) => {
    const w = world({ capture: true, keyed, link: { delayMs: 0.5 } })
    const { sa, sb } = await connect(w)
    const sizes = [0, 1, 50, 100, 127, 128, 300, 1000, 1100, 1200, 5000]
    for (const n of sizes) sa.send(Buffer.alloc(n, n & 0xff), { channel: n % 16, delivery: Delivery.RELIABLE_ORDERED })
    sb.send(Buffer.from('back'), { delivery: Delivery.UNRELIABLE })
    t.equal(await driveUntil(w, () => w.gotB.length === sizes.length && sa.stats().unackedMessages === 0, 2000), true)
    for (let i = 0; i < 200; i++) sa.send(Buffer.alloc(8, i), { channel: 1, delivery: Delivery.UNRELIABLE_SEQUENCED })
    await driveUntil(w, () => false, 20)
    const ra = checkFastPath(t, w.sentA)
    const rb = checkFastPath(t, w.sentB)
    t.equal(ra.data > 10, true)
    t.equal(rb.data >= 2, true)
    t.same([...ra.sizes].sort(), [1, 2], 'one- and two-byte payload lengths were both exercised')

    // Decode with the schema alone: no warpmesh code.
    const root = protobuf.loadSync(fileURLToPath(new URL('../../protocol.proto', import.meta.url)))
    const Packet = root.lookupType('warpmesh.Packet')
    const Frames = root.lookupType('warpmesh.Frames')
    const types = w.sentA.map((d) => (Packet.decode(d) as unknown as { type: number }).type)
    t.same(types.slice(0, 2), [1, 3], 'HELLO then CONNECT')
    t.equal(types.slice(2).every((x) => x === 5), true, 'then DATA only')
    const hello = Packet.toObject(Packet.decode(w.sentA[0]), { enums: String, bytes: Buffer }) as Record<string, any>
    t.equal(hello.type, 'HELLO')
    t.equal(hello.magic, 0x574d5348)
    t.equal(hello.version, VERSION)
    t.equal(hello.handshake.nonce.length, 32)
    t.equal(w.sentA[0].length <= 1200 && w.sentA[0].length >= 1190, true, 'HELLO padded to about maxDatagram')
    const challenge = Packet.toObject(Packet.decode(w.sentB[0]), { enums: String }) as Record<string, any>
    t.equal(challenge.type, 'CHALLENGE')
    t.equal(w.sentB[0].length <= w.sentA[0].length, true, 'CHALLENGE not larger than HELLO')
    const accept = Packet.toObject(Packet.decode(w.sentB[1]), { enums: String }) as Record<string, any>
    t.equal(accept.type, 'ACCEPT')
    t.equal(accept.handshake.connectionId, sb.localId)
    let lastPn = -1
    let ordered = 0
    const seen: number[] = []
    for (const d of w.sentA.slice(2)) {
      const p = Packet.toObject(Packet.decode(d), { enums: String, defaults: true }) as Record<string, any>
      t.equal(p.magic, 0x574d5348)
      t.equal(p.version, VERSION)
      t.equal(p.type, 'DATA')
      t.equal(p.connectionId, sa.remoteId)
      t.equal(p.connectionId, sb.localId)
      if (p.packetNumber !== lastPn + 1) t.fail(`packet numbers consecutive: ${lastPn} → ${p.packetNumber}`)
      lastPn = p.packetNumber
      if (!keyed) {
        const fr = Frames.toObject(Frames.decode(p.payload), { enums: String, defaults: true }) as { frames: Record<string, any>[] }
        for (const f of fr.frames) {
          if (f.type === 'DATA_FRAME' && f.delivery === 'RELIABLE_ORDERED' && f.fragmentCount === 0) {
            ordered++
            seen.push(f.data.length)
            t.equal(f.data.every((x: number) => x === (f.data.length & 0xff)), true)
            t.equal(f.channel, f.data.length % 16)
          }
        }
      } else {
        t.equal(p.payload.length >= 16, true, 'sealed payload carries the AEAD tag')
      }
    }
    if (!keyed) {
      t.same(seen, sizes.filter((n) => n <= 1018), 'unfragmented reliable messages read back with the schema alone')
      t.equal(ordered, 8)
    }
    await w.a.close()
    await w.b.close()
  })
}
