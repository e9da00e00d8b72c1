// Batches: small reliable messages of one stream queued back to back travel
// as one DATA frame (`messages`), acked, lost and resent as one, and are
// delivered one by one, exactly once, in order where promised.
import t from 'tap'
import { Connection, Ring, type ConnectionHost, type UndeliveredMessage } from '../../lib/core/connection.js'
import {
  decodeFrames, decodeFramesReference, Delivery, encodeFrameEntry, encodeFrames, FrameType, type Frame,
} from '../../lib/wire/codec.js'
import { batchEntrySize, batchItemSize, readBatchItems, writeBatchEntry, writeBatchItem } from '../../lib/wire/fast.js'
import { Pair } from './pair.js'
import { wirePair, type Captured } from './wire-pair.js'

const msg = (i: number, size = 10): Buffer => {
  const b = Buffer.alloc(size, i & 0xff)
  if (size >= 4) b.writeUInt32BE(i, 0)
  return b
}
const dataFrames = (out: Captured[]): Frame[] => out.flatMap((c) => c.frames.filter((f) => f.type === FrameType.DATA))
const ids = (got: { data: Buffer }[]): number[] => got.map((g) => g.data.readUInt32BE(0))
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i)

t.test('wire: a batch entry is what protobufjs writes for messages, and both decoders read it back', async (t) => {
  const messages = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(200, 7), Buffer.from('last one')]
  for (const [channel, delivery, sequence] of [[0, 2, 0], [5, 3, 0xfffffffe], [255, 3, 1]] as const) {
    const items = Buffer.alloc(1000)
    let used = 0
    for (const m of messages) used = writeBatchItem(items, used, m)
    t.equal(used, messages.reduce((n, m) => n + batchItemSize(m.length), 0))
    t.same(readBatchItems(items.subarray(0, used)).map((b) => Buffer.from(b)), messages)
    const size = batchEntrySize(channel, delivery, sequence, used)
    const out = Buffer.alloc(size + 3)
    t.equal(writeBatchEntry(out, 3, channel, delivery, sequence, items, used), size + 3)
    const ref = encodeFrameEntry({ type: FrameType.DATA, channel, delivery, sequence, messages })
    t.same(out.subarray(3), Buffer.from(ref), `ch ${channel} delivery ${delivery} seq ${sequence}: the reference bytes`)
    for (const decode of [decodeFrames, decodeFramesReference]) {
      const f = decode(out.subarray(3)) as Frame[]
      t.equal(f.length, 1)
      t.same(f[0].messages.map((b) => Buffer.from(b)), messages)
      t.equal(f[0].sequence, sequence)
    }
  }
  // A varint length of more than one byte.
  const big = Buffer.alloc(300, 1)
  const items = Buffer.alloc(400)
  const used = writeBatchItem(items, 0, big)
  t.equal(used, 1 + 2 + 300)
  t.same(Buffer.from(readBatchItems(items.subarray(0, used))[0]), big)
})

t.test('wire: a batch must be reliable, unfragmented and carry no data of its own', async (t) => {
  const m = [Buffer.from('x')]
  const cases: [string, Partial<Frame>][] = [
    ['unreliable', { delivery: Delivery.UNRELIABLE, messages: m }],
    ['sequenced', { delivery: Delivery.UNRELIABLE_SEQUENCED, messages: m }],
    ['fragmented', { delivery: Delivery.RELIABLE_ORDERED, fragmentCount: 2, fragmentIndex: 1, messages: m }],
    ['with data', { delivery: Delivery.RELIABLE_ORDERED, data: Buffer.from('y'), messages: m }],
  ]
  for (const [name, f] of cases) {
    const bytes = encodeFrames([{ type: FrameType.DATA, ...f }])
    t.equal(decodeFrames(bytes), 'bad-frame', name)
    t.equal(decodeFramesReference(bytes), 'bad-frame', `${name} (reference)`)
  }
  for (const delivery of [Delivery.RELIABLE_UNORDERED, Delivery.RELIABLE_ORDERED]) {
    t.ok(Array.isArray(decodeFrames(encodeFrames([{ type: FrameType.DATA, delivery, fragmentCount: 1, messages: m }]))))
  }
  // A truncated item is undecodable, as a truncated data field is.
  const good = Buffer.from(encodeFrames([{ type: FrameType.DATA, delivery: Delivery.RELIABLE_ORDERED, messages: [Buffer.alloc(20)] }]))
  good[1] -= 5
  t.equal(decodeFrames(good.subarray(0, good.length - 5)), 'undecodable')
})

