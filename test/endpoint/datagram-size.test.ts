/**
 * Datagram size per path: `maxDatagram` between hosts, `loopbackDatagram`
 * to peers at loopback addresses; each side advertises its size in the
 * handshake and a session sends nothing larger than the smaller of the two.
 * And the bytes-in-flight cap that keeps large datagrams within the
 * receiver's socket buffer.
 */
import t from 'tap'
import { Endpoint, isLoopbackAddress } from '../../lib/endpoint.js'
import { decodePacket, Delivery, PacketType } from '../../lib/wire/codec.js'
import { FakeClock, SimNetwork } from '../../lib/testing.js'
import { connect, driveUntil, world, type World } from './helpers.js'

const LOOPBACK = ['127.0.0.1', '127.0.0.2'] as const

/** Largest datagram in `sent` that carries DATA (handshakes are padded to maxDatagram). */
function largestData(sent: Buffer[]): number {
  let n = 0
  for (const d of sent) {
    const p = decodePacket(d)
    if (typeof p !== 'string' && p.type === PacketType.DATA && d.length > n) n = d.length
  }
  return n
}

/** Send `bytes` in one reliable message a → b and wait for it. */
async function transfer(t: Test, w: World, bytes: number): Promise<void> {
  const { sa } = await connect(w)
  const data = Buffer.alloc(bytes, 0x5a)
  sa.send(data, { channel: 3, delivery: Delivery.RELIABLE_ORDERED })
  t.ok(await driveUntil(w, () => w.gotB.length === 1, 5000), `${bytes} bytes delivered`)
  t.ok(w.gotB[0]!.data.equals(data), 'intact')
}
type Test = Parameters<Parameters<typeof t.test>[1]>[0]

t.test('isLoopbackAddress', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '0:0:0:0:0:0:0:1', '0::1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9']) {
    t.ok(isLoopbackAddress(a), a)
  }
  for (const a of ['10.0.0.1', '128.0.0.1', '127.0.0', '127.example.com', '::2', '::', '10::1', '::ffff:10.0.0.1', 'fe80::1', '0:0:0:0:0:0:1:1', '']) {
    t.notOk(isLoopbackAddress(a), a)
  }
})

t.test('loopback peers use loopbackDatagram (default 32768), both sides', async (t) => {
  for (const keyed of [false, true]) {
    const w = world({ hosts: LOOPBACK, capture: true, keyed })
    await transfer(t, w, 200_000)
    const sa = w.a.sessions()[0]!
    const sb = w.b.sessions()[0]!
    t.equal(sa.maxDatagram, 32768, `${keyed ? 'keyed' : 'insecure'}: initiator's session`)
    t.equal(sb.maxDatagram, 32768, 'responder\'s session')
    t.equal(sa.stats().maxDatagram, 32768, 'in the stats too')
    const largest = largestData(w.sentA)
    t.ok(largest > 16384 && largest <= 32768, `a's largest DATA datagram: ${largest} bytes`)
    t.ok(w.sentA.length < 20, `200,000 bytes in ${w.sentA.length} datagrams`)
  }
})

t.test('peers on other hosts keep maxDatagram (default 1200), whatever loopbackDatagram says', async (t) => {
  const w = world({ capture: true, a: { loopbackDatagram: 65000 }, b: { loopbackDatagram: 65000 } })
  await transfer(t, w, 50_000)
  t.equal(w.a.sessions()[0]!.maxDatagram, 1200)
  t.equal(w.b.sessions()[0]!.maxDatagram, 1200)
  const largest = Math.max(...w.sentA.map((d) => d.length), ...w.sentB.map((d) => d.length))
  t.ok(largest <= 1200, `largest datagram either way: ${largest} bytes`)
})

