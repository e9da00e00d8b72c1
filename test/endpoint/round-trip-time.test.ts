// The RTT a session reports (`roundTripTime`, in stats, metrics and the
// demo) against a request/response ping-pong measured beside it, between the
// same two endpoints over real UDP: sparse one-way traffic, whose acks wait
// for the ack delay, must not show as latency.
import t from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { bindUdp } from '../../lib/transport/udp.js'
import { Delivery } from '../../lib/wire/codec.js'

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED }
const ONE_WAY = 0
const PING = 1
/** Pause between messages: every ack of a one-way message waits for the ack delay (1 ms). */
const GAP_MS = 3
const PINGS = 40
const ONE_WAY_PER_PING = 3
/** Absolute slack of the upper bound, ms: timer and scheduling noise of a shared machine. */
const SLACK_MS = 0.25

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}

t.test('roundTripTime is the path round trip, not the ack delay of sparse one-way traffic', async (t) => {
  const key = [Buffer.alloc(32, 9)]
  const server = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: key })
  const client = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: key })
  t.teardown(() => Promise.all([server.close(), client.close()]))
  let oneWayReceived = 0
  server.on('message', (d: Uint8Array, s: Session) => {
    if (d[0] === PING) s.send(d, ORDERED) // echo
    else oneWayReceived++
  })
  let pong: (() => void) | null = null
  client.on('message', () => { pong?.() })
  const session = await client.connect('127.0.0.1', server.port)

  const pingPong: number[] = []
  const reported: number[] = []
  for (let i = 0; i < PINGS; i++) {
    for (let k = 0; k < ONE_WAY_PER_PING; k++) {
      await sleep(GAP_MS)
      session.send(Buffer.from([ONE_WAY, i, k]), ORDERED)
    }
    await sleep(GAP_MS)
    const answered = new Promise<void>((resolve) => { pong = resolve })
    const start = performance.now()
    session.send(Buffer.from([PING, i]), ORDERED)
    await answered
    pingPong.push(performance.now() - start)
    reported.push(session.roundTripTime)
  }
  await sleep(GAP_MS) // the last one-way messages' acks
  t.equal(oneWayReceived, PINGS * ONE_WAY_PER_PING, 'every one-way message arrived')
  t.equal(session.stats().roundTripTime, session.roundTripTime, 'stats() and the getter agree')

  const p50 = median(pingPong)
  // The second half: by then the last 16 samples are from this traffic only.
  const shown = median(reported.slice(PINGS / 2))
  const detail = `reported ${shown.toFixed(3)} ms, ping-pong p50 ${p50.toFixed(3)} ms, srtt ${session.stats().srtt.toFixed(3)} ms`
  t.ok(shown <= 1.3 * p50 + SLACK_MS, `not inflated by the ack delay: ${detail}`)
  t.ok(shown >= 0.3 * p50, `not absurdly below the ping-pong: ${detail}`)
})

// An ACK flushed in the turn that received the packet must report the time
// the handler took before the reply as ack delay: each flush reads the clock.
t.test('roundTripTime takes the peer\'s processing out: a slow handler\'s time counts as ack delay', async (t) => {
  const BUSY_MS = 4
  const key = [Buffer.alloc(32, 7)]
  const server = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: key })
  const client = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: key })
  t.teardown(() => Promise.all([server.close(), client.close()]))
  const handlerMs: number[] = []
  server.on('message', (d: Uint8Array, s: Session) => {
    // The answer leaves after BUSY_MS of work in the same callback: the ack it carries waited that long.
    const start = performance.now()
    while (performance.now() - start < BUSY_MS) { /* work */ }
    s.send(d, ORDERED)
    handlerMs.push(performance.now() - start)
  })
  let pong: (() => void) | null = null
  client.on('message', () => { pong?.() })
  const session = await client.connect('127.0.0.1', server.port)
  const path: number[] = []
  const reported: number[] = []
  for (let i = 0; i < 30; i++) {
    await sleep(GAP_MS)
    const answered = new Promise<void>((resolve) => { pong = resolve })
    const start = performance.now()
    session.send(Buffer.from([PING, i]), ORDERED)
    await answered
    // The round trip less the server's handler: what the path and both endpoints took.
    path.push(performance.now() - start - handlerMs[i])
    reported.push(session.roundTripTime)
  }
  const p50 = median(path)
  const shown = median(reported.slice(15))
  const detail = `reported ${shown.toFixed(3)} ms, ping-pong less the handler p50 ${p50.toFixed(3)} ms (handler ${median(handlerMs).toFixed(2)} ms)`
  t.ok(shown <= 1.3 * p50 + SLACK_MS, `the handler's ${BUSY_MS} ms are not in it: ${detail}`)
  t.ok(shown >= 0.3 * p50, `not absurdly below: ${detail}`)
})
