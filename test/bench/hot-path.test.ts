/**
 * bench/hot-path.ts: both loops run to the end and report a figure per run
 * (timings are the bench's to judge, not the test's), memory touching works,
 * and the CLI rejects a bad option by name.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
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

t.test('a bad option stops the CLI with its name', async (t) => {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'hot-path.js')
  const r = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, [script, '--runs', 'zero'], (err, _out, stderr) => resolve({ code: err === null ? 0 : (err as NodeJS.ErrnoException & { code: number }).code, stderr }))
  })
  t.equal(r.code, 1)
  t.match(r.stderr, /--runs must be an integer ≥ 1, got zero/)
})
