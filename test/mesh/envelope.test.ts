import t from 'tap'
import { decodeEnvelope, encodePublish, encodeReply, encodeRequest } from '../../lib/mesh/envelope.js'
import { decodeControl, encodeControl, MeshKind, type MeshControl } from '../../lib/mesh/control.js'
import { createRng } from '../../lib/testing.js'

const edges = [0, 1, 127, 128, 255, 16383, 16384, 0x1fffff, 0x200000, 0xfffffff, 0x10000000, 0xffffffff]
const sizes = [0, 1, 127, 128, 300, 16384]
const topics = ['', 'a', 'party.invites', 'x'.repeat(64), 'ünïcode-tøpic', '日本']

/** Every field of a decoded control message, comparable with t.same (bytes as hex, whatever their type). */
function norm(m: MeshControl | null): unknown {
  if (m === null) return null
  return {
    kind: m.kind, id: m.id, epoch: m.epoch, version: m.version, baseVersion: m.baseVersion,
    peers: JSON.stringify(m.peers), removed: JSON.stringify(m.removed), complete: m.complete, reason: m.reason,
    holder: m.holder, correlation: m.correlation, data: Buffer.from(m.data).toString('hex'), topic: m.topic,
    channel: m.channel, failed: m.failed,
  }
}

function sameAsProtobufjs(t: Tap.Test, bytes: Uint8Array, what: string): boolean {
  const fast = norm(decodeEnvelope(bytes))
  const ref = norm(decodeControl(bytes))
  if (JSON.stringify(fast) === JSON.stringify(ref)) return true
  t.fail(`${what}: ${Buffer.from(bytes).toString('hex')} decoded differently`, { found: fast, wanted: ref })
  return false
}

t.test('REQUEST, REPLY and PUBLISH: byte for byte what protobufjs writes', async (t) => {
  const r = createRng(16)
  const pick = (): number => (r() < 0.4 ? edges[Math.floor(r() * edges.length)] : Math.floor(r() * 2 ** 32)) >>> 0
  let n = 0
  for (let i = 0; i < 3000; i++) {
    const correlation = pick()
    const data = Buffer.alloc(sizes[i % sizes.length], i & 0xff)
    const failed = i % 2 === 0
    const topic = topics[i % topics.length]
    const channel = Math.floor(r() * 16)
    const pairs: Array<[Uint8Array, Uint8Array]> = [
      [encodeRequest(correlation, data), encodeControl({ kind: MeshKind.REQUEST, correlation, data })],
      [encodeReply(correlation, data, failed), encodeControl({ kind: MeshKind.REPLY, correlation, data, failed })],
      [encodePublish(topic, channel, data), encodeControl({ kind: MeshKind.PUBLISH, topic, channel, data })],
    ]
    for (const [fast, ref] of pairs) {
      if (Buffer.compare(fast, Buffer.from(ref)) !== 0) {
        t.fail(`mismatch: correlation=${correlation} size=${data.length} failed=${failed} topic=${topic} channel=${channel}`)
        return
      }
      n++
    }
  }
  t.equal(n, 9000, 'all 9000 random envelopes identical')
})

t.test('decoding the envelopes: what decodeControl returns, without protobufjs objects', async (t) => {
  const data = Buffer.from('hello world')
  const cases: Array<[string, Uint8Array]> = [
    ['request', encodeRequest(7, data)],
    ['request, correlation 0, no data', encodeRequest(0, Buffer.alloc(0))],
    ['reply', encodeReply(0xffffffff, data, false)],
    ['failed reply', encodeReply(3, Buffer.from('boom'), true)],
    ['publish', encodePublish('news', 15, data)],
  ]
  for (const [what, bytes] of cases) {
    sameAsProtobufjs(t, bytes, what)
    const m = decodeEnvelope(bytes)!
    t.equal(Object.getPrototypeOf(m), Object.prototype, `${what}: a plain object, not a protobufjs message`)
  }
  const m = decodeEnvelope(encodeReply(9, data, true))!
  t.same([m.kind, m.correlation, Buffer.from(m.data).toString(), m.failed], [MeshKind.REPLY, 9, 'hello world', true])
  const p = decodeEnvelope(encodePublish('news', 4, data))!
  t.same([p.kind, p.topic, p.channel], [MeshKind.PUBLISH, 'news', 4])
  // A plain Uint8Array (not a Buffer) decodes the same.
  const plain = new Uint8Array(encodePublish('news', 4, data))
  t.equal(decodeEnvelope(plain)!.topic, 'news')
})

