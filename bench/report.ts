/**
 * The comparison bench's output: the JSON document `npm run bench --
 * --json FILE` writes ({@link BenchReport}, schema `warpmesh-bench/2`), the
 * ratios and goal verdicts derived from it, and its two renderings,
 * `bench/RESULTS.md` ({@link renderMarkdown}) and `bench/results.svg`
 * ({@link renderSvg}, hand-written SVG, no dependency).
 *
 * Everything here is a pure function of a {@link BenchReport}, so a report
 * can be re-rendered from a saved JSON file and tested with a fixed input.
 *
 * ## JSON schema `warpmesh-bench/2`
 *
 * Changes from `/1`: ratio baselines are raw-dgram, sealed-dgram and
 * tcp-star (tcp-hub is no longer a column) and include CPU per round and
 * per message; settings gain `rttCheckPings`, `rttCheckOneWayPerPing`,
 * `fanOutTargets`; the RTT check is a ping-pong result with `oneWay` and
 * `reportedRtt`; goals are those of issue 16 (ids below) and gain
 * `runRatios`.
 *
 * Times are in **µs** inside `rtt` / `allReceived` summaries and in **ms**
 * in fields whose name ends in `Ms`; rates are per second. A figure that
 * was not measured (a failed run) is `null` (JSON has no NaN).
 *
 * ```text
 * {
 *   schema: "warpmesh-bench/2",
 *   command: string,              // exactly what was run
 *   commit: string,               // git HEAD measured (`-dirty`: lib/ or bench/ had uncommitted changes)
 *   quick: boolean,               // --quick (short counts)
 *   startedAt, finishedAt: string // ISO 8601
 *   durationSeconds: number,
 *   machine: { nproc, cpuModel, node, kernel, platform, arch, memoryGiB },
 *   settings: BenchSettings,      // repetitions and every count used
 *   variants: [{ name, summary, reliable, ordered, failureTarget|null, skipped: string|null }],
 *   skipped: [{ what, reason }],  // whole variants or phases (e.g. kernel loss without root)
 *   lossCalibration: [{ lossPercent, sent, received, measuredLossPercent, nftDropped }],
 *   results: CombinedResult[],    // one per (network, scenario, case, variant)
 *   ratios: Ratio[],              // every variant ÷ raw-dgram / sealed-dgram / tcp-star, same run
 *   goals: Goal[],                // issue 16 goals for warpmesh (and those kept from issue 5), with verdicts
 * }
 * CombinedResult = the scenario result of bench/harness/scenarios.ts
 *   (scenario: "ping-pong" | "throughput" | "fan-out" | "failure", variant,
 *   network: "loopback" | "netns loss N%", case, ok, failure?, repetitions,
 *   and per scenario: rtt {count,min,p50,p90,p99,p999,max,mean}
 *     (+ the RTT check: oneWay: number, reportedRtt {…}: the node's own RTT readings, µs) |
 *   messagesPerSecond, bytesPerSecond, received, duplicates, outOfOrder, corrupt,
 *     cpuUsPerMessage, cpuUsPerMessageByProcess { name: µs } |
 *   allReceived {…}, completedRounds, rounds, cpuUsPerRound, cpuUsPerRoundByProcess |
 *   target, sent, received, lost, recoveryMs, afterRestartMs, longestGapMs,
 *   worstDelayMs, outageDetected)
 *   + lossPercent: number
 *   + runs: the same objects, one per repetition (figures of a combined
 *     result are the medians of its runs; `ok` only if every run was ok;
 *     failure: `lost`/`sent` are totals, `outageDetected` is any run's)
 * Ratio = { network, scenario, case, metric: "p50"|"p99"|"messagesPerSecond"|"cpuUsPerRound"|"cpuUsPerMessage",
 *           variant, baseline, ratio: number|null, better: "lower"|"higher" }
 * Goal  = { id, description, target, measured, ratio: number|null,
 *           runRatios: number[],         // the ratio in each repetition (its spread)
 *           floorRatio: number|null,     // raw dgram ÷ the same baseline, same case and metric
 *           sealedFloorRatio: number|null, // sealed dgram ÷ the same baseline
 *           belowFloor: boolean,         // missed, and a floor is beyond the target
 *           met: true | false | null }   // null: could not be measured here
 * Goal ids: dd-rtt-vs-sealed, dd-rtt-vs-star, sparse-rtt-vs-sealed,
 *   sparse-rtt-vs-star, fanout-{8,16}-p50-vs-star, fanout-{8,16}-cpu-vs-star,
 *   fanout-{8,16}-cpu-vs-sealed, rtt-honesty, loss5-p99, throughput-64,
 *   coordinator-kill.
 * ```
 */

import { DEFAULT_WARMUP } from '../lib/warmup.js'
import type { FailureResult, FanOutResult, PingPongResult, ScenarioResult, ThroughputResult } from './harness/scenarios.js'
import type { Summary } from './harness/stats.js'
import { formatMicros, formatRate, median } from './harness/stats.js'

/** Schema identifier of {@link BenchReport}. */
export const SCHEMA = 'warpmesh-bench/2'

/** Variants every other variant is compared against, in column order: both floors, then the TCP star. */
export const BASELINES = ['raw-dgram', 'sealed-dgram', 'tcp-star'] as const

/** The variant whose goals are judged. */
export const SUBJECT = 'warpmesh'

/** Ping-pong case the latency goal and the chart use. */
export const DD_CASE = 'd1↔d2 64B'

/** Throughput case the throughput goal uses. */
export const TP_CASE = 'd1→d2 64B'

/** Machine facts recorded with every run. */
export interface MachineInfo {
  /** `os.availableParallelism()` (what `nproc` prints). */
  readonly nproc: number
  readonly cpuModel: string
  /** `process.version`. */
  readonly node: string
  /** `os.release()` and `os.version()`. */
  readonly kernel: string
  readonly platform: string
  readonly arch: string
  readonly memoryGiB: number
}

