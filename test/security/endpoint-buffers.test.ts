/**
 * Buffers of the protected data path: payloads are built in one scratch,
 * sealed into a new buffer per datagram (the socket may hold what it is
 * given) and opened in place; under loss (packet numbers skipped, reordered
 * retransmissions) every message arrives intact.
 */
import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import { connect, driveUntil, world } from '../endpoint/helpers.js'

const ORDERED = { channel: 3, delivery: Delivery.RELIABLE_ORDERED }

for (const loss of [0, 0.1]) {
  t.test(`keyed ping-pong, ${loss * 100} % loss: every message intact, nothing fails to open`, async (t) => {
    const w = world({ keyed: true, seed: 5, link: { loss } })
    const { sa, sb } = await connect(w)
    const rounds = 400
    w.b.on('message', (data: Uint8Array, s) => { s.send(Buffer.from(data).reverse(), ORDERED) })
    for (let i = 0; i < rounds; i++) {
      const ping = Buffer.alloc(20 + (i % 50), i & 0xff)
      ping.writeUInt32BE(i, 0)
      sa.send(ping, ORDERED)
      t.ok(await driveUntil(w, () => w.gotA.length === i + 1, 10_000), `round ${i} answered`)
      const pong = Buffer.from(w.gotA[i]!.data).reverse()
      if (!pong.equals(ping)) { t.fail(`round ${i}: pong differs`); break }
    }
    t.equal(w.gotA.length, rounds)
    t.equal(sa.protector!.openFailures + sb.protector!.openFailures, 0, 'no authentication failures')
  })
}

t.test('protected packets are built in one scratch buffer; unprotected payloads stay intact after send', async (t) => {
  for (const keyed of [true, false]) {
    const w = world({ keyed, seed: 9 })
    const { sa } = await connect(w)
    const plaintextBuffers = new Set<ArrayBufferLike>()
    if (keyed) {
      const p = sa.protector!
      const seal = p.seal.bind(p) as (header: Uint8Array, pn: number, plaintext: Uint8Array, out?: Uint8Array) => Uint8Array
      p.seal = ((header: Uint8Array, pn: number, plaintext: Uint8Array, out?: Uint8Array) => {
        plaintextBuffers.add(plaintext.buffer)
        return seal(header, pn, plaintext, out)
      }) as typeof p.seal
    }
    // What the socket was handed, kept by reference (a real socket may hold chunks until sent).
    const held: { chunks: Uint8Array[], copy: Buffer }[] = []
    const send = w.ta.send.bind(w.ta)
    w.ta.send = (chunks, port, address) => {
      held.push({ chunks: [...chunks], copy: Buffer.concat(chunks as Uint8Array[]) })
      send(chunks, port, address)
    }
    for (let i = 0; i < 300; i++) sa.send(Buffer.alloc(50 + (i % 200), i & 0xff), ORDERED)
    t.ok(await driveUntil(w, () => w.gotB.length === 300, 10_000))
    t.ok(w.gotB.every((m, i) => m.data.length === 50 + (i % 200) && m.data.every((x) => x === (i & 0xff))), 'every message intact')
    if (keyed) t.equal(plaintextBuffers.size, 1, 'every sealed payload was built in the same scratch')
    t.ok(held.length > 10)
    t.ok(held.every((h) => Buffer.concat(h.chunks).equals(h.copy)), 'no chunk handed to the socket was overwritten later')
  }
})
