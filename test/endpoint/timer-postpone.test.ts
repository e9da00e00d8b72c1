// The endpoint's one timer is armed for the earliest deadline; an ACK then
// usually moves that deadline (the RTO) later. A timer left armed fires for
// nothing and wakes an idle process (~50 µs of CPU per wake-up measured here),
// so a flush moves it later — not on every flush (a timer per packet), and
// never past a deadline that still stands: a lost packet is still resent at
// its RTO, and another session's deadline still fires.
import t from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { FakeClock, SimNetwork } from '../../lib/testing.js'
import { Delivery } from '../../lib/wire/codec.js'
import type { Clock } from '../../lib/transport/transport.js'
import { ticks } from './helpers.js'

/** A clock for one endpoint that counts its timer firings and arms. */
function counting(clock: FakeClock): { clock: Clock, fired: () => number, armed: () => number } {
  let fired = 0
  let armed = 0
  return {
    clock: {
      now: () => clock.now(),
      setTimer: (fn, delayMs) => { armed++; return clock.setTimer(() => { fired++; fn() }, delayMs) },
      clearTimer: (h) => clock.clearTimer(h),
      defer: (fn) => clock.defer(fn),
    },
    fired: () => fired,
    armed: () => armed,
  }
}

async function pair(seed: number, extra: { idleTimeoutMs?: number, keepaliveMs?: number } = {}, delayMs = 0.2): Promise<{
  clock: FakeClock, net: SimNetwork, hub: Endpoint, peer: Endpoint, other: Endpoint, s: Session, so: Session,
  hubTimer: ReturnType<typeof counting>, got: string[],
}> {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed, delayMs })
  const hubTimer = counting(clock)
  const hub = new Endpoint(net.bind('10.2.0.1', 1000), { insecure: true, clock: hubTimer.clock, ...extra })
  const peer = new Endpoint(net.bind('10.2.0.2', 2000), { insecure: true, clock, ...extra })
  const other = new Endpoint(net.bind('10.2.0.3', 2000), { insecure: true, clock, ...extra })
  const got: string[] = []
  peer.on('message', (d: Uint8Array) => got.push(Buffer.from(d).toString()))
  let s: Session | undefined
  let so: Session | undefined
  hub.connect('10.2.0.2', 2000).then((x) => { s = x }, () => {})
  hub.connect('10.2.0.3', 2000).then((x) => { so = x }, () => {})
  for (let ms = 0; ms < 2000 && (s === undefined || so === undefined); ms++) { clock.advance(1); await ticks(1) }
  if (s === undefined || so === undefined) throw new Error('no sessions')
  // Settle the handshake's packets and give the RTT estimator a few samples.
  for (let i = 0; i < 5; i++) {
    s.send(Buffer.from('warm'), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
    for (let ms = 0; ms < 5; ms++) { clock.advance(1); await ticks(1) }
  }
  return { clock, net, hub, peer, other, s, so, hubTimer, got }
}

