/**
 * ConnectionHost.packetBuffer: when the host provides it, every packet's
 * payload is built in the buffer it returns (the endpoint returns one
 * preallocated scratch for protected sessions); without it, each packet
 * gets its own buffer.
 */
import t from 'tap'
import { Connection, type ConnectionHost } from '../../lib/core/connection.js'
import { decodeFrames, Delivery, FrameType } from '../../lib/wire/codec.js'

function sender(scratch: Buffer | null) {
  const payloads: Buffer[] = []
  const copies: Buffer[] = []
  const host: ConnectionHost = {
    output: (_c, _pn, payload) => { payloads.push(payload); copies.push(Buffer.from(payload)) },
    deliver() {}, drain() {}, closed() {},
    ...(scratch === null ? {} : { packetBuffer: (_c: Connection, size: number) => scratch.subarray(0, size) }),
  }
  return { conn: new Connection(host, 0), payloads, copies }
}

for (const withScratch of [true, false]) {
  t.test(`packets ${withScratch ? 'built in the host\'s scratch' : 'in their own buffers'}`, async (t) => {
    const scratch = Buffer.alloc(1200)
    const s = sender(withScratch ? scratch : null)
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 40; i++) s.conn.send(Buffer.alloc(100, round * 40 + i), 1, Delivery.RELIABLE_ORDERED)
      s.conn.flush(round)
    }
    t.ok(s.payloads.length >= 6, `${s.payloads.length} packets`)
    const inScratch = s.payloads.filter((p) => p.buffer === scratch.buffer && p.byteOffset === scratch.byteOffset)
    t.equal(inScratch.length, withScratch ? s.payloads.length : 0)
    // What each packet carried when output ran: all 120 messages, in order, intact.
    const seen: number[] = []
    for (const c of s.copies) {
      const frames = decodeFrames(c)
      if (typeof frames === 'string') throw new Error(frames)
      for (const f of frames) {
        if (f.type !== FrameType.DATA) continue
        for (const m of f.messages.length > 0 ? f.messages : [f.data]) { seen.push(m[0]!); t.ok(m.length === 100 && m.every((x) => x === m[0])) }
      }
    }
    t.same(seen, Array.from({ length: 120 }, (_, i) => i))
  })
}
