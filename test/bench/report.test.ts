import t from 'tap'
import {
  SCHEMA, combineRuns, computeRatios, evaluateGoals, renderMarkdown, renderSvg,
} from '../../bench/report.js'
import type { BenchReport, CombinedResult } from '../../bench/report.js'
import type { FailureResult, PingPongResult, ScenarioResult, ThroughputResult } from '../../bench/harness/scenarios.js'

const NAN_SUMMARY = { count: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }

function ping (variant: string, network: string, p50: number, p99: number, ok = true): PingPongResult {
  return {
    scenario: 'ping-pong', variant, network, case: 'd1↔d2 64B', ok, ...(ok ? {} : { failure: '12 round trips lost (run stopped)' }),
    repetitions: 1, size: 64, lost: ok ? 0 : 12, corrupt: 0,
    rtt: ok ? { count: 1000, min: p50 / 2, p50, p90: p50 * 1.5, p99, p999: p99 * 2, max: p99 * 3, mean: p50 * 1.2 } : NAN_SUMMARY,
  }
}

function tp (variant: string, rate: number): ThroughputResult {
  return {
    scenario: 'throughput', variant, network: 'loopback', case: 'd1→d2 64B', ok: true, repetitions: 1, size: 64, count: 1000,
    messagesPerSecond: rate, bytesPerSecond: rate * 64, elapsedMs: 1000 / rate * 1000, received: 1000, duplicates: 0, outOfOrder: 0, corrupt: 0,
    cpuUsPerMessage: 1e6 / rate, cpuUsPerMessageByProcess: { d1: 0.6e6 / rate, d2: 0.3e6 / rate, proxy: 0.1e6 / rate },
  }
}

function fail (variant: string, target: string, lost: number): FailureResult {
  return {
    scenario: 'failure', variant, network: 'loopback', case: `kill ${target}, restart after 500ms, d1→d2 1000/s`, ok: lost === 0,
    ...(lost === 0 ? {} : { failure: `lost ${lost} of 4000` }), repetitions: 1, target, sent: 4000, received: 4000 - lost, lost,
    duplicates: 0, outOfOrder: 0, corrupt: 0, recoveryMs: lost === 0 ? 1.5 : 790, afterRestartMs: null, longestGapMs: lost === 0 ? 12 : 790,
    worstDelayMs: lost === 0 ? 3 : 25, outageDetected: lost > 0, restartedAfterMs: 500,
  }
}

/** Three repetitions of each case, the middle one being the median. */
function three<T extends ScenarioResult> (make: (scale: number) => T): CombinedResult {
  return combineRuns([make(1.5), make(1), make(0.5)])
}

function fixture (): BenchReport {
  const L = 'loopback'
  const N5 = 'netns loss 5%'
  const results: CombinedResult[] = [
    three((k) => ping('raw-dgram', L, 30 * k, 100 * k)),
    three((k) => ping('sealed-dgram', L, 40 * k, 120 * k)),
    three((k) => ping('tcp-star', L, 100 * k, 300 * k)),
    three((k) => ping('tcp-hub', L, 120 * k, 320 * k)),
    three((k) => ping('warpmesh', L, 50 * k, 150 * k)),
    three((k) => tp('tcp-star', 200_000 * k)),
    three((k) => tp('warpmesh', 150_000 * k)),
    three(() => fail('tcp-star', 'proxy', 790)),
    three(() => fail('warpmesh', 'coordinator', 0)),
    combineRuns([ping('raw-dgram', N5, 0, 0, false), ping('raw-dgram', N5, 40, 90), ping('raw-dgram', N5, 40, 90)]),
    three((k) => ping('tcp-star', N5, 400 * k, 200_000 * k)),
    three((k) => ping('tcp-hub', N5, 420 * k, 210_000 * k)),
    three((k) => ping('warpmesh', N5, 300 * k, 20_000 * k)),
  ]
  const report: BenchReport = {
    schema: SCHEMA,
    command: 'npm run bench -- --json bench/results.json',
    commit: 'abc1234',
    quick: false,
    startedAt: '2026-11-28T22:00:00.000Z',
    finishedAt: '2026-11-28T22:10:00.000Z',
    durationSeconds: 600,
    machine: { nproc: 2, cpuModel: 'Test CPU @ 2.0GHz', node: 'v20.0.0', kernel: '6.1.0 #1 SMP', platform: 'linux', arch: 'x64', memoryGiB: 4 },
    settings: {
      repetitions: 3, downstreams: 8, pingPongCount: 1000, pingPongWarmup: 100, sparseCount: 300, sparseGapMs: 10, throughputCount64: 1000, throughputCount1k: 500, fanOutRounds: 100,
      failureRatePerSecond: 1000, failureDurationMs: 4000, failureKillAtMs: 1000, failureRestartAfterMs: 500, lossPercents: [5], lossPingPongCount: 300,
    },
    variants: ['raw-dgram', 'sealed-dgram', 'tcp-star', 'tcp-hub', 'redis', 'warpmesh'].map((name) => ({
      name, summary: `${name} summary`, reliable: !name.endsWith('-dgram'), ordered: !name.endsWith('-dgram'), failureTarget: null,
      skipped: name === 'redis' ? 'redis-server not found on PATH; install it with `apt-get install redis-server`' : null,
    })),
    skipped: [{ what: 'redis', reason: 'redis-server not found on PATH; install it with `apt-get install redis-server`' }],
    lossCalibration: [{ lossPercent: 5, sent: 4000, received: 3800, measuredLossPercent: 5, nftDropped: 200 }],
    results,
    ratios: computeRatios(results),
    goals: evaluateGoals(results),
  }
  // What a reader of the JSON file gets: NaN becomes null.
  return JSON.parse(JSON.stringify(report)) as BenchReport
}