/** Counts and repetitions of one bench run. */
export interface BenchSettings {
  readonly repetitions: number
  readonly downstreams: number
  readonly pingPongCount: number
  readonly pingPongWarmup: number
  /** Sparse ping-pong (d1↔d2 64 B): round trips measured, and the pause before each, ms. */
  readonly sparseCount: number
  readonly sparseGapMs: number
  /** RTT check (d1↔d2 64 B, `sparseGapMs` apart): pings measured, and one-way messages to d2 before each. */
  readonly rttCheckPings: number
  readonly rttCheckOneWayPerPing: number
  readonly throughputCount64: number
  readonly throughputCount1k: number
  readonly fanOutRounds: number
  /**
   * The steady-state fan-out cases: `fanOutRounds` more rounds measured on
   * the same cluster once this many have run (the first case's included).
   * Absent in reports from before they existed.
   */
  readonly fanOutSteadyAfter?: number
  /** Fan-out cases: downstreams broadcast to, each in a cluster of that many (8 runs in the cluster of the other cases). */
  readonly fanOutTargets: readonly number[]
  readonly failureRatePerSecond: number
  readonly failureDurationMs: number
  readonly failureKillAtMs: number
  readonly failureRestartAfterMs: number
  readonly lossPercents: readonly number[]
  readonly lossPingPongCount: number
}

/** A variant as recorded in the report. */
export interface VariantEntry {
  readonly name: string
  readonly summary: string
  readonly reliable: boolean
  readonly ordered: boolean
  readonly failureTarget: string | null
  /** Why it did not run, or null. */
  readonly skipped: string | null
}

/** Measured effect of the nftables rule, before the loss phase. */
export interface LossCalibration {
  readonly lossPercent: number
  readonly sent: number
  readonly received: number
  readonly measuredLossPercent: number
  readonly nftDropped: number
}

/** A combined result: medians of `runs` (see the module comment). */
export type CombinedResult = ScenarioResult & {
  readonly lossPercent: number
  readonly runs: readonly ScenarioResult[]
}

/** One ratio between two variants' figures of the same case, same run. */
export interface Ratio {
  readonly network: string
  readonly scenario: ScenarioResult['scenario']
  readonly case: string
  readonly metric: 'p50' | 'p99' | 'messagesPerSecond' | 'cpuUsPerRound' | 'cpuUsPerMessage'
  readonly variant: string
  readonly baseline: string
  /** `variant ÷ baseline`; null when either run failed or was skipped. */
  readonly ratio: number | null
  readonly better: 'lower' | 'higher'
}

/** A goal (issue 16, and those kept from issue 5) with its verdict. */
export interface Goal {
  readonly id: string
  readonly description: string
  /** Readable target, e.g. `≤ 0.8 × tcp-star`. */
  readonly target: string
  /** Readable measurement. */
  readonly measured: string
  /** warpmesh ÷ the baseline (medians of the repetitions); null when not judged. */
  readonly ratio: number | null
  /**
   * The same ratio per repetition (repetition i of warpmesh ÷ repetition i
   * of the baseline, which ran beside it): the spread that says whether the
   * machine's noise decides the verdict. Empty when not judged.
   */
  readonly runRatios: readonly number[]
  /**
   * Goals measured against a baseline: raw dgram's figure (no protocol at
   * all, the floor any UDP design starts from) ÷ the same baseline, same
   * case and run — a target below it cannot be met on this machine. `null`
   * for the other goals or when raw dgram did not run or failed.
   */
  readonly floorRatio: number | null
  /**
   * Sealed dgram's figure (raw dgram with every datagram sealed by
   * warpmesh's AEAD, no protocol: the floor of any design that protects its
   * datagrams, as warpmesh must) ÷ the same baseline, same case and run;
   * `null` as for `floorRatio`. On the loopback only (the floor is not
   * measured under loss); 1 for the goals against the sealed floor itself.
   */
  readonly sealedFloorRatio: number | null
  /**
   * Missed, and a floor of the same run (`floorRatio` or `sealedFloorRatio`)
   * is already above the target: no change to warpmesh can meet it on this
   * machine. Always false for a met goal (noise can put a figure under its
   * floor; it stays as measured).
   */
  readonly belowFloor: boolean
  /** null: could not be measured here (a baseline was skipped). A failed warpmesh run is `false`. */
  readonly met: boolean | null
}

/** The whole JSON document (schema `warpmesh-bench/1`). */
export interface BenchReport {
  readonly schema: typeof SCHEMA
  readonly command: string
  /** `git rev-parse --short HEAD` of the code measured, `-dirty` when lib/ or bench/ had uncommitted changes. */
  readonly commit: string
  readonly quick: boolean
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationSeconds: number
  readonly machine: MachineInfo
  readonly settings: BenchSettings
  readonly variants: readonly VariantEntry[]
  readonly skipped: ReadonlyArray<{ readonly what: string, readonly reason: string }>
  readonly lossCalibration: readonly LossCalibration[]
  readonly results: readonly CombinedResult[]
  readonly ratios: readonly Ratio[]
  readonly goals: readonly Goal[]
}

// ---------------------------------------------------------------- helpers

/** A number from a report field that may be `null` (NaN in JSON) or missing. */
function num (x: number | null | undefined): number {
  return typeof x === 'number' ? x : NaN
}

function fmtUs (x: number | null | undefined): string {
  return formatMicros(num(x))
}

function fmtRatio (r: number | null | undefined): string {
  const v = num(r)
  if (!Number.isFinite(v)) return '—'
  // Below 0.1 two decimals would print 0.0504 (missed against 0.05) as "0.05×": three significant digits.
  return `${v < 0.1 ? v.toPrecision(3) : v < 10 ? v.toFixed(2) : v.toFixed(1)}×`
}

function fmtMs (x: number | null | undefined): string {
  const v = num(x)
  return Number.isFinite(v) ? formatMicros(v * 1000) : '—'
}

