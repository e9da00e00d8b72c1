/**
 * What real traffic does after the start-up warm-up must not throw away the
 * code the warm-up had V8 optimize: each of these deoptimized the hot path in
 * the nodes of the bench's clusters (--log-deopt), which then ran slower
 * code until V8 compiled it again, in the measured window. Checked in child
 * processes with V8's deoptimization trace and natives syntax.
 */
import t from 'tap'
import { keyId } from '../../lib/security/keys.js'
import { warmupKey } from '../../lib/warmup.js'
import { deoptsAfter, distModule, runNatives, runNativesOutput } from '../fixtures/natives.js'

const INDEX = distModule('lib/index.js')
const WARMUP = distModule('lib/warmup.js')
const CONTROL = distModule('lib/mesh/control.js')
const AEAD = distModule('lib/security/aead.js')
const ENVELOPE = distModule('lib/mesh/envelope.js')

/** The connection's send path and its ACK handling. */
const SEND_PATH = ['send', 'flush', '#fill', '#emit', 'get size', 'receive', 'settle', '#handleAck', '#onPacketAcked', '#messageAcked', 'oldestUnacked']

t.test('the warm-up key has an id of 2^31 or more (a heap number to V8)', async (t) => {
  for (let i = 0; i < 20; i++) {
    const id = keyId(warmupKey())
    if (!(id >= 2 ** 31 && id < 2 ** 32)) t.fail(`key id ${id}`)
  }
  t.pass('20 keys')
})

/**
 * The start of a child script: the warm-up, then a real session between two
 * endpoints (b echoes channel 0), `roundTrip()` and `until(n)` on a's count
 * of echoes, 200 round trips, and the line MARK; `END` closes and prints the
 * count.
 */
const PAIR = `
import { warmUp, Endpoint, bindUdp } from ${JSON.stringify(INDEX)}
import { warmupKey } from ${JSON.stringify(WARMUP)}
await warmUp({ roundTrips: 1000 })
const key = warmupKey()
const a = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [key] })
const b = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [key] })
const ORDERED = { channel: 0, delivery: 3 }
b.on('message', (data, s, channel) => { if (channel === 0) s.send(data, ORDERED) })
const s = await a.connect('127.0.0.1', b.port)
let got = 0
let wake = null
a.on('message', () => { got++; wake?.() })
const until = async (n) => { while (got < n) await new Promise((r) => { wake = r }) }
const roundTrip = async () => { const n = got; s.send(Buffer.alloc(64, 1), ORDERED); await until(n + 1) }
for (let i = 0; i < 200; i++) await roundTrip()
console.log('MARK')
`
const END = `
console.log('DONE')
await a.close()
await b.close()
console.log(JSON.stringify({ got }))
`

// A node's first message sent with a waiter (sendAcked: the DEREGISTER a
// closing node sends its coordinator) used to come at the end of the mesh
// half of the warm-up and deoptimize send, #emit, #handleAck, oldestUnacked.
const SEND_ACKED = `${PAIR}
await s.sendAcked(Buffer.alloc(64, 2), { channel: 1, delivery: 3 })
for (let i = 0; i < 50; i++) await roundTrip()
${END}`

t.test('a first sendAcked after the warm-up keeps the send path optimized', async (t) => {
  const out = await runNativesOutput(t, SEND_ACKED, ['--trace-deopt'])
  t.match(out, /\{"got":250\}/, 'every round trip answered')
  t.same(deoptsAfter(out, 'MARK', 'DONE').filter((f) => SEND_PATH.includes(f)), [], 'nothing of the send path deoptimized')
})

// A burst to one peer in one turn travels as a batch frame: the first one
// after the warm-up deoptimized send, the frame decoder and the receive path.
const BATCH = `${PAIR}
for (let i = 0; i < 20; i++) s.send(Buffer.alloc(64, 2), ORDERED)
await until(220)
${END}`

t.test('a first burst (a batch frame) after the warm-up keeps the send and receive paths optimized', async (t) => {
  const out = await runNativesOutput(t, BATCH, ['--trace-deopt'])
  t.match(out, /\{"got":220\}/, 'every message delivered and echoed')
  const paths = [...SEND_PATH, '#batch', 'decodeFrames', 'readFrame', '#onData', '#handleReliable', '#takeWhole']
  t.same(deoptsAfter(out, 'MARK', 'DONE').filter((f) => paths.includes(f)), [], 'nothing of the send or receive path deoptimized')
})

