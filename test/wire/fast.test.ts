import t from 'tap'
import { ackEntrySize, dataAadSize, encodeAckEntry, encodeDataAad, encodeDataEntry, encodeDataHeader, PAYLOAD_TAG, writeAckEntry } from '../../lib/wire/fast.js'
import { createRng } from '../../lib/testing.js'
import { decodeFrames, encodeFrameEntry, encodePacket, FrameType, MAGIC, PacketType, VERSION, type Frame } from '../../lib/wire/codec.js'

const edges = [0, 1, 127, 128, 255, 16383, 16384, 0x1fffff, 0x200000, 0xfffffff, 0x10000000, 0xffffffff]

t.test('DATA frame entry: byte-for-byte what protobufjs writes', async (t) => {
  const r = createRng(42)
  const pick = (): number => (r() < 0.3 ? edges[Math.floor(r() * edges.length)] : Math.floor(r() * 2 ** 32)) >>> 0
  let n = 0
  for (let i = 0; i < 5000; i++) {
    const channel = i % 5 === 0 ? 0 : Math.floor(r() * 256)
    const delivery = Math.floor(r() * 4)
    const sequence = pick()
    const size = [0, 1, 127, 128, 1000, 16384][i % 6]
    const data = Buffer.alloc(size, i & 0xff)
    const fragmented = i % 3 === 0
    const index = i % 7 === 0 ? 0 : Math.floor(r() * 70000)
    const count = Math.floor(r() * 70000)
    const fast = fragmented ? encodeDataEntry(channel, delivery, sequence, data, index, count) : encodeDataEntry(channel, delivery, sequence, data)
    const ref = encodeFrameEntry(fragmented
      ? { type: FrameType.DATA, channel, delivery, sequence, fragmentIndex: index, fragmentCount: count, data }
      : { type: FrameType.DATA, channel, delivery, sequence, data })
    if (Buffer.compare(fast, Buffer.from(ref)) !== 0) {
      t.fail(`mismatch for channel=${channel} delivery=${delivery} sequence=${sequence} size=${size} fragmented=${fragmented}`)
      return
    }
    n++
  }
  t.equal(n, 5000, 'all 5000 random frames identical')
})

t.test('ACK frame entry: byte-for-byte what protobufjs writes, and it decodes back', async (t) => {
  const r = createRng(7)
  const pick = (): number => (r() < 0.4 ? edges[Math.floor(r() * edges.length)] : Math.floor(r() * 2 ** 32)) >>> 0
  let n = 0
  for (let i = 0; i < 5000; i++) {
    const largest = pick()
    const ackDelayUs = i % 4 === 0 ? 0 : pick()
    const firstRange = i % 5 === 0 ? 0 : pick()
    const count = [0, 0, 1, 2, 10, 160][i % 6] * 2
    const ranges = Array.from({ length: count }, () => (r() < 0.7 ? Math.floor(r() * 300) : pick()))
    const fast = encodeAckEntry(largest, ackDelayUs, firstRange, ranges)
    const ref = Buffer.from(encodeFrameEntry({ type: FrameType.ACK, largest, ackDelayUs, firstRange, ranges }))
    // In place, as a packet is built: at an offset, ending where ackEntrySize says.
    const at = 1 + (i % 7)
    const packet = Buffer.alloc(at + ref.length + 3, 0xee)
    const end = writeAckEntry(packet, at, largest, ackDelayUs, firstRange, ranges)
    if (end !== at + ackEntrySize(largest, ackDelayUs, firstRange, ranges) || Buffer.compare(packet.subarray(at, end), ref) !== 0 ||
      packet[at - 1] !== 0xee || packet[end] !== 0xee) {
      t.fail(`in place: mismatch for largest=${largest} ackDelayUs=${ackDelayUs} firstRange=${firstRange} ranges=${ranges.length}`)
      return
    }
    if (Buffer.compare(fast, ref) !== 0) {
      t.fail(`mismatch for largest=${largest} ackDelayUs=${ackDelayUs} firstRange=${firstRange} ranges=${ranges.length}`)
      return
    }
    const back = (decodeFrames(fast) as Frame[])[0]
    if (back.largest !== largest || back.ackDelayUs !== ackDelayUs || back.firstRange !== firstRange || back.ranges.join() !== ranges.join()) {
      t.fail(`round trip for largest=${largest}`)
      return
    }
    n++
  }
  t.equal(n, 5000, 'all 5000 random ACK frames identical and decoded back')
  t.same([...encodeAckEntry(0, 0, 0, [])], [0x0a, 0x02, 0x08, 0x02], 'all defaults: the type alone')
})

t.test('DATA header: byte-for-byte what protobufjs writes before the payload', async (t) => {
  for (const conn of edges) {
    for (const pn of edges) {
      for (const len of [1, 127, 128, 1200, 16383, 16384, 65535]) {
        const payload = Buffer.alloc(len, 7)
        const full = Buffer.from(encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, connectionId: conn, packetNumber: pn, payload }))
        const header = encodeDataHeader(conn, pn, len)
        if (Buffer.compare(Buffer.concat([header, payload]), full) !== 0) {
          t.fail(`mismatch conn=${conn} pn=${pn} len=${len}`)
          return
        }
      }
    }
  }
  t.pass('every combination identical')
})

t.test('DATA associated data: the header before the payload tag, predictable from connection id and packet number', async (t) => {
  for (const conn of [0, 1, 0x7a, 0xffffffff]) {
    for (const pn of [0, 1, 0x7a7a7a7a, 0xffffffff]) {
      const aad = encodeDataAad(conn, pn)
      t.equal(aad.length, dataAadSize(conn, pn), `size conn=${conn} pn=${pn}`)
      for (const len of [16, 127, 128, 40000]) {
        const header = encodeDataHeader(conn, pn, len)
        t.same(header.subarray(0, aad.length), aad, `prefix conn=${conn} pn=${pn} len=${len}`)
        t.equal(header[aad.length], PAYLOAD_TAG, 'followed by the payload tag')
        t.equal(header.length - aad.length - 1, len < 128 ? 1 : len < 16384 ? 2 : 3, 'and the length varint, nothing else')
      }
    }
  }
})
