// The send side's bookkeeping: the ring queue, one tracked object per
// single-frame message vs. a shared one for fragments, waiters, the stream
// window and ACK ranges wider than what is in flight.
import t from 'tap'
import { Connection, Ring, type ConnectionHost, type UndeliveredMessage } from '../../lib/core/connection.js'
import { decodeFrames, Delivery, FrameType, type Frame } from '../../lib/wire/codec.js'
import { wirePair } from './wire-pair.js'

function frame(f: Partial<Frame>): Frame {
  return {
    type: 0, channel: 0, delivery: 0, sequence: 0, fragmentIndex: 0, fragmentCount: 0, data: new Uint8Array(0),
    largest: 0, ackDelayUs: 0, firstRange: 0, ranges: [], reason: 0, messages: [], ...f,
  }
}

interface Lone {
  conn: Connection
  out: { pn: number, frames: Frame[] }[]
  closed: UndeliveredMessage[] | null
}

function lone(options = {}): Lone {
  const l: Lone = { conn: undefined as unknown as Connection, out: [], closed: null }
  const host: ConnectionHost = {
    output: (_c, pn, payload) => { l.out.push({ pn, frames: decodeFrames(payload) as Frame[] }) },
    deliver() {}, drain() {},
    closed: (_c, _r, _b, undelivered) => { l.closed = undelivered },
  }
  l.conn = new Connection(host, 0, options)
  return l
}

const ack = (largest: number, firstRange: number, ranges: number[] = []): Frame =>
  frame({ type: FrameType.ACK, largest, firstRange, ranges })

t.test('Ring: FIFO across wraparound and growth, indexed reads, trimmed when empty and large', async (t) => {
  const r = new Ring<number>()
  t.equal(r.length, 0)
  t.equal(r.peek(), undefined)
  t.equal(r.shift(), undefined)
  const start = r.capacity
  // Wrap the head around a small ring several times.
  let next = 0
  let expect = 0
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 5; i++) r.push(next++)
    for (let i = 0; i < 3; i++) t.equal(r.shift(), expect++)
  }
  t.equal(r.length, 20)
  t.ok(r.capacity >= 20, 'grew to hold everything')
  for (let i = 0; i < r.length; i++) if (r.at(i) !== expect + i) t.fail(`at(${i})`)
  t.equal(r.peek(), expect)
  while (r.length > 0) t.equal(r.shift(), expect++)
  t.equal(expect, next)
  // A large ring keeps its slots when it empties, and gives them back on trim().
  for (let i = 0; i < 10_000; i++) r.push(i)
  const big = r.capacity
  t.ok(big >= 10_000)
  r.trim()
  t.equal(r.capacity, big, 'not trimmed while in use')
  for (let i = 0; i < 10_000; i++) if (r.shift() !== i) t.fail(`shift ${i}`)
  t.equal(r.capacity, big, 'kept while the connection is busy')
  r.trim()
  t.equal(r.capacity, start, 'released')
  r.push(1)
  r.shift()
  r.trim()
  t.equal(r.capacity, start, 'a small ring stays')
  r.push(1)
  r.push(2)
  r.clear()
  t.equal(r.length, 0)
  t.equal(r.peek(), undefined)
})

t.test('waiters: single-frame and fragmented messages resolve when acked', async (t) => {
  const { a, b, pass } = wirePair()
  const done: string[] = []
  const w = (name: string) => ({ resolve: () => done.push(name), reject: () => done.push(`${name} rejected`) })
  a.conn.send(Buffer.alloc(10, 1), 0, Delivery.RELIABLE_ORDERED, w('small'))
  a.conn.send(Buffer.alloc(5000, 2), 1, Delivery.RELIABLE_UNORDERED, w('large'))
  a.conn.send(Buffer.alloc(10, 3), 0, Delivery.UNRELIABLE)
  t.equal(a.conn.unackedMessages, 2, 'the unreliable message is not tracked')
  a.conn.flush(0)
  t.ok(a.out.length >= 5, 'the large message went in fragments')
  const data = a.out.flatMap((c) => c.frames).filter((f) => f.type === FrameType.DATA)
  const small = data.filter((f) => f.channel === 0)
  t.same(small.map((f) => [f.delivery, f.fragmentIndex, f.fragmentCount, f.data.length]),
    [[Delivery.RELIABLE_ORDERED, 0, 0, 10], [Delivery.UNRELIABLE, 0, 0, 10]], 'an awaited small message is one plain frame on the wire')
  const large = data.filter((f) => f.channel === 1)
  t.same(large.map((f) => f.fragmentIndex), [0, 1, 2, 3, 4])
  t.ok(large.every((f) => f.fragmentCount === 5))
  pass(a, b, 1)
  b.conn.flush(1)
  t.same(done, [])
  pass(b, a, 2)
  t.same(done.sort(), ['large', 'small'])
  t.equal(a.conn.unackedMessages, 0)
  t.equal(a.conn.inFlight, 0)
  t.same(b.got.map((g) => g.data.length).sort((x, y) => x - y), [10, 10, 5000])
})

