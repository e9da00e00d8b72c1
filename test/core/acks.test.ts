import t from 'tap'
import { decodeAckRanges, ReceivedPackets, type AckRange } from '../../lib/core/acks.js'
import { Connection, type ConnectionHost } from '../../lib/core/connection.js'
import { decodeFrames, encodeFrames, FrameType, limits, type Frame } from '../../lib/wire/codec.js'

function frame(f: Partial<Frame>): Frame {
  return {
    type: 0, channel: 0, delivery: 0, sequence: 0, fragmentIndex: 0, fragmentCount: 0, data: new Uint8Array(0),
    largest: 0, ackDelayUs: 0, firstRange: 0, ranges: [], reason: 0, messages: [], ...f,
  }
}

function plain(r: AckRange[]): [number, number][] {
  return r.map((x) => [x.low, x.high])
}

t.test('ReceivedPackets: ranges newest first, merged, duplicates seen', async (t) => {
  const r = new ReceivedPackets()
  t.equal(r.largest, undefined)
  t.equal(r.has(0), false)
  for (const pn of [1, 2, 3, 7, 8, 5]) r.add(pn)
  t.same(plain(r.ranges), [[7, 8], [5, 5], [1, 3]])
  t.equal(r.largest, 8)
  r.add(6) // joins [5,5] and [7,8]
  t.same(plain(r.ranges), [[5, 8], [1, 3]])
  r.add(4)
  t.same(plain(r.ranges), [[1, 8]])
  r.add(0)
  t.same(plain(r.ranges), [[0, 8]])
  for (let pn = 0; pn <= 8; pn++) t.equal(r.has(pn), true, `has ${pn}`)
  t.equal(r.has(9), false)
  r.add(12)
  t.same(plain(r.ranges), [[12, 12], [0, 8]])
  t.same(r.toAck(), { largest: 12, firstRange: 0, ranges: [3, 8] }, "gap = missing packets (12 - 8 - 1), length = high - low")
})

t.test('ReceivedPackets across the 2^32 wrap', async (t) => {
  const r = new ReceivedPackets()
  for (const pn of [0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 4]) r.add(pn)
  t.same(plain(r.ranges), [[4, 4], [0xfffffffd, 1]])
  t.equal(r.largest, 4)
  t.equal(r.has(0xffffffff), true)
  t.equal(r.has(2), false)
  t.equal(r.has(3), false)
  const ack = r.toAck()
  t.same(ack, { largest: 4, firstRange: 0, ranges: [2, 4] })
  t.same(plain(decodeAckRanges(ack, 16)!), plain(r.ranges))
})

t.test('ReceivedPackets: older than the window counts as seen; range count bounded', async (t) => {
  const r = new ReceivedPackets(4, 64)
  r.add(1000)
  t.equal(r.has(1000 - 63), false, 'inside the window, not received')
  t.equal(r.has(1000 - 64), true, 'behind the window: too old to tell, treated as seen')
  for (let i = 0; i < 10; i++) r.add(1002 + 2 * i)
  t.equal(r.ranges.length, 4, 'oldest ranges forgotten')
  t.same(plain(r.ranges), [[1020, 1020], [1018, 1018], [1016, 1016], [1014, 1014]])
  r.add(100000) // jump beyond the window clears the bitmap
  t.equal(r.has(1020), true, 'too old now')
  t.equal(r.has(99999), false)
  const toAck = r.toAck(2)
  t.equal(toAck.ranges.length, 4, 'toAck reports at most maxRanges extra ranges')
})

t.test('ReceivedPackets.has matches a model over random arrivals, jumps and the 2^32 wrap', async (t) => {
  let seed = 11
  const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 }
  for (const window of [32, 64, 96, 8192]) {
    for (const start of [0, 0xfffff000, 0xffffffff - 40]) {
      const r = new ReceivedPackets(16, window)
      const got = new Set<number>()
      let largest = start
      let wrong = 0
      for (let i = 0; i < 3000; i++) {
        const x = rand()
        // Mostly small steps ahead, some reordering behind, now and then a jump.
        const step = x < 0.6 ? 1 + Math.floor(rand() * 3) : x < 0.95 ? -Math.floor(rand() * window * 1.2) : Math.floor(rand() * window * 1.5)
        const pn = (largest + step) >>> 0
        const behind = (largest - pn) | 0
        const expected = i === 0 ? false : behind >= window ? true : got.has(pn)
        if (r.has(pn) !== expected) wrong++
        if (!r.has(pn)) {
          r.add(pn)
          got.add(pn)
          if (i === 0 || ((pn - largest) | 0) > 0) largest = pn
        }
        if (r.largest !== largest) wrong++
        // Spot-check the whole window behind the largest.
        if (i % 500 === 499) {
          for (let b = 0; b < window + 2; b++) {
            const q = (largest - b) >>> 0
            if (r.has(q) !== (b >= window ? true : got.has(q))) wrong++
          }
        }
      }
      t.equal(wrong, 0, `window ${window}, start ${start}`)
    }
  }
})

