/**
 * Off-path spoofing over real UDP on 127.0.0.1: raw datagrams from test
 * sockets (each a distinct source address:port the node has never heard
 * from) craft HELLO and CONNECT packets with forged cookies, replay a real
 * captured CONNECT from another source port, and send garbage of every size
 * from 5 to 1200 bytes. The node must keep no session state, never answer
 * with more bytes than the datagram that caused the answer, and so amplify
 * by at most 1 in total.
 */
import t from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { Endpoint } from '../../lib/endpoint.js'
import { createNonce } from '../../lib/security/handshake.js'
import { keyId } from '../../lib/security/keys.js'
import { createRng } from '../../lib/transport/sim.js'
import { decodePacket, encodePacket, MAGIC, PacketType, VERSION, type Packet } from '../../lib/wire/codec.js'
import { KEY_NEW, KEY_OTHER, waitFor } from './fixtures/helpers.js'

interface Attacker {
  socket: Socket
  port: number
  replies: { data: Buffer, packet: Packet | string }[]
}

async function attacker(): Promise<Attacker> {
  const socket = createSocket('udp4')
  const a: Attacker = { socket, port: 0, replies: [] }
  socket.on('message', (data) => a.replies.push({ data, packet: decodePacket(data) }))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  a.port = socket.address().port
  return a
}

/** A handshake packet of `size` bytes (padding fills; at most 2 bytes less at varint steps), or unpadded when the fields alone are larger. */
function handshakePacket(type: number, hs: Record<string, unknown>, size: number): Buffer {
  const base = Buffer.from(encodePacket({ magic: MAGIC, version: VERSION, type, handshake: hs as never }))
  if (base.length >= size) return base
  // Varint length fields grow at 128 bytes: when `size` cannot be hit exactly, the largest packet below it.
  for (let pad = size - base.length; pad >= 0; pad--) {
    const out = Buffer.from(encodePacket({ magic: MAGIC, version: VERSION, type, handshake: { ...hs, padding: Buffer.alloc(pad) } as never }))
    if (out.length <= size) return out
  }
  return base
}

async function send(a: Attacker, data: Buffer, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => a.socket.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))
}