function escapeXml (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function escapeCell (s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function status (r: ScenarioResult): string {
  return r.ok ? 'ok' : `**FAILED**: ${escapeCell(r.failure ?? 'unknown')}`
}

function lossPercentOf (network: string): number {
  const m = /loss (\d+)%/.exec(network)
  return m === null ? 0 : Number(m[1])
}

/** The combined result of one variant in one case, if any. */
export function findResult<S extends ScenarioResult['scenario']> (
  results: readonly CombinedResult[], scenario: S, network: string, caseName: string | null, variant: string,
): Extract<CombinedResult, { scenario: S }> | undefined {
  return results.find((r) => r.scenario === scenario && r.network === network && (caseName === null || r.case === caseName) && r.variant === variant) as Extract<CombinedResult, { scenario: S }> | undefined
}

// ---------------------------------------------------------------- combining

/**
 * Combine the repetitions of one case into a {@link CombinedResult}: field
 * medians (rates and percentiles), `ok` only if every run was ok, failures
 * listed by repetition. For the failure scenario `sent`/`lost`/`received`/
 * `duplicates` are totals, times are medians (null if any run never
 * recovered), `outageDetected` is true if any run saw an outage.
 */
export function combineRuns (runs: readonly ScenarioResult[]): CombinedResult {
  if (runs.length === 0) throw new RangeError('no runs to combine')
  const first = runs[0]!
  const failures = runs.map((r, i) => (r.ok ? null : `#${i + 1}: ${r.failure ?? 'failed'}`)).filter((x): x is string => x !== null)
  const ok = failures.length === 0
  const common = {
    ok,
    failure: ok ? undefined : failures.join('; '),
    repetitions: runs.length,
    lossPercent: lossPercentOf(first.network),
    runs,
  }
  const med = (xs: Array<number | null | undefined>): number => median(xs.map(num).filter(Number.isFinite))
  const medSummary = (ss: Summary[]): Summary => ({
    count: ss.reduce((a, s) => a + num(s.count), 0),
    min: med(ss.map((s) => s.min)),
    p50: med(ss.map((s) => s.p50)),
    p90: med(ss.map((s) => s.p90)),
    p99: med(ss.map((s) => s.p99)),
    p999: med(ss.map((s) => s.p999)),
    max: med(ss.map((s) => s.max)),
    mean: med(ss.map((s) => s.mean)),
  })
  const sum = (xs: number[]): number => xs.reduce((a, x) => a + num(x), 0)
  // Per process: the median of its figures (older JSON files have none).
  const medByProcess = (xs: ReadonlyArray<Readonly<Record<string, number>> | undefined>): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const name of new Set(xs.flatMap((x) => Object.keys(x ?? {})))) out[name] = med(xs.map((x) => x?.[name]))
    return out
  }
  switch (first.scenario) {
    case 'ping-pong': {
      const rs = runs as readonly PingPongResult[]
      // Failed runs stop early: their percentiles are not comparable, so only ok runs count (none: NaN).
      const good = rs.filter((r) => r.ok)
      const counted = ok ? rs : good
      return {
        ...first, ...common, rtt: medSummary(counted.map((r) => r.rtt)), lost: sum(rs.map((r) => r.lost)), corrupt: sum(rs.map((r) => r.corrupt)),
        ...(first.oneWay === undefined ? {} : { oneWay: sum(rs.map((r) => num(r.oneWay))), reportedRtt: medSummary(counted.flatMap((r) => (r.reportedRtt === undefined ? [] : [r.reportedRtt]))) }),
      }
    }
    case 'throughput': {
      const rs = runs as readonly ThroughputResult[]
      const rate = ok ? med(rs.map((r) => r.messagesPerSecond)) : NaN
      return {
        ...first, ...common, messagesPerSecond: rate, bytesPerSecond: rate * first.size, elapsedMs: med(rs.map((r) => r.elapsedMs)),
        received: sum(rs.map((r) => r.received)), duplicates: sum(rs.map((r) => r.duplicates)),
        outOfOrder: sum(rs.map((r) => r.outOfOrder)), corrupt: sum(rs.map((r) => r.corrupt)), count: sum(rs.map((r) => r.count)),
        cpuUsPerMessage: med(rs.map((r) => r.cpuUsPerMessage)), cpuUsPerMessageByProcess: medByProcess(rs.map((r) => r.cpuUsPerMessageByProcess)),
      }
    }
    case 'fan-out': {
      const rs = runs as readonly FanOutResult[]
      return {
        ...first, ...common, allReceived: medSummary(rs.map((r) => r.allReceived)), completedRounds: sum(rs.map((r) => r.completedRounds)), rounds: sum(rs.map((r) => r.rounds)),
        cpuUsPerRound: med(rs.map((r) => r.cpuUsPerRound)), cpuUsPerRoundByProcess: medByProcess(rs.map((r) => r.cpuUsPerRoundByProcess)),
      }
    }
    case 'failure': {
      const rs = runs as readonly FailureResult[]
      const never = rs.some((r) => r.recoveryMs === null)
      return {
        ...first,
        ...common,
        sent: sum(rs.map((r) => r.sent)),
        received: sum(rs.map((r) => r.received)),
        lost: sum(rs.map((r) => r.lost)),
        duplicates: sum(rs.map((r) => r.duplicates)),
        outOfOrder: sum(rs.map((r) => r.outOfOrder)),
        corrupt: sum(rs.map((r) => r.corrupt)),
        recoveryMs: never ? null : med(rs.map((r) => r.recoveryMs)),
        afterRestartMs: rs.some((r) => r.afterRestartMs === null) ? null : med(rs.map((r) => r.afterRestartMs)),
        longestGapMs: med(rs.map((r) => r.longestGapMs)),
        worstDelayMs: med(rs.map((r) => r.worstDelayMs)),
        outageDetected: rs.some((r) => r.outageDetected),
      }
    }
  }
}

// ---------------------------------------------------------------- ratios and goals

/** The figure `metric` of a result (NaN for a failed run or a metric the scenario has not). */
function metricOf (r: ScenarioResult, metric: Ratio['metric']): number {
  if (!r.ok) return NaN
  switch (r.scenario) {
    case 'ping-pong': return metric === 'p99' ? num(r.rtt.p99) : metric === 'p50' ? num(r.rtt.p50) : NaN
    case 'fan-out': return metric === 'p99' ? num(r.allReceived.p99) : metric === 'p50' ? num(r.allReceived.p50) : metric === 'cpuUsPerRound' ? num(r.cpuUsPerRound) : NaN
    case 'throughput': return metric === 'messagesPerSecond' ? num(r.messagesPerSecond) : metric === 'cpuUsPerMessage' ? num(r.cpuUsPerMessage) : NaN
    default: return NaN
  }
}

/** The metrics {@link computeRatios} divides per scenario. */
const RATIO_METRICS: Readonly<Record<ScenarioResult['scenario'], ReadonlyArray<Ratio['metric']>>> = {
  'ping-pong': ['p50', 'p99'],
  'fan-out': ['p50', 'p99', 'cpuUsPerRound'],
  throughput: ['messagesPerSecond', 'cpuUsPerMessage'],
  failure: [],
}