t.test('a steady stream moves the timer later instead of waking for an RTO an ACK has moved', async (t) => {
  // 3 ms each way and a message every ms: ~6 packets always in flight, and every ACK moves the RTO.
  const { clock, hub, peer, other, s, hubTimer, got } = await pair(11, {}, 3)
  const fired0 = hubTimer.fired()
  const armed0 = hubTimer.armed()
  const n = 400
  for (let i = 0; i < n; i++) {
    s.send(Buffer.from(`m${i}`), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
    clock.advance(1)
    await ticks(1)
  }
  const fired = hubTimer.fired() - fired0
  const armed = hubTimer.armed() - armed0
  const rto = s.stats().rto
  t.ok(s.stats().inFlight > 0, `packets in flight at the end: ${s.stats().inFlight}`)
  t.equal(s.stats().rtoExpirations, 0, 'no RTO expired')
  // Left armed, the timer fired every RTO + ack delay: 400 / (rto + 1) times.
  t.ok(fired <= 2, `the hub's timer fired ${fired} times in 400 ms (≈ ${Math.round(400 / (rto + 1))} when left armed; RTO ${rto} ms)`)
  // Moved once half of the wait is gone: about once per rto / 2, not once per packet.
  t.ok(armed <= Math.ceil(n / (rto / 2)) + 2 && armed < n / 4, `the timer was armed ${armed} times for ${n} packets (RTO ${rto} ms)`)
  for (let ms = 0; ms < 50 && got.filter((m) => m.startsWith('m')).length < n; ms++) { clock.advance(1); await ticks(1) }
  t.equal(got.filter((m) => m.startsWith('m')).length, n, 'every message arrived')
  await Promise.all([hub.close(), peer.close(), other.close()])
})

t.test('messages acknowledged before the next is sent: no firing for nothing, at most two arms per message', async (t) => {
  const { clock, hub, peer, other, s, hubTimer, got } = await pair(15)
  const rto = s.stats().rto
  t.ok(rto >= 5 && rto < 20, `RTO ${rto} ms`)
  const fired0 = hubTimer.fired()
  const armed0 = hubTimer.armed()
  // One message every 2 ms; the peer's delayed ACK comes 1.4 ms after it. Each
  // ACK leaves nothing in flight (the timer goes to the keepalive), each send
  // brings it back to the RTO. Left armed, it fired every rto + 1 ms.
  const n = 200
  for (let i = 0; i < n; i++) {
    s.send(Buffer.from(`m${i}`), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
    for (let ms = 0; ms < 2; ms++) { clock.advance(1); await ticks(1) }
  }
  const fired = hubTimer.fired() - fired0
  const armed = hubTimer.armed() - armed0
  t.equal(got.filter((m) => m.startsWith('m')).length, n, 'every message arrived')
  t.equal(s.stats().rtoExpirations, 0, 'no RTO expired')
  t.ok(fired <= 2, `the hub's timer fired ${fired} times in 400 ms (≈ ${Math.round(400 / (rto + 1))} when left armed)`)
  t.ok(armed <= 2 * n + 2, `the timer was armed ${armed} times for ${n} messages`)
  await Promise.all([hub.close(), peer.close(), other.close()])
})

t.test('a quiet session after its last ACK: the timer goes to the next real deadline, not the stale RTO', async (t) => {
  const { clock, hub, peer, other, s, hubTimer, got } = await pair(12, { keepaliveMs: 1000, idleTimeoutMs: 10_000 })
  // Both sessions idle: let their keepalives pass, then a single message, acked after the peer's ack delay.
  for (let ms = 0; ms < 1100; ms++) { clock.advance(1); await ticks(1) }
  const fired0 = hubTimer.fired()
  s.send(Buffer.from('lone'), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
  for (let ms = 0; ms < 30; ms++) { clock.advance(1); await ticks(1) }
  t.ok(got.includes('lone'), 'delivered')
  t.equal(s.stats().inFlight, 0, 'acknowledged')
  t.equal(hubTimer.fired() - fired0, 0, 'no firing in the 30 ms after it (the RTO it was armed for was ~6 ms)')
  await Promise.all([hub.close(), peer.close(), other.close()])
})

t.test('a lost packet is still resent at its RTO while other packets keep the timer moving', async (t) => {
  const { clock, net, hub, peer, other, s, got } = await pair(13)
  // Steady traffic first, so the timer has been moved later at least once.
  for (let i = 0; i < 50; i++) {
    s.send(Buffer.from(`a${i}`), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
    for (let ms = 0; ms < 2; ms++) { clock.advance(1); await ticks(1) }
  }
  const rto = s.stats().rto
  const before = s.stats().rtoExpirations
  // The path goes silent: the next message and its retransmissions are lost until it heals.
  net.partition({ address: '10.2.0.1', port: 1000 }, { address: '10.2.0.2', port: 2000 })
  const sentAt = clock.now()
  s.send(Buffer.from('lost'), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
  let expiredAt = NaN
  for (let ms = 0; ms < 100 && Number.isNaN(expiredAt); ms++) {
    clock.advance(1)
    await ticks(1)
    if (s.stats().rtoExpirations > before) expiredAt = clock.now()
  }
  t.ok(expiredAt - sentAt <= rto + 1 + 1, `the RTO expired ${expiredAt - sentAt} ms after the send (RTO ${rto} ms + 1 ms ack delay, + 1 ms timer granularity)`)
  net.heal()
  for (let ms = 0; ms < 200 && !got.includes('lost'); ms++) { clock.advance(1); await ticks(1) }
  t.ok(got.includes('lost'), 'delivered once the path healed')
  await Promise.all([hub.close(), peer.close(), other.close()])
})

t.test('another session\'s deadline still fires on time while a busy session keeps moving its own', async (t) => {
  const { clock, net, hub, peer, other, s, so } = await pair(14)
  const down: string[] = []
  hub.on('session-down', (x: Session, reason: string) => down.push(`${x.remoteAddress} ${reason}`))
  // The other peer goes away with a message of the hub's in flight to it: its RTOs
  // and then the retry limit or idle timeout must come while the busy session
  // postpones the timer on every flush.
  net.partition({ address: '10.2.0.1', port: 1000 }, { address: '10.2.0.3', port: 2000 })
  so.send(Buffer.from('to-the-void'), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
  const before = so.stats().rtoExpirations
  const start = clock.now()
  let firstExpiry = NaN
  for (let ms = 0; ms < 60; ms++) {
    s.send(Buffer.from(`b${ms}`), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
    clock.advance(1)
    await ticks(1)
    if (Number.isNaN(firstExpiry) && so.stats().rtoExpirations > before) firstExpiry = clock.now() - start
  }
  const rto = s.stats().rto
  t.ok(firstExpiry <= rto + 2, `the silent session's RTO expired after ${firstExpiry} ms (RTO ${rto} ms)`)
  t.ok(so.stats().rtoExpirations - before >= 2, `and kept backing off and retrying: ${so.stats().rtoExpirations - before} expirations in 60 ms`)
  t.same(down, [], 'nothing closed yet')
  await Promise.all([hub.close(), peer.close(), other.close()])
})
