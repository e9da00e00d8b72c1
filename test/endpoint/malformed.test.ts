import t from 'tap'
import { createRng } from '../../lib/testing.js'
import { decodePacket, Delivery, encodeFrames, encodePacket, FrameType, MAGIC, PacketType, varintSize, VERSION } from '../../lib/wire/codec.js'
import type { Session } from '../../lib/endpoint.js'
import { A, B, connect, driveUntil, sumDropped, world, type World } from './helpers.js'

/** Counters that move when b rejects or ignores something. */
function accounted(w: World, sb: Session): number {
  const s = sb.stats()
  return sumDropped(w.b) + s.badFrames + s.duplicatePackets + s.duplicateFrames + s.packetsRefused + s.sequencedDropped
}

export async function checkStillWorks(t: any, w: World, sa: Session, sb: Session, channel: number, n = 20): Promise<void> {
  w.gotB.length = 0
  for (let i = 0; i < n; i++) sa.send(Buffer.from(`after-${i}`), { channel })
  const ok = await driveUntil(w, () => w.gotB.length >= n && sa.stats().unackedMessages === 0, 500)
  if (!ok) t.comment(JSON.stringify({ got: w.gotB.map((m) => [m.channel, m.data.length]), sa: sa.stats(), sb: sb.stats() }))
  t.equal(ok, true)
  await driveUntil(w, () => false, 10)
  t.same(w.gotB.map((m) => m.data.toString()), Array.from({ length: n }, (_, i) => `after-${i}`), 'subsequent traffic delivered exactly')
  t.equal(sa.isOpen && sb.isOpen, true)
}

