import t from 'tap'
import { RttEstimator } from '../../lib/core/rtt.js'
import { FrameType } from '../../lib/wire/codec.js'
import { wirePair } from './wire-pair.js'

t.test('RFC 6298 values on known samples', async (t) => {
  const r = new RttEstimator()
  t.equal(r.hasSample, false)
  t.equal(r.rto, 100, 'initial RTO')
  t.equal(r.lossDelay, 112.5, '9/8 of the initial RTO before any sample')
  r.sample(10)
  t.equal(r.srtt, 10)
  t.equal(r.rttVar, 5)
  t.equal(r.rto, 30, 'SRTT + 4·RTTVAR')
  r.sample(20)
  t.equal(r.rttVar, 6.25, '3/4·5 + 1/4·|10-20|')
  t.equal(r.srtt, 11.25, '7/8·10 + 1/8·20')
  t.equal(r.rto, 36.25)
  r.sample(30)
  t.equal(r.rttVar, 9.375)
  t.equal(r.srtt, 13.59375)
  t.equal(r.rto, 51.09375)
  t.equal(r.minRtt, 10)
  t.equal(r.latestRtt, 30)
  t.equal(r.lossDelay, 30 * 9 / 8, 'time threshold from max(srtt, latest)')
})

t.test('ack delay is subtracted whenever less than the sample; min RTT is the smallest adjusted sample', async (t) => {
  const r = new RttEstimator()
  r.sample(10)
  r.sample(18, 4)
  t.equal(r.srtt, 0.875 * 10 + 0.125 * 14)
  t.equal(r.minRtt, 10)
  r.sample(12, 4)
  t.equal(r.minRtt, 8, 'below the previous minimum: still adjusted (RFC 9002 would not)')
  t.equal(r.latestRtt, 12, 'the latest sample stays unadjusted (loss time threshold)')
  const r2 = new RttEstimator()
  r2.sample(2, 2)
  r2.sample(3, 5)
  t.equal(r2.minRtt, 2, 'a delay as long as the sample, or longer, is ignored')
  t.equal(r2.srtt, 0.875 * 2 + 0.125 * 3)
  r2.sample(-1)
  r2.sample(NaN)
  t.equal(r2.latestRtt, 3, 'invalid samples ignored')
  // Sparse one-way traffic: every ack waited ~1 ms for company that never came.
  const r3 = new RttEstimator()
  for (let i = 0; i < 50; i++) r3.sample(1.9 + (i % 3) * 0.05, 1.8)
  t.ok(r3.srtt < 0.25, `SRTT ${r3.srtt.toFixed(3)} ms is the path, not the ack delay`)
  t.ok(r3.latestRtt >= 1.9)
})

t.test('exponential backoff, capped at maxRto, reset by a sample', async (t) => {
  const r = new RttEstimator()
  const seen = [r.rto]
  for (let i = 0; i < 7; i++) {
    r.onTimeout()
    seen.push(r.rto)
  }
  t.same(seen, [100, 200, 400, 800, 1600, 2000, 2000, 2000])
  t.equal(r.backoff, 5, 'backoff stops counting at the cap')
  r.sample(10)
  t.equal(r.backoff, 0)
  t.equal(r.rto, 30)
  const capped = new RttEstimator({ initialRto: 50, maxRto: 120 })
  capped.onTimeout()
  t.equal(capped.rto, 100)
  capped.onTimeout()
  t.equal(capped.rto, 120)
})

t.test('minRto and granularity floor the RTO', async (t) => {
  const r = new RttEstimator()
  for (let i = 0; i < 50; i++) r.sample(0.1)
  t.equal(r.rto, 5, 'default minRto 5 ms (LAN), not 200 ms')
  const g = new RttEstimator({ minRto: 1 })
  for (let i = 0; i < 200; i++) g.sample(3)
  t.equal(g.rttVar < 0.001, true)
  t.equal(g.rto, 3 + 1, 'SRTT + G once RTTVAR has decayed')
  const m = new RttEstimator({ minRto: 20 })
  m.sample(1)
  t.equal(m.rto, 20)
  const big = new RttEstimator({ maxRto: 500 })
  big.sample(1000)
  t.equal(big.rto, 500)
  t.throws(() => new RttEstimator({ minRto: 0 }), RangeError)
  t.throws(() => new RttEstimator({ minRto: 10, maxRto: 5 }), RangeError)
})