/**
 * Every variant's figure divided by each baseline's ({@link BASELINES}) in
 * the same case and run: p50 and p99 for latency, CPU per round or message
 * (lower is better), messages/s for throughput (higher is better). `ratio`
 * is null when either side failed or did not run.
 */
export function computeRatios (results: readonly CombinedResult[]): Ratio[] {
  const out: Ratio[] = []
  for (const r of results) {
    for (const baseline of BASELINES) {
      if (baseline === r.variant) continue
      const b = findResult(results, r.scenario, r.network, r.case, baseline)
      if (b === undefined) continue
      for (const metric of RATIO_METRICS[r.scenario]) {
        const v = metricOf(r, metric) / metricOf(b, metric)
        out.push({
          network: r.network, scenario: r.scenario, case: r.case, metric, variant: r.variant, baseline,
          ratio: Number.isFinite(v) ? v : null, better: metric === 'messagesPerSecond' ? 'higher' : 'lower',
        })
      }
    }
  }
  return out
}

/** A goal with no floors: a goal that could not be judged, and the goals floors say nothing about. */
function plainGoal (id: string, description: string, target: string, measured: string, met: boolean | null, ratio: number | null = null, runRatios: readonly number[] = []): Goal {
  return { id, description, target, measured, ratio, runRatios, floorRatio: null, sealedFloorRatio: null, belowFloor: false, met }
}

/** What {@link ratioGoal} compares. */
interface RatioGoalSpec {
  readonly id: string
  readonly description: string
  readonly scenario: 'ping-pong' | 'fan-out' | 'throughput'
  readonly network: string
  readonly caseName: string
  readonly metric: Ratio['metric']
  /** The baseline, or several: the best of them (lowest, or highest for a rate). */
  readonly baselines: readonly string[]
  readonly factor: number
  /** Whether the floors (raw and sealed dgram ÷ the same baseline) are shown. Default true. */
  readonly floors?: boolean
}

function formatMetric (metric: Ratio['metric'], v: number): string {
  switch (metric) {
    case 'messagesPerSecond': return formatRate(v)
    case 'cpuUsPerRound': case 'cpuUsPerMessage': return `${fmtUs(v)} CPU`
    default: return fmtUs(v)
  }
}

/**
 * warpmesh's `metric` in one case ÷ a baseline's, judged against `factor`
 * (≤ for times and CPU, ≥ for rates), with both floors divided by the same
 * baseline beside it and the ratio of every repetition (its spread).
 */
function ratioGoal (results: readonly CombinedResult[], spec: RatioGoalSpec): Goal {
  const { id, description, scenario, network, caseName, metric, baselines, factor } = spec
  const higher = metric === 'messagesPerSecond'
  const label = baselines.length === 1 ? baselines[0]! : `best of ${baselines.join(', ')}`
  const target = `${higher ? '≥' : '≤'} ${factor} × ${label}`
  const subject = findResult(results, scenario, network, caseName, SUBJECT)
  if (subject === undefined) return plainGoal(id, description, target, 'warpmesh did not run', null)
  if (!subject.ok) return plainGoal(id, description, target, `warpmesh FAILED: ${subject.failure ?? ''}`, false)
  const base = baselines.map((b) => findResult(results, scenario, network, caseName, b))
    .filter((b): b is NonNullable<typeof b> => b !== undefined && Number.isFinite(metricOf(b, metric)))
  if (base.length === 0) return plainGoal(id, description, target, `${label} did not run or failed`, null)
  let best = base[0]!
  for (const b of base) if (higher ? metricOf(b, metric) > metricOf(best, metric) : metricOf(b, metric) < metricOf(best, metric)) best = b
  const s = metricOf(subject, metric)
  const bv = metricOf(best, metric)
  const ratio = s / bv
  if (!Number.isFinite(ratio)) return plainGoal(id, description, target, `${metric} not measured`, null)
  // Repetition i of warpmesh ÷ repetition i of the baseline (the variants alternate within a repetition).
  const runRatios: number[] = []
  for (let i = 0; i < Math.min(subject.runs.length, best.runs.length); i++) {
    const x = metricOf(subject.runs[i]!, metric) / metricOf(best.runs[i]!, metric)
    if (Number.isFinite(x)) runRatios.push(x)
  }
  const floorOf = (variant: string): number | null => {
    if (spec.floors === false) return null
    const f = findResult(results, scenario, network, caseName, variant)
    const v = f === undefined ? NaN : metricOf(f, metric) / bv
    return Number.isFinite(v) ? v : null
  }
  const floorRatio = floorOf('raw-dgram')
  const sealedFloorRatio = floorOf('sealed-dgram')
  const met = higher ? ratio >= factor : ratio <= factor
  const beyond = (f: number | null): boolean => f !== null && (higher ? f < factor : f > factor)
  return {
    id, description, target,
    measured: `${metric === 'p50' || metric === 'p99' ? `${metric} ` : ''}${formatMetric(metric, s)} vs ${formatMetric(metric, bv)} (${best.variant}) = ${fmtRatio(ratio)}`,
    ratio, runRatios, floorRatio, sealedFloorRatio,
    belowFloor: !met && (beyond(floorRatio) || beyond(sealedFloorRatio)),
    met,
  }
}

/** The ping-pong case name of the sparse goals (`sparseGapMs` 10). */
export const SPARSE_CASE = 'd1↔d2 64B, 10 ms apart'

/** Fan-out sizes the goals judge. */
export const FAN_OUT_GOAL_TARGETS = [8, 16] as const

/** The fan-out case names of the goals. */
export function fanOutCaseName (downstreams: number): string {
  return `proxy→${downstreams} downstreams 64B`
}

/** The steady-state fan-out case names (the same rounds once `after` have run on the cluster). */
export function fanOutSteadyCaseName (downstreams: number, after: number): string {
  return `${fanOutCaseName(downstreams)}, steady (after ${after} rounds)`
}

/** Limit of the RTT check: what warpmesh's stats report ÷ the ping-pong p50 measured beside it. */
export const RTT_HONESTY_FACTOR = 1.3

/**
 * The RTT check: the RTT warpmesh's stats reported (median of the readings)
 * ÷ the p50 of the ping-pong measured beside it, same case and run.
 */
