/**
 * Key rotation with no downtime: a rolling change of four nodes from [old]
 * through [new, old] to [new]. At every step every ordered pair of nodes
 * (so both roles of who initiates) opens a session and exchanges messages
 * both ways; a node on [new] only and a node on [old] only never can.
 */
import t, { type Test } from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { HandshakeError } from '../../lib/errors.js'
import { SimNetwork } from '../../lib/transport/sim.js'
import { KEY_NEW, KEY_OLD, settle } from './fixtures/helpers.js'

const OLD = [KEY_OLD]
const BOTH = [KEY_NEW, KEY_OLD]
const NEW = [KEY_NEW]

function names(keys: Uint8Array[]): string {
  return keys === OLD ? '[old]' : keys === BOTH ? '[new, old]' : '[new]'
}

/** Start fresh endpoints with these key lists, have every ordered pair connect and talk both ways. */
async function allPairsTalk(t: Test, seed: number, config: Uint8Array[][]): Promise<void> {
  const net = new SimNetwork({ seed, delayMs: 1 })
  const clock = net.clock
  const nodes = config.map((keys, i) => new Endpoint(net.bind(`10.0.1.${i + 1}`, 7400), { keys, clock }))
  const inbox = nodes.map(() => [] as string[])
  nodes.forEach((n, i) => n.on('message', (d: Uint8Array) => inbox[i]!.push(Buffer.from(d).toString())))
  for (let i = 0; i < nodes.length; i++) {
    for (let j = 0; j < nodes.length; j++) {
      if (i === j) continue
      const label = `${names(config[i]!)} → ${names(config[j]!)}`
      const out = await settle(clock, nodes[i]!.connect(`10.0.1.${j + 1}`, 7400))
      if (out === null || !out.ok) {
        t.fail(`${label}: ${out === null ? 'no answer' : String(out.error)}`)
        continue
      }
      const s: Session = out.value
      t.ok(s.initiator, `${label}: initiated by ${i}`)
      const back = nodes[j]!.session(`10.0.1.${i + 1}`, 7400)!
      t.equal(back.initiator, false)
      s.send(Buffer.from(`${i}>${j}`))
      back.send(Buffer.from(`${j}<${i}`))
      clock.runUntil(() => inbox[j]!.includes(`${i}>${j}`) && inbox[i]!.includes(`${j}<${i}`), 1000)
      t.ok(inbox[j]!.includes(`${i}>${j}`) && inbox[i]!.includes(`${j}<${i}`), `${label}: both directions delivered`)
      s.close()
      clock.advance(50)
    }
  }
  for (const n of nodes) t.equal(n.stats().handshakesFailed, 0)
  for (const n of nodes) await n.close()
}

t.test('rolling rotation [old] → [new, old] → [new], one node at a time, every ordered pair talks at every step', async (t) => {
  const steps: Uint8Array[][][] = [
    [OLD, OLD, OLD, OLD],
    [BOTH, OLD, OLD, OLD],
    [BOTH, BOTH, OLD, OLD],
    [BOTH, BOTH, BOTH, OLD],
    [BOTH, BOTH, BOTH, BOTH],
    [NEW, BOTH, BOTH, BOTH],
    [NEW, NEW, BOTH, BOTH],
    [NEW, NEW, NEW, BOTH],
    [NEW, NEW, NEW, NEW],
  ]
  for (let k = 0; k < steps.length; k++) {
    await t.test(`step ${k}: ${steps[k]!.map(names).join(' ')}`, (t) => allPairsTalk(t, 100 + k, steps[k]!))
  }
})

t.test('a session set up under the old key ([new, old] ↔ [old]) carries 1000 messages each way over a lossy path', async (t) => {
  // [new, old] initiator and [old] responder agree on old; the session then carries 1000 messages each way.
  const net = new SimNetwork({ seed: 21, delayMs: 2, loss: 0.02 })
  const clock = net.clock
  const a = new Endpoint(net.bind('10.0.2.1', 7400), { keys: BOTH, clock })
  const b = new Endpoint(net.bind('10.0.2.2', 7400), { keys: OLD, clock })
  const gotA: number[] = []
  const gotB: number[] = []
  a.on('message', (d: Uint8Array) => gotA.push(Buffer.from(d).readUInt32BE(0)))
  b.on('message', (d: Uint8Array) => gotB.push(Buffer.from(d).readUInt32BE(0)))
  const out = await settle(clock, a.connect('10.0.2.2', 7400))
  t.ok(out?.ok)
  const s = (out as { value: Session }).value
  const sb = b.sessions()[0]!
  for (let i = 0; i < 1000; i++) {
    const m = Buffer.alloc(4)
    m.writeUInt32BE(i)
    s.send(m)
    sb.send(m)
    if (i % 50 === 0) clock.advance(1)
  }
  clock.runUntil(() => gotA.length === 1000 && gotB.length === 1000, 30_000)
  t.same(gotB, Array.from({ length: 1000 }, (_, i) => i))
  t.same(gotA, Array.from({ length: 1000 }, (_, i) => i))
  t.equal(sb.stats().authFailures, 0)
  await a.close()
  await b.close()
})

t.test('[new] only and [old] only cannot talk, whoever initiates; no session either side', async (t) => {
  for (const [ki, kr] of [[NEW, OLD], [OLD, NEW]] as const) {
    const net = new SimNetwork({ seed: 31 })
    const clock = net.clock
    const a = new Endpoint(net.bind('10.0.3.1', 7400), { keys: ki, clock })
    const b = new Endpoint(net.bind('10.0.3.2', 7400), { keys: kr, clock })
    const out = await settle(clock, a.connect('10.0.3.2', 7400))
    t.ok(out !== null && !out.ok && out.error instanceof HandshakeError, `${names(ki)} → ${names(kr)}: HandshakeError`)
    t.match(String((out as { error: unknown }).error), /no matching network key/)
    t.same(a.sessions(), [])
    t.same(b.sessions(), [])
    t.equal(b.stats().dropped['bad-key'], 1)
    await a.close()
    await b.close()
  }
})
