import t from 'tap'
import { ACK_RESERVE, Connection, FRAME_OVERHEAD } from '../../lib/core/connection.js'
import { Delivery, FrameType } from '../../lib/wire/codec.js'
import { Pair } from './pair.js'
import { wirePair, type End } from './wire-pair.js'

const MAX_PAYLOAD = 1162 // the connection default
const MTU = MAX_PAYLOAD - ACK_RESERVE - FRAME_OVERHEAD // fragment size: maxPayload − ACK reserve − frame overhead

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13) & 0xff
  return b
}

/** Run both sides until nothing is left to move (lossless, instant link). */
function settle(a: End, b: End, pass: (f: End, t: End, now: number) => number): void {
  let now = 0
  for (let i = 0; i < 10000; i++) {
    now += 1
    a.conn.flush(now)
    b.conn.flush(now)
    const moved = pass(a, b, now) + pass(b, a, now)
    for (const e of [a, b]) if (e.conn.nextDeadline() <= now) { e.conn.onTimer(now); e.conn.flush(now) }
    if (moved === 0 && a.conn.unackedMessages === 0 && a.out.length === 0 && b.out.length === 0) return
  }
  throw new Error('did not settle')
}

for (const delivery of [Delivery.RELIABLE_ORDERED, Delivery.RELIABLE_UNORDERED, Delivery.UNRELIABLE, Delivery.UNRELIABLE_SEQUENCED]) {
  t.test(`fragmentation at 0, 1, MTU-1, MTU, MTU+1, 2·MTU+1 (delivery ${delivery})`, async (t) => {
    for (const [size, fragments] of [[0, 1], [1, 1], [MTU - 1, 1], [MTU, 1], [MTU + 1, 2], [2 * MTU, 2], [2 * MTU + 1, 3]]) {
      const { a, b, pass } = wirePair()
      const data = pattern(size, size)
      t.equal(a.conn.send(data, 2, delivery), true)
      a.conn.flush(0)
      const dataFrames = a.out.flatMap((p) => p.frames.filter((f) => f.type === FrameType.DATA))
      t.equal(dataFrames.length, fragments, `${size} B → ${fragments} fragment(s)`)
      if (fragments === 1) {
        t.equal(dataFrames[0].fragmentCount, 0, 'unfragmented: no fragment fields')
      } else {
        t.same(dataFrames.map((f) => f.fragmentIndex), [...Array(fragments).keys()])
        t.equal(dataFrames.every((f) => f.fragmentCount === fragments), true)
        t.equal(dataFrames.slice(0, -1).every((f) => f.data.length === MTU), true, 'every fragment but the last is full')
      }
      t.equal(a.out.every((p) => p.bytes <= MAX_PAYLOAD), true, 'every packet within maxPayload')
      settle(a, b, pass)
      t.equal(b.got.length, 1, `${size} B delivered once`)
      t.equal(Buffer.compare(b.got[0].data, data), 0, `${size} B delivered intact`)
      t.equal(b.got[0].channel, 2)
      t.equal(b.got[0].delivery, delivery)
      t.equal(b.conn.bufferedBytes, 0)
      t.equal(b.conn.reassemblies, 0)
    }
  })
}

t.test('fragments arriving in reverse order reassemble; duplicates suppressed', async (t) => {
  const { a, b } = wirePair()
  const data = pattern(5 * MTU + 17, 3)
  a.conn.send(data, 0, Delivery.RELIABLE_ORDERED)
  a.conn.send(pattern(3 * MTU, 4), 1, Delivery.UNRELIABLE)
  a.conn.flush(0)
  const packets = a.out.reverse()
  for (const p of packets) b.conn.receive(p.pn, p.frames, p.bytes, 1)
  for (const p of packets) b.conn.receive(p.pn, p.frames, p.bytes, 1) // network duplicates
  t.equal(b.conn.stats.duplicatePackets, packets.length)
  // Reliable frames resent in new packets (a retransmission after a lost ack).
  for (const p of packets) b.conn.receive((p.pn + 1000) >>> 0, p.frames.filter((f) => f.channel === 0), p.bytes, 1)
  t.equal(b.got.length, 2)
  t.equal(Buffer.compare(b.got.find((m) => m.channel === 0)!.data, data), 0)
  t.equal(b.conn.stats.duplicateFrames > 0, true)
  t.equal(b.conn.bufferedBytes, 0)
})

t.test('1 MiB cap: exactly the cap is delivered, cap + 1 is a RangeError at send()', async (t) => {
  const p = new Pair({ delayMs: 0.5 })
  const cap = 1 << 20
  t.equal(p.a.conn.maxMessageSize, cap)
  const big = pattern(cap, 9)
  t.throws(() => p.a.conn.send(Buffer.alloc(cap + 1), 0, Delivery.RELIABLE_ORDERED), RangeError)
  t.throws(() => p.a.conn.send(Buffer.alloc(cap + 1), 0, Delivery.UNRELIABLE), /exceeds maxMessageSize/)
  t.equal(p.a.conn.queuedBytes, 0, 'nothing queued by the refused send')
  p.a.conn.send(big, 0, Delivery.RELIABLE_ORDERED)
  p.flush()
  t.equal(p.runUntil(() => p.b.received.length === 1 && p.a.conn.unackedMessages === 0, 10000), true)
  t.equal(Buffer.compare(p.b.received[0].data, big), 0)
  t.equal(p.b.conn.bufferedBytes, 0)
  t.equal(p.a.datagrams >= Math.ceil(cap / MTU), true)
})

t.test('configured cap and option validation', async (t) => {
  const host = { output() {}, deliver() {}, drain() {}, closed() {} }
  const c = new Connection(host, 0, { maxMessageSize: 5000 })
  t.throws(() => c.send(Buffer.alloc(5001), 0, 0), RangeError)
  t.equal(c.send(Buffer.alloc(5000), 0, 0), true)
  t.throws(() => c.send(Buffer.alloc(1), 16, 0), /channel must be an integer 0..15/)
  t.throws(() => c.send(Buffer.alloc(1), 1.5, 0), RangeError)
  t.throws(() => c.send(Buffer.alloc(1), 0, 4 as never), /delivery must be one of/)
  t.throws(() => c.send(Buffer.alloc(1), 0, 0, { resolve() {}, reject() {} }), /only reliable/)
  t.throws(() => new Connection(host, 0, { maxPayload: 100 }), /maxPayload/)
  t.throws(() => new Connection(host, 0, { channels: 0 }), /channels/)
  t.throws(() => new Connection(host, 0, { maxMessageSize: 64 << 20, maxPayload: 256 }), /fragments/)
  t.throws(() => new Connection(host, 0, { keepaliveMs: 0 }), /keepaliveMs/)
  t.throws(() => new Connection(host, 0, { maxAckDelay: -1 }), /maxAckDelay/)
})