t.test('ack encode/decode round trip over random sets', async (t) => {
  let seed = 7
  const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296 }
  for (let round = 0; round < 50; round++) {
    const r = new ReceivedPackets(64)
    const start = round % 2 === 0 ? 0xffffff00 : 100
    const got = new Set<number>()
    for (let i = 0; i < 300; i++) {
      if (rand() < 0.6) {
        const pn = (start + i) >>> 0
        r.add(pn)
        got.add(pn)
      }
    }
    const ack = r.toAck(64)
    const decoded = decodeAckRanges(ack, limits.maxAckRanges)!
    t.same(plain(decoded), plain(r.ranges), `round ${round}`)
    // Every pn inside a decoded range was received, and the newest ones are all reported.
    let wrong = 0
    for (const x of decoded) for (let pn = x.low; ; pn = (pn + 1) >>> 0) { if (!got.has(pn)) wrong++; if (pn === x.high) break }
    t.equal(wrong, 0)
  }
})

t.test('decodeAckRanges bounds', async (t) => {
  t.same(plain(decodeAckRanges({ largest: 10, firstRange: 2, ranges: [1, 1] }, 4)!), [[8, 10], [5, 6]])
  t.equal(decodeAckRanges({ largest: 10, firstRange: 0, ranges: [0, 0, 0, 0, 0, 0] }, 2), null, 'too many ranges')
  t.equal(decodeAckRanges({ largest: 10, firstRange: 0, ranges: [0] }, 2), null, 'odd ranges')
  t.equal(decodeAckRanges({ largest: 10, firstRange: 0x80000000, ranges: [] }, 2), null, 'first range > 2^31')
  t.not(decodeAckRanges({ largest: 10, firstRange: 0x7fffffff, ranges: [] }, 2), null, 'first range 2^31-1 is fine')
  t.equal(decodeAckRanges({ largest: 10, firstRange: 10, ranges: [0x40000000, 0x40000000] }, 2), null, 'total span > 2^31')
  t.equal(decodeAckRanges({ largest: 10, firstRange: 0, ranges: [0xffffffff, 0] }, 2), null, 'huge gap')
})

/** A connection whose output is captured; the peer side is driven by hand. */
function lone(): { conn: Connection, out: { pn: number, frames: Frame[] }[] } {
  const out: { pn: number, frames: Frame[] }[] = []
  const host: ConnectionHost = {
    output: (_c, pn, payload) => { out.push({ pn, frames: decodeFrames(payload) as Frame[] }) },
    deliver() {}, drain() {}, closed() {},
  }
  return { conn: new Connection(host, 0), out }
}

t.test('Connection: ACK for packets never sent is a bad frame; bounds checked before use', async (t) => {
  const { conn, out } = lone()
  conn.receive(0, [frame({ type: FrameType.ACK, largest: 0 })], 10, 1)
  t.equal(conn.stats.badFrames, 1, 'nothing sent yet: any ACK is bogus')
  for (let i = 0; i < 3; i++) conn.send(Buffer.alloc(1000, i), 0, 3)
  conn.flush(1)
  t.equal(out.length, 3, 'three 1000 B messages: one packet each (maxPayload 1162)')
  const sent = out.length
  const lastPn = out[out.length - 1].pn
  conn.receive(1, [frame({ type: FrameType.ACK, largest: lastPn + 1 })], 10, 2)
  t.equal(conn.stats.badFrames, 2, 'largest beyond the last packet sent')
  conn.receive(2, [frame({ type: FrameType.ACK, largest: lastPn, firstRange: 0x80000000 })], 10, 2)
  t.equal(conn.stats.badFrames, 3, 'range spanning more than 2^31')
  const many = new Array(2 * (limits.maxAckRanges + 1)).fill(0)
  conn.receive(3, [frame({ type: FrameType.ACK, largest: lastPn, ranges: many })], 10, 2)
  t.equal(conn.stats.badFrames, 4, 'more ranges than limits.maxAckRanges')
  t.equal(conn.inFlight, sent, 'nothing was acked by the bad frames')
  t.equal(conn.unackedMessages, 3)
  // A range far larger than what is in flight is clamped, not iterated.
  conn.receive(4, [frame({ type: FrameType.ACK, largest: lastPn, firstRange: 0x7fffffff })], 10, 3)
  t.equal(conn.stats.badFrames, 4)
  t.equal(conn.inFlight, 0, 'huge (valid) range acks what is in flight')
  t.equal(conn.unackedMessages, 0)
})