function rttHonestyGoal (results: readonly CombinedResult[]): Goal {
  const id = 'rtt-honesty'
  const description = 'RTT shown by stats (roundTripTime) vs the ping-pong p50 beside it (sparse one-way traffic + ping-pong)'
  const target = `≤ ${RTT_HONESTY_FACTOR} × ping-pong p50`
  const r = results.find((x) => x.scenario === 'ping-pong' && x.network === 'loopback' && x.variant === SUBJECT && x.oneWay !== undefined) as Extract<CombinedResult, { scenario: 'ping-pong' }> | undefined
  if (r === undefined) return plainGoal(id, description, target, 'warpmesh did not run the RTT check', null)
  if (!r.ok) return plainGoal(id, description, target, `warpmesh FAILED: ${r.failure ?? ''}`, false)
  const shown = num(r.reportedRtt?.p50)
  const ratio = shown / num(r.rtt.p50)
  if (!Number.isFinite(ratio)) return plainGoal(id, description, target, 'no RTT reported', false)
  const runRatios = r.runs.map((x) => (x.scenario === 'ping-pong' && x.ok ? num(x.reportedRtt?.p50) / num(x.rtt.p50) : NaN)).filter(Number.isFinite)
  return plainGoal(id, description, target, `stats ${fmtUs(shown)} vs ping-pong p50 ${fmtUs(r.rtt.p50)} = ${fmtRatio(ratio)}`, ratio <= RTT_HONESTY_FACTOR, ratio, runRatios)
}

/** The goals of issue 16 (and those kept from issue 5), judged on `results` (see {@link Goal}). */
export function evaluateGoals (results: readonly CombinedResult[]): Goal[] {
  const L = 'loopback'
  const pp = (id: string, description: string, caseName: string, baseline: string, factor: number): Goal =>
    ratioGoal(results, { id, description, scenario: 'ping-pong', network: L, caseName, metric: 'p50', baselines: [baseline], factor })
  const goals: Goal[] = [
    pp('dd-rtt-vs-sealed', `back-to-back p50 RTT (${DD_CASE}) vs the sealed floor`, DD_CASE, 'sealed-dgram', 1.15),
    pp('dd-rtt-vs-star', `back-to-back p50 RTT (${DD_CASE}) vs TCP star`, DD_CASE, 'tcp-star', 0.8),
    pp('sparse-rtt-vs-sealed', `sparse p50 RTT (${SPARSE_CASE}) vs the sealed floor`, SPARSE_CASE, 'sealed-dgram', 1.15),
    pp('sparse-rtt-vs-star', `sparse p50 RTT (${SPARSE_CASE}) vs TCP star`, SPARSE_CASE, 'tcp-star', 0.85),
  ]
  for (const n of FAN_OUT_GOAL_TARGETS) {
    const caseName = fanOutCaseName(n)
    const fo = (id: string, description: string, metric: Ratio['metric'], baseline: string, factor: number): Goal =>
      ratioGoal(results, { id, description, scenario: 'fan-out', network: L, caseName, metric, baselines: [baseline], factor })
    goals.push(
      fo(`fanout-${n}-p50-vs-star`, `fan-out to ${n}: p50 until every downstream has it, vs TCP star`, 'p50', 'tcp-star', 1.0),
      fo(`fanout-${n}-cpu-vs-star`, `fan-out to ${n}: CPU per round (all processes) vs TCP star`, 'cpuUsPerRound', 'tcp-star', 1.5),
      fo(`fanout-${n}-cpu-vs-sealed`, `fan-out to ${n}: CPU per round (all processes) vs the sealed floor`, 'cpuUsPerRound', 'sealed-dgram', 1.3),
    )
  }
  goals.push(
    rttHonestyGoal(results),
    ratioGoal(results, {
      id: 'loss5-p99', description: `p99 RTT at 5 % kernel loss (${DD_CASE}) vs the best TCP variant`, scenario: 'ping-pong', network: 'netns loss 5%',
      caseName: DD_CASE, metric: 'p99', baselines: ['tcp-star', 'tcp-hub'], factor: 0.05,
    }),
    ratioGoal(results, {
      id: 'throughput-64', description: `one-way throughput ${TP_CASE} vs TCP star`, scenario: 'throughput', network: L,
      caseName: TP_CASE, metric: 'messagesPerSecond', baselines: ['tcp-star'], factor: 1, floors: false,
    }),
  )
  {
    const id = 'coordinator-kill'
    const description = 'coordinator SIGKILLed mid-stream: downstream↔downstream traffic'
    const target = '0 lost, no interruption'
    const f = results.find((r) => r.scenario === 'failure' && r.variant === SUBJECT && r.network === L) as Extract<CombinedResult, { scenario: 'failure' }> | undefined
    if (f === undefined) goals.push(plainGoal(id, description, target, 'warpmesh did not run', null))
    else {
      goals.push(plainGoal(id, description, target,
        `lost ${f.lost}/${f.sent} over ${f.repetitions} runs, longest gap ${fmtMs(f.longestGapMs)}, worst delay ${fmtMs(f.worstDelayMs)}${f.outageDetected ? ', outage detected' : ''}${f.ok ? '' : ` (FAILED: ${f.failure ?? ''})`}`,
        f.ok && f.lost === 0 && !f.outageDetected))
    }
  }
  return goals
}

// ---------------------------------------------------------------- markdown

function ratioCells (report: BenchReport, r: CombinedResult, metric: Ratio['metric']): string[] {
  return BASELINES.map((b) => {
    if (b === r.variant) return '1×'
    const x = report.ratios.find((q) => q.network === r.network && q.scenario === r.scenario && q.case === r.case && q.variant === r.variant && q.baseline === b && q.metric === metric)
    return x === undefined ? '—' : fmtRatio(x.ratio)
  })
}

