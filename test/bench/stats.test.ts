import t from 'tap'
import { PassThrough } from 'node:stream'
import {
  Progress, formatLine, formatMicros, formatRate, formatSummary, median, medianSummary, percentile, percentileOfSorted, summarize,
} from '../../bench/harness/stats.js'

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1)

t.test('nearest-rank percentiles are exact on known inputs', async (t) => {
  const xs = oneTo(1000)
  t.equal(percentile(xs, 50), 500)
  t.equal(percentile(xs, 90), 900)
  t.equal(percentile(xs, 99), 990)
  t.equal(percentile(xs, 99.9), 999, '99.9 * 1000 / 100 must not round up to 1000')
  t.equal(percentile(xs, 100), 1000)
  t.equal(percentile(xs, 0), 1)
  t.equal(percentile(oneTo(100), 99.9), 100)
  t.equal(percentile(oneTo(10_000), 99.9), 9990)
  t.equal(percentile(oneTo(10_000), 99.99), 9999)
  t.equal(percentile([7], 50), 7)
  t.equal(percentile([3, 1, 2], 50), 2, 'unsorted input is sorted numerically')
  t.equal(percentile([10, 9, 100, 1000, 2], 50), 10, 'numeric, not lexicographic, order')
  t.equal(percentile([1, 2, 3, 4], 50), 2, 'rank ceil(0.5 * 4) = 2')
  t.equal(percentile([1, 2, 3, 4], 51), 3)
  t.ok(Number.isNaN(percentile([], 50)))
  t.throws(() => percentileOfSorted([1], 101), RangeError)
  t.throws(() => percentileOfSorted([1], -1), RangeError)
  t.throws(() => percentileOfSorted([1], NaN), RangeError)
})

t.test('median', async (t) => {
  t.equal(median([5, 1, 3]), 3)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.ok(Number.isNaN(median([])))
})

t.test('summarize and medianSummary', async (t) => {
  const s = summarize(oneTo(1000).reverse())
  t.same(s, { count: 1000, min: 1, p50: 500, p90: 900, p99: 990, p999: 999, max: 1000, mean: 500.5 })
  const m = medianSummary([summarize([1, 2, 3]), summarize([10, 20, 30]), summarize([4, 5, 6])])
  t.equal(m.count, 9, 'counts add up')
  t.equal(m.p50, 5)
  t.equal(m.max, 6)
  t.equal(summarize([]).count, 0)
})

t.test('formatting', async (t) => {
  t.equal(formatMicros(0.85), '850ns')
  t.equal(formatMicros(92.14), '92.1µs')
  t.equal(formatMicros(140.4), '140µs')
  t.equal(formatMicros(1250), '1.25ms')
  t.equal(formatMicros(3_200_000), '3.20s')
  t.equal(formatMicros(NaN), '—')
  t.equal(formatRate(950), '950/s')
  t.equal(formatRate(12_345), '12.3k/s')
  t.equal(formatRate(1_250_000), '1.25M/s')
  const line = formatSummary(summarize(oneTo(1000)))
  t.equal(line, 'p50 500µs  p99 990µs  p99.9 999µs  max 1.00ms  (n=1000)')
  t.equal(formatLine('abc', ['x', 'y'], 5), 'abc   x  y')
  t.notMatch(line, /\n/)
})

t.test('progress bar draws only on a TTY', async (t) => {
  const plain = new PassThrough() as unknown as NodeJS.WriteStream
  let written = ''
  ;(plain as unknown as PassThrough).on('data', (d: Buffer) => { written += d.toString() })
  const p = new Progress(10, { stream: plain })
  p.label('x')
  p.tick(10)
  p.clear()
  t.equal(p.enabled, false)
  t.equal(written, '')

  const tty = new PassThrough() as unknown as NodeJS.WriteStream & { isTTY: boolean, columns: number }
  tty.isTTY = true
  tty.columns = 80
  let drawn = ''
  ;(tty as unknown as PassThrough).on('data', (d: Buffer) => { drawn += d.toString() })
  const q = new Progress(4, { stream: tty, width: 4 })
  q.label('ping-pong')
  q.tick(4)
  t.equal(q.enabled, true)
  t.match(drawn, /\[####\] 100% ping-pong/)
  t.match(drawn, /^\r\x1b\[2K\[----\]   0% ping-pong/)
})
