/**
 * The agent's checks, in one process over an in-memory network that can
 * lose, corrupt, duplicate and reorder: a bench that cannot see these would
 * report broken runs as fast ones.
 */
import t from 'tap'
import { Agent } from '../../bench/harness/agent.js'
import type { BlastReport, FanOutReport, PingPongReport, ReceiverReport } from '../../bench/harness/agent.js'
import { Kind, checkPayload, makePayload, payloadSeq } from '../../bench/harness/payload.js'
import type { BenchNode, MessageHandler } from '../../bench/harness/variant.js'

type Tamper = (from: number, to: number, payload: Buffer) => Buffer[]

class FakeNet {
  readonly nodes: FakeNode[] = []
  tamper: Tamper = (_f, _t, p) => [p]
  #queue: Array<[number, number, Buffer]> = []
  #scheduled = false

  node (): FakeNode {
    const n = new FakeNode(this, this.nodes.length)
    this.nodes.push(n)
    return n
  }

  post (from: number, to: number, payload: Buffer): void {
    for (const p of this.tamper(from, to, payload)) this.#queue.push([from, to, p])
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(() => {
        this.#scheduled = false
        const q = this.#queue
        this.#queue = []
        for (const [f, to2, p] of q) this.nodes[to2]!.handler(f, p)
      })
    }
  }
}

class FakeNode implements BenchNode {
  readonly info = null
  handler: MessageHandler = () => {}
  constructor (readonly net: FakeNet, readonly address: number) {}
  async connect (): Promise<void> {}
  send (to: number, payload: Buffer): boolean { this.net.post(this.address, to, payload); return true }
  broadcast (payload: Buffer): boolean {
    for (const n of this.net.nodes) if (n.address !== this.address) this.net.post(this.address, n.address, payload)
    return true
  }
  async writable (): Promise<void> {}
  setHandler (handler: MessageHandler): void { this.handler = handler }
  stats (): Record<string, number> { return {} }
  async close (): Promise<void> {}
}

function setup (): { net: FakeNet, a: Agent, b: Agent, c: Agent } {
  const net = new FakeNet()
  const a = new Agent(net.node())
  const b = new Agent(net.node())
  const c = new Agent(net.node())
  return { net, a, b, c }
}

const expectTask = (run: number, count: number, size = 64) =>
  ({ op: 'expect', run, from: 0, kind: Kind.Data, count, size, recordTimes: true, ack: false }) as const

async function flood (a: Agent, b: Agent, run: number, count: number): Promise<ReceiverReport> {
  await b.run(expectTask(run, count))
  const sent = await a.run({ op: 'blast', run, to: 1, count, size: 64 }) as BlastReport
  t.ok(sent.endNs >= sent.startNs)
  await new Promise((resolve) => setImmediate(resolve))
  return await b.run({ op: 'collect', run }) as ReceiverReport
}

t.test('payloads: content depends on the sequence number and any change is caught', async (t) => {
  const p = makePayload(Kind.Data, 3, 1234, 100)
  t.equal(checkPayload(p, 100), true)
  t.equal(checkPayload(p, 101), false, 'wrong size')
  t.equal(checkPayload(p.subarray(0, 99), 100), false, 'truncated')
  const other = makePayload(Kind.Data, 3, 1235, 100)
  other.writeUInt32LE(1234, 3)
  t.equal(checkPayload(other, 100), false, "another message's bytes under this sequence number")
  for (const i of [7, 50, 99]) {
    const q = Buffer.from(p)
    q[i]! ^= 1
    t.equal(checkPayload(q, 100), false, `bit flip at ${i}`)
  }
})

t.test('a clean flood is received exactly', async (t) => {
  const { a, b } = setup()
  const r = await flood(a, b, 1, 5000)
  t.match(r, { expected: 5000, received: 5000, duplicates: 0, outOfOrder: 0, corrupt: 0, wrongSender: 0 })
  t.ok(r.lastNs >= r.firstNs && r.firstNs > 0n)
  t.equal(r.arrivalNs!.every((x) => x > 0n), true)
})

