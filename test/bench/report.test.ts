import t from 'tap'
import {
  SCHEMA, combineRuns, computeRatios, evaluateGoals, fanOutSteadyCaseName, renderMarkdown, renderSvg,
} from '../../bench/report.js'
import type { BenchReport, CombinedResult } from '../../bench/report.js'
import { formatResult } from '../../bench/harness/scenarios.js'
import type { FailureResult, FanOutResult, PingPongResult, ScenarioResult, ThroughputResult } from '../../bench/harness/scenarios.js'

const NAN_SUMMARY = { count: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }

function ping (variant: string, network: string, p50: number, p99: number, ok = true, caseName = 'd1↔d2 64B'): PingPongResult {
  return {
    scenario: 'ping-pong', variant, network, case: caseName, ok, ...(ok ? {} : { failure: '12 round trips lost (run stopped)' }),
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

const SPARSE = 'd1↔d2 64B, 10 ms apart'
const CHECK = 'd1↔d2 64B, 10 ms apart, 3 one-way between'

/** The RTT check: a sparse ping-pong whose node reported `shown` µs beside a p50 of `p50`. */
function check (p50: number, shown: number): PingPongResult {
  const s = (x: number) => ({ count: 30, min: x * 0.8, p50: x, p90: x * 1.2, p99: x * 1.5, p999: x * 1.5, max: x * 1.5, mean: x })
  return { ...ping('warpmesh', 'loopback', p50, p50 * 3, true, CHECK), oneWay: 90, rtt: s(p50), reportedRtt: s(shown) }
}

function fan (variant: string, targets: number, p50: number, cpu: number): FanOutResult {
  return {
    scenario: 'fan-out', variant, network: 'loopback', case: `proxy→${targets} downstreams 64B`, ok: true, repetitions: 1, size: 64, targets,
    allReceived: { count: 100, min: p50 / 2, p50, p90: p50 * 1.5, p99: p50 * 3, p999: p50 * 4, max: p50 * 5, mean: p50 * 1.2 },
    completedRounds: 100, rounds: 100, cpuUsPerRound: cpu, cpuUsPerRoundByProcess: { proxy: cpu / 2, d1: cpu / 4 },
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
    three((k) => ping('raw-dgram', L, 100 * k, 200 * k, true, SPARSE)),
    three((k) => ping('sealed-dgram', L, 200 * k, 400 * k, true, SPARSE)),
    three((k) => ping('tcp-star', L, 300 * k, 600 * k, true, SPARSE)),
    three((k) => ping('warpmesh', L, 270 * k, 540 * k, true, SPARSE)),
    three((k) => check(300 * k, 330 * k)),
    three((k) => fan('raw-dgram', 8, 200 * k, 500)),
    three((k) => fan('sealed-dgram', 8, 250 * k, 800)),
    three((k) => fan('tcp-star', 8, 400 * k, 1000)),
    three((k) => fan('warpmesh', 8, 380 * k, 1400 * k)),
    three((k) => fan('sealed-dgram', 16, 500 * k, 1600)),
    three((k) => fan('tcp-star', 16, 800 * k, 2000)),
    three((k) => fan('warpmesh', 16, 900 * k, 3500)),
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
      repetitions: 3, downstreams: 8, pingPongCount: 1000, pingPongWarmup: 100, sparseCount: 300, sparseGapMs: 10, rttCheckPings: 30, rttCheckOneWayPerPing: 3,
      throughputCount64: 1000, throughputCount1k: 500, fanOutRounds: 100, fanOutTargets: [8, 16],
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
  t.equal(report.schema, 'warpmesh-bench/2')
  const ratio = (variant: string, baseline: string, network = 'loopback', metric = 'p50', scenario = 'ping-pong', caseName = 'd1↔d2 64B'): number | null | undefined =>
    report.ratios.find((r) => r.variant === variant && r.baseline === baseline && r.network === network && r.metric === metric && r.scenario === scenario && r.case === caseName)?.ratio
  t.equal(ratio('warpmesh', 'tcp-star'), 0.5)
  t.equal(ratio('warpmesh', 'sealed-dgram'), 1.25)
  t.equal(ratio('warpmesh', 'raw-dgram')?.toFixed(4), (50 / 30).toFixed(4))
  t.equal(ratio('warpmesh', 'tcp-hub'), undefined, 'the hub is no longer a baseline')
  t.equal(ratio('warpmesh', 'tcp-star', 'netns loss 5%', 'p99'), 0.1)
  t.equal(ratio('warpmesh', 'raw-dgram', 'netns loss 5%', 'p99'), null, 'no ratio against a failed run')
  t.equal(ratio('warpmesh', 'tcp-star', 'loopback', 'messagesPerSecond', 'throughput', 'd1→d2 64B'), 0.75)
  t.equal(ratio('warpmesh', 'tcp-star', 'loopback', 'cpuUsPerMessage', 'throughput', 'd1→d2 64B')?.toFixed(4), (4 / 3).toFixed(4))
  t.equal(ratio('warpmesh', 'sealed-dgram', 'loopback', 'cpuUsPerRound', 'fan-out', 'proxy→8 downstreams 64B'), 1.75)
  t.equal(ratio('sealed-dgram', 'tcp-star', 'loopback', 'p50', 'fan-out', 'proxy→16 downstreams 64B'), 0.625)

  const goal = (id: string) => report.goals.find((g) => g.id === id)!
  t.same(report.goals.map((g) => g.id), [
    'dd-rtt-vs-sealed', 'dd-rtt-vs-star', 'sparse-rtt-vs-sealed', 'sparse-rtt-vs-star',
    'fanout-8-p50-vs-star', 'fanout-8-cpu-vs-star', 'fanout-8-cpu-vs-sealed', 'fanout-16-p50-vs-star', 'fanout-16-cpu-vs-star', 'fanout-16-cpu-vs-sealed',
    'rtt-honesty', 'loss5-p99', 'throughput-64', 'coordinator-kill',
  ], 'the goals of issue 16 and the three kept ones, nothing of the old star/hub/Redis latency goals')
  const verdicts = (id: string) => { const g = goal(id); return [g.met, g.ratio === null ? null : Number(g.ratio.toFixed(4)), g.floorRatio, g.sealedFloorRatio, g.belowFloor] }
  t.same(verdicts('dd-rtt-vs-sealed'), [false, 1.25, 0.75, 1, false], '50 vs 40 µs; raw 30 ÷ sealed 40; sealed ÷ itself')
  t.same(verdicts('dd-rtt-vs-star'), [true, 0.5, 0.3, 0.4, false])
  t.same(verdicts('sparse-rtt-vs-sealed'), [false, 1.35, 0.5, 1, false])
  t.same(verdicts('sparse-rtt-vs-star'), [false, 0.9, 100 / 300, 200 / 300, false], '0.9 > 0.85, both floors under it')
  t.same(verdicts('fanout-8-p50-vs-star'), [true, 0.95, 0.5, 0.625, false])
  t.same(verdicts('fanout-8-cpu-vs-star'), [true, 1.4, 0.5, 0.8, false], 'CPU per round 1400 vs 1000 µs ≤ 1.5×')
  t.same(verdicts('fanout-8-cpu-vs-sealed'), [false, 1.75, 0.625, 1, false])
  t.same(verdicts('fanout-16-p50-vs-star'), [false, 1.125, null, 0.625, false], 'raw dgram did not run at 16: no raw floor')
  t.same(verdicts('fanout-16-cpu-vs-star'), [false, 1.75, null, 0.8, false])
  t.same(verdicts('fanout-16-cpu-vs-sealed'), [false, 2.1875, null, 1, false])
  t.same(verdicts('rtt-honesty'), [true, 1.1, null, null, false])
  t.same(verdicts('loss5-p99'), [false, 0.1, null, null, false], '0.1 > 0.05 × the best TCP variant; raw failed, sealed not run under loss')
  t.match(goal('loss5-p99').measured, /tcp-star/)
  t.same(verdicts('throughput-64'), [false, 0.75, null, null, false])
  t.equal(goal('coordinator-kill').met, true)
  t.match(goal('coordinator-kill').measured, /^lost 0\/12000 over 3 runs/)
  t.same(goal('fanout-8-cpu-vs-star').runRatios, [2.1, 1.4, 0.7], 'repetition i ÷ repetition i: the spread')
  t.same(goal('dd-rtt-vs-star').runRatios, [0.5, 0.5, 0.5])
  t.same(goal('rtt-honesty').runRatios.map((x) => x.toFixed(2)), ['1.10', '1.10', '1.10'])
  t.match(goal('rtt-honesty').measured, 'stats 330µs vs ping-pong p50 300µs = 1.10×')
  t.match(goal('fanout-8-cpu-vs-star').measured, '1.40ms CPU vs 1.00ms CPU (tcp-star) = 1.40×')
  t.same(goal('coordinator-kill').runRatios, [])
})

t.test('result lines: the RTT check shows what the node reported, fan-out its CPU per round', async (t) => {
  t.match(formatResult(check(300, 330)), /p50 300µs .*node reports p50 330µs \(1\.10× the ping-pong p50\)/)
  t.notMatch(formatResult(ping('warpmesh', 'loopback', 50, 150)), /node reports/)
  t.match(formatResult(fan('warpmesh', 16, 900, 3500)), /proxy→16 downstreams 64B .*all received p50 900µs.*CPU 3500µs per round/)
  t.notMatch(formatResult({ ...fan('warpmesh', 8, 900, NaN) }), /CPU/, 'no CPU figure where /proc is missing')
})

t.test('the RTT check: met, missed, failed, not run', async (t) => {
  const honesty = (results: CombinedResult[]) => evaluateGoals(results).find((g) => g.id === 'rtt-honesty')!
  t.equal(honesty([combineRuns([check(300, 390)])]).met, true, '1.3× exactly is met')
  const missed = honesty([combineRuns([check(300, 1200)])])
  t.same([missed.met, missed.ratio], [false, 4], 'the srtt of sparse traffic with its ack delay would read ~4×')
  const failed = honesty([combineRuns([{ ...check(300, 300), ok: false, failure: 'one-way: lost 1 of 90' }])])
  t.same([failed.met, failed.ratio], [false, null])
  t.match(failed.measured, 'warpmesh FAILED: #1: one-way: lost 1 of 90')
  const none = honesty([combineRuns([check(300, NaN)])])
  t.same([none.met, none.measured], [false, 'no RTT reported'])
  t.equal(honesty([combineRuns([ping('warpmesh', 'loopback', 50, 150)])]).met, null, 'not run: not judged')
})

t.test('a goal missed with a floor beyond its target says so; a met one never does', async (t) => {
  const goalWith = (warpmesh: number, raw: number | null, sealed: number | null) => {
    const results = [
      combineRuns([ping('tcp-star', 'loopback', 100, 300)]),
      combineRuns([ping('warpmesh', 'loopback', warpmesh, 3 * warpmesh)]),
      ...(raw === null ? [] : [combineRuns([ping('raw-dgram', 'loopback', raw, 3 * raw)])]),
      ...(sealed === null ? [] : [combineRuns([ping('sealed-dgram', 'loopback', sealed, 3 * sealed)])]),
    ]
    return evaluateGoals(results).find((x) => x.id === 'dd-rtt-vs-star')!
  }
  const below = goalWith(90, 50, 85)
  t.same([below.met, below.floorRatio, below.sealedFloorRatio, below.belowFloor], [false, 0.5, 0.85, true], 'sealed floor 0.85 > 0.8')
  const rawAbove = goalWith(90, 82, null)
  t.same([rawAbove.met, rawAbove.belowFloor], [false, true], 'the raw floor alone can put a target out of reach')
  const reachable = goalWith(90, 40, 55)
  t.same([reachable.met, reachable.belowFloor], [false, false], 'both floors under the target: missed, not excused')
  const noise = goalWith(78, 50, 85)
  t.same([noise.met, noise.belowFloor], [true, false], 'under its floor by noise: met as measured')
  const md = renderMarkdown({ ...fixture(), goals: [below, reachable] })
  t.match(md, /\| \*\*missed\*\* \(target below the floor\) \| 0\.90× \| 0\.50× \| 0\.85× \|/)
  t.match(md, /\| \*\*missed\*\* \| 0\.90× \| 0\.40× \| 0\.55× \|/)
  // A CPU goal against the sealed floor: its own floor is 1×, so only raw dgram can excuse it.
  const cpu = (warpmesh: number, raw: number) => evaluateGoals([
    combineRuns([fan('sealed-dgram', 8, 250, 800)]), combineRuns([fan('warpmesh', 8, 380, warpmesh)]), combineRuns([fan('raw-dgram', 8, 200, raw)]),
  ]).find((x) => x.id === 'fanout-8-cpu-vs-sealed')!
  t.same([cpu(1000, 500).met, cpu(1000, 500).belowFloor], [true, false], '1.25× ≤ 1.3×')
  t.same([cpu(1200, 500).met, cpu(1200, 500).belowFloor], [false, false], '1.5× > 1.3×')
  t.same([cpu(1200, 1100).met, cpu(1200, 1100).belowFloor], [false, true], 'raw dgram itself at 1.375×')
  t.equal(evaluateGoals([combineRuns([fan('warpmesh', 8, 380, 1000)])]).find((x) => x.id === 'fanout-8-cpu-vs-star')!.met, null, 'no star: not judged')
})

t.test('a failed warpmesh run misses its goal instead of being fast', async (t) => {
  const results = [combineRuns([ping('tcp-star', 'loopback', 100, 300)]), combineRuns([ping('warpmesh', 'loopback', 0, 0, false)])]
  const g = evaluateGoals(results).find((x) => x.id === 'dd-rtt-vs-star')!
  t.equal(g.met, false)
  t.match(g.measured, /FAILED/)
  const throughput = evaluateGoals([combineRuns([tp('tcp-star', 1000)]), combineRuns([{ ...tp('warpmesh', 2000), ok: false, failure: 'lost 1 of 1000' }])])
    .find((x) => x.id === 'throughput-64')!
  t.same([throughput.met, throughput.ratio], [false, null], 'a fast but failed throughput run is not met')
})

t.test('RESULTS.md has the command, the machine, the goals and every table', async (t) => {
  const md = renderMarkdown(fixture())
  t.match(md, /^# warpmesh benchmark results\n/)
  t.match(md, 'Generated by `npm run bench -- --json bench/results.json` at commit `abc1234`')
  t.match(md, '| 2 | Test CPU @ 2.0GHz | v20.0.0 | 6.1.0 #1 SMP | 2026-11-28T22:00:00.000Z | 10.0 min |')
  t.match(md, '| back-to-back p50 RTT (d1↔d2 64B) vs TCP star | ≤ 0.8 × tcp-star | p50 50.0µs vs 100µs (tcp-star) = 0.50× | **met** | 0.50× / 0.50× / 0.50× | 0.30× | 0.40× |')
  t.match(md, '| back-to-back p50 RTT (d1↔d2 64B) vs the sealed floor | ≤ 1.15 × sealed-dgram | p50 50.0µs vs 40.0µs (sealed-dgram) = 1.25× | **missed** | 1.25× / 1.25× / 1.25× | 0.75× | 1.00× |')
  t.match(md, '| fan-out to 8: CPU per round (all processes) vs TCP star | ≤ 1.5 × tcp-star | 1.40ms CPU vs 1.00ms CPU (tcp-star) = 1.40× | **met** | 2.10× / 1.40× / 0.70× | 0.50× | 0.80× |')
  t.match(md, '| fan-out to 16: p50 until every downstream has it, vs TCP star | ≤ 1 × tcp-star | p50 900µs vs 800µs (tcp-star) = 1.13× | **missed** | 1.13× / 1.13× / 1.13× |  | 0.63× |')
  t.match(md, /\| RTT shown by stats \(roundTripTime\) vs the ping-pong p50 beside it[^|]*\| ≤ 1\.3 × ping-pong p50 \| stats 330µs vs ping-pong p50 300µs = 1\.10× \| \*\*met\*\* \| 1\.10× \/ 1\.10× \/ 1\.10× \|  \|  \|/)
  t.match(md, /one-way throughput d1→d2 64B vs TCP star \| ≥ 1 × tcp-star \| 150\.0k\/s vs 200\.0k\/s \(tcp-star\) = 0\.75× \| \*\*missed\*\* \|/)
  t.match(md, '| d1↔d2 64B | warpmesh | 50.0µs | 150µs | 300µs | 450µs | 1.67× | 1.25× | 0.50× | ok |')
  t.match(md, '| d1↔d2 64B, 10 ms apart | sealed-dgram | 200µs | 400µs | 800µs | 1.20ms | 2.00× | 1× | 0.67× | ok |')
  t.match(md, '| d1→d2 64B | warpmesh | 150.0k/s | 9.6 MB/s | — | — | 0.75× | 6.67 (d1 4.00, d2 2.00) | — | — | 1.33× | ok |')
  t.match(md, '| proxy→8 downstreams 64B | warpmesh | 380µs | 1.14ms | 1.52ms | 1.90ms | 1.90× | 1.52× | 0.95× | 1400 (proxy 700, d1 350) | 2.80× | 1.75× | 1.40× | ok |')
  t.match(md, '| proxy→16 downstreams 64B | sealed-dgram | 500µs | 1.50ms | 2.00ms | 2.50ms | — | 1× | 0.63× | 1600 (proxy 800, d1 400) | — | 1× | 0.80× | ok |')
  t.match(md, '| d1↔d2 64B, 10 ms apart, 3 one-way between | warpmesh | 300µs | 330µs | 264µs – 495µs | 1.10× | 270 | ok |')
  t.match(md, 'fan-out: 100 rounds to 8 and to 16 downstreams')
  // A report written before CPU was measured renders a dash, not NaN.
  const old = fixture()
  const legacy = { ...old, results: old.results.map((r) => (r.scenario === 'throughput' ? { ...r, cpuUsPerMessage: undefined, cpuUsPerMessageByProcess: undefined } : r)) } as unknown as BenchReport
  t.match(renderMarkdown(legacy), '| d1→d2 64B | warpmesh | 150.0k/s | 9.6 MB/s | — | — | 0.75× | — | — | — | 1.33× | ok |')
  t.match(md, '| 5 % | d1↔d2 64B | raw-dgram | — | — | — | — | 1× | — | — | **FAILED**: #1: 12 round trips lost (run stopped) |')
  t.match(md, '| 5 % | d1↔d2 64B | warpmesh | 300µs | 20.0ms | 40.0ms | 60.0ms | — | — | 0.10× | ok |')
  // A ratio just over a small target is not rounded onto it.
  const loss = evaluateGoals([
    combineRuns([ping('tcp-star', 'netns loss 5%', 400, 422_500)]), combineRuns([ping('warpmesh', 'netns loss 5%', 300, 21_300)]),
  ]).find((g) => g.id === 'loss5-p99')!
  t.equal(loss.met, false, '21.3 ms ÷ 422.5 ms = 0.0504 > 0.05')
  t.match(loss.measured, '= 0.0504×')
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

t.test('the steady fan-out block: its own rows and ratios, goals still on the first block', async (t) => {
  const steady = (variant: string, cpu: number): FanOutResult => ({ ...fan(variant, 16, 500, cpu), case: fanOutSteadyCaseName(16, 4000) })
  const results = [fan('warpmesh', 16, 900, 3000), fan('sealed-dgram', 16, 700, 2500), fan('tcp-star', 16, 800, 2400),
    steady('warpmesh', 3200), steady('sealed-dgram', 1600), steady('tcp-star', 1500)].map((r) => combineRuns([r]))
  const ratios = computeRatios(results)
  const find = (caseName: string, baseline: string): number | null | undefined =>
    ratios.find((r) => r.variant === 'warpmesh' && r.baseline === baseline && r.metric === 'cpuUsPerRound' && r.case === caseName)?.ratio
  t.equal(fanOutSteadyCaseName(16, 4000), 'proxy→16 downstreams 64B, steady (after 4000 rounds)')
  t.equal(find(fanOutSteadyCaseName(16, 4000), 'sealed-dgram'), 2, 'steady ratio from the steady rows')
  t.equal(find('proxy→16 downstreams 64B', 'sealed-dgram'), 1.2, 'first-block ratio unchanged')
  const goal = evaluateGoals(results).find((g) => g.id === 'fanout-16-cpu-vs-sealed')
  t.equal(goal?.met, true, 'the goal judges the first block (1.2 ≤ 1.3), as the issue defines it')
  const md = renderMarkdown({ ...fixture(), results, ratios, goals: evaluateGoals(results), settings: { ...fixture().settings, fanOutSteadyAfter: 4000 } })
  t.match(md, /proxy→16 downstreams 64B, steady \(after 4000 rounds\)/)
  t.match(md, /once 4000 rounds have run \("steady"/)
})
