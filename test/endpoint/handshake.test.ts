import t from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { decodePacket, Delivery, PacketType } from '../../lib/wire/codec.js'
import { A, B, capture, connect, driveUntil, ticks, world } from './helpers.js'

function typeOf(d: Buffer): number {
  const p = decodePacket(d)
  return typeof p === 'string' ? -1 : p.type
}

/** Drop the first datagram of `type` sent by `t` (a SimTransport). */
function dropFirst(tr: { send: (...a: any[]) => void }, type: number): () => number {
  const send = tr.send.bind(tr)
  let dropped = 0
  tr.send = (chunks: Uint8Array[], port: number, address: string) => {
    if (dropped === 0 && typeOf(Buffer.concat(chunks)) === type) { dropped++; return }
    send(chunks, port, address)
  }
  return () => dropped
}

for (const [name, side, type] of [['HELLO', 'a', PacketType.HELLO], ['CHALLENGE', 'b', PacketType.CHALLENGE], ['CONNECT', 'a', PacketType.CONNECT], ['ACCEPT', 'b', PacketType.ACCEPT]] as const) {
  t.test(`lost ${name} recovered by a retry`, async (t) => {
    const w = world({ capture: true, link: { delayMs: 1 } })
    const dropped = dropFirst(side === 'a' ? w.ta : w.tb, type)
    const { sa, sb } = await connect(w)
    t.equal(dropped(), 1, `one ${name} dropped`)
    t.equal(sa.isOpen && sb.isOpen, true)
    t.equal(w.clock.now() >= 200, true, 'took a retry (handshakeRetryMs 200)')
    t.equal(w.a.stats().handshakesCompleted, 1)
    t.equal(w.b.stats().handshakesCompleted, 1)
    t.equal(w.b.sessions().length, 1, 'exactly one session on the responder')
    sa.send(Buffer.from('after'))
    t.equal(await driveUntil(w, () => w.gotB.length === 1, 100), true)
    await w.a.close(); await w.b.close()
  })
}

t.test('no state on the responder after HELLO alone; CHALLENGE never larger than HELLO', async (t) => {
  const w = world({ capture: true })
  const c = w.net.bind('10.0.0.9', 9)
  const got: Buffer[] = []
  c.setHandler((d) => { got.push(Buffer.from(d)) })
  // A real HELLO (a's own never reaches b), replayed from another socket many times.
  w.net.partition(A.address, B.address)
  w.a.connect(B.address, B.port).catch(() => {})
  w.clock.advance(0.5)
  const hello = w.sentA.find((d) => typeOf(d) === PacketType.HELLO)!
  for (let i = 0; i < 1000; i++) c.send([hello], B.port, B.address)
  w.clock.advance(1)
  t.equal(got.length, 1000, 'each HELLO answered (stateless)')
  t.equal(got.every((d) => typeOf(d) === PacketType.CHALLENGE), true)
  t.equal(got.every((d) => d.length <= hello.length), true, `CHALLENGE ${got[0].length} B ≤ HELLO ${hello.length} B`)
  t.equal(w.b.sessions().length, 0, 'no session from HELLO')
  t.equal(w.b.stats().sessions, 0)
  // A short HELLO (no padding): the responder refuses to answer with more than it got.
  const p = decodePacket(hello)
  t.not(typeof p, 'string')
  const { encodePacket, MAGIC, VERSION } = await import('../../lib/wire/codec.js')
  const small = encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.HELLO, handshake: { ...(p as any).handshake, padding: Buffer.alloc(0) } })
  got.length = 0
  c.send([small], B.port, B.address)
  w.clock.advance(1)
  t.equal(got.length, 1, 'an unpadded HELLO is still answered…')
  t.equal(got[0].length <= small.length, true, `…with a CHALLENGE (${got[0].length} B) no larger than it (${small.length} B)`)
  await w.a.close(); await w.b.close()
})