t.test('a session uses the smaller of the two advertised sizes', async (t) => {
  const cases: { a: number, b: number }[] = [{ a: 32768, b: 4096 }, { a: 4096, b: 32768 }, { a: 9000, b: 9000 }]
  for (const c of cases) {
    const w = world({ hosts: LOOPBACK, capture: true, a: { loopbackDatagram: c.a }, b: { loopbackDatagram: c.b } })
    const { sa, sb } = await connect(w)
    const expect = Math.min(c.a, c.b)
    t.equal(sa.maxDatagram, expect, `a ${c.a}, b ${c.b}: a's session`)
    t.equal(sb.maxDatagram, expect, `a ${c.a}, b ${c.b}: b's session`)
    const data = Buffer.alloc(100_000, 1)
    sa.send(data)
    sb.send(data)
    t.ok(await driveUntil(w, () => w.gotA.length === 1 && w.gotB.length === 1, 5000), 'both delivered')
    const largest = Math.max(largestData(w.sentA), largestData(w.sentB))
    t.ok(largest <= expect && largest > expect - 200, `largest DATA datagram ${largest}, limit ${expect}`)
  }
  // Between hosts the same rule applies to maxDatagram.
  const w = world({ capture: true, a: { maxDatagram: 1400 }, b: { maxDatagram: 1300 } })
  const { sa, sb } = await connect(w)
  t.equal(sa.maxDatagram, 1300)
  t.equal(sb.maxDatagram, 1300)
})

t.test('a session goes down to the peer\'s size, but never below what maxMessageSize needs', async (t) => {
  let w = world({ hosts: LOOPBACK, a: { loopbackDatagram: 4096 }, b: { loopbackDatagram: 600, maxDatagram: 600 } })
  let { sa, sb } = await connect(w)
  t.equal(sa.maxDatagram, 600, 'a follows b down to 600')
  t.equal(sb.maxDatagram, 600, 'b: its own 600')
  // 40 MiB in at most 65536 fragments needs fragments of 640+ bytes: a stays above 600.
  w = world({ hosts: LOOPBACK, a: { loopbackDatagram: 4096, maxMessageSize: 40 << 20 }, b: { loopbackDatagram: 600, maxDatagram: 600 } });
  ({ sa, sb } = await connect(w))
  t.ok(sa.maxDatagram > 640 && sa.maxDatagram < 1200, `a: ${sa.maxDatagram}, the smallest that carries 40 MiB`)
  t.equal(sb.maxDatagram, 600)
  t.throws(() => new Endpoint(w.net.bind('10.9.9.8'), { insecure: true, clock: w.clock, maxDatagram: 600, maxMessageSize: 40 << 20 }),
    /maxMessageSize 41943040 needs more than 65536 fragments/, 'and a configuration that could not carry it is refused')
})

t.test('datagram size options are validated', async (t) => {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock })
  for (const [name, value] of [['loopbackDatagram', 575], ['loopbackDatagram', 65001], ['loopbackDatagram', 1500.5], ['maxDatagram', 100]] as const) {
    t.throws(() => new Endpoint(net.bind('10.9.9.9'), { insecure: true, clock, [name]: value }),
      new RangeError(`${name} must be an integer 576..65000, got ${value}`), `${name}: ${value}`)
  }
})

t.test('bytes in flight stay within maxInFlightBytes (plus one packet)', async (t) => {
  const cap = 100_000
  const w = world({ hosts: LOOPBACK, a: { maxInFlightBytes: cap }, keep: false })
  const { sa } = await connect(w)
  // Nothing acknowledges while b cannot answer: the window fills and stops.
  w.net.partition(LOOPBACK[1], LOOPBACK[0])
  const msg = Buffer.alloc(1000, 2)
  for (let i = 0; i < 2000; i++) sa.send(msg)
  let peak = 0
  for (let i = 0; i < 50; i++) {
    w.clock.advance(1)
    await new Promise((resolve) => setImmediate(resolve))
    peak = Math.max(peak, sa.stats().inFlightBytes)
  }
  t.ok(peak >= cap, `the window filled: ${peak} bytes in flight`)
  t.ok(peak < cap + sa.maxDatagram, `and stopped within one packet of ${cap}: ${peak}`)
  t.ok(sa.stats().queuedBytes > 1_000_000, 'the rest waits in the send queue')
  w.net.heal()
  t.ok(await driveUntil(w, () => w.gotB.length === 2000, 10_000), 'everything arrives once the path heals')
  t.equal(sa.stats().inFlightBytes, 0, 'nothing left in flight')
})