t.test('Ring.last is the newest item', async (t) => {
  const r = new Ring<number>()
  t.equal(r.last(), undefined)
  for (let i = 0; i < 40; i++) {
    if (i % 3 === 0) r.shift()
    r.push(i)
    t.equal(r.last(), i)
  }
  while (r.length > 0) r.shift()
  t.equal(r.last(), undefined)
})

t.test('small messages of one stream share a frame; the receiver gets each, in order', async (t) => {
  const { a, b, pass } = wirePair()
  for (let i = 0; i < 50; i++) t.equal(a.conn.send(msg(i), 1, Delivery.RELIABLE_ORDERED), true)
  t.equal(a.conn.queuedBytes, 500, 'message bytes are what the queue counts')
  a.conn.flush(0)
  t.equal(a.conn.queuedBytes, 0)
  const frames = dataFrames(a.out)
  t.equal(frames.length, 1, 'one frame')
  t.equal(frames[0].messages.length, 50)
  t.equal(frames[0].sequence, 0)
  t.equal(a.out[0].bytes, batchEntrySize(1, Delivery.RELIABLE_ORDERED, 0, 50 * batchItemSize(10)),
    'the packet is that one entry: 12 bytes per message, not 25')
  pass(a, b, 1)
  t.same(ids(b.got), range(50))
  t.ok(b.got.every((g) => g.channel === 1 && g.delivery === Delivery.RELIABLE_ORDERED && g.data.length === 10))
  t.equal(b.conn.stats.messagesReceived, 50)
  t.equal(a.conn.stats.messagesSent, 50)
  // The ack releases the whole batch.
  b.conn.flush(2)
  pass(b, a, 2)
  t.equal(a.conn.unackedMessages, 0)
  t.equal(a.conn.inFlight, 0)
  // The next messages continue the sequence.
  for (let i = 50; i < 53; i++) a.conn.send(msg(i), 1, Delivery.RELIABLE_ORDERED)
  a.conn.flush(3)
  t.equal(dataFrames(a.out)[0].sequence, 50)
  pass(a, b, 4)
  t.same(ids(b.got), range(53))
})

t.test('what does not join a batch: other streams, large, awaited, unreliable, already sent', async (t) => {
  const { a, b, pass } = wirePair()
  // Alternating channels: each message is the tail of the queue for another stream.
  for (let i = 0; i < 6; i++) a.conn.send(msg(i), i % 2, Delivery.RELIABLE_ORDERED)
  a.conn.flush(0)
  t.same(dataFrames(a.out).map((f) => f.messages.length), [0, 0, 0, 0, 0, 0], 'six frames of their own')
  pass(a, b, 1)
  // Unreliable and sequenced messages are never batched; ordered and unordered are separate streams.
  for (const d of [Delivery.UNRELIABLE, Delivery.UNRELIABLE, Delivery.UNRELIABLE_SEQUENCED, Delivery.UNRELIABLE_SEQUENCED]) a.conn.send(msg(10), 2, d)
  for (let i = 0; i < 3; i++) a.conn.send(msg(20 + i), 2, Delivery.RELIABLE_UNORDERED)
  for (let i = 0; i < 3; i++) a.conn.send(msg(30 + i), 2, Delivery.RELIABLE_ORDERED)
  a.conn.flush(2)
  t.same(dataFrames(a.out).map((f) => [f.delivery, f.messages.length]), [[0, 0], [0, 0], [1, 0], [1, 0], [2, 3], [3, 3]])
  pass(a, b, 3)
  // A message over 1 KiB stays alone, and nothing joins it.
  a.conn.send(msg(40), 3, Delivery.RELIABLE_ORDERED)
  a.conn.send(msg(41, 1025), 3, Delivery.RELIABLE_ORDERED)
  a.conn.send(msg(42), 3, Delivery.RELIABLE_ORDERED)
  a.conn.send(msg(43, 1024), 3, Delivery.RELIABLE_ORDERED)
  a.conn.flush(4)
  t.same(dataFrames(a.out).map((f) => f.messages.length), [0, 0, 2], '40 alone (41 may not join it), 41 alone, 42 and 43 (1 KiB) batched')
  pass(a, b, 5)
  // An awaited message has its own frame; so does the next one (its tail is awaited).
  const acked = new Promise<void>((resolve, reject) => { a.conn.send(msg(50), 4, Delivery.RELIABLE_ORDERED, { resolve, reject }) })
  a.conn.send(msg(51), 4, Delivery.RELIABLE_ORDERED)
  a.conn.send(msg(52), 4, Delivery.RELIABLE_ORDERED)
  a.conn.flush(6)
  t.same(dataFrames(a.out).map((f) => f.messages.length), [0, 2])
  pass(a, b, 7)
  b.conn.flush(7)
  pass(b, a, 8)
  await acked
  // A frame already sent takes nothing more: the next message starts a new frame.
  a.conn.send(msg(60), 5, Delivery.RELIABLE_ORDERED)
  a.conn.flush(9)
  a.conn.send(msg(61), 5, Delivery.RELIABLE_ORDERED)
  a.conn.flush(10)
  t.same(dataFrames(a.out).map((f) => [f.sequence, f.messages.length]), [[0, 0], [1, 0]])
  pass(a, b, 11)
  t.same(b.got.filter((g) => g.channel === 5).map((g) => g.data.readUInt32BE(0)), [60, 61])
  t.same(b.got.filter((g) => g.channel === 3).map((g) => g.data.readUInt32BE(0)), [40, 41, 42, 43])
  t.same(b.got.filter((g) => g.channel === 4).map((g) => g.data.readUInt32BE(0)), [50, 51, 52])
  t.same(b.got.filter((g) => g.channel === 2 && g.delivery >= 2).map((g) => g.data.readUInt32BE(0)), [20, 21, 22, 30, 31, 32])
})