t.test('close reports whole messages undelivered (single-frame and fragmented) and rejects waiters', async (t) => {
  const l = lone()
  const rejected: unknown[] = []
  const w = { resolve: () => t.fail('not acked'), reject: (e: unknown) => rejected.push(e) }
  const big = Buffer.alloc(3000, 7)
  l.conn.send(Buffer.alloc(20, 1), 2, Delivery.RELIABLE_ORDERED, w)
  l.conn.send(big, 2, Delivery.RELIABLE_ORDERED, w)
  l.conn.send(Buffer.alloc(20, 2), 2, Delivery.UNRELIABLE_SEQUENCED)
  l.conn.flush(0)
  l.conn.close()
  t.equal(rejected.length, 2)
  t.ok(l.closed !== null)
  t.same(l.closed!.map((u) => [u.channel, u.delivery, u.data.length]), [[2, Delivery.RELIABLE_ORDERED, 20], [2, Delivery.RELIABLE_ORDERED, 3000]])
  t.equal(l.closed![1].data, big, 'the message itself, not a fragment')
})

t.test('stream window: no reliable message more than streamWindow ahead of the oldest unacked', async (t) => {
  const l = lone({ streamWindow: 3 })
  for (let i = 0; i < 6; i++) l.conn.send(Buffer.alloc(1000, i), 0, Delivery.RELIABLE_ORDERED)
  for (let i = 0; i < 6; i++) l.conn.send(Buffer.alloc(10, i), 1, Delivery.UNRELIABLE)
  l.conn.flush(0)
  t.equal(l.out.length, 3, 'three 1000 B messages, one packet each, then the window is full')
  t.equal(l.conn.queuedBytes, 3000 + 60, 'the unreliable ones wait behind in the same queue')
  // Ack the second and third packets only: the oldest is still unacked.
  l.conn.receive(0, [ack(l.out[2].pn, 1)], 10, 1)
  l.conn.flush(1)
  t.equal(l.out.length, 3, 'still blocked behind message 0')
  t.equal(l.conn.unackedMessages, 6, 'counted from the oldest unacked message, queued ones included')
  l.conn.receive(1, [ack(l.out[0].pn, 0)], 10, 2)
  t.equal(l.conn.unackedMessages, 3, 'messages 3..5')
  l.conn.flush(2)
  t.equal(l.conn.queuedBytes, 0, 'window opened: the rest went out')
  const seqs = l.out.flatMap((p) => p.frames.filter((f) => f.type === FrameType.DATA && f.delivery === Delivery.RELIABLE_ORDERED).map((f) => f.sequence))
  t.same(seqs, [0, 1, 2, 3, 4, 5])
})