t.test('everything else goes to protobufjs and decodes the same', async (t) => {
  const peer = { id: 'lobby-1', role: 'downstream', address: '127.0.0.1', port: 19132, epoch: 5, meta: { a: 'b' }, topics: ['x'] }
  const crafted: Array<[string, number[] | Uint8Array]> = [
    ['hello', encodeControl({ kind: MeshKind.HELLO, id: 'node-1', epoch: 0xdeadbeef })],
    ['register', encodeControl({ kind: MeshKind.REGISTER, peers: [peer] })],
    ['delta', encodeControl({ kind: MeshKind.DELTA, version: 4, baseVersion: 3, removed: [{ id: 'x', epoch: 1, reason: 'left' }], complete: true })],
    ['non-ASCII topic', encodePublish('ünïcode', 1, Buffer.from([1]))],
    ['kind as a 2-byte varint', [0x08, 0x8b, 0x00, 0x58, 0x01]],
    ['negative kind', [0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]],
    ['correlation as a 10-byte varint', [0x08, 11, 0x58, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]],
    ['correlation over 32 bits', [0x08, 11, 0x58, 0xff, 0xff, 0xff, 0xff, 0x1f]],
    ['failed = 2', [0x08, 12, 0x78, 0x02]],
    ['explicit defaults', [0x08, 12, 0x58, 0x00, 0x62, 0x00, 0x6a, 0x00, 0x70, 0x00, 0x78, 0x00]],
    ['duplicated fields: the last wins', [0x08, 11, 0x58, 0x05, 0x62, 0x01, 0xaa, 0x08, 12, 0x58, 0x06, 0x62, 0x01, 0xbb]],
    ['unknown field', [0x08, 11, 0x80, 0x01, 0x05]],
    ['data longer than the message', [0x08, 11, 0x62, 0x05, 0x01]],
    ['truncated varint', [0x08, 11, 0x58, 0x80]],
    ['kind 0', [0x08, 0x00]],
    ['kind 14', [0x08, 14]],
    ['no kind', [0x58, 0x01]],
    ['channel 16', [0x08, 13, 0x70, 16]],
    ['topic of 65 characters', [0x08, 13, 0x6a, 65, ...Buffer.from('t'.repeat(65))]],
    ['empty', []],
  ]
  for (const [what, bytes] of crafted) sameAsProtobufjs(t, Uint8Array.from(bytes), what)
  t.equal(decodeEnvelope(Uint8Array.from([0x08, 14])), null, 'an unknown kind is refused')
  t.equal(decodeEnvelope(Uint8Array.from([0x08, 13, 0x70, 16])), null, 'a channel past the application channels is refused')
  t.same(norm(decodeEnvelope(Uint8Array.from([0x08, 11, 0x58, 0x05, 0x62, 0x01, 0xaa, 0x08, 12, 0x58, 0x06, 0x62, 0x01, 0xbb]))),
    norm({ ...decodeEnvelope(encodeReply(6, Buffer.from([0xbb]), false))! }), 'the last of a duplicated field wins')
})

t.test('mutated and random input: the same as decodeControl, never a throw', async (t) => {
  const r = createRng(99)
  const seeds = [
    encodeRequest(123456, Buffer.alloc(40, 1)), encodeReply(5, Buffer.alloc(3, 2), true), encodePublish('topic', 3, Buffer.alloc(20, 3)),
    Buffer.from(encodeControl({ kind: MeshKind.HELLO, id: 'n', epoch: 9 })),
  ]
  let n = 0
  for (let i = 0; i < 20000; i++) {
    let b: Uint8Array
    if (i % 10 === 0) {
      b = Uint8Array.from({ length: Math.floor(r() * 24) }, () => Math.floor(r() * 256))
    } else {
      const seed = seeds[i % seeds.length]
      const copy = Buffer.from(seed)
      const flips = 1 + Math.floor(r() * 3)
      for (let f = 0; f < flips; f++) copy[Math.floor(r() * copy.length)] ^= 1 << Math.floor(r() * 8)
      b = r() < 0.2 ? copy.subarray(0, Math.floor(r() * copy.length)) : copy
    }
    if (!sameAsProtobufjs(t, b, `input ${i}`)) return
    n++
  }
  t.equal(n, 20000)
})