t.test('a batch fills at most a fragment; many messages make several full batches', async (t) => {
  const { a, b, pass } = wirePair() // maxPayload 1162: fragments of 1082 bytes
  for (let i = 0; i < 1000; i++) a.conn.send(msg(i, 64), 0, Delivery.RELIABLE_ORDERED)
  a.conn.flush(0)
  const frames = dataFrames(a.out)
  t.equal(frames.reduce((n, f) => n + f.messages.length, 0), 1000)
  t.ok(frames.every((f) => f.messages.length * batchItemSize(64) <= 1082), 'no batch exceeds a fragment')
  t.ok(frames.slice(0, -1).every((f) => f.messages.length === Math.floor(1082 / batchItemSize(64))), 'every batch but the last is full')
  t.ok(a.out.every((c) => c.bytes <= 1162))
  let seq = 0
  for (const f of frames) {
    t.equal(f.sequence, seq)
    seq += f.messages.length
  }
  pass(a, b, 1)
  t.same(ids(b.got), range(1000))
})

t.test('the batch count stays within half the stream window', async (t) => {
  const { a, b, pass } = wirePair({ streamWindow: 8 })
  for (let i = 0; i < 20; i++) a.conn.send(msg(i), 0, Delivery.RELIABLE_ORDERED)
  a.conn.flush(0)
  t.same(dataFrames(a.out).map((f) => f.messages.length), [4, 4], 'two batches of 4 fill the window of 8')
  const counts: number[] = []
  for (let now = 1; b.got.length < 20 && now < 20; now += 2) {
    pass(a, b, now)
    b.conn.flush(now + 1)
    pass(b, a, now + 1)
    a.conn.flush(now + 1)
    counts.push(...dataFrames(a.out).map((f) => f.messages.length))
  }
  t.same(counts, [4, 4, 4], 'then the window opens for the rest')
  t.same(ids(b.got), range(20))
  const one = wirePair({ streamWindow: 1 })
  for (let i = 0; i < 3; i++) one.a.conn.send(msg(i), 0, Delivery.RELIABLE_ORDERED)
  one.a.conn.flush(0)
  t.same(dataFrames(one.a.out).map((f) => f.messages.length), [0], 'a window of one: no batches, one message in flight')
})