function table (header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function casesOf (results: readonly CombinedResult[], scenario: ScenarioResult['scenario'], network: string): string[] {
  const seen: string[] = []
  for (const r of results) if (r.scenario === scenario && r.network === network && !seen.includes(r.case)) seen.push(r.case)
  return seen
}

/** `12.3 (proxy 8.1, d1 2.0)`: the total and the two busiest processes; `—` when not measured (older JSON, no /proc). */
function cpuCell (total: number | null | undefined, byProcess: Readonly<Record<string, number | null>> | undefined, digits: number): string {
  const t = num(total)
  if (!Number.isFinite(t)) return '—'
  const busiest = Object.entries(byProcess ?? {}).map(([k, v]) => [k, num(v)] as const).filter(([, v]) => Number.isFinite(v))
    .sort((a, b) => b[1] - a[1]).slice(0, 2)
  return `${t.toFixed(digits)}${busiest.length > 0 ? ` (${busiest.map(([k, v]) => `${k} ${v.toFixed(digits)}`).join(', ')})` : ''}`
}

function verdict (g: Pick<Goal, 'met' | 'belowFloor'>): string {
  return g.met === null ? 'not measured' : g.met ? '**met**' : g.belowFloor ? '**missed** (target below the floor)' : '**missed**'
}

/** `bench/RESULTS.md`: goals, every table with ratios, the command and the machine. */
export function renderMarkdown (report: BenchReport): string {
  const { machine: m, settings: s } = report
  const results = report.results
  const baseCols = BASELINES.map((b) => `÷ ${b}`)
  const out: string[] = []
  out.push('# warpmesh benchmark results', '')
  out.push(`Generated by \`${report.command}\` at commit \`${report.commit}\`${report.quick ? ' (**quick**: short counts, indicative only)' : ''} — do not edit by hand, run the bench again.`, '')
  out.push(table(['nproc', 'CPU', 'Node', 'kernel', 'date', 'duration'], [[
    String(m.nproc), escapeCell(m.cpuModel), m.node, escapeCell(m.kernel), report.startedAt, `${(report.durationSeconds / 60).toFixed(1)} min`,
  ]]), '')
  out.push('Method: every variant runs in separate processes (proxy, downstreams, and its services) on this one machine, ' +
    `in the same run; each case is repeated ${s.repetitions} times with the variants alternating (the order rotates every repetition) ` +
    'and the figures are the **medians of the repetitions**. Every run checks what arrived (count, content, and order where the ' +
    'variant promises it); a run that lost, duplicated, reordered or corrupted anything is reported **FAILED** and gets no figure. ' +
    'Ratios divide a variant\'s figure by the baseline\'s from the same run (lower is better for times, higher for rates). ' +
    `Ping-pong: ${s.pingPongCount} sequential round trips after ${s.pingPongWarmup} unmeasured` +
    (s.sparseCount > 0 ? `, and sparse: ${s.sparseCount} round trips ${s.sparseGapMs} ms apart (every process idles and wakes for each, as servers exchanging a few messages a second do), run after the others` : '') +
    (s.rttCheckPings > 0 ? `; RTT check (warpmesh): ${s.rttCheckPings} round trips ${s.sparseGapMs} ms apart with ${s.rttCheckOneWayPerPing} one-way messages between (the same ${s.sparseGapMs} ms apart), the RTT warpmesh's stats report read after each` : '') +
    `; throughput: ${s.throughputCount64} × 64 B and ` +
    `${s.throughputCount1k} × 1 KiB after a checked warm-up; fan-out: ${s.fanOutRounds} rounds to ${(s.fanOutTargets ?? [s.downstreams]).join(' and to ')} downstreams (a cluster of that many each) after 100 unmeasured` +
    (s.fanOutSteadyAfter === undefined ? '; ' : `, and the same again once ${s.fanOutSteadyAfter} rounds have run ("steady": every variant's code, and the harness's, optimized by then; the first block is the start of a new process, where the others still run unoptimized code and warpmesh has its warm-up); `) +
    `kernel loss: ${s.lossPingPongCount} round trips per run, every process in its own network namespace with nftables random drop on input. ` +
    `warpmesh nodes start as \`MeshNode.start()\` starts them by default: with its start-up warm-up (${DEFAULT_WARMUP} round trips over private loopback sessions, ~0.4 s, before the node joins; \`WARPMESH_WARMUP\`); the other variants have no such step.`, '')

  out.push('## Goals (warpmesh, measured side by side)', '')
  const floorCell = (f: number | null): string => (f === null ? '' : fmtRatio(f))
  const spreadCell = (g: Goal): string => ((g.runRatios ?? []).length === 0 ? '' : (g.runRatios ?? []).map((x) => fmtRatio(x)).join(' / '))
  out.push(table(['goal', 'target', 'measured', 'verdict', 'each repetition', 'floor: raw dgram', 'floor: sealed dgram'], report.goals.map((g) => [
    escapeCell(g.description), escapeCell(g.target), escapeCell(g.measured), verdict(g), spreadCell(g), floorCell(g.floorRatio), floorCell(g.sealedFloorRatio),
  ])), '')
  out.push('"each repetition": the ratio within each repetition (the variants run one after another in it), whose spread shows how much the ' +
    'machine\'s noise moves the verdict. "floor: raw dgram" is raw `node:dgram` (no reliability, no encryption, no protocol) divided by the same ' +
    'baseline, same case and run: the lowest ratio any UDP design reaches on this machine. "floor: sealed dgram" is the same with every ' +
    'datagram sealed and opened by warpmesh\'s own AEAD (its `PacketProtector`, as warpmesh uses it; still no protocol): the lowest ratio of ' +
    'any design that protects its datagrams, as warpmesh must. A target below a floor cannot be met here ("target below the floor").', '')

  if (report.skipped.length > 0) {
    out.push('## Skipped', '')
    for (const k of report.skipped) out.push(`- **${escapeCell(k.what)}**: ${escapeCell(k.reason)}`)
    out.push('')
  }

  out.push('![Round-trip latency percentiles per variant and loss rate](results.svg)', '')

  out.push('## Round-trip latency (loopback)', '')
  const ppRows: string[][] = []
  for (const c of casesOf(results, 'ping-pong', 'loopback')) {
    for (const r of results) {
      if (r.scenario !== 'ping-pong' || r.network !== 'loopback' || r.case !== c) continue
      const ok = r.ok
      ppRows.push([c, r.variant, ok ? fmtUs(r.rtt.p50) : '—', ok ? fmtUs(r.rtt.p99) : '—', ok ? fmtUs(r.rtt.p999) : '—', ok ? fmtUs(r.rtt.max) : '—', ...ratioCells(report, r, 'p50'), status(r)])
    }
  }
  out.push(table(['case', 'variant', 'p50', 'p99', 'p99.9', 'max', ...baseCols.map((c) => `p50 ${c}`), 'status'], ppRows), '')

  out.push('## One-way throughput (loopback)', '')
  const tpRows: string[][] = []
  for (const c of casesOf(results, 'throughput', 'loopback')) {
    for (const r of results) {
      if (r.scenario !== 'throughput' || r.network !== 'loopback' || r.case !== c) continue
      tpRows.push([c, r.variant, r.ok ? formatRate(num(r.messagesPerSecond)) : '—', r.ok ? `${(num(r.bytesPerSecond) / 1e6).toFixed(1)} MB/s` : '—', ...ratioCells(report, r, 'messagesPerSecond'),
        r.ok ? cpuCell(r.cpuUsPerMessage, r.cpuUsPerMessageByProcess, 2) : '—', ...ratioCells(report, r, 'cpuUsPerMessage'), status(r)])
    }
  }
  out.push(table(['case', 'variant', 'messages/s', 'payload', ...baseCols, 'CPU µs per message: all processes (busiest ones)', ...baseCols.map((c) => `CPU ${c}`), 'status'], tpRows), '')

  out.push('## Fan-out (loopback): time until every downstream has the broadcast', '')
  const foRows: string[][] = []
  for (const r of casesOf(results, 'fan-out', 'loopback').flatMap((c) => results.filter((x) => x.scenario === 'fan-out' && x.network === 'loopback' && x.case === c))) {
    if (r.scenario !== 'fan-out') continue
    const ok = r.ok
    foRows.push([r.case, r.variant, ok ? fmtUs(r.allReceived.p50) : '—', ok ? fmtUs(r.allReceived.p99) : '—', ok ? fmtUs(r.allReceived.p999) : '—', ok ? fmtUs(r.allReceived.max) : '—', ...ratioCells(report, r, 'p50'),
      ok ? cpuCell(r.cpuUsPerRound, r.cpuUsPerRoundByProcess, 0) : '—', ...ratioCells(report, r, 'cpuUsPerRound'), status(r)])
  }
  out.push(table(['case', 'variant', 'p50', 'p99', 'p99.9', 'max', ...baseCols.map((c) => `p50 ${c}`), 'CPU µs per round: all processes (busiest ones)', ...baseCols.map((c) => `CPU ${c}`), 'status'], foRows), '')
  out.push('CPU: user + system time of every process of the variant (nodes, relays, servers) while the measured messages flowed, from /proc at ' +
    `clock-tick resolution, per message or round; medians of the repetitions. No round (or message) can take less wall time than its CPU ÷ ${m.nproc} CPUs.`, '')

  out.push('## RTT check: what warpmesh reports vs a ping-pong beside it', '')
  const rttRows: string[][] = []
  for (const r of results) {
    if (r.scenario !== 'ping-pong' || r.network !== 'loopback' || r.oneWay === undefined) continue
    const ok = r.ok
    const shown = num(r.reportedRtt?.p50)
    rttRows.push([r.case, r.variant, ok ? fmtUs(r.rtt.p50) : '—', ok ? fmtUs(shown) : '—', ok ? `${fmtUs(r.reportedRtt?.min)} – ${fmtUs(r.reportedRtt?.max)}` : '—',
      ok ? fmtRatio(shown / num(r.rtt.p50)) : '—', String(r.oneWay), status(r)])
  }
  if (rttRows.length === 0) out.push('Not measured.', '')
  else {
    out.push(table(['case', 'variant', 'ping-pong p50', 'reported RTT (median of readings)', 'reported min – max', 'reported ÷ ping-pong p50', 'one-way messages (all checked)', 'status'], rttRows), '')
    out.push('d1 sends sparse one-way messages to d2 (each acknowledged only after the ack delay, as no reply carries it) and, between them, ' +
      'pings d2; after each measured pong it reads the round-trip time its MeshNode reports for d2 (`stats().peers[id].roundTripTime`, ' +
      `the figure of the demo and the \`warpmesh_peer_rtt_seconds\` metric). Goal: ≤ ${RTT_HONESTY_FACTOR} × the ping-pong p50.`, '')
  }

  const lossNetworks = [...new Set(results.filter((r) => r.lossPercent > 0).map((r) => r.network))]
  out.push('## Round-trip latency under kernel packet loss', '')
  if (lossNetworks.length === 0) out.push('Not measured (see Skipped).', '')
  else {
    if (report.lossCalibration.length > 0) {
      out.push('Loss rule check (plain datagrams, one direction, before the runs): ' +
        report.lossCalibration.map((c) => `${c.lossPercent} % rule → ${c.measuredLossPercent.toFixed(1)} % measured (${c.sent - c.received}/${c.sent})`).join('; ') + '.', '')
    }
    const lossRows: string[][] = []
    for (const network of lossNetworks) {
      for (const r of results) {
        if (r.scenario !== 'ping-pong' || r.network !== network) continue
        const ok = r.ok
        lossRows.push([`${r.lossPercent} %`, r.case, r.variant, ok ? fmtUs(r.rtt.p50) : '—', ok ? fmtUs(r.rtt.p99) : '—', ok ? fmtUs(r.rtt.p999) : '—', ok ? fmtUs(r.rtt.max) : '—', ...ratioCells(report, r, 'p99'), status(r)])
      }
    }
    out.push(table(['loss', 'case', 'variant', 'p50', 'p99', 'p99.9', 'max', ...baseCols.map((c) => `p99 ${c}`), 'status'], lossRows), '')
  }

  out.push('## Failure: single point of failure SIGKILLed mid-stream', '')
  out.push(`d1 streams to d2 at ${s.failureRatePerSecond}/s for ${s.failureDurationMs} ms; the target is killed ${s.failureKillAtMs} ms in and restarted ` +
    `${s.failureRestartAfterMs} ms later (as a supervisor would). "lost" is summed over the repetitions; times are medians; ` +
    'an interruption is any loss, no recovery, or a message delayed more than 200 ms.', '')
  const fRows: string[][] = []
  for (const r of results) {
    if (r.scenario !== 'failure') continue
    fRows.push([
      r.variant, r.notApplicable !== undefined ? `n/a (${r.notApplicable})` : (r.target ?? '—'), `${r.lost}/${r.sent}`,
      r.recoveryMs === null ? 'never' : fmtMs(r.recoveryMs), fmtMs(r.longestGapMs), fmtMs(r.worstDelayMs),
      r.outageDetected ? 'yes' : 'no', r.ok ? 'ok' : `**FAILED**: ${escapeCell(r.failure ?? '')}`,
    ])
  }
  out.push(table(['variant', 'killed', 'lost', 'traffic again after', 'longest gap', 'worst delay', 'interruption', 'status'], fRows), '')

  out.push('## Variants', '')
  out.push(table(['variant', 'architecture', 'promises'], report.variants.map((v) => [
    v.name, escapeCell(v.summary), `${v.reliable ? 'reliable' : 'unreliable'}, ${v.ordered ? 'ordered' : 'unordered'}${v.skipped === null ? '' : ` — skipped: ${escapeCell(v.skipped)}`}`,
  ])), '')
  out.push(`Machine-readable results: \`results.json\` (schema \`${report.schema}\`, documented in \`bench/report.ts\`).`, '')
  return out.join('\n')
}

// ---------------------------------------------------------------- SVG

/** Percentiles drawn per variant, with their colours. */
export const CHART_PERCENTILES = [
  { key: 'p50', label: 'p50', color: '#2b6cb0' },
  { key: 'p99', label: 'p99', color: '#dd6b20' },
  { key: 'p999', label: 'p99.9', color: '#c53030' },
  { key: 'max', label: 'max', color: '#718096' },
] as const

/**
 * `bench/results.svg`: one panel per network (loopback, then each loss
 * rate), one group of bars per variant (p50, p99, p99.9, max of the
 * {@link DD_CASE} round trip) on a shared logarithmic time axis. A failed
 * run is drawn as the word FAILED, a variant that did not run as "skipped".
 * Every bar carries `data-variant`, `data-network` and `data-percentile`.
 */
export function renderSvg (report: BenchReport): string {
  const networks = ['loopback', ...[...new Set(report.results.filter((r) => r.lossPercent > 0).map((r) => r.network))]
    .sort((a, b) => lossPercentOf(a) - lossPercentOf(b))]
  const variants = report.variants.map((v) => v.name)
  const values: number[] = []
  for (const r of report.results) {
    if (r.scenario !== 'ping-pong' || r.case !== DD_CASE || !r.ok) continue
    for (const p of CHART_PERCENTILES) { const v = num(r.rtt[p.key]); if (v > 0) values.push(v) }
  }
  const lo = values.length > 0 ? Math.pow(10, Math.floor(Math.log10(Math.min(...values)))) : 1
  const hi = values.length > 0 ? Math.pow(10, Math.ceil(Math.log10(Math.max(...values)))) : 1000
  const top = 60
  const plotH = 300
  const left = 70
  const barW = 9
  const groupW = CHART_PERCENTILES.length * barW + 14
  const panelW = Math.max(160, variants.length * groupW + 20)
  const gap = 24
  const width = left + networks.length * (panelW + gap) + 10
  const height = top + plotH + 120
  const y = (v: number): number => top + plotH - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotH
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  parts.push(`<title>Round-trip latency percentiles (${escapeXml(DD_CASE)}) per variant and kernel loss rate</title>`)
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`)
  parts.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">Round-trip time ${escapeXml(DD_CASE)}, medians of ${report.settings.repetitions} runs (log scale; lower is better)</text>`)
  CHART_PERCENTILES.forEach((p, i) => {
    const lx = left + i * 80
    parts.push(`<rect x="${lx}" y="32" width="10" height="10" fill="${p.color}"/><text x="${lx + 14}" y="41">${p.label}</text>`)
  })
  // Decade grid lines and labels.
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gy = y(d).toFixed(1)
    parts.push(`<line x1="${left}" y1="${gy}" x2="${width - 10}" y2="${gy}" stroke="#e2e8f0"/>`)
    parts.push(`<text x="${left - 6}" y="${(Number(gy) + 4).toFixed(1)}" text-anchor="end">${escapeXml(formatMicros(d))}</text>`)
  }
  networks.forEach((network, ni) => {
    const px = left + ni * (panelW + gap)
    parts.push(`<g data-network="${escapeXml(network)}">`)
    parts.push(`<rect x="${px}" y="${top}" width="${panelW}" height="${plotH}" fill="none" stroke="#a0aec0"/>`)
    parts.push(`<text x="${px + panelW / 2}" y="${top - 6}" text-anchor="middle" font-weight="bold">${escapeXml(network === 'loopback' ? 'loopback, no loss' : network.replace('netns ', 'kernel '))}</text>`)
    variants.forEach((variant, vi) => {
      const gx = px + 10 + vi * groupW
      const r = findResult(report.results, 'ping-pong', network, DD_CASE, variant)
      const cx = gx + (CHART_PERCENTILES.length * barW) / 2
      if (r === undefined || !r.ok) {
        // Not run: a latency floor (sealed dgram) is measured on the loopback only.
        const skipped = report.variants.find((v) => v.name === variant)?.skipped != null
        const word = r !== undefined ? 'FAILED' : skipped ? 'skipped' : 'not run'
        parts.push(`<text x="${cx}" y="${top + plotH - 8}" text-anchor="end" transform="rotate(-90 ${cx} ${top + plotH - 8})" fill="${r === undefined ? '#718096' : '#c53030'}" font-weight="bold" data-variant="${escapeXml(variant)}" data-status="${word}">${word}</text>`)
      } else {
        CHART_PERCENTILES.forEach((p, pi) => {
          const v = num(r.rtt[p.key])
          if (!(v > 0)) return
          const by = y(v)
          parts.push(`<rect x="${gx + pi * barW}" y="${by.toFixed(1)}" width="${barW - 1}" height="${(top + plotH - by).toFixed(1)}" fill="${p.color}" data-variant="${escapeXml(variant)}" data-network="${escapeXml(network)}" data-percentile="${p.label}"><title>${escapeXml(`${variant} ${network} ${p.label} ${formatMicros(v)}`)}</title></rect>`)
        })
      }
      parts.push(`<text x="${cx}" y="${top + plotH + 12}" text-anchor="end" transform="rotate(-45 ${cx} ${top + plotH + 12})">${escapeXml(variant)}</text>`)
    })
    parts.push('</g>')
  })
  parts.push(`<text x="${left}" y="${height - 8}" fill="#4a5568">${escapeXml(`${report.machine.cpuModel}, ${report.machine.nproc} CPUs, Node ${report.machine.node}, ${report.startedAt.slice(0, 10)}${report.quick ? ' (quick run)' : ''}`)}</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