t.test('simultaneous connect from both sides yields exactly one session each', async (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const w = world({ seed, link: { delayMs: 1, jitterMs: 1 } })
    const ups: string[] = []
    w.a.on('session', () => ups.push('a'))
    w.b.on('session', () => ups.push('b'))
    let sa: Session | undefined
    let sb: Session | undefined
    w.a.connect(B.address, B.port).then((s) => { sa = s })
    w.b.connect(A.address, A.port).then((s) => { sb = s })
    t.equal(await driveUntil(w, () => sa !== undefined && sb !== undefined, 3000), true, `seed ${seed}: both connects resolve`)
    await driveUntil(w, () => false, 50)
    t.equal(w.a.sessions().length, 1, `seed ${seed}: one session on a`)
    t.equal(w.b.sessions().length, 1, `seed ${seed}: one session on b`)
    t.same(ups.sort(), ['a', 'b'], 'one session event per side')
    t.equal(sa!.remoteId, sb!.localId)
    t.equal(sb!.remoteId, sa!.localId)
    t.equal(sa!.initiator !== sb!.initiator, true, 'exactly one initiator')
    sa!.send(Buffer.from('x'))
    sb!.send(Buffer.from('y'))
    t.equal(await driveUntil(w, () => w.gotA.length === 1 && w.gotB.length === 1, 100), true)
    t.equal(w.downA.length + w.downB.length, 0)
    await w.a.close(); await w.b.close()
  }
})

for (const keyed of [false, true]) {
  t.test(`peer restart: session-down 'replaced', then a new session; nothing old delivered into the new (${keyed ? 'keyed' : 'insecure'})`, async (t) => {
    const w = world({ keyed, link: { delayMs: 1 } })
    const { sa, sb } = await connect(w)
    for (let i = 0; i < 5; i++) sa.send(Buffer.from(`old-${i}`))
    t.equal(await driveUntil(w, () => w.gotB.length === 5, 100), true)
    // Old-session traffic still in the air when a restarts: a big unreliable burst.
    w.net.configure({ delayMs: 30 })
    for (let i = 0; i < 20; i++) sa.send(Buffer.from(`stale-${i}`), { delivery: Delivery.RELIABLE_UNORDERED })
    w.clock.advance(0.1)
    // "Kill" a: its socket goes away without telling b, a new endpoint binds the same address/port.
    w.ta.send = () => {}
    await w.a.close()
    w.net.configure({ delayMs: 1 })
    const ta2 = w.net.bind(A.address, A.port)
    const sent2: Buffer[] = []
    capture(ta2, sent2)
    const a2 = new Endpoint(ta2, keyed ? { keys: [Buffer.alloc(32, 7)], clock: w.clock } : { insecure: true, clock: w.clock })
    const got2: string[] = []
    a2.on('message', (d: Uint8Array) => got2.push(Buffer.from(d).toString()))
    const gotB: string[] = []
    w.b.on('message', (d: Uint8Array, s: Session) => { if (s !== sb) gotB.push(Buffer.from(d).toString()) })
    const newB: Session[] = []
    w.b.on('session', (s: Session) => newB.push(s))
    let sa2: Session | undefined
    a2.connect(B.address, B.port).then((s) => { sa2 = s })
    t.equal(await driveUntil(w, () => sa2 !== undefined && newB.length === 1, 1000), true)
    t.equal(w.downB.length, 1)
    t.equal(w.downB[0].session, sb)
    t.equal(w.downB[0].reason, 'replaced')
    t.not(newB[0].remoteEpoch, sb.remoteEpoch, 'new epoch')
    t.equal(w.b.sessions().length, 1)
    t.equal(w.b.sessions()[0], newB[0])
    sa2!.send(Buffer.from('new-0'))
    newB[0].send(Buffer.from('hello-new'))
    await driveUntil(w, () => false, 200) // the stale datagrams (30 ms late) arrive meanwhile
    t.same(gotB, ['new-0'], 'only the new session’s message delivered into the new session')
    t.same(got2, ['hello-new'])
    t.equal(w.b.stats().dropped['unknown-connection'] !== undefined, true, 'stale datagrams dropped as unknown connection')
    void sa
    await a2.close(); await w.b.close()
    await ticks()
  })
}

