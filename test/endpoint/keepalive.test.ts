// An idle session costs one PING and one ACK per keepalive interval: only the
// initiator probes (the responder waits 1.5× as long), the PING is acked at
// once. A silent initiator is still detected by the responder.
import t from 'tap'
import { decodeFrames, decodePacket, FrameType, PacketType, type Frame } from '../../lib/wire/codec.js'
import { A, B, connect, ticks, world } from './helpers.js'

function framesOf(d: Buffer): Frame[] {
  const p = decodePacket(d)
  if (typeof p === 'string' || p.type !== PacketType.DATA) return []
  const f = decodeFrames(p.payload)
  return typeof f === 'string' ? [] : f
}

t.test('idle session: one PING (from the initiator) and one ACK per keepalive interval', async (t) => {
  const w = world({ capture: true, link: { delayMs: 0.3 }, a: { keepaliveMs: 1000, idleTimeoutMs: 5000 }, b: { keepaliveMs: 1000, idleTimeoutMs: 5000 } })
  const { sa, sb } = await connect(w)
  sa.send(Buffer.from('hello'))
  for (let i = 0; i < 50; i++) { w.clock.advance(1); await ticks(1) }
  const fromA = w.sentA.length
  const fromB = w.sentB.length
  for (let i = 0; i < 10_000; i++) { w.clock.advance(1); if (i % 100 === 0) await ticks(1) }
  const a = w.sentA.slice(fromA).map(framesOf)
  const b = w.sentB.slice(fromB).map(framesOf)
  const pings = (l: Frame[][]): number => l.filter((fs) => fs.some((f) => f.type === FrameType.PING)).length
  t.equal(pings(a), 10, 'the initiator sent one PING per second for 10 s')
  t.equal(pings(b), 0, 'the responder sent none')
  t.equal(b.length, 10, 'the responder sent one ACK per PING, nothing else')
  t.equal(a.length, 10, 'the initiator sent nothing but the PINGs')
  t.equal(sa.isOpen && sb.isOpen, true, 'both sides stay up')
  await w.a.close(); await w.b.close()
})

t.test('the responder still probes, and times out, when the initiator falls silent', async (t) => {
  const w = world({ capture: true, link: { delayMs: 0.3 }, a: { keepaliveMs: 1000, idleTimeoutMs: 5000 }, b: { keepaliveMs: 1000, idleTimeoutMs: 5000 } })
  const { sb } = await connect(w)
  for (let i = 0; i < 50; i++) { w.clock.advance(1); await ticks(1) }
  w.net.partition(A, B)
  const fromB = w.sentB.length
  let downAt = -1
  const start = w.clock.now()
  for (let i = 0; i < 8000 && downAt < 0; i++) {
    w.clock.advance(1)
    if (w.downB.length > 0) downAt = w.clock.now() - start
    if (i % 100 === 0) await ticks(1)
  }
  const probes = w.sentB.slice(fromB).map(framesOf).filter((fs) => fs.some((f) => f.type === FrameType.PING)).length
  t.ok(probes >= 1, `the responder probed on its own (${probes} PINGs)`)
  t.equal(sb.isOpen, false)
  t.equal(w.downB[0]?.reason, 'idle-timeout')
  t.ok(downAt > 4000 && downAt <= 5100, `down after the idle timeout (${downAt} ms)`)
  await w.a.close(); await w.b.close()
})