t.test('an ACK range wider than what is in flight acks only the packets inside it', async (t) => {
  const l = lone()
  for (let i = 0; i < 10; i++) l.conn.send(Buffer.alloc(1000, i), 0, Delivery.RELIABLE_ORDERED)
  l.conn.flush(0)
  t.equal(l.out.length, 10)
  t.same(l.out.map((p) => p.pn), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  const pn = l.out.map((p) => p.pn)
  l.conn.receive(0, [ack(pn[4], 4)], 10, 1) // packets 0..4, walked one by one
  t.equal(l.conn.inFlight, 5)
  // 0..7 covers 8 packet numbers, more than the 5 in flight: the map is walked instead.
  l.conn.receive(1, [ack(pn[7], 7)], 10, 2)
  t.equal(l.conn.inFlight, 2, 'packets 8 and 9 are not acked by a range ending at 7')
  t.equal(l.conn.unackedMessages, 2)
  // A wide range with a hole below it: [9..9] and [0..7] (gap of one: packet 8).
  l.conn.receive(2, [ack(pn[9], 0, [1, 7])], 10, 3)
  t.equal(l.conn.inFlight, 1)
  t.equal(l.conn.unackedMessages, 2, 'message 8 is unacked, so 9 still counts behind it')
  l.conn.receive(3, [ack(pn[9], 9)], 10, 4)
  t.equal(l.conn.inFlight, 0)
  t.equal(l.conn.unackedMessages, 0)
})

t.test('after a burst, a timer trims the emptied queues and the connection carries on', async (t) => {
  const { a, b, pass } = wirePair()
  let now = 0
  let sent = 0
  const burst = (n: number): void => {
    for (let i = 0; i < n; i++, sent++) a.conn.send(Buffer.from([sent & 0xff, sent >>> 8]), 0, Delivery.RELIABLE_ORDERED)
    for (let i = 0; i < 50 && (a.conn.unackedMessages > 0 || a.conn.queuedBytes > 0); i++) {
      a.conn.flush(now)
      pass(a, b, now + 0.1)
      b.conn.onTimer(now + 2)
      b.conn.flush(now + 2)
      pass(b, a, now + 2)
      now += 2
    }
  }
  burst(20_000)
  t.equal(a.conn.unackedMessages, 0)
  a.conn.onTimer(now)
  burst(100)
  t.equal(a.conn.unackedMessages, 0)
  t.equal(b.got.length, 20_100)
  let wrong = 0
  for (let i = 0; i < b.got.length; i++) if (b.got[i].data[0] !== (i & 0xff) || b.got[i].data[1] !== ((i >>> 8) & 0xff)) wrong++
  t.equal(wrong, 0, 'every message once, in order')
})

/** Counters that show how the sent-packet bookkeeping behaved. */
function counters(c: Connection): Record<string, number> {
  return {
    inFlight: c.inFlight, unacked: c.unackedMessages, queued: c.queuedBytes, lost: c.stats.packetsLost,
    spurious: c.stats.spuriousLosses, retx: c.stats.framesRetransmitted, rto: c.stats.rtoExpirations, deadline: c.nextDeadline(),
  }
}

/** ACK frame for every packet number 0..last except those in `holes`. */
function ackAllBut(last: number, holes: Set<number>): Frame {
  const rs: [number, number][] = []
  let hi: number | null = null
  for (let pn = last; pn >= 0; pn--) {
    if (holes.has(pn)) {
      if (hi !== null) rs.push([pn + 1, hi])
      hi = null
    } else if (hi === null) hi = pn
  }
  if (hi !== null) rs.push([0, hi])
  const ranges: number[] = []
  for (let i = 1; i < rs.length; i++) ranges.push(rs[i - 1][0] - rs[i][1] - 1, rs[i][1] - rs[i][0])
  return ack(rs[0][1], rs[0][1] - rs[0][0], ranges)
}

// The expected figures below are what the connection did when sent packets
// lived in a Map (same scenario, same counters): the ring must not change them.
t.test('lost packets kept for reordering while thousands after them are acked; their late ack is spurious', async (t) => {
  // Exact RTO deadlines below: without the peer's ack delay on top (test/endpoint/ack-frequency.test.ts covers it).
  const l = lone({ maxAckDelay: 0 })
  for (let i = 0; i < 3000; i++) l.conn.send(Buffer.alloc(1000, i & 0xff), 0, Delivery.RELIABLE_ORDERED)
  let now = 1
  let rpn = 0
  l.conn.flush(now)
  // Never ack a packet carrying message 0 (nor its retransmissions) until the end.
  const holes = new Set<number>()
  const seen: Record<string, number>[] = []
  for (let round = 0; round < 8; round++) {
    for (const p of l.out) if (p.frames.some((f) => f.type === FrameType.DATA && f.sequence === 0)) holes.add(p.pn)
    l.conn.receive(rpn++, [ackAllBut(l.out[l.out.length - 1].pn, holes)], 10, now)
    now += 1
    l.conn.onTimer(now)
    l.conn.flush(now)
    seen.push({ sent: l.out.length, ...counters(l.conn) })
  }
  t.same(seen[0], { sent: 2048, inFlight: 1024, unacked: 3000, queued: 953000, lost: 1, spurious: 0, retx: 1, rto: 0, deadline: 7 })
  t.same(seen[2], { sent: 3003, inFlight: 1, unacked: 3000, queued: 0, lost: 3, spurious: 0, retx: 3, rto: 0, deadline: 9 })
  t.same(seen[7], { sent: 3004, inFlight: 1, unacked: 3000, queued: 0, lost: 4, spurious: 0, retx: 4, rto: 1, deadline: 19 })
  t.same([...holes].sort((a, b) => a - b), [0, 1024, 2048, 3002])
  const last = l.out[l.out.length - 1].pn
  l.conn.receive(rpn++, [ack(last, last)], 10, now)
  t.same(counters(l.conn), { inFlight: 0, unacked: 0, queued: 0, lost: 4, spurious: 4, retx: 4, rto: 1, deadline: 1009 })
})

t.test('RTO probes, then an ACK with gaps: losses by threshold, later acked as spurious', async (t) => {
  const l = lone()
  for (let i = 0; i < 50; i++) l.conn.send(Buffer.alloc(1000, i), 0, Delivery.RELIABLE_ORDERED)
  l.conn.flush(0)
  for (let now = 0; now < 2000; now += 50) {
    l.conn.onTimer(now)
    l.conn.flush(now)
  }
  t.equal(l.out.length, 54)
  t.same(counters(l.conn), { inFlight: 50, unacked: 50, queued: 0, lost: 4, spurious: 0, retx: 4, rto: 4, deadline: 3100 })
  const last = l.out[l.out.length - 1].pn
  l.conn.receive(0, [ack(last, 5, [3, 10, 2, 4])], 10, 2000)
  t.same(counters(l.conn), { inFlight: 0, unacked: 46, queued: 0, lost: 32, spurious: 0, retx: 4, rto: 4, deadline: 2500 })
  l.conn.onTimer(2100)
  l.conn.flush(2100)
  const newest = l.out[l.out.length - 1].pn
  l.conn.receive(1, [ack(newest, newest)], 10, 2200)
  t.same(counters(l.conn), { inFlight: 0, unacked: 0, queued: 0, lost: 32, spurious: 32, retx: 32, rto: 4, deadline: 3100 })
})

t.test('a lost packet with reliable and unreliable frames resends only the reliable one', async (t) => {
  const l = lone()
  l.conn.send(Buffer.alloc(30, 1), 0, Delivery.RELIABLE_ORDERED)
  l.conn.send(Buffer.alloc(30, 2), 1, Delivery.UNRELIABLE)
  l.conn.send(Buffer.alloc(30, 3), 2, Delivery.UNRELIABLE_SEQUENCED)
  l.conn.flush(0)
  t.equal(l.out.length, 1, 'one packet carries all three')
  for (let i = 0; i < 3; i++) l.conn.send(Buffer.alloc(1000, i), 3, Delivery.RELIABLE_UNORDERED)
  l.conn.flush(0)
  t.same(l.out.map((p) => p.pn), [0, 1, 2, 3])
  l.conn.receive(0, [ack(3, 2)], 10, 1) // 1..3: packet 0 is three behind, lost
  t.equal(l.conn.stats.packetsLost, 1)
  l.conn.flush(1)
  t.equal(l.out.length, 5)
  const resent = l.out[4].frames.filter((f) => f.type === FrameType.DATA)
  t.same(resent.map((f) => [f.channel, f.delivery, f.data[0]]), [[0, Delivery.RELIABLE_ORDERED, 1]])
  t.equal(l.conn.stats.framesRetransmitted, 1)
  l.conn.receive(1, [ack(4, 4)], 10, 2) // the resend and the original (late) are both acked
  t.equal(l.conn.inFlight, 0)
  t.equal(l.conn.unackedMessages, 0)
  t.equal(l.conn.stats.spuriousLosses, 1)
})

t.test('maxInFlightBytes: the packet that crosses it is the last until an ack frees room', async (t) => {
  t.throws(() => lone({ maxInFlightBytes: 0 }), RangeError, 'at least 1')
  t.throws(() => lone({ maxInFlightBytes: 1.5 }), RangeError, 'an integer')
  const l = lone({ maxInFlightBytes: 3000, maxPayload: 1162 })
  for (let i = 0; i < 20; i++) l.conn.send(Buffer.alloc(500, i), 0, Delivery.RELIABLE_ORDERED)
  l.conn.flush(0)
  const first = l.out.length
  t.ok(l.conn.inFlightBytes >= 3000 && l.conn.inFlightBytes < 3000 + 1162, `in flight: ${l.conn.inFlightBytes} bytes in ${first} packets`)
  t.equal(first, 3, 'three 1000-byte packets (two 500-byte messages each), the third crossing 3000')
  l.conn.flush(1)
  t.equal(l.out.length, first, 'nothing more while the bytes are in flight')
  l.conn.receive(0, [ack(0, 0)], 50, 2)
  l.conn.flush(2)
  t.equal(l.out.length, first + 1, 'one packet acked: one more goes out')
  t.ok(l.conn.inFlightBytes >= 3000 && l.conn.inFlightBytes < 3000 + 1162, `in flight again: ${l.conn.inFlightBytes}`)
})

t.test('an awaited unreliable message is refused before it takes a sequence number', async (t) => {
  const l = lone()
  t.throws(() => l.conn.send(Buffer.from('x'), 0, Delivery.UNRELIABLE_SEQUENCED, { resolve() {}, reject() {} }), RangeError)
  l.conn.send(Buffer.from('y'), 0, Delivery.UNRELIABLE_SEQUENCED)
  l.conn.flush(0)
  const data = l.out.flatMap((p) => p.frames.filter((f) => f.type === FrameType.DATA))
  t.same(data.map((f) => f.sequence), [0], 'the next message is still number 0')
  t.equal(l.conn.queuedBytes, 0)
})