t.test('combineRuns takes medians, sums counts and fails if any run failed', async (t) => {
  const r = three((k) => ping('tcp-star', 'loopback', 100 * k, 300 * k)) as Extract<CombinedResult, { scenario: 'ping-pong' }>
  t.equal(r.rtt.p50, 100)
  t.equal(r.rtt.p99, 300)
  t.equal(r.rtt.count, 3000)
  t.equal(r.repetitions, 3)
  t.equal(r.runs.length, 3)
  t.equal(r.ok, true)
  const bad = combineRuns([ping('raw-dgram', 'netns loss 5%', 0, 0, false), ping('raw-dgram', 'netns loss 5%', 40, 90)])
  t.equal(bad.ok, false)
  t.match(bad.failure, /^#1: 12 round trips lost/)
  t.equal(bad.lossPercent, 5)
  const f = three(() => fail('tcp-star', 'proxy', 790)) as Extract<CombinedResult, { scenario: 'failure' }>
  t.equal(f.lost, 3 * 790, 'lost is a total')
  t.equal(f.sent, 12_000)
  t.equal(f.outageDetected, true)
  t.throws(() => combineRuns([]), RangeError)
})

t.test('ratios and goals from a fixed input', async (t) => {
  const report = fixture()
  const ratio = (variant: string, baseline: string, network = 'loopback', metric = 'p50'): number | null | undefined =>
    report.ratios.find((r) => r.variant === variant && r.baseline === baseline && r.network === network && r.metric === metric && r.scenario === 'ping-pong')?.ratio
  t.equal(ratio('warpmesh', 'tcp-star'), 0.5)
  t.equal(ratio('warpmesh', 'raw-dgram')?.toFixed(4), (50 / 30).toFixed(4))
  t.equal(ratio('warpmesh', 'tcp-star', 'netns loss 5%', 'p99'), 0.1)
  t.equal(ratio('warpmesh', 'raw-dgram', 'netns loss 5%', 'p99'), null, 'no ratio against a failed run')
  t.equal(report.ratios.find((r) => r.scenario === 'throughput' && r.variant === 'warpmesh' && r.baseline === 'tcp-star')?.ratio, 0.75)

  const goal = (id: string) => report.goals.find((g) => g.id === id)!
  t.equal(goal('dd-rtt-vs-star').met, true)
  t.equal(goal('dd-rtt-vs-star').ratio, 0.5)
  t.equal(goal('dd-rtt-vs-hub').met, true)
  t.equal(goal('dd-rtt-vs-redis').met, null, 'redis skipped: not measured, not met')
  t.equal(goal('loss5-p99').met, true)
  t.equal(goal('loss5-p99').ratio, 0.1, 'against the best TCP variant (star)')
  t.match(goal('loss5-p99').measured, /tcp-star/)
  t.equal(goal('throughput-64').met, false)
  t.equal(goal('throughput-64').ratio, 0.75)
  t.equal(goal('dd-rtt-vs-star').floorRatio, 0.3, 'raw dgram d1↔d2 p50 ÷ tcp-star, same run')
  t.equal(goal('dd-rtt-vs-star').sealedFloorRatio, 0.4, 'sealed dgram d1↔d2 p50 ÷ tcp-star, same run')
  t.equal(goal('dd-rtt-vs-hub').sealedFloorRatio?.toFixed(4), (40 / 120).toFixed(4))
  t.equal(goal('loss5-p99').floorRatio, null, 'raw dgram failed under loss: no floor')
  t.equal(goal('loss5-p99').sealedFloorRatio, null, 'sealed dgram does not run under loss')
  t.equal(goal('throughput-64').floorRatio, null)
  t.equal(goal('throughput-64').sealedFloorRatio, null)
  t.ok(report.goals.every((g) => !g.belowFloor), 'no goal missed below a floor')
  t.equal(goal('coordinator-kill').met, true)
  t.match(goal('coordinator-kill').measured, /^lost 0\/12000 over 3 runs/)
})

t.test('a goal missed with a floor above its target says so; a met one never does', async (t) => {
  const goalWith = (warpmesh: number, raw: number | null, sealed: number | null) => {
    const results = [
      combineRuns([ping('tcp-star', 'loopback', 100, 300)]),
      combineRuns([ping('warpmesh', 'loopback', warpmesh, 3 * warpmesh)]),
      ...(raw === null ? [] : [combineRuns([ping('raw-dgram', 'loopback', raw, 3 * raw)])]),
      ...(sealed === null ? [] : [combineRuns([ping('sealed-dgram', 'loopback', sealed, 3 * sealed)])]),
    ]
    return evaluateGoals(results).find((x) => x.id === 'dd-rtt-vs-star')!
  }
  const below = goalWith(80, 50, 70)
  t.same([below.met, below.floorRatio, below.sealedFloorRatio, below.belowFloor], [false, 0.5, 0.7, true], 'sealed floor 0.7 > 0.6')
  const rawAbove = goalWith(80, 65, null)
  t.same([rawAbove.met, rawAbove.belowFloor], [false, true], 'the raw floor alone can put a target out of reach')
  const reachable = goalWith(80, 40, 55)
  t.same([reachable.met, reachable.belowFloor], [false, false], 'both floors under the target: missed, not excused')
  const noise = goalWith(58, 50, 70)
  t.same([noise.met, noise.belowFloor], [true, false], 'under its floor by noise: met as measured')
  const md = renderMarkdown({ ...fixture(), goals: [below, reachable] })
  t.match(md, /\| \*\*missed\*\* \(target below the floor\) \| 0\.50× \| 0\.70× \|/)
  t.match(md, /\| \*\*missed\*\* \| 0\.40× \| 0\.55× \|/)
})

t.test('a failed warpmesh run misses its goal instead of being fast', async (t) => {
  const results = [combineRuns([ping('tcp-star', 'loopback', 100, 300)]), combineRuns([ping('warpmesh', 'loopback', 0, 0, false)])]
  const g = evaluateGoals(results).find((x) => x.id === 'dd-rtt-vs-star')!
  t.equal(g.met, false)
  t.match(g.measured, /FAILED/)
})

t.test('RESULTS.md has the command, the machine, the goals and every table', async (t) => {
  const md = renderMarkdown(fixture())
  t.match(md, /^# warpmesh benchmark results\n/)
  t.match(md, 'Generated by `npm run bench -- --json bench/results.json` at commit `abc1234`')
  t.match(md, '| 2 | Test CPU @ 2.0GHz | v20.0.0 | 6.1.0 #1 SMP | 2026-11-28T22:00:00.000Z | 10.0 min |')
  t.match(md, '| downstream↔downstream p50 RTT (d1↔d2 64B) vs TCP star | ≤ 0.6 × tcp-star | p50 50.0µs vs 100µs (tcp-star) = 0.50× | **met** | 0.30× |')
  t.match(md, /vs Redis pub\/sub \| ≤ 0.5 × redis \| redis did not run or failed \| not measured \|/)
  t.match(md, /one-way throughput d1→d2 64B vs TCP star \| ≥ 1 × tcp-star \| 150\.0k\/s vs 200\.0k\/s = 0\.75× \| \*\*missed\*\* \|/)
  t.match(md, '| d1↔d2 64B | warpmesh | 50.0µs | 150µs | 300µs | 450µs | 1.67× | 0.50× | 0.42× | ok |')
  t.match(md, '| d1→d2 64B | warpmesh | 150.0k/s | 9.6 MB/s | — | 0.75× | — | 6.67 (d1 4.00, d2 2.00) | ok |')
  // A report written before CPU was measured renders a dash, not NaN.
  const old = fixture()
  const legacy = { ...old, results: old.results.map((r) => (r.scenario === 'throughput' ? { ...r, cpuUsPerMessage: undefined, cpuUsPerMessageByProcess: undefined } : r)) } as unknown as BenchReport
  t.match(renderMarkdown(legacy), '| d1→d2 64B | warpmesh | 150.0k/s | 9.6 MB/s | — | 0.75× | — | — | ok |')
  t.match(md, '| 5 % | d1↔d2 64B | raw-dgram | — | — | — | — | 1× | — | — | **FAILED**: #1: 12 round trips lost (run stopped) |')
  t.match(md, '| 5 % | d1↔d2 64B | warpmesh | 300µs | 20.0ms | 40.0ms | 60.0ms | — | 0.10× | 0.10× | ok |')
  t.match(md, '| warpmesh | coordinator | 0/12000 | 1.50ms | 12.0ms | 3.00ms | no | ok |')
  t.match(md, /\| tcp-star \| proxy \| 2370\/12000 \| 790\.0ms \| 790\.0ms \| 25\.0ms \| yes \| \*\*FAILED\*\*: #1: lost 790 of 4000/)
  t.match(md, '- **redis**: redis-server not found on PATH; install it with `apt-get install redis-server`')
  t.match(md, '5 % rule → 5.0 % measured (200/4000)')
  t.match(md, '![Round-trip latency percentiles per variant and loss rate](results.svg)')
  t.notMatch(md, /NaN|undefined|null/, 'no raw missing values leak into the tables')
})

t.test('results.svg draws percentiles per variant and loss rate, FAILED and skipped as words', async (t) => {
  const svg = renderSvg(fixture())
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/)
  t.match(svg, /<\/svg>\n$/)
  const bars = (variant: string, network: string): string[] =>
    [...svg.matchAll(new RegExp(`<rect [^>]*data-variant="${variant}" data-network="${network}" data-percentile="([^"]+)"`, 'g'))].map((m) => m[1]!)
  t.same(bars('warpmesh', 'loopback'), ['p50', 'p99', 'p99.9', 'max'])
  t.same(bars('tcp-star', 'netns loss 5%'), ['p50', 'p99', 'p99.9', 'max'])
  t.same(bars('raw-dgram', 'netns loss 5%'), [], 'a failed run has no bars')
  t.match(svg, /data-variant="raw-dgram" data-status="FAILED">FAILED<\/text>/)
  t.match(svg, /data-variant="redis" data-status="skipped">skipped<\/text>/)
  t.same(bars('sealed-dgram', 'loopback'), ['p50', 'p99', 'p99.9', 'max'])
  t.match(svg, /data-variant="sealed-dgram" data-status="not run">not run<\/text>/, 'a loopback-only floor is not run under loss, not skipped')
  t.match(svg, /<g data-network="loopback">/)
  t.match(svg, /<g data-network="netns loss 5%">/)
  t.match(svg, '<title>warpmesh netns loss 5% p99 20.0ms</title>')
  // Log axis: a bar 10× taller in value is one decade higher; p99 (20 ms) above p50 (300 µs).
  const y = (title: string): number => Number(new RegExp(`y="([\\d.]+)"[^>]*><title>${title}</title>`).exec(svg)![1])
  t.ok(y('warpmesh netns loss 5% p99 20.0ms') < y('warpmesh netns loss 5% p50 300µs'))
  t.equal((svg.match(/<g /g) ?? []).length, (svg.match(/<\/g>/g) ?? []).length, 'groups balanced')
  t.notMatch(svg, /NaN|undefined/)
})
