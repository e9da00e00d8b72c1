/**
 * Paths a node first takes well after start must not throw away the code V8
 * optimized for it by then: `Connection.onTimer`'s keepalive (a session quiet
 * for a second) came long after the warm-up, and its first run deoptimized
 * the timer pass in nearly every node of a bench cluster (--log-deopt).
 * Checked with V8's own optimization status in a child process started with
 * --allow-natives-syntax; the connection is driven by hand, no I/O.
 */
import t from 'tap'
import { distModule, OPTIMIZED, runNatives } from '../fixtures/natives.js'

const CONNECTION = distModule('lib/core/connection.js')

const SCRIPT = `
import { Connection } from ${JSON.stringify(CONNECTION)}
const sent = []
const host = { output: (_c, pn) => { sent.push(pn) }, deliver() {}, drain() {}, closed() {} }
const conn = new Connection(host, 0)
const onTimer = Connection.prototype.onTimer
;%PrepareFunctionForOptimization(onTimer)
// Timer passes with nothing due: not quiet long enough for a keepalive (1 s).
for (let now = 1; now <= 500; now++) { conn.onTimer(now); conn.flush(now) }
;%OptimizeFunctionOnNextCall(onTimer)
conn.onTimer(600)
const optimized = %GetOptimizationStatus(onTimer)
conn.onTimer(1500) // quiet for 1.5 s: a keepalive is due
const afterKeepalive = %GetOptimizationStatus(onTimer)
conn.flush(1500)
console.log(JSON.stringify({ optimized, afterKeepalive, sent: sent.length }))
`

t.test("a session's first keepalive keeps the timer pass's optimized code", async (t) => {
  const r = await runNatives<{ optimized: number, afterKeepalive: number, sent: number }>(t, SCRIPT)
  t.equal(r.sent, 1, 'the keepalive (a PING) went out, and nothing before it')
  t.ok(r.optimized & OPTIMIZED, `onTimer optimized after the quiet passes (status ${r.optimized})`)
  t.ok(r.afterKeepalive & OPTIMIZED, `onTimer still optimized after the first keepalive (status ${r.afterKeepalive})`)
})