t.test('crafted HELLO / forged CONNECT / garbage, sizes 5..1200: no state, no reply larger than its request, amplification ≤ 1', async (t) => {
  const node = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW] })
  const attackers = await Promise.all([attacker(), attacker(), attacker(), attacker()])
  t.teardown(async () => {
    await node.close()
    for (const a of attackers) a.socket.close()
  })
  let sessionEvents = 0
  node.on('session', () => sessionEvents++)
  const rng = createRng(4)
  const int = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(0, 255)))

  // Every crafted handshake names a unique connection id; a CHALLENGE or REJECT echoes it, so each reply maps to its request.
  const requestSize = new Map<number, number>()
  let nextId = 0x10000
  let sentDatagrams = 0
  let sentBytes = 0
  const kinds: Record<string, number> = {}
  const N = 3000
  for (let i = 0; i < N; i++) {
    const a = attackers[i % attackers.length]!
    const size = 5 + (i * 397) % 1196 // every size 5..1200 is covered (397 and 1196 are coprime)
    const id = nextId++
    let data: Buffer
    let kind: string
    switch (i % 6) {
      case 0: // HELLO of any size, sometimes offering the real key id
        kind = 'hello'
        data = handshakePacket(PacketType.HELLO, { connectionId: id, epoch: int(1, 0xffffffff), nonce: createNonce(), keyId: i % 12 === 0 ? keyId(KEY_NEW) : int(0, 0xffffffff), maxDatagram: 1200 }, size)
        break
      case 1: // CONNECT with a forged cookie and proof
        kind = 'connect-forged-cookie'
        data = handshakePacket(PacketType.CONNECT, { connectionId: id, epoch: int(1, 0xffffffff), nonce: createNonce(), cookie: bytes(20), proof: bytes(16), keyId: keyId(KEY_NEW), maxDatagram: 1200 }, size)
        break
      case 2: // HELLO with minimal fields (connection id 0 cannot be mapped: the size check still applies)
        kind = 'hello-minimal'
        data = handshakePacket(PacketType.HELLO, { connectionId: id, nonce: createNonce() }, size)
        break
      case 3: // valid magic, then garbage
        kind = 'magic-garbage'
        data = Buffer.concat([Buffer.from([0x0d, 0x48, 0x53, 0x4d, 0x57]), bytes(size - 5)])
        break
      case 4: // DATA naming random connections
        kind = 'data'
        data = Buffer.from(encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, connectionId: int(0, 0xffffffff), packetNumber: int(0, 0xffffffff), payload: bytes(Math.max(0, size - 22)) }))
        break
      default: // ACCEPT / CHALLENGE / REJECT nobody asked for
        kind = 'unsolicited'
        data = handshakePacket([PacketType.CHALLENGE, PacketType.ACCEPT, PacketType.REJECT][i % 3]!, { connectionId: id, epoch: 1, nonce: createNonce(), cookie: bytes(20), proof: bytes(16), reason: 5 }, size)
    }
    // Crafted handshakes smaller than their fields are cut to size: truncated datagrams are part of the campaign.
    if (data.length > size) {
      data = data.subarray(0, size)
      kind = 'truncated'
    }
    requestSize.set(id, data.length)
    kinds[kind] = (kinds[kind] ?? 0) + 1
    sentDatagrams++
    sentBytes += data.length
    await send(a, data, node.port)
    if (i % 16 === 15) await new Promise((r) => setImmediate(r))
  }
  t.ok(await waitFor(() => node.stats().datagramsReceived === sentDatagrams, 10_000), `node received ${node.stats().datagramsReceived} of ${sentDatagrams}`)
  const repliesSent = (): number => node.stats().datagramsSent
  t.ok(await waitFor(() => attackers.reduce((n, a) => n + a.replies.length, 0) === repliesSent(), 5000), 'every reply arrived')

  const stats = node.stats()
  t.same(node.sessions(), [], 'no session')
  t.equal(stats.sessions, 0)
  t.equal(sessionEvents, 0)
  t.equal(stats.handshakesCompleted, 0)
  t.equal(stats.handshakesStarted, 0)
  t.equal(stats.dropped['bad-cookie'], kinds['connect-forged-cookie'], 'every forged CONNECT dropped as bad-cookie')
  t.notOk(stats.dropped['bad-key'], 'no forged CONNECT got as far as the key proof')

  // Per reply: it is a CHALLENGE to a HELLO we sent, no larger than that HELLO.
  let replyBytes = 0
  let oversized = 0
  let unmatched = 0
  let challenges = 0
  for (const a of attackers) {
    for (const r of a.replies) {
      replyBytes += r.data.length
      const p = r.packet
      const req = typeof p === 'string' ? undefined : requestSize.get(p.connectionId)
      if (typeof p === 'string' || p.type !== PacketType.CHALLENGE || req === undefined) unmatched++
      else {
        challenges++
        if (r.data.length > req) oversized++
      }
    }
  }
  t.equal(unmatched, 0, 'every reply is a CHALLENGE answering one of our HELLOs')
  t.equal(oversized, 0, 'no reply larger than the datagram that caused it')
  t.ok(challenges > 0, `${challenges} HELLOs large enough were answered`)
  // A HELLO must carry a 32-byte nonce, a CHALLENGE a 20-byte cookie: the smallest decodable HELLO (~45 B) already
  // outweighs its CHALLENGE, so the endpoint's size check ('refused') is a second line of defence, rarely reached.
  t.ok((kinds.truncated ?? 0) > 0, `${kinds.truncated} crafted handshakes cut below their fields' size`)
  t.equal(stats.bytesSent, replyBytes, 'the node sent nothing else')
  t.equal(stats.bytesReceived, sentBytes)
  const amplification = replyBytes / sentBytes
  t.comment(`amplification: ${replyBytes} B out / ${sentBytes} B in = ${amplification.toFixed(4)} over ${sentDatagrams} datagrams of 5..1200 B; ${challenges} CHALLENGEs, ${stats.dropped.refused ?? 0} refused`)
  t.ok(amplification <= 1, `amplification ${amplification.toFixed(4)} ≤ 1`)

  // Worst case: only HELLOs, each just large enough to be answered — still ≤ 1 per datagram.
  const a = attackers[0]!
  const before = a.replies.length
  let worstIn = 0
  for (let size = 40; size <= 80; size++) {
    const d = handshakePacket(PacketType.HELLO, { connectionId: nextId++, nonce: createNonce() }, size)
    worstIn += d.length
    requestSize.set(nextId - 1, d.length)
    await send(a, d, node.port)
  }
  t.ok(await waitFor(() => node.stats().datagramsReceived === sentDatagrams + 41, 5000))
  t.ok(await waitFor(() => a.replies.length - before === node.stats().datagramsSent - stats.datagramsSent, 5000))
  const worst = a.replies.slice(before)
  let worstOut = 0
  for (const r of worst) {
    worstOut += r.data.length
    const req = requestSize.get((r.packet as Packet).connectionId)!
    t.ok(r.data.length <= req, `CHALLENGE ${r.data.length} B ≤ HELLO ${req} B`)
  }
  t.ok(worst.length > 0, `${worst.length} of 41 small HELLOs answered`)
  t.ok(worstOut <= worstIn, `worst case amplification ${(worstOut / worstIn).toFixed(3)}`)
  t.same(node.sessions(), [])
})