t.test('a lost batch is resent whole and delivered once, in order; a duplicate is counted', async (t) => {
  const { a, b, pass } = wirePair()
  for (let i = 0; i < 30; i++) a.conn.send(msg(i), 0, Delivery.RELIABLE_ORDERED)
  a.conn.flush(0)
  for (let i = 30; i < 60; i++) a.conn.send(msg(i), 0, Delivery.RELIABLE_ORDERED)
  a.conn.flush(0)
  t.equal(a.out.length, 2)
  const first = a.out[0]
  pass(a, b, 1, (c) => c !== first) // the first batch is lost; the second waits
  t.same(b.got, [], 'nothing before message 0')
  t.equal(b.conn.bufferedBytes, 30 * (10 + 256), 'the second batch is held')
  // Acks of the second packet, then time: the first is declared lost and resent as it was.
  b.conn.flush(2)
  pass(b, a, 3)
  a.conn.onTimer(100)
  a.conn.flush(100)
  t.equal(a.conn.stats.framesRetransmitted, 1)
  const resent = dataFrames(a.out)
  t.same(resent.map((f) => [f.sequence, f.messages.length]), [[0, 30]])
  // Delivered twice over the wire (the resend and the original copy): once to the application.
  const again = a.out[0]
  pass(a, b, 101)
  b.conn.receive(first.pn, first.frames, first.bytes, 102)
  b.conn.receive(again.pn + 1000, again.frames, again.bytes, 102)
  t.same(ids(b.got), range(60))
  t.equal(b.conn.bufferedBytes, 0)
  t.ok(b.conn.stats.duplicateFrames >= 30, `${b.conn.stats.duplicateFrames} duplicate messages counted`)
})

t.test('reliable-unordered batches: delivered at once, each message once', async (t) => {
  const p = new Pair({ loss: 0.3, duplicate: 0.2, reorder: 0.2, delayMs: 5, jitterMs: 3, seed: 7 })
  const sent: number[] = []
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 50; i++) {
      const id = round * 50 + i
      p.a.conn.send(msg(id), 2, Delivery.RELIABLE_UNORDERED)
      sent.push(id)
    }
    p.flush()
    p.runUntil(() => false, 3)
  }
  t.ok(p.runUntil(() => p.b.received.length >= 1000 && p.a.conn.unackedMessages === 0, 60_000))
  const got = p.b.received.map((r) => Buffer.from(r.data).readUInt32BE(0))
  t.equal(got.length, 1000)
  t.same([...got].sort((x, y) => x - y), sent, 'every message exactly once')
  t.ok(p.a.conn.stats.framesRetransmitted > 0, 'losses happened')
})

t.test('ordered batches under loss, duplication and reordering: everything, once, in order', async (t) => {
  for (const seed of [1, 2, 3]) {
    const p = new Pair({ loss: 0.2, duplicate: 0.1, reorder: 0.1, delayMs: 5, jitterMs: 2, seed })
    let next = 0
    const sizes = [4, 10, 64, 300, 1024, 1025, 3000]
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 40; i++) {
        const size = sizes[(round * 7 + i) % sizes.length]
        p.a.conn.send(msg(next++, size), 0, Delivery.RELIABLE_ORDERED)
      }
      p.flush()
      p.runUntil(() => false, 2)
    }
    t.ok(p.runUntil(() => p.b.received.length >= next && p.a.conn.unackedMessages === 0, 120_000), `seed ${seed}: all acked`)
    const got = p.b.received.map((r) => Buffer.from(r.data).readUInt32BE(0))
    t.same(got, range(next), `seed ${seed}: ${next} messages in order, once`)
    t.ok(p.b.received.every((r, i) => r.data.length === sizes[(Math.floor(i / 40) * 7 + i % 40) % sizes.length]), 'sizes intact')
    t.equal(p.b.conn.bufferedBytes, 0)
  }
})

