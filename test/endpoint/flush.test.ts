// When a received packet's acknowledgement is flushed: with the answer the
// handler sends (one flush, when the datagram's callback is done, inside
// it), or, when the handler does not answer, by one flush in the loop's check
// phase for the whole batch of datagrams. Real UDP sockets and the system
// clock, counted.
import t from 'tap'
import type { Test } from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { bindUdp } from '../../lib/transport/udp.js'
import { systemClock, type Clock, type DatagramHandler, type Transport } from '../../lib/transport/transport.js'
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

/**
 * A real UDP transport that tells whether each datagram was sent while a
 * received one was being handled (inside the socket's callback), and keeps
 * what a handler threw instead of letting it end the process.
 */
class Watched implements Transport {
  readonly #inner: Transport
  #inCallback = false
  sentInCallback = 0
  sentOutside = 0
  readonly thrown: unknown[] = []
  constructor (inner: Transport) { this.#inner = inner }
  get family (): 'IPv4' | 'IPv6' { return this.#inner.family }
  get address (): string { return this.#inner.address }
  get port (): number { return this.#inner.port }
  send (chunks: readonly Uint8Array[], port: number, address: string): void {
    if (this.#inCallback) this.sentInCallback++
    else this.sentOutside++
    this.#inner.send(chunks, port, address)
  }

  setHandler (handler: DatagramHandler): void {
    this.#inner.setHandler((data, port, address) => {
      this.#inCallback = true
      try {
        handler(data, port, address)
      } catch (err) {
        this.thrown.push(err)
      } finally {
        this.#inCallback = false
      }
    })
  }

  close (): Promise<void> { return this.#inner.close() }
}

async function pair (t: Test, answer: boolean): Promise<{ client: Session, clientEndpoint: Endpoint, server: Endpoint, serverTransport: Watched, clock: ReturnType<typeof countingClock>, replies: () => number }> {
  const clock = countingClock()
  const serverTransport = new Watched(await bindUdp({ address: '127.0.0.1' }))
  const server = new Endpoint(serverTransport, { keys: [Buffer.alloc(32, 5)], clock })
  const client = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [Buffer.alloc(32, 5)] })
  t.teardown(() => Promise.all([server.close(), client.close()]))
  let replies = 0
  server.on('message', (d: Uint8Array, s: Session) => { if (answer) s.send(d, ORDERED) })
  client.on('message', () => { replies++ })
  const session = await client.connect('127.0.0.1', server.port)
  return { client: session, clientEndpoint: client, server, serverTransport, clock, replies: () => replies }
}

async function until (what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

t.test('a handler that answers: the ack rides on the answer, no extra flush per request', async (t) => {
  const { client, clientEndpoint, serverTransport, clock, replies } = await pair(t, true)
  await until(() => client.isOpen)
  // Sequential requests, each sent when the previous answer arrives (and
  // carrying its ack): one datagram per callback on both sides.
  const N = 50
  const before = { deferred: clock.deferred, soon: clock.soonCalls, inCallback: serverTransport.sentInCallback }
  let sent = 0
  const next = (): void => { if (sent < N) client.send(Buffer.from(`req ${sent++}`), ORDERED) }
  clientEndpoint.on('message', next)
  next()
  await until(() => replies() === N)
  const deferred = clock.deferred - before.deferred
  const soon = clock.soonCalls - before.soon
  const inCallback = serverTransport.sentInCallback - before.inCallback
  // Each answer leaves before the request's callback returns: no microtask
  // (a promise and a queued job per reply) between the request and it.
  t.equal(soon, 0, 'no microtask flush for an answer sent from the handler')
  t.equal(inCallback, N, 'one datagram per request, sent inside the request\'s callback')
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

t.test('a handler that answers and then throws: the answer still leaves, and the next request is answered too', async (t) => {
  const clock = countingClock()
  const serverTransport = new Watched(await bindUdp({ address: '127.0.0.1' }))
  const server = new Endpoint(serverTransport, { keys: [Buffer.alloc(32, 5)], clock })
  const clientEndpoint = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [Buffer.alloc(32, 5)] })
  t.teardown(() => Promise.all([server.close(), clientEndpoint.close()]))
  server.on('message', (d: Uint8Array, s: Session) => {
    s.send(d, ORDERED)
    if (Buffer.from(d).toString() === 'throw') throw new Error('handler bug')
  })
  const answers: string[] = []
  clientEndpoint.on('message', (d: Uint8Array) => { answers.push(Buffer.from(d).toString()) })
  const client = await clientEndpoint.connect('127.0.0.1', server.port)
  await until(() => client.isOpen)
  client.send(Buffer.from('throw'), ORDERED)
  await until(() => answers.length === 1)
  t.same(answers, ['throw'], 'the answer queued before the throw was sent')
  t.equal(serverTransport.thrown.length, 1, 'the handler\'s error reached the socket\'s callback')
  t.match(String(serverTransport.thrown[0]), /handler bug/)
  client.send(Buffer.from('next'), ORDERED)
  await until(() => answers.length === 2)
  t.same(answers, ['throw', 'next'], 'the next request is answered: no flush is left owed forever')
})
