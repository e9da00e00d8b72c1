// How many acknowledgements cross a session, counted datagram by datagram on
// the simulated network: a reply carries the ack of its request, one-way
// packets are acked once per `ackEvery`, and a lone packet acked after the
// peer's ack delay is not resent (the RTO leaves room for that delay).
import t from 'tap'
import { decodeFrames, decodePacket, FrameType, PacketType, type Frame } from '../../lib/wire/codec.js'
import { connect, ticks, world, type World } from './helpers.js'

function framesOf(d: Buffer): Frame[] {
  const p = decodePacket(d)
  if (typeof p === 'string' || p.type !== PacketType.DATA) return []
  const f = decodeFrames(p.payload)
  return typeof f === 'string' ? [] : f
}

const isAckOnly = (fs: Frame[]): boolean => fs.length > 0 && fs.every((f) => f.type === FrameType.ACK)
const hasData = (fs: Frame[]): boolean => fs.some((f) => f.type === FrameType.DATA)
const hasAck = (fs: Frame[]): boolean => fs.some((f) => f.type === FrameType.ACK)

async function step(w: World, ms: number): Promise<void> {
  w.clock.advance(ms)
  await ticks(1)
}

t.test('a reply carries the ack of its request: no separate ack datagram', async (t) => {
  const w = world({ capture: true, link: { delayMs: 0.2 } })
  const { sa, sb } = await connect(w)
  for (let i = 0; i < 20; i++) await step(w, 1)
  // b answers every request at once; a sends the next request when the reply arrives.
  w.b.on('message', (data: Uint8Array) => { sb.send(Buffer.from(data)) })
  let replies = 0
  w.a.on('message', () => { if (++replies < 100) sa.send(Buffer.from([replies])) })
  const fromA = w.sentA.length
  const fromB = w.sentB.length
  sa.send(Buffer.from([0]))
  for (let i = 0; i < 2000 && replies < 100; i++) await step(w, 0.1)
  for (let i = 0; i < 20; i++) await step(w, 1)
  t.equal(replies, 100, 'every request answered')
  const b = w.sentB.slice(fromB).map(framesOf)
  const a = w.sentA.slice(fromA).map(framesOf)
  t.equal(b.length, 100, 'b sent one datagram per request: the reply')
  t.ok(b.every((fs) => hasData(fs) && hasAck(fs)), 'each reply carries the ack of its request')
  t.equal(a.filter(hasData).length, 100, 'a sent 100 requests')
  t.ok(a.slice(1, 100).every(hasAck), 'each request after the first carries the ack of the previous reply')
  t.equal(a.filter(isAckOnly).length, 1, 'a sent one ack-only datagram: for the last reply, after the ack delay')
  t.equal(sa.stats().rtoExpirations + sb.stats().rtoExpirations, 0, 'no timeout fired')
  await w.a.close(); await w.b.close()
})

for (const k of [2, 4, 8]) {
  t.test(`one-way traffic: N packets, at most ceil(N/${k}) + 1 ack datagrams (ackEvery ${k})`, async (t) => {
    const w = world({ capture: true, link: { delayMs: 0.2 }, b: { ackEvery: k } })
    const { sa } = await connect(w)
    for (let i = 0; i < 20; i++) await step(w, 1)
    const fromB = w.sentB.length
    const n = 101
    // One message per packet, 0.1 ms apart: well within b's 1-ms ack delay.
    for (let i = 0; i < n; i++) {
      sa.send(Buffer.from([i]))
      await step(w, 0.1)
    }
    for (let i = 0; i < 20; i++) await step(w, 1)
    t.equal(w.gotB.length, n, 'all delivered')
    const acks = w.sentB.slice(fromB).map(framesOf).filter(isAckOnly).length
    t.ok(acks <= Math.ceil(n / k) + 1, `${acks} ack datagrams for ${n} packets`)
    t.ok(acks >= Math.floor(n / k), `and at least one per ${k} packets (${acks})`)
    t.equal(sa.stats().framesRetransmitted, 0, 'nothing resent')
    await w.a.close(); await w.b.close()
  })
}

for (const delayMs of [2, 5, 15]) {
  t.test(`lone one-way messages on a steady ${2 * delayMs}-ms path are never resent while the peer holds its ack`, async (t) => {
    // srtt excludes the ack delay and rttVar decays to nothing on a path
    // without jitter: an RTO of srtt + 4·rttVar fell due exactly when the
    // delayed ack arrived, and every message was resent (382 RTO expirations
    // for 200 messages at 2 ms before the RTO left room for maxAckDelay).
    const w = world({ link: { delayMs } })
    const { sa } = await connect(w)
    for (let i = 0; i < 200; i++) {
      sa.send(Buffer.from([i]))
      for (let ms = 0; ms < 50; ms++) await step(w, 1)
    }
    const s = sa.stats()
    t.equal(w.gotB.length, 200, 'all delivered')
    t.equal(s.rtoExpirations, 0, 'no RTO expired')
    t.equal(s.framesRetransmitted, 0, 'nothing resent')
    t.equal(s.packetsSent, 200 + 1, 'one packet per message (and the ACCEPT acknowledgement\'s PING)')
    await w.a.close(); await w.b.close()
  })
}
