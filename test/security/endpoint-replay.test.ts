/**
 * Protected packets on a simulated network: captured DATA packets replayed
 * from the peer's own address are dropped and counted as 'replayed', nothing
 * is delivered twice; a copy of a real packet with any one bit flipped is
 * dropped (auth-failed or a decode reason) and the session carries on.
 */
import t from 'tap'
import type { Session } from '../../lib/endpoint.js'
import { decodePacket, PacketType, type Packet } from '../../lib/wire/codec.js'
import { type Captured, settle, simPair } from './fixtures/helpers.js'

function isData(c: Captured): boolean {
  const p = decodePacket(c.data)
  return typeof p !== 'string' && p.type === PacketType.DATA
}

function msg(i: number): Buffer {
  const b = Buffer.alloc(8 + (i * 37) % 200, i & 0xff)
  b.writeUInt32BE(i, 0)
  return b
}

t.test('replayed DATA packets (all captured, from the real source) are dropped as replayed, nothing delivered twice', async (t) => {
  const { clock, a, b, ta, tb } = simPair({ seed: 11 })
  const got: number[] = []
  b.on('message', (d: Uint8Array) => got.push(Buffer.from(d).readUInt32BE(0)))
  const gotA: number[] = []
  a.on('message', (d: Uint8Array) => gotA.push(Buffer.from(d).readUInt32BE(0)))
  const out = await settle(clock, a.connect('10.0.0.2', 7400))
  t.ok(out?.ok)
  const s = (out as { value: Session }).value
  for (let i = 0; i < 300; i++) s.send(msg(i))
  clock.runUntil(() => got.length === 300, 5000)
  const sb = b.sessions()[0]!
  for (let i = 0; i < 50; i++) sb.send(msg(i))
  clock.runUntil(() => gotA.length === 50, 5000)
  clock.advance(50)
  t.same(got, Array.from({ length: 300 }, (_, i) => i))

  const fromA = ta.sent.filter(isData)
  const fromB = tb.sent.filter(isData)
  t.ok(fromA.length >= 10, `${fromA.length} DATA packets captured A → B`)
  t.ok(fromB.length >= 5, `${fromB.length} DATA packets captured B → A`)
  const droppedB = b.stats().dropped.replayed ?? 0
  const droppedA = a.stats().dropped.replayed ?? 0
  const authB = sb.stats().authFailures
  // Replay from the very socket that sent them: the source address matches the session.
  ta.record = false
  tb.record = false
  for (let round = 0; round < 3; round++) {
    for (const c of fromA) ta.inner.send([c.data], c.port, c.address)
    for (const c of fromB) tb.inner.send([c.data], c.port, c.address)
    clock.advance(10)
  }
  t.equal((b.stats().dropped.replayed ?? 0) - droppedB, 3 * fromA.length, 'B: every replay counted as replayed')
  t.equal((a.stats().dropped.replayed ?? 0) - droppedA, 3 * fromB.length, 'A: every replay counted as replayed')
  t.equal(sb.stats().authFailures - authB, 3 * fromA.length, 'the session counts them')
  t.equal(b.stats().dropped['auth-failed'] ?? 0, 0)
  t.same(got, Array.from({ length: 300 }, (_, i) => i), 'nothing delivered twice')
  t.same(gotA, Array.from({ length: 50 }, (_, i) => i))
  t.ok(s.isOpen && sb.isOpen, 'the session survives')
  t.equal(b.sessions().length, 1)

  // The session still works.
  s.send(msg(300))
  clock.runUntil(() => got.length === 301, 1000)
  t.equal(got.at(-1), 300)

  // After a new session (new keys, new ids) the old packets name a connection that is gone.
  s.close()
  clock.advance(100)
  const out2 = await settle(clock, a.connect('10.0.0.2', 7400))
  t.ok(out2?.ok, 'reconnected')
  const unknownBefore = b.stats().dropped['unknown-connection'] ?? 0
  for (const c of fromA) ta.inner.send([c.data], c.port, c.address)
  clock.advance(10)
  t.equal((b.stats().dropped['unknown-connection'] ?? 0) - unknownBefore, fromA.length, 'old session packets: unknown-connection')
  t.equal(got.length, 301, 'nothing delivered')
  await a.close()
  await b.close()
})