t.test('Connection: an ACK acknowledges exactly the packets decodeAckRanges lists, its ranges walked without building them', async (t) => {
  let seed = 12345
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 }
  for (let trial = 0; trial < 40; trial++) {
    const { conn, out } = lone()
    const N = 40
    for (let i = 0; i < N; i++) conn.send(Buffer.alloc(1000, i), 0, 3)
    conn.flush(1)
    t.equal(out.length, N)
    // The peer received a random subset (with gaps: several ranges); trial 0: all of them.
    const got = new ReceivedPackets()
    for (const o of out) if (trial === 0 || rnd() < 0.6) got.add(o.pn)
    if (got.largest === undefined) got.add(out[N - 1].pn)
    const ack = got.toAck(limits.maxAckRanges)
    let covered = 0
    for (const r of decodeAckRanges(ack, limits.maxAckRanges)!) for (const o of out) if (o.pn >= r.low && o.pn <= r.high) covered++
    conn.receive(0, [frame({ type: FrameType.ACK, largest: ack.largest, firstRange: ack.firstRange, ranges: [...ack.ranges] })], 10, 2)
    // Every packet sent is now acknowledged, declared lost (a gap the ACK's ranges leave), or still in flight.
    const acked = N - conn.inFlight - conn.stats.packetsLost
    if (acked !== covered || conn.stats.badFrames !== 0) {
      t.fail(`trial ${trial}: ${acked} acknowledged, ${covered} listed (${ack.ranges.length / 2 + 1} ranges)`)
      return
    }
  }
  t.pass('40 random ACKs: the same packets acknowledged')
})

t.test('Connection: an ACK reaching past the last packet sent acknowledges what it covers of the real ones', async (t) => {
  const { conn, out } = lone()
  for (let i = 0; i < 3; i++) conn.send(Buffer.alloc(1000, i), 0, 3)
  conn.flush(1)
  const lastPn = out[out.length - 1].pn
  // One range, [lastPn - 1, lastPn + 2]: it reaches two packet numbers past the last one sent.
  conn.receive(0, [frame({ type: FrameType.ACK, largest: lastPn + 2, firstRange: 3 })], 10, 2)
  t.equal(conn.stats.badFrames, 1, 'counted as bad')
  t.equal(conn.inFlight + conn.stats.packetsLost, 1, 'the two real packets it covers are acknowledged, the first is not')
  t.equal(conn.inFlight, 1, 'the first is still in flight (one behind: not lost yet)')
})

t.test('codec refuses 300 ack ranges before the connection sees them', async (t) => {
  const payload = encodeFrames([{ type: FrameType.ACK, largest: 5, ranges: new Array(600).fill(1) }])
  t.equal(decodeFrames(payload), 'bad-frame')
})

t.test('a PING without data is acknowledged at once; a lone DATA packet waits for maxAckDelay', async (t) => {
  const { conn, out } = lone()
  conn.receive(0, [frame({ type: FrameType.DATA, channel: 0, delivery: 3, sequence: 0, data: Buffer.from('x') })], 20, 10)
  conn.flush(10)
  t.equal(out.length, 0, 'one DATA packet: the ack waits (it may ride on a reply)')
  t.equal(conn.nextDeadline(), 10 + 1, 'due after maxAckDelay (1 ms)')
  conn.flush(11)
  t.equal(out.length, 1)
  t.equal(out[0]!.frames[0]!.type, FrameType.ACK, 'acked when due')
  conn.receive(1, [frame({ type: FrameType.PING })], 12, 20)
  t.equal(conn.nextDeadline(), 20, 'a PING-only packet is due now')
  conn.flush(20)
  t.equal(out.length, 2, 'acked in the same turn, no timer')
  t.same(out[1]!.frames.map((f) => f.type), [FrameType.ACK])
  t.equal(out[1]!.frames[0]!.largest, 1)
  // PING together with DATA follows the data rule.
  conn.receive(2, [frame({ type: FrameType.PING }), frame({ type: FrameType.DATA, channel: 0, delivery: 3, sequence: 1, data: Buffer.from('y') })], 30, 30)
  conn.flush(30)
  t.equal(out.length, 2, 'PING with DATA: the data rule (wait) applies')
})