for (const keyed of [false, true]) {
  t.test(`malformed input against a live session (${keyed ? 'keyed' : 'insecure'})`, async (t) => {
    const w = world({ keyed, capture: true, link: { delayMs: 0.5 } })
    const { sa, sb } = await connect(w)
    for (let i = 0; i < 10; i++) sa.send(Buffer.from(`before-${i}`), { channel: 0 })
    sa.send(Buffer.alloc(3000, 1), { channel: 1 })
    await driveUntil(w, () => w.gotB.length === 11 && sa.stats().unackedMessages === 0, 500)
    await driveUntil(w, () => false, 5)
    const hello = w.sentA.find((d) => (decodePacket(d) as any).type === PacketType.HELLO)!
    const conn = w.sentA.find((d) => (decodePacket(d) as any).type === PacketType.CONNECT)!
    const data = w.sentA.find((d) => { const p = decodePacket(d) as any; return p.type === PacketType.DATA && p.payload.length > 40 && p.payload.length < 400 })!
    t.ok(hello && conn && data)
    const inject = (d: Buffer): void => { w.ta.send([d], B.port, B.address) }
    let unaccounted = 0
    let validHandshake = 0
    const probe = async (d: Buffer): Promise<void> => {
      const before = accounted(w, sb)
      inject(d)
      w.clock.advance(1)
      if (accounted(w, sb) > before) return
      const p = decodePacket(d)
      if (typeof p !== 'string' && p.type !== PacketType.DATA) { validHandshake++; return }
      unaccounted++
    }
    if (!keyed) {
      // Oversized declared lengths and counts in otherwise valid DATA packets.
      // Just ahead of the genuine packet numbers (a jump past the duplicate window is refused outright).
      let pn = 1000
      const forged = (frames: object[]): Buffer => Buffer.from(encodePacket({
        magic: MAGIC, version: VERSION, type: PacketType.DATA, connectionId: sb.localId, packetNumber: pn++, payload: encodeFrames(frames as never),
      }))
      const badBefore = sumDropped(w.b)
      await probe(forged([{ type: FrameType.DATA, channel: 0, delivery: 3, sequence: 50, fragmentIndex: 1, fragmentCount: 70000, data: Buffer.alloc(10) }]))
      await probe(forged([{ type: FrameType.ACK, largest: 1, ranges: new Array(600).fill(1) }]))
      await probe(forged([{ type: FrameType.DATA, channel: 999, delivery: 3, data: Buffer.alloc(1) }]))
      t.equal(w.b.stats().dropped['bad-frame']! >= 3, true)
      t.equal(sumDropped(w.b) - badBefore, 3, 'fragment_count 70000, 300 ack ranges, channel 999: dropped as bad-frame')
      const refused = sb.stats().packetsRefused
      await probe(forged([{ type: FrameType.DATA, channel: 20, delivery: 3, data: Buffer.alloc(1) }]))
      t.equal(sb.stats().packetsRefused, refused + 1, 'channel beyond the session’s channels: packet refused')
      const bad = sb.stats().badFrames
      await probe(forged([{ type: FrameType.ACK, largest: 0x7fff0000, firstRange: 0 }]))
      t.equal(sb.stats().badFrames, bad + 1, 'ACK for a packet never sent: bad frame')
      t.equal(unaccounted, 0)
    }
    // Every truncation of valid datagrams (handshake and DATA).
    for (const d of [hello, conn, data]) for (let n = 0; n < d.length; n++) await probe(Buffer.from(d.subarray(0, n)))
    t.equal(unaccounted, 0, 'every truncation dropped and counted (or a still-valid handshake packet)')
    t.comment(`truncations: ${hello.length + conn.length + data.length}, still-valid handshake packets: ${validHandshake}`)
    // Every single-bit flip of a DATA datagram.
    let flips = 0
    for (let bit = 0; bit < data.length * 8; bit++) {
      const d = Buffer.from(data)
      d[bit >>> 3] ^= 1 << (bit & 7)
      await probe(d)
      flips++
    }
    // Insecure mode has no integrity check of its own (the UDP checksum is its
    // protection): a flip inside a message's bytes is delivered as is. What
    // must hold there: nothing throws, the session survives and keeps working.
    if (keyed) t.equal(unaccounted, 0, `all ${flips} bit flips dropped and counted`)
    else t.comment(`insecure: ${unaccounted} of ${flips} flipped datagrams still parsed as valid`)
    if (keyed) {
      // The associated data ends before the payload's tag; the tag and length are
      // authenticated only by the payload ending the datagram. Re-encodings of a
      // packet b has not seen yet (held back by a partition), keeping its
      // associated data and sealed bytes intact, must not open; the original must.
      w.net.partition(A, B)
      const sent = w.sentA.length
      sa.send(Buffer.from('held back'), { channel: 0 })
      w.clock.advance(1)
      const fresh = w.sentA.slice(sent).find((d) => (decodePacket(d) as any).type === PacketType.DATA)!
      w.net.heal()
      const payload = (decodePacket(fresh) as any).payload as Uint8Array
      const aadEnd = fresh.length - payload.length - 1 - varintSize(payload.length)
      const aad = fresh.subarray(0, aadEnd)
      t.equal(fresh[aadEnd], 0x7a, 'the payload tag follows the associated data')
      const len = payload.length
      const lenBytes = len < 128 ? [len] : [(len & 0x7f) | 0x80, len >>> 7]
      const nonMinimal = [...lenBytes.slice(0, -1), lenBytes.at(-1)! | 0x80, 0]
      const before = unaccounted
      const authFailed = w.b.stats().dropped['auth-failed'] ?? 0
      const delivered = w.gotB.length
      await probe(Buffer.concat([aad, Buffer.from([0x7a, ...nonMinimal]), payload]))
      await probe(Buffer.concat([fresh, Buffer.from([0x48, 0x01])]))
      await probe(Buffer.concat([aad, Buffer.from([0x48, 0x01]), fresh.subarray(aadEnd)]))
      await probe(Buffer.concat([aad, Buffer.from([0x7a, 0x01, 0x00]), fresh.subarray(aadEnd)]))
      // An unknown 30-byte field before the payload: associated data longer than any
      // header warpmesh writes (past the endpoint's scratch buffers for it).
      await probe(Buffer.concat([aad, Buffer.from([0x92, 0x01, 30]), Buffer.alloc(30, 7), fresh.subarray(aadEnd)]))
      t.equal(unaccounted, before, 'non-minimal payload length, a field after or before the payload, a second payload field, a long unknown field: dropped and counted')
      t.equal((w.b.stats().dropped['auth-failed'] ?? 0) - authFailed, 5, 'all five as auth-failed')
      t.equal(w.gotB.length, delivered, 'nothing delivered')
      inject(Buffer.from(fresh))
      w.clock.advance(1)
      t.same(w.gotB.slice(delivered).map((m) => m.data.toString()), ['held back'], 'the original packet still opens')
    }
    // Random bytes, with and without a valid magic prefix.
    const r = createRng(keyed ? 2 : 1)
    for (let i = 0; i < 2000; i++) {
      const d = Buffer.alloc(1 + Math.floor(r() * 300))
      for (let j = 0; j < d.length; j++) d[j] = Math.floor(r() * 256)
      if (i % 2 === 0 && d.length > 5) Buffer.from([0x0d, 0x48, 0x53, 0x4d, 0x57]).copy(d)
      await probe(d)
    }
    if (keyed) t.equal(unaccounted, 0, 'random datagrams dropped and counted')
    t.equal(sa.isOpen && sb.isOpen, true, 'session survived')
    t.equal(w.downA.length + w.downB.length, 0)
    // Insecure: a channel no single flip of the channel-0 frames can reach (0 xor one bit is a power of two).
    await checkStillWorks(t, w, sa, sb, keyed ? 0 : 3)
    t.equal(w.gotB.every((m) => m.delivery === Delivery.RELIABLE_ORDERED), true)
    await w.a.close(); await w.b.close()
  })
}