t.test('one-bit flips anywhere in protected packets (both directions): every copy dropped, session survives, traffic exact', async (t) => {
  const { clock, a, b, ta, tb } = simPair({ seed: 12 })
  const got: number[] = []
  b.on('message', (d: Uint8Array) => got.push(Buffer.from(d).readUInt32BE(0)))
  const gotA: number[] = []
  a.on('message', (d: Uint8Array) => gotA.push(Buffer.from(d).readUInt32BE(0)))
  const out = await settle(clock, a.connect('10.0.0.2', 7400))
  const s = (out as { value: Session }).value
  clock.advance(20)
  const sb = b.sessions()[0]!
  ta.record = false
  tb.record = false

  // Before each of the first DATA packets each side sends, inject every one-bit-flipped copy of it.
  const flipped = { a: 0, b: 0 }
  const reasons: Record<string, number> = {}
  const inject = (side: 'a' | 'b', tr: typeof ta, budget: { packets: number }) => (c: Captured): boolean => {
    const p = decodePacket(c.data)
    if (typeof p === 'string' || p.type !== PacketType.DATA || budget.packets === 0) return true
    budget.packets--
    for (let bit = 0; bit < c.data.length * 8; bit++) {
      const copy = Buffer.from(c.data)
      copy[bit >>> 3] ^= 1 << (bit & 7)
      const d = decodePacket(copy)
      const why = typeof d === 'string' ? d : `decodes as type ${(d as Packet).type}`
      reasons[why] = (reasons[why] ?? 0) + 1
      tr.inner.send([copy], c.port, c.address)
      flipped[side]++
    }
    return true
  }
  ta.onSend = inject('a', ta, { packets: 6 })
  tb.onSend = inject('b', tb, { packets: 6 })
  const dropsBefore = { a: sum(a.stats().dropped), b: sum(b.stats().dropped) }
  for (let i = 0; i < 100; i++) {
    s.send(msg(i))
    if (i % 10 === 0) sb.send(msg(i))
    clock.advance(1)
  }
  clock.runUntil(() => got.length === 100 && gotA.length === 10, 5000)
  ta.onSend = null
  tb.onSend = null
  clock.advance(100)
  t.ok(flipped.a > 1000 && flipped.b > 1000, `${flipped.a} flipped copies A → B, ${flipped.b} B → A`)
  t.equal(sum(b.stats().dropped) - dropsBefore.b, flipped.a, 'B dropped every flipped copy')
  t.equal(sum(a.stats().dropped) - dropsBefore.a, flipped.b, 'A dropped every flipped copy')
  const allowed = new Set(['auth-failed', 'replayed', 'unknown-connection', 'bad-magic', 'bad-version', 'bad-type', 'undecodable', 'bad-handshake', 'short'])
  for (const side of [a, b]) {
    for (const reason of Object.keys(side.stats().dropped)) t.ok(allowed.has(reason), `dropped as ${reason}`)
  }
  t.ok((b.stats().dropped['auth-failed'] ?? 0) > flipped.a / 2, `most flips fail authentication: ${b.stats().dropped['auth-failed']}`)
  t.comment(`what the flipped copies decode as: ${JSON.stringify(reasons)}`)
  t.same(got, Array.from({ length: 100 }, (_, i) => i), 'A → B exactly once, in order')
  t.same(gotA, Array.from({ length: 10 }, (_, i) => i * 10), 'B → A exactly once, in order')
  t.ok(s.isOpen && sb.isOpen, 'both ends of the session survive')
  t.equal(a.sessions().length, 1)
  t.equal(b.sessions().length, 1)
  t.ok(sb.stats().authFailures > 0)
  // And keeps working.
  for (let i = 100; i < 110; i++) s.send(msg(i))
  clock.runUntil(() => got.length === 110, 1000)
  t.same(got.slice(100), Array.from({ length: 10 }, (_, i) => 100 + i))
  await a.close()
  await b.close()
})

t.test('a corrupting network (seeded 5% bit flips, both directions) never delivers a corrupted message', async (t) => {
  const { net, clock, a, b } = simPair({ seed: 13 })
  net.configure({ corrupt: 0.05 })
  const got: Buffer[] = []
  b.on('message', (d: Uint8Array) => got.push(Buffer.from(d)))
  const out = await settle(clock, a.connect('10.0.0.2', 7400))
  t.ok(out?.ok, 'handshake completes despite corruption')
  const s = (out as { value: Session }).value
  for (let i = 0; i < 2000; i++) {
    s.send(msg(i))
    if (i % 20 === 0) clock.advance(1)
  }
  clock.runUntil(() => got.length === 2000, 60_000)
  t.equal(got.length, 2000)
  let bad = 0
  for (let i = 0; i < got.length; i++) if (!got[i]!.equals(msg(i))) bad++
  t.equal(bad, 0, 'every message intact and in order')
  t.ok(net.stats.corrupted > 20, `${net.stats.corrupted} datagrams corrupted`)
  const dropped = sum(a.stats().dropped) + sum(b.stats().dropped)
  t.ok(dropped > 0 && dropped <= net.stats.corrupted, `${dropped} dropped of ${net.stats.corrupted} corrupted`)
  t.ok(s.isOpen)
  await a.close()
  await b.close()
})

function sum(r: Record<string, number>): number {
  return Object.values(r).reduce((x, y) => x + y, 0)
}