t.test('receiver: a batch beyond the window or the buffer is refused whole (unacked, so resent)', async (t) => {
  const { a, b } = wirePair({ streamWindow: 16, receiveBufferLimit: 4096 })
  const batch = (sequence: number, n: number, size = 10): Frame => ({
    type: FrameType.DATA, channel: 0, delivery: Delivery.RELIABLE_ORDERED, sequence, fragmentIndex: 0, fragmentCount: 0,
    data: new Uint8Array(0), largest: 0, ackDelayUs: 0, firstRange: 0, ranges: [], reason: 0,
    messages: range(n, sequence).map((i) => msg(i, size)),
  })
  void a
  t.equal(b.conn.receive(0, [batch(10, 6)], 100, 0), true, 'ends at 15: inside the window of 16')
  t.equal(b.conn.receive(1, [batch(11, 6)], 100, 0), false, 'ends at 16: refused')
  t.equal(b.conn.stats.packetsRefused, 1)
  t.equal(b.conn.bufferedBytes, 6 * (10 + 256), 'held, with 256 bytes of overhead each')
  t.equal(b.conn.receive(2, [batch(1, 2, 1000)], 100, 0), false, '2 × (1000 + 256) more: over the receive buffer of 4 KiB')
  t.equal(b.conn.receive(3, [batch(1, 3, 300)], 100, 0), true, '3 × (300 + 256) more: within it')
  t.same(b.got, [])
  t.equal(b.conn.receive(4, [batch(0, 1)], 100, 0), true, 'message 0 releases 1..3, then 10..15 wait for 4..9')
  t.same(ids(b.got), range(4))
  t.equal(b.conn.receive(5, [batch(4, 6)], 100, 0), true)
  t.same(ids(b.got), range(16))
  t.equal(b.conn.receive(6, [batch(0, 16)], 100, 0), true, 'all old: accepted as duplicates')
  t.equal(b.conn.receive(7, [batch(14, 3)], 100, 0), true, 'partly old: the new one is delivered')
  t.same(ids(b.got), range(17))
  t.equal(b.conn.bufferedBytes, 0)
})

t.test('a batch whose sequence has fragments pending is a contradiction, counted', async (t) => {
  const { b } = wirePair()
  const base = {
    type: FrameType.DATA, channel: 0, delivery: Delivery.RELIABLE_ORDERED, data: new Uint8Array(0), largest: 0,
    ackDelayUs: 0, firstRange: 0, ranges: [], reason: 0,
  }
  b.conn.receive(0, [{ ...base, sequence: 1, fragmentIndex: 0, fragmentCount: 2, data: Buffer.alloc(5), messages: [] }], 50, 0)
  b.conn.receive(1, [{ ...base, sequence: 1, fragmentIndex: 0, fragmentCount: 0, messages: [msg(1), msg(2)] }], 50, 0)
  t.equal(b.conn.stats.badFrames, 1, 'message 1 comes as fragments and as a whole')
  t.same(ids(b.got), [], 'sequence 2 waits for 0 and 1')
  t.equal(b.conn.receive(2, [{ ...base, sequence: 0, fragmentIndex: 0, fragmentCount: 0, messages: [msg(0)] }], 50, 0), true)
  b.conn.receive(3, [{ ...base, sequence: 1, fragmentIndex: 1, fragmentCount: 2, data: Buffer.alloc(5, 1), messages: [] }], 50, 0)
  t.same(b.got.map((g) => g.data.length), [10, 10, 10], '0, then 1 from its fragments, then 2')
})

t.test('closing with batches unacked reports every message in them, in order', async (t) => {
  let undelivered: UndeliveredMessage[] = []
  const host: ConnectionHost = {
    output() {}, deliver() {}, drain() {},
    closed: (_c, _r, _b, u) => { undelivered = u },
  }
  const c = new Connection(host, 0)
  for (let i = 0; i < 200; i++) c.send(msg(i, 20), 0, Delivery.RELIABLE_ORDERED)
  c.flush(0)
  for (let i = 200; i < 210; i++) c.send(msg(i, 20), 0, Delivery.RELIABLE_ORDERED) // still queued
  c.send(msg(210, 2000), 0, Delivery.RELIABLE_ORDERED) // fragmented
  c.send(msg(211, 20), 1, Delivery.RELIABLE_UNORDERED)
  c.send(msg(212, 20), 1, Delivery.RELIABLE_UNORDERED)
  c.close()
  t.same(undelivered.map((u) => Buffer.from(u.data).readUInt32BE(0)), range(213))
  t.ok(undelivered.slice(0, 210).every((u) => u.data.length === 20 && u.channel === 0 && u.delivery === Delivery.RELIABLE_ORDERED))
  t.equal(undelivered[210].data.length, 2000)
  t.same(undelivered.slice(211).map((u) => [u.channel, u.delivery]), [[1, 2], [1, 2]])
})

t.test('queued bytes and drain count message bytes, batched or not', async (t) => {
  const { a } = wirePair({ sendQueueHighWater: 1000 })
  let ok = true
  let n = 0
  while (ok) ok = a.conn.send(msg(n++, 100), 0, Delivery.RELIABLE_ORDERED)
  t.equal(n, 10, 'high water at 10 × 100 bytes')
  t.equal(a.conn.queuedBytes, 1000)
  a.conn.flush(0)
  t.equal(a.conn.queuedBytes, 0)
  t.equal(a.drains, 1)
})
