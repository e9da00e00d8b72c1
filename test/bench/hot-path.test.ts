/**
 * bench/hot-path.ts: both loops run to the end and report a figure per run
 * (timings are the bench's to judge, not the test's), memory touching works,
 * and the CLI rejects a bad option by name.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { hotPath } from '../../bench/hot-path.js'

t.test('a few runs of both loops', async (t) => {
  const r = await hotPath({ roundTrips: 500, runs: 3, size: 64, touchKiB: 0 })
  t.equal(r.runs.length, 3)
  for (const x of r.runs) t.ok(x.warpmesh > 0 && x.floor > 0 && Number.isFinite(x.warpmesh + x.floor), `µs per round trip: warpmesh ${x.warpmesh.toFixed(1)}, floor ${x.floor.toFixed(1)}`)
  const sorted = r.runs.map((x) => x.warpmesh).sort((a, b) => a - b)
  t.equal(r.warpmesh, sorted[1], 'the figure is the median of the runs')
  const touched = await hotPath({ roundTrips: 100, runs: 1, size: 1000, touchKiB: 64 })
  t.ok(touched.warpmesh > 0 && touched.floor > 0, '1000-B messages with 64 KiB touched per delivery')
})

t.test('--idle-ms: each datagram a timer later, CPU time per round trip', async (t) => {
  const start = performance.now()
  const r = await hotPath({ roundTrips: 40, runs: 1, size: 64, touchKiB: 0, idleMs: 1 })
  // Two deliveries per round trip, each at least 1 ms later: the warm-up and the run of both loops.
  const elapsedMs = performance.now() - start
  t.ok(elapsedMs >= 4 * 40 * 2 * 1, `the deliveries waited (${elapsedMs.toFixed(0)} ms for 4 × 40 round trips)`)
  for (const x of r.runs) t.ok(x.warpmesh > 0 && x.floor > 0 && Number.isFinite(x.warpmesh + x.floor), `CPU µs per round trip: warpmesh ${x.warpmesh.toFixed(1)}, floor ${x.floor.toFixed(1)}`)
  await t.rejects(hotPath({ roundTrips: 1, runs: 1, size: 64, touchKiB: 0, idleMs: 0.5 }), /idleMs must be an integer ≥ 0, got 0.5/)
})

t.test('a bad option stops the CLI with its name', async (t) => {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'hot-path.js')
  const r = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, [script, '--runs', 'zero'], (err, _out, stderr) => resolve({ code: err === null ? 0 : (err as NodeJS.ErrnoException & { code: number }).code, stderr }))
  })
  t.equal(r.code, 1)
  t.match(r.stderr, /--runs must be an integer ≥ 1, got zero/)
  const idle = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, [script, '--idle-ms', '0.5'], (err, _out, stderr) => resolve({ code: err === null ? 0 : (err as NodeJS.ErrnoException & { code: number }).code, stderr }))
  })
  t.equal(idle.code, 1)
  t.match(idle.stderr, /--idle-ms must be an integer ≥ 0, got 0.5/)
})
