// deferAcks: a received ACK frame waits for settle() while the window is
// less than half used, so the owner can flush a reply first; past half, or
// when a timer fires, it is processed at once.
import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import { wirePair } from './wire-pair.js'

const ORD = Delivery.RELIABLE_ORDERED

type Pair = ReturnType<typeof wirePair>

/** a sends `request` at `at`; b answers it at once (the answer carries b's ACK); a receives the answer at `at + 1`. */
function exchange({ a, b, pass }: Pair, request: string, at: number): void {
  a.conn.send(Buffer.from(request), 0, ORD)
  a.conn.flush(at)
  pass(a, b, at)
  b.conn.send(Buffer.from(`re: ${request}`), 0, ORD)
  b.conn.flush(at)
  pass(b, a, at + 1)
}

t.test('an ACK waits for settle(); the reply leaves first; settle() processes it', async (t) => {
  const { a, b, pass } = wirePair({ deferAcks: true })
  a.conn.send(Buffer.from('request'), 0, ORD)
  a.conn.flush(0)
  pass(a, b, 1)
  b.conn.send(Buffer.from('reply'), 0, ORD) // carries b's ACK of the request
  b.conn.flush(1)
  t.equal(a.conn.inFlight, 1, 'the request is in flight')
  pass(b, a, 2)
  t.equal(a.got.length, 1, 'the reply is delivered at once')
  t.equal(a.conn.inFlight, 1, 'its ACK is held: the request still counts in flight')
  t.equal(a.conn.unackedMessages, 1)
  a.conn.send(Buffer.from('next'), 0, ORD)
  a.conn.flush(2)
  t.equal(a.out.length, 1, 'the next request leaves before the bookkeeping')
  t.equal(a.conn.settle(), true, 'something was held')
  t.equal(a.conn.unackedMessages, 1, 'the first request is acknowledged; the next one is not')
  t.equal(a.conn.inFlight, 1)
  t.equal(a.conn.rtt.latestRtt, 2, 'the RTT sample uses the receive time, not the settle time')
  t.equal(a.conn.settle(), false, 'nothing left')
})

t.test('past half the packets in flight, ACKs are processed on receipt (in order after held ones)', async (t) => {
  const p = wirePair({ deferAcks: true, maxInFlightPackets: 4 })
  const { a, b, pass } = p
  exchange(p, '1', 0) // 1 of 4 in flight: held
  t.equal(a.conn.inFlight, 1)
  for (const m of ['2', '3']) {
    a.conn.send(Buffer.from(m), 0, ORD)
    a.conn.flush(1)
  }
  t.equal(a.conn.inFlight, 3, 'three in flight (the first still unprocessed)')
  pass(a, b, 2)
  b.conn.send(Buffer.from('r2'), 0, ORD)
  b.conn.flush(2)
  pass(b, a, 3) // 3 of 4: at least half, processed at once, after the held one
  t.equal(a.conn.inFlight, 0, 'everything acknowledged')
  t.equal(a.conn.settle(), false, 'the held ACK went first')
})

t.test('a timer settles before it looks at the RTO or idleness; close drops held ACKs', async (t) => {
  const p = wirePair({ deferAcks: true })
  const { a } = p
  exchange(p, 'x', 0)
  t.equal(a.conn.inFlight, 1, 'held')
  a.conn.onTimer(200) // long past the RTO: without settling it would probe
  t.equal(a.conn.stats.rtoExpirations, 0, 'no RTO: the held ACK was processed first')
  t.equal(a.conn.inFlight, 0)
  // A held ACK at close is dropped with the rest of the state.
  exchange(p, 'z', 201)
  a.conn.close()
  t.equal(a.conn.settle(), false)
  t.equal(a.closed?.undelivered.length, 1, 'z was never acknowledged as far as the closed side knows')
})

t.test('without deferAcks (the default) an ACK is processed on receipt', async (t) => {
  const p = wirePair()
  exchange(p, 'x', 0)
  t.equal(p.a.conn.inFlight, 0)
  t.equal(p.a.got.length, 1)
  t.equal(p.a.conn.settle(), false)
})