// Sessions draw random IVs; an IV word kept as one uint32 was a small integer
// to V8 below 2^30 and a heap number above, and the optimized seal was thrown
// away when a session of the other kind came than the ones it was trained on.
// The keys are chosen so that the training sessions' words are small and the
// later ones' large (the IV derivation is the protocol's: docs/aead.md).
const IVS = `
import { hkdfSync, randomBytes } from 'node:crypto'
import { PacketProtector } from ${JSON.stringify(AEAD)}
const ivWord = (k) => Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), Buffer.from('warpmesh chacha20-poly1305 iv', 'latin1'), 12)).readUInt32BE(8)
const keyWith = (large) => { for (;;) { const k = randomBytes(32); if ((ivWord(k) >= 2 ** 30) === large) return k } }
const header = Buffer.alloc(8, 1)
const body = Buffer.alloc(64, 2)
const first = new PacketProtector(keyWith(false), keyWith(false))
const seal = PacketProtector.prototype.seal
;%PrepareFunctionForOptimization(seal)
for (let pn = 1; pn < 300; pn++) first.seal(header, pn, body)
;%OptimizeFunctionOnNextCall(seal)
first.seal(header, 300, body)
const optimized = %GetOptimizationStatus(seal)
let kept = 0
for (let i = 0; i < 20; i++) {
  const p = new PacketProtector(keyWith(true), keyWith(true))
  p.seal(header, 1, body)
  if (%GetOptimizationStatus(seal) & 16) kept++
}
console.log(JSON.stringify({ optimized, kept }))
`

t.test('sessions with any IV keep the optimized seal', async (t) => {
  const r = await runNatives<{ optimized: number, kept: number }>(t, IVS)
  t.ok(r.optimized & 16, `seal optimized (status ${r.optimized})`)
  t.equal(r.kept, 20, 'still optimized after each of 20 sessions with large IV words')
})

// The harness's watchdog (any application's setInterval) made node's Timeout
// objects change layout when the first interval was made after the warm-up,
// and the optimized timer arming was thrown away.
const INTERVAL = `
import { warmUp, systemClock } from ${JSON.stringify(INDEX)}
await warmUp({ roundTrips: 1000 })
for (let i = 0; i < 3000; i++) systemClock.clearTimer(systemClock.setTimer(() => {}, 5))
const optimized = %GetOptimizationStatus(systemClock.setTimer)
console.log('MARK')
const iv = setInterval(() => {}, 2)
await new Promise((r) => setTimeout(r, 30))
clearInterval(iv)
for (let i = 0; i < 100; i++) systemClock.clearTimer(systemClock.setTimer(() => {}, 5))
console.log('DONE')
console.log(JSON.stringify({ optimized }))
`

t.test("an application's first interval after the warm-up keeps the timer arming optimized", async (t) => {
  const out = await runNativesOutput(t, INTERVAL, ['--trace-deopt'])
  const { optimized } = JSON.parse(out.split('\n').findLast((l) => l.startsWith('{'))!) as { optimized: number }
  t.ok(optimized & 16, `setTimer optimized before (status ${optimized})`)
  t.same(deoptsAfter(out, 'MARK', 'DONE').filter((f) => f === 'setTimer'), [], 'setTimer not deoptimized')
})

// A link's HELLO is decoded by protobufjs, requests and replies by the
// hand-written envelope decoder; the node's dispatch reads both.
const SHAPES = `
import { decodeControl, encodeControl, MeshKind } from ${JSON.stringify(CONTROL)}
import { decodeEnvelope } from ${JSON.stringify(ENVELOPE)}
const hello = decodeEnvelope(encodeControl({ kind: MeshKind.HELLO, id: 'a', epoch: 7 }))
const request = decodeEnvelope(encodeControl({ kind: MeshKind.REQUEST, correlation: 3, data: Buffer.from('x') }))
const viaProtobuf = decodeControl(encodeControl({ kind: MeshKind.REQUEST, correlation: 3, data: Buffer.from('x') }))
console.log(JSON.stringify({ hello: hello.kind, request: request.kind, same: %HaveSameMap(hello, request), sameDirect: %HaveSameMap(viaProtobuf, request) }))
`

t.test('control messages decoded either way share one object layout', async (t) => {
  const r = await runNatives<{ hello: number, request: number, same: boolean, sameDirect: boolean }>(t, SHAPES)
  t.not(r.hello, r.request, 'two kinds decoded')
  t.ok(r.same, 'a HELLO (protobufjs) and a REQUEST (the envelope decoder) have the same map')
  t.ok(r.sameDirect, 'decodeControl and decodeEnvelope return the same map')
})