t.test('handshake through 30 % loss: retries complete it', async (t) => {
  let ok = 0
  const runs = 40
  for (let seed = 1; seed <= runs; seed++) {
    const w = world({ seed, link: { loss: 0.3, delayMs: 1 } })
    try {
      await connect(w, 6000)
      ok++
    } catch {}
    await w.a.close(); await w.b.close()
  }
  t.comment(`${ok}/${runs} handshakes completed at 30 % loss`)
  t.equal(ok, runs, 'every handshake completes within handshakeTimeoutMs')
})

t.test('handshake to nobody times out; connect after close rejects', async (t) => {
  const w = world()
  let err: any
  w.a.connect('10.9.9.9', 1).catch((e) => { err = e })
  await driveUntil(w, () => err !== undefined, 6000, 10)
  t.equal(err?.name, 'TimeoutError')
  t.equal(w.a.stats().handshakesFailed, 1)
  await w.a.close()
  await t.rejects(w.a.connect(B.address, B.port), { name: 'ClosedError' })
  await w.b.close()
})

t.test('a CONNECT replayed after its session closed opens nothing and is counted as replayed-connect', async (t) => {
  for (const keyed of [false, true]) {
    const w = world({ capture: true, keyed })
    const { sa, sb } = await connect(w)
    const connectPacket = w.sentA.find((d) => typeOf(d) === PacketType.CONNECT)!
    sa.close()
    t.ok(await driveUntil(w, () => !sb.isOpen, 100), 'both sides closed')
    const before = w.b.stats()
    w.ta.send([connectPacket], B.port, B.address) // from a's own address, within the cookie's lifetime
    w.clock.advance(1)
    await ticks()
    const after = w.b.stats()
    t.equal(after.sessions, 0, `${keyed ? 'keyed' : 'insecure'}: no session`)
    t.equal(after.handshakesCompleted, before.handshakesCompleted, 'no handshake completed')
    t.equal((after.dropped['replayed-connect'] ?? 0) - (before.dropped['replayed-connect'] ?? 0), 1, 'dropped as replayed-connect')
    t.equal(after.dropped.replayed ?? 0, 0, 'not counted with replayed DATA')
  }
})

t.test('a late second CHALLENGE with a newer cookie does not fail the handshake (keyed)', async (t) => {
  // 600 ms each way: HELLO is retried before the first CHALLENGE arrives, and
  // the retry reaches the responder in the next second, so its cookie (which
  // carries the issue second) differs. The responder accepts the CONNECT that
  // echoed the first cookie; its ACCEPT proves a transcript with that cookie.
  // An initiator that switched to the second cookie could not verify it and
  // reported "no matching network key".
  const w = world({ keyed: true, capture: true, link: { delayMs: 600 } })
  const challenges = new Set<string>()
  const send = w.tb.send.bind(w.tb)
  w.tb.send = (chunks: Uint8Array[], port: number, address: string) => {
    const d = Buffer.concat(chunks)
    const p = decodePacket(d)
    if (typeof p !== 'string' && p.type === PacketType.CHALLENGE) challenges.add(Buffer.from(p.handshake!.cookie).toString('hex'))
    send(chunks, port, address)
  }
  const { sa, sb } = await connect(w)
  t.ok(challenges.size >= 2, `the responder issued ${challenges.size} different cookies`)
  t.equal(sa.isOpen && sb.isOpen, true, 'both sides open')
  t.equal(w.a.stats().handshakesFailed ?? 0, 0, 'no failed handshake on the initiator')
  t.equal(w.b.sessions().length, 1, 'exactly one session on the responder')
  sa.send(Buffer.from('after'))
  t.equal(await driveUntil(w, () => w.gotB.length === 1, 5000), true, 'data flows')
  await w.a.close(); await w.b.close()
})