t.test('loss, corruption, duplication, reordering and strays are all counted', async (t) => {
  const { net, a, b } = setup()
  let held: Buffer | undefined
  net.tamper = (from, _to, p) => {
    if (p[0] !== Kind.Data) return [p]
    const seq = payloadSeq(p)
    if (seq === 5) return []                                      // lost
    if (seq === 7) { const q = Buffer.from(p); q[20]! ^= 0xff; return [q] } // corrupted
    if (seq === 9) return [p, p]                                  // duplicated
    if (seq === 11) { held = p; return [] }                       // reordered: delivered after 12
    if (seq === 12) return [p, held!]
    if (seq === 13) { const q = Buffer.from(p); q.writeUInt32LE(1_000_000, 3); return [q] } // sequence out of range
    void from
    return [p]
  }
  const r = await flood(a, b, 2, 100)
  t.equal(r.received, 97, 'lost, corrupted and out-of-range ones are not received')
  t.equal(r.corrupt, 2)
  t.equal(r.duplicates, 1)
  t.equal(r.outOfOrder, 1)
  t.equal(r.arrivalNs![5], 0n)
})

t.test('messages of another run or sender do not count', async (t) => {
  const { net, b } = setup()
  await b.run(expectTask(3, 10))
  net.nodes[2]!.send(1, makePayload(Kind.Data, 3, 0, 64)) // right run, wrong sender
  net.nodes[0]!.send(1, makePayload(Kind.Data, 4, 1, 64)) // another run
  await new Promise((resolve) => setImmediate(resolve))
  const r = await b.run({ op: 'collect', run: 3 }) as ReceiverReport
  t.equal(r.received, 0)
  t.equal(r.wrongSender, 1)
  t.match(await b.run({ op: 'stats' }), { agentUnmatched: 1 })
})

t.test('ping-pong measures every round trip, and counts lost and corrupt pongs', async (t) => {
  const { net, a } = setup()
  const ok = await a.run({ op: 'ping-pong', run: 5, peer: 1, count: 300, warmup: 10, size: 64, timeoutMs: 1000, maxLost: 10, gapMs: 0 }) as PingPongReport
  t.equal(ok.rttUs.length, 300)
  t.equal(ok.lost + ok.corrupt + ok.unexpected, 0)
  t.ok(ok.rttUs.every((x) => x > 0))

  net.tamper = (_f, _t, p) => {
    if (p[0] !== Kind.Pong) return [p]
    const seq = payloadSeq(p)
    if (seq === 3) return []
    if (seq === 4) { const q = Buffer.from(p); q[30]! ^= 1; return [q] }
    return [p]
  }
  const bad = await a.run({ op: 'ping-pong', run: 6, peer: 1, count: 20, warmup: 0, size: 64, timeoutMs: 50, maxLost: 10, gapMs: 0 }) as PingPongReport
  t.equal(bad.lost, 1)
  t.equal(bad.corrupt, 1)
  t.equal(bad.rttUs.length, 18)
  t.equal(bad.stopped, false)

  net.tamper = (_f, _t, p) => (p[0] === Kind.Pong ? [] : [p])
  const dead = await a.run({ op: 'ping-pong', run: 7, peer: 1, count: 1000, warmup: 0, size: 64, timeoutMs: 10, maxLost: 3, gapMs: 0 }) as PingPongReport
  t.equal(dead.lost, 3)
  t.equal(dead.stopped, true, 'stops at maxLost instead of waiting out every timeout')
})

t.test('sparse ping-pong pauses between round trips, and neither times nor times out the pause', async (t) => {
  const { a } = setup()
  const gapMs = 100
  const started = performance.now()
  // The pause is longer than the timeout and than the watchdog's 20-ms period.
  const r = await a.run({ op: 'ping-pong', run: 9, peer: 1, count: 5, warmup: 1, size: 64, timeoutMs: 30, maxLost: 3, gapMs }) as PingPongReport
  const elapsed = performance.now() - started
  t.equal(r.rttUs.length, 5)
  t.equal(r.lost, 0, 'no pause counted as a lost round trip')
  t.ok(elapsed >= 5 * gapMs, `a pause before each ping after the first (${elapsed.toFixed(0)} ms for 6)`)
  t.ok(r.rttUs.every((x) => x < gapMs * 1000), `no pause inside a round trip (max ${Math.max(...r.rttUs).toFixed(0)} µs)`)
})