t.test('a real CONNECT captured by a relay and replayed from another source port creates no session', async (t) => {
  const node = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW] })
  const client = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW] })
  const relay = createSocket('udp4')
  const evil = await attacker()
  t.teardown(async () => {
    await client.close()
    await node.close()
    relay.close()
    evil.socket.close()
  })
  // The relay forwards client → node and node → client, keeping a copy of what the client sent.
  await new Promise<void>((resolve) => relay.bind(0, '127.0.0.1', resolve))
  const relayPort = relay.address().port
  const captured: Buffer[] = []
  relay.on('message', (data, rinfo) => {
    if (rinfo.port === client.port) {
      captured.push(Buffer.from(data))
      relay.send(data, node.port, '127.0.0.1')
    } else if (rinfo.port === node.port) {
      relay.send(data, client.port, '127.0.0.1')
    }
  })
  const s = await client.connect('127.0.0.1', relayPort)
  const got: string[] = []
  node.on('message', (d: Uint8Array) => got.push(Buffer.from(d).toString()))
  s.send(Buffer.from('through the relay'))
  t.ok(await waitFor(() => got.length === 1, 5000))
  t.equal(node.sessions().length, 1)
  const hello = captured.find((d) => (decodePacket(d) as Packet).type === PacketType.HELLO)!
  const connect = captured.find((d) => (decodePacket(d) as Packet).type === PacketType.CONNECT)!
  t.ok(hello !== undefined && connect !== undefined, 'captured HELLO and CONNECT')
  t.equal(connect.length, 1200, 'CONNECT is padded to maxDatagram')

  const before = node.stats()
  for (let i = 0; i < 20; i++) await send(evil, connect, node.port)
  await send(evil, hello, node.port)
  t.ok(await waitFor(() => node.stats().datagramsReceived === before.datagramsReceived + 21, 5000))
  t.ok(await waitFor(() => evil.replies.length === 1, 5000), 'one reply: the CHALLENGE to the replayed HELLO')
  await new Promise((r) => setTimeout(r, 20))
  const after = node.stats()
  t.equal(after.dropped['bad-cookie'], (before.dropped['bad-cookie'] ?? 0) + 20, 'every replayed CONNECT dropped as bad-cookie')
  t.equal(after.sessions, 1, 'still only the relayed session')
  t.equal(node.sessions()[0]!.remotePort, relayPort)
  t.equal(after.handshakesCompleted, before.handshakesCompleted)
  t.equal(evil.replies.length, 1)
  t.ok(evil.replies[0]!.data.length <= hello.length, `CHALLENGE ${evil.replies[0]!.data.length} B for a ${hello.length} B HELLO`)
  t.equal((evil.replies[0]!.packet as Packet).type, PacketType.CHALLENGE)
  t.same(got, ['through the relay'], 'nothing else delivered')
})

t.test('a valid cookie used from another source port is refused; from its own port with a wrong key it gets a REJECT no larger than the CONNECT', async (t) => {
  const node = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY_NEW] })
  const a = await attacker()
  const b = await attacker()
  t.teardown(async () => {
    await node.close()
    a.socket.close()
    b.socket.close()
  })
  const nonce = createNonce()
  const hs = { connectionId: 0xabcdef01, epoch: 77, nonce, keyId: keyId(KEY_OTHER), maxDatagram: 1200 }
  await send(a, handshakePacket(PacketType.HELLO, hs, 1200), node.port)
  t.ok(await waitFor(() => a.replies.length === 1, 5000))
  const challenge = a.replies[0]!.packet as Packet
  t.equal(challenge.type, PacketType.CHALLENGE)
  t.equal(challenge.handshake!.keyId, keyId(KEY_NEW), 'the node names its own key, not the unknown one offered')
  const cookie = Buffer.from(challenge.handshake!.cookie)
  const connect = handshakePacket(PacketType.CONNECT, { ...hs, cookie, proof: Buffer.alloc(16, 7) }, 200)
  // From another port: the cookie is bound to a's address and port.
  await send(b, connect, node.port)
  t.ok(await waitFor(() => node.stats().dropped['bad-cookie'] === 1, 5000), 'bad-cookie from another port')
  // From a's port: the cookie is good, the proof is not.
  await send(a, connect, node.port)
  t.ok(await waitFor(() => a.replies.length === 2, 5000))
  const reject = a.replies[1]!
  t.equal((reject.packet as Packet).type, PacketType.REJECT)
  t.ok(reject.data.length <= connect.length, `REJECT ${reject.data.length} B ≤ CONNECT ${connect.length} B`)
  t.equal(node.stats().dropped['bad-key'], 1)
  t.equal(b.replies.length, 0, 'nothing sent to the other port')
  t.same(node.sessions(), [])
  // A tiny CONNECT with the valid cookie, cut below REJECT's size, gets no answer at all.
  const small = Buffer.from(encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.CONNECT, handshake: { ...hs, cookie, proof: Buffer.alloc(1) } as never }))
  await send(a, small, node.port)
  t.ok(await waitFor(() => node.stats().dropped['bad-key'] === 2, 5000))
  await new Promise((r) => setTimeout(r, 20))
  const answered = a.replies.length === 3
  if (answered) t.ok(a.replies[2]!.data.length <= small.length, `REJECT ${a.replies[2]!.data.length} B ≤ CONNECT ${small.length} B`)
  else t.pass(`no REJECT for a ${small.length} B CONNECT`)
  t.same(node.sessions(), [])
})
