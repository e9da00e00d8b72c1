/**
 * A node's first message to a peer it has no session with yet (queued while
 * the session opens) must not throw away the optimized send() the node
 * compiled for its open sessions: every node sends its first messages to
 * each new peer that way, and a deoptimized send() ran slower code on the
 * hot path until V8 compiled it again. Checked with V8's own optimization
 * status, in a child process started with --allow-natives-syntax, on real
 * loopback sockets.
 */
import t from 'tap'
import { distModule, OPTIMIZED, runNatives } from '../fixtures/natives.js'

const INDEX = distModule('lib/index.js')

const SCRIPT = `
import { MeshNode, Coordinator, generateKey, parseKeys } from ${JSON.stringify(INDEX)}
const keys = parseKeys(generateKey(), 'test')
const coord = await Coordinator.start({ address: '127.0.0.1', port: 0, keys })
const opts = (id) => ({ id, role: 'downstream', coordinators: [{ host: '127.0.0.1', port: coord.port }], keys, address: '127.0.0.1', port: 0, warmup: 0 })
const a = await MeshNode.start(opts('a'))
const b = await MeshNode.start(opts('b'))
const c = await MeshNode.start(opts('c'))
const d = await MeshNode.start(opts('d'))
const until = async (f) => { const end = Date.now() + 10000; while (!f()) { if (Date.now() > end) throw new Error('timed out'); await new Promise((r) => setTimeout(r, 5)) } }
await until(() => a.peers().length === 3)
let got = 0
for (const n of [b, c, d]) n.on('message', () => { got++ })
const payload = Buffer.alloc(64, 1)
const send = MeshNode.prototype.send
;%PrepareFunctionForOptimization(send)
// As a node's warm-up does: a peer's first message waits for its session,
// the rest go straight out; a second peer the same way, once the code has
// feedback (V8 records none in a function's first calls).
let sent = 0
for (const to of ['b', 'c']) {
  a.send(to, payload)
  sent++
  await until(() => got === sent)
  for (let i = 0; i < 200; i++) a.send(to, payload)
  sent += 200
  await until(() => got === sent)
}
;%OptimizeFunctionOnNextCall(send)
a.send('b', payload)
sent++
const optimized = %GetOptimizationStatus(send)
a.send('d', payload) // the first message to a third new peer: queued too
sent++
const afterNewPeer = %GetOptimizationStatus(send)
await until(() => got === sent)
console.log(JSON.stringify({ optimized, afterNewPeer }))
for (const n of [a, b, c, d]) await n.close()
await coord.close()
`

t.test("the first message to a new peer keeps send()'s optimized code", async (t) => {
  const { optimized, afterNewPeer } = await runNatives<{ optimized: number, afterNewPeer: number }>(t, SCRIPT)
  t.ok(optimized & OPTIMIZED, `send() optimized after training (status ${optimized})`)
  t.ok(afterNewPeer & OPTIMIZED, `send() still optimized after queueing for a new peer (status ${afterNewPeer})`)
})