t.test('maxInFlightBytes defaults to half the transport\'s receive buffer, within 64 KiB .. 2 MiB', async (t) => {
  for (const [recvBufferSize, expect] of [[400_000, 200_000], [50_000, 65536], [64 << 20, 2 << 20], [undefined, 2 << 20]] as const) {
    const w = world({ hosts: LOOPBACK, keep: false })
    if (recvBufferSize !== undefined) Object.defineProperty(w.ta, 'recvBufferSize', { value: recvBufferSize })
    // A new endpoint on the same transport reads it at session creation.
    const a = new Endpoint(w.ta, { insecure: true, clock: w.clock })
    w.a = a
    const { sa } = await connect(w)
    w.net.partition(LOOPBACK[1], LOOPBACK[0])
    const msg = Buffer.alloc(4000, 3)
    for (let i = 0; i < 700; i++) sa.send(msg) // 2.8 MB: more than the largest cap, within the queue limit
    let peak = 0
    for (let i = 0; i < 30; i++) {
      w.clock.advance(1)
      await new Promise((resolve) => setImmediate(resolve))
      peak = Math.max(peak, sa.stats().inFlightBytes)
    }
    t.ok(peak >= expect && peak < expect + sa.maxDatagram,
      `receive buffer ${recvBufferSize ?? 'unknown'}: peak in flight ${peak}, cap ${expect}`)
  }
})

/** Rewrite a handshake's advertised max_datagram 32768 (field 7: 0x38 0x80 0x80 0x02) to 16384, same length. */
function patchMaxDatagram(d: Buffer): Buffer | null {
  for (let i = 0; i + 3 < d.length; i++) {
    if (d[i] === 0x38 && d[i + 1] === 0x80 && d[i + 2] === 0x80 && d[i + 3] === 0x02) {
      const out = Buffer.from(d)
      out[i + 3] = 0x01
      const p = decodePacket(out)
      if (typeof p !== 'string' && p.handshake?.maxDatagram === 16384) return out
    }
  }
  return null
}

t.test('the advertised sizes are covered by the key proofs: an on-path rewrite fails the handshake', async (t) => {
  for (const [side, type] of [['a', PacketType.CONNECT], ['b', PacketType.ACCEPT]] as const) {
    const w = world({ hosts: LOOPBACK, keyed: true })
    const tr = side === 'a' ? w.ta : w.tb
    const send = tr.send.bind(tr)
    let patched = 0
    tr.send = (chunks, port, address) => {
      const d = Buffer.concat(chunks as Uint8Array[])
      const p = decodePacket(d)
      const rewritten = typeof p !== 'string' && p.type === type ? patchMaxDatagram(d) : null
      if (rewritten !== null) patched++
      send(rewritten !== null ? [rewritten] : chunks, port, address)
    }
    let err: unknown
    w.a.connect(w.bAddress, 2000).catch((e: unknown) => { err = e })
    t.ok(await driveUntil(w, () => err !== undefined, 10_000), `${type === PacketType.CONNECT ? 'CONNECT' : 'ACCEPT'} rewritten: connect() fails`)
    t.ok(patched > 0, `${patched} handshake packets rewritten`)
    t.equal(w.a.sessions().length, 0, 'the initiator has no session')
    const dropped = side === 'a' ? w.b.stats().dropped['bad-key'] : w.a.stats().dropped['bad-key']
    t.ok((dropped ?? 0) > 0, `the ${side === 'a' ? 'responder' : 'initiator'} dropped it as bad-key`)
  }
})
