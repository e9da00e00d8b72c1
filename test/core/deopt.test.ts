/**
 * Paths a node first takes well after start must not throw away the code V8
 * optimized for it by then: `Connection.onTimer`'s keepalive (a session quiet
 * for a second) came long after the warm-up, and its first run deoptimized
 * the timer pass in nearly every node of a bench cluster (--log-deopt).
 * Checked with V8's own optimization status in a child process started with
 * --allow-natives-syntax; the connection is driven by hand, no I/O.
 */
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'

const CONNECTION = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'lib', 'core', 'connection.js')).href

// V8's %GetOptimizationStatus bit for "optimized code" (src/runtime/runtime.h, OptimizationStatus::kOptimized).
const OPTIMIZED = 16

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
  const child = spawn(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', '--input-type=module', '-e', SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] })
  const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  t.teardown(() => { clearTimeout(killTimer); if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  child.stderr.on('data', (d: Buffer) => { err += d })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, `child exited cleanly ${err}`)
  const r = JSON.parse(out.trim().split('\n').pop()!) as { optimized: number, afterKeepalive: number, sent: number }
  t.equal(r.sent, 1, 'the keepalive (a PING) went out, and nothing before it')
  t.ok(r.optimized & OPTIMIZED, `onTimer optimized after the quiet passes (status ${r.optimized})`)
  t.ok(r.afterKeepalive & OPTIMIZED, `onTimer still optimized after the first keepalive (status ${r.afterKeepalive})`)
})