t.test("Karn: a retransmitted frame's ack samples the NEW packet's send time", async (t) => {
  const { a, b, pass } = wirePair()
  a.conn.send(Buffer.from('hello'), 0, 3)
  a.conn.flush(0)
  t.equal(a.out.length, 1)
  const first = a.out[0].pn
  t.equal(a.conn.nextDeadline(), 100, 'RTO armed at the initial 100 ms')
  pass(a, b, 0, () => false) // lost
  a.conn.onTimer(100)
  a.conn.flush(100)
  t.equal(a.conn.stats.rtoExpirations, 1)
  t.equal(a.conn.stats.framesRetransmitted, 1)
  t.equal(a.out.length, 1)
  t.not(a.out[0].pn, first, 'retransmission travels in a new packet number')
  t.equal(a.out[0].frames.some((f) => f.type === FrameType.DATA), true)
  pass(a, b, 103)
  t.equal(b.got.length, 1)
  b.conn.onTimer(104) // ack delay (1 ms) expired
  b.conn.flush(104)
  t.equal(b.out.length, 1)
  const ack = b.out[0].frames.find((f) => f.type === FrameType.ACK)!
  t.equal(ack.ackDelayUs, 1000)
  pass(b, a, 106)
  t.equal(a.conn.rtt.latestRtt, 6, '106 - 100, not 106 - 0')
  t.equal(a.conn.rtt.srtt, 5, 'the 1 ms the ack waited is subtracted')
  t.equal(a.conn.rtt.rttVar, 2.5)
  t.equal(a.conn.rtt.backoff, 0, 'valid sample resets the backoff')
  t.equal(a.conn.inFlight, 0)
  t.equal(a.conn.unackedMessages, 0)
  // A late ack naming the original (lost) packet number gives no sample at all.
  const before = a.conn.rtt.latestRtt
  a.conn.receive(1, [{ type: FrameType.ACK, largest: first, firstRange: 0, ranges: [], ackDelayUs: 0 } as never], 10, 500)
  t.equal(a.conn.rtt.latestRtt, before, 'no sample from an already forgotten packet')
})

t.test('RTO backs off on a dead link, probes, and resets after an ack', async (t) => {
  const { a, b, pass } = wirePair({ idleTimeoutMs: 60000 })
  a.conn.send(Buffer.from('x'), 0, 3)
  a.conn.flush(0)
  pass(a, b, 0, () => false)
  const fired: number[] = []
  let now = 0
  for (let i = 0; i < 7; i++) {
    now = a.conn.nextDeadline()
    fired.push(now)
    a.conn.onTimer(now)
    a.conn.flush(now)
    pass(a, b, now, () => false)
  }
  t.same(fired, [100, 300, 700, 1500, 3100, 5100, 7100], 'doubling RTO capped at maxRto 2000 ms')
  t.equal(a.conn.stats.rtoExpirations, 7)
  now = a.conn.nextDeadline()
  t.equal(now, 9100)
  a.conn.onTimer(now)
  a.conn.flush(now)
  t.equal(pass(a, b, now + 2), 1, 'this retransmission gets through')
  b.conn.flush(now + 2)
  b.conn.onTimer(now + 3)
  b.conn.flush(now + 3)
  pass(b, a, now + 4)
  t.equal(a.conn.rtt.backoff, 0)
  t.equal(a.conn.unackedMessages, 0)
  t.equal(b.got.length, 1, 'delivered once after many retransmissions')
  t.equal(b.conn.stats.messagesReceived, 1)
})