t.test('the RTT check: one-way messages beside the pings, checked at the peer; the node\'s RTT read after each pong', async (t) => {
  const { net, a, b } = setup()
  // The pinger's node reports 0.25 ms, then 0.5 ms, …: each reading is kept, in µs.
  let readings = 0
  ;(net.nodes[0] as FakeNode & { roundTripTime?: (to: number) => number }).roundTripTime = (to) => { t.equal(to, 1, 'asked about the peer'); return 0.25 * ++readings }
  await b.run({ op: 'expect', run: 11, from: 0, kind: Kind.Data, count: (2 + 4) * 3, size: 64, recordTimes: false, ack: false })
  const r = await a.run({ op: 'ping-pong', run: 11, peer: 1, count: 4, warmup: 2, size: 64, timeoutMs: 1000, maxLost: 3, gapMs: 2, oneWayPerPing: 3, readRtt: true }) as PingPongReport
  t.equal(r.rttUs.length, 4)
  t.equal(r.oneWaySent, 18, '3 before each of the 6 pings, warm-up included')
  t.same(Array.from(r.reportedRttUs!), [250, 500, 750, 1000], 'read after each measured pong only')
  const got = await b.run({ op: 'collect', run: 11 }) as ReceiverReport
  t.same([got.received, got.outOfOrder, got.corrupt, got.duplicates], [18, 0, 0, 0], 'every one-way message, in order, intact')

  // Lost and corrupted one-way messages are seen by the peer's check.
  let n = 0
  net.tamper = (_f, _t, p) => {
    if (p[0] !== Kind.Data) return [p]
    n++
    if (n === 2) return []
    if (n === 5) { const bad = Buffer.from(p); bad[bad.length - 1] ^= 1; return [bad] }
    return [p]
  }
  await b.run({ op: 'expect', run: 12, from: 0, kind: Kind.Data, count: 6, size: 64, recordTimes: false, ack: false })
  const r2 = await a.run({ op: 'ping-pong', run: 12, peer: 1, count: 2, warmup: 1, size: 64, timeoutMs: 1000, maxLost: 3, gapMs: 1, oneWayPerPing: 2 }) as PingPongReport
  t.equal(r2.oneWaySent, 6)
  t.equal(r2.reportedRttUs, undefined, 'no readings unless asked')
  const bad = await b.run({ op: 'collect', run: 12 }) as ReceiverReport
  t.same([bad.received, bad.corrupt], [4, 1], 'one lost (received 4 of 6), one corrupt')
})

t.test('fan-out paces rounds on acknowledgements and times out on a silent target', async (t) => {
  const { net, a, b, c } = setup()
  for (const [agent, run] of [[b, 8], [c, 8]] as const) {
    await agent.run({ op: 'expect', run, from: 0, kind: Kind.Broadcast, count: 30, size: 64, recordTimes: true, ack: true })
  }
  const f = await a.run({ op: 'fan-out', run: 8, rounds: 30, size: 64, targets: [1, 2], timeoutMs: 1000 }) as FanOutReport
  t.equal(f.completedRounds, 30)
  t.equal(f.timedOut, false)
  const rb = await b.run({ op: 'collect', run: 8 }) as ReceiverReport
  t.equal(rb.received, 30)
  t.ok(rb.arrivalNs!.every((x, i) => x >= f.sentNs[i]!), 'every arrival after its send')

  net.tamper = (_f, to, p) => (to === 2 && p[0] === Kind.Broadcast && payloadSeq(p) === 2 ? [] : [p])
  for (const agent of [b, c]) {
    await agent.run({ op: 'expect', run: 9, from: 0, kind: Kind.Broadcast, count: 10, size: 64, recordTimes: true, ack: true })
  }
  const g = await a.run({ op: 'fan-out', run: 9, rounds: 10, size: 64, targets: [1, 2], timeoutMs: 50 }) as FanOutReport
  t.equal(g.timedOut, true)
  t.equal(g.completedRounds, 2)
})
