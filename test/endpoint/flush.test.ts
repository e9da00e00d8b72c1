// When a received packet's acknowledgement is flushed: with the answer the
// handler sends (one flush, when the callback returns), or, when the handler
// does not answer, by one flush in the loop's check phase for the whole
// batch of datagrams. Real UDP sockets and the system clock, counted.
import t from 'tap'
import type { Test } from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { bindUdp } from '../../lib/transport/udp.js'
import { systemClock, type Clock } from '../../lib/transport/transport.js'
import { Delivery } from '../../lib/wire/codec.js'

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED }

/** The system clock, counting `defer` (setImmediate) and `soon` (microtask) calls. */
function countingClock (): Clock & { deferred: number, soonCalls: number } {
  const c = {
    deferred: 0,
    soonCalls: 0,
    now: systemClock.now,
    setTimer: systemClock.setTimer,
    clearTimer: systemClock.clearTimer,
    defer: (fn: () => void) => { c.deferred++; systemClock.defer(fn) },
    soon: (fn: () => void) => { c.soonCalls++; systemClock.soon!(fn) },
  }
  return c
}

async function pair (t: Test, answer: boolean): Promise<{ client: Session, clientEndpoint: Endpoint, server: Endpoint, clock: ReturnType<typeof countingClock>, replies: () => number }> {
  const clock = countingClock()
  const server = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [Buffer.alloc(32, 5)], clock })
  const client = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [Buffer.alloc(32, 5)] })
  t.teardown(() => Promise.all([server.close(), client.close()]))
  let replies = 0
  server.on('message', (d: Uint8Array, s: Session) => { if (answer) s.send(d, ORDERED) })
  client.on('message', () => { replies++ })
  const session = await client.connect('127.0.0.1', server.port)
  return { client: session, clientEndpoint: client, server, clock, replies: () => replies }
}

async function until (what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

t.test('a handler that answers: the ack rides on the answer, no extra flush per request', async (t) => {
  const { client, clientEndpoint, clock, replies } = await pair(t, true)
  await until(() => client.isOpen)
  // Sequential requests, each sent when the previous answer arrives (and
  // carrying its ack): one datagram per callback on both sides.
  const N = 50
  const before = { deferred: clock.deferred, soon: clock.soonCalls }
  let sent = 0
  const next = (): void => { if (sent < N) client.send(Buffer.from(`req ${sent++}`), ORDERED) }
  clientEndpoint.on('message', next)
  next()
  await until(() => replies() === N)
  const deferred = clock.deferred - before.deferred
  const soon = clock.soonCalls - before.soon
  t.equal(soon, N, 'one flush per answer, when the handler returns')
  // A few are legitimate: the ack-only packet acknowledging the last answer,
  // and on a loaded machine a timer-driven ack or probe.
  t.ok(deferred <= 5, `check-phase flushes for ${N} requests: ${deferred} (${N} before: one per request, though the answer's flush had already carried the ack)`)
  await until(() => client.stats().unackedMessages === 0)
  t.equal(client.stats().unackedMessages, 0, 'every request acknowledged')
})

t.test('a handler that does not answer: acks still go out, one check-phase flush per batch', async (t) => {
  const { client, clock } = await pair(t, false)
  await until(() => client.isOpen)
  const before = clock.deferred
  const N = 200
  for (let i = 0; i < N; i++) client.send(Buffer.from(`one-way ${i}`), ORDERED)
  await until(() => client.stats().unackedMessages === 0)
  t.equal(client.stats().unackedMessages, 0, 'every message acknowledged without an answer')
  const deferred = clock.deferred - before
  t.ok(deferred >= 1, `the server scheduled check-phase flushes (${deferred})`)
})
