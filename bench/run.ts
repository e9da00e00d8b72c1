/**
 * The comparison bench (`npm run bench`): every variant of bench/variants
 * (raw dgram, sealed dgram, TCP star, TCP hub, Redis pub/sub, warpmesh)
 * through every scenario of issues 5 and 16, in one run on one machine, then `bench/RESULTS.md`,
 * `bench/results.svg` and (with `--json FILE`) the JSON document described
 * in bench/report.ts.
 *
 * ```text
 * npm run bench                                   # everything (8.7 min on the 2-vCPU dev VM before fan-out to 16 and the RTT check; ~10.5 min estimated with them)
 * npm run bench -- --quick                        # short counts (66 cluster starts dominate; 15 min on the VM at load average ~25)
 * npm run bench -- --json bench/results.json      # also write the JSON
 * options: --quick  --json FILE  --variants a,b  --repetitions N (≥ 3)
 *          --no-loss  --no-report (do not rewrite bench/RESULTS.md and results.svg)
 * ```
 *
 * Order: for each repetition, every variant runs its whole loopback set
 * (ping-pong, sparse ping-pong, the RTT check where the variant reports an
 * RTT, throughput, fan-out to 8 and its steady block, then the failure
 * scenario, which kills its target) in a fresh cluster of 8 downstreams,
 * then fan-out to 16 and its steady block in a fresh cluster of 16, the
 * variant order rotating each repetition so slow drift of a noisy machine
 * spreads over all of them.
 * Then the same for each kernel loss rate, every variant in a fresh set of
 * network namespaces. A case that throws is recorded as a failed run.
 */

import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, arch, platform, release, totalmem, version as osVersion } from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, VariantUnavailableError } from './harness/cluster.js'
import { NetnsNetwork, checkNetnsSupport, measureDropRate } from './harness/netns.js'
import type { NetnsHost } from './harness/netns.js'
import type { Network } from './harness/network.js'
import { loopback } from './harness/network.js'
import { failure, fanOut, formatResult, pingPong, pingPongCaseName, throughput } from './harness/scenarios.js'
import type { ScenarioResult } from './harness/scenarios.js'
import { Progress } from './harness/stats.js'
import type { Variant } from './harness/variant.js'
import { PROXY_ADDRESS } from './harness/variant.js'
import { variants as allVariants } from './variants/index.js'
import {
  SCHEMA, combineRuns, computeRatios, evaluateGoals, fanOutCaseName, fanOutSteadyCaseName, renderMarkdown, renderSvg,
} from './report.js'
import type { BenchReport, BenchSettings, CombinedResult, LossCalibration, MachineInfo, VariantEntry } from './report.js'

/** Where RESULTS.md and results.svg go: the source `bench/` directory (this file runs from dist/bench/). */
const REPORT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench')

interface Args {
  quick: boolean
  json: string | undefined
  variants: string[] | undefined
  repetitions: number | undefined
  loss: boolean
  report: boolean
}

function usage (message: string): never {
  process.stderr.write(`${message}\nusage: npm run bench -- [--quick] [--json FILE] [--variants a,b,...] [--repetitions N] [--no-loss] [--no-report]\n`)
  process.exit(2)
}

function parseArgs (argv: readonly string[]): Args {
  const a: Args = { quick: false, json: undefined, variants: undefined, repetitions: undefined, loss: true, report: true }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) usage(`${arg} needs a value`)
      return v
    }
    switch (arg) {
      case '--quick': a.quick = true; break
      case '--json': a.json = value(); break
      case '--variants': a.variants = value().split(',').map((s) => s.trim()).filter((s) => s !== ''); break
      case '--repetitions': {
        const n = Number(value())
        if (!Number.isInteger(n) || n < 3) usage(`--repetitions must be an integer ≥ 3 (medians of at least 3), got ${argv[i]}`)
        a.repetitions = n
        break
      }
      case '--no-loss': a.loss = false; break
      case '--no-report': a.report = false; break
      case '--help': case '-h': usage('')
      default: usage(`unknown option ${arg}`)
    }
  }
  return a
}

function settingsFor (a: Args): BenchSettings {
  const repetitions = a.repetitions ?? 3
  return a.quick
    ? {
        repetitions, downstreams: 8, pingPongCount: 500, pingPongWarmup: 100, sparseCount: 100, sparseGapMs: 10, rttCheckPings: 30, rttCheckOneWayPerPing: 3,
        throughputCount64: 20_000, throughputCount1k: 5000, fanOutRounds: 200, fanOutSteadyAfter: 800, fanOutTargets: [8, 16], failureRatePerSecond: 1000, failureDurationMs: 2500, failureKillAtMs: 500, failureRestartAfterMs: 500,
        lossPercents: a.loss ? [1, 5] : [], lossPingPongCount: 150,
      }
    : {
        repetitions, downstreams: 8, pingPongCount: 5000, pingPongWarmup: 1000, sparseCount: 300, sparseGapMs: 10, rttCheckPings: 100, rttCheckOneWayPerPing: 3,
        throughputCount64: 1_000_000, throughputCount1k: 250_000, fanOutRounds: 1000, fanOutSteadyAfter: 4000, fanOutTargets: [8, 16], failureRatePerSecond: 1000, failureDurationMs: 4000, failureKillAtMs: 1000, failureRestartAfterMs: 500,
        lossPercents: a.loss ? [1, 5] : [], lossPingPongCount: 300,
      }
}

/** The commit measured; `-dirty` when lib/ or bench/ differ from it (results would not be reproducible from the hash alone). */
function commitInfo (): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib', 'bench/harness', 'bench/variants', 'bench/run.ts', 'bench/report.ts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return dirty === '' ? head : `${head}-dirty`
  } catch {
    return 'unknown'
  }
}

function machineInfo (): MachineInfo {
  let nproc = availableParallelism()
  try { nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc } catch { /* keep availableParallelism */ }
  return {
    nproc,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    kernel: `${release()} ${osVersion()}`,
    platform: platform(),
    arch: arch(),
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
  }
}

/** One measured case on a running cluster. */
interface CaseSpec {
  readonly label: string
  readonly scenario: ScenarioResult['scenario']
  /** Runs only for variants that report an RTT of their own ({@link Variant.reportsRtt}). */
  readonly rttCheck?: boolean
  run (cluster: Cluster): Promise<ScenarioResult>
  /** What to record when the cluster could not start or the case threw. */
  failed (variant: Variant, network: Network, why: string): ScenarioResult
}

function failedPingPong (variant: Variant, network: Network, caseName: string, size: number, why: string): ScenarioResult {
  const nan = { count: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }
  return { scenario: 'ping-pong', variant: variant.name, network: network.name, case: caseName, ok: false, failure: why, repetitions: 1, size, rtt: nan, lost: 0, corrupt: 0 }
}

function pingCase (from: number, to: number, size: number, count: number, warmup: number, gapMs = 0, oneWayPerPing = 0): CaseSpec {
  const caseName = pingPongCaseName(from, to, size, gapMs, oneWayPerPing)
  return {
    label: `ping-pong ${caseName}`,
    scenario: 'ping-pong',
    ...(oneWayPerPing > 0 ? { rttCheck: true } : {}),
    run: (c) => pingPong(c, { from, to, size, count, warmup, gapMs, oneWayPerPing }),
    failed: (v, n, why) => failedPingPong(v, n, caseName, size, why),
  }
}

function throughputCase (size: number, count: number): CaseSpec {
  const caseName = `d1→d2 ${size}B`
  return {
    label: `throughput ${caseName}`,
    scenario: 'throughput',
    run: (c) => throughput(c, { from: 1, to: 2, size, count, warmup: Math.min(count, size <= 64 ? 20_000 : 5000) }),
    failed: (v, n, why) => ({
      scenario: 'throughput', variant: v.name, network: n.name, case: caseName, ok: false, failure: why, repetitions: 1, size, count,
      messagesPerSecond: NaN, bytesPerSecond: NaN, elapsedMs: NaN, received: 0, duplicates: 0, outOfOrder: 0, corrupt: 0,
      cpuUsPerMessage: NaN, cpuUsPerMessageByProcess: {},
    }),
  }
}

/**
 * Fan-out to `downstreams`: `rounds` measured after 100 unmeasured on a new
 * cluster, or with `steadyAfter`, measured once that many rounds have run
 * on the cluster (it follows the first case there, which ran 100 + `rounds`).
 */
function fanOutCase (rounds: number, downstreams: number, steadyAfter?: number): CaseSpec {
  const caseName = steadyAfter === undefined ? fanOutCaseName(downstreams) : fanOutSteadyCaseName(downstreams, steadyAfter)
  const warmup = steadyAfter === undefined ? Math.min(100, rounds) : Math.max(0, steadyAfter - rounds - Math.min(100, rounds))
  return {
    label: `fan-out ${caseName}`,
    scenario: 'fan-out',
    run: (c) => {
      if (c.downstreams !== downstreams) throw new RangeError(`fan-out to ${downstreams} needs a cluster of ${downstreams} downstreams, got ${c.downstreams}`)
      // The scenario names its case by size and targets; the steady block is a case of its own.
      return fanOut(c, { size: 64, rounds, warmup }).then((r) => steadyAfter === undefined ? r : { ...r, case: caseName })
    },
    failed: (v, n, why) => ({
      scenario: 'fan-out', variant: v.name, network: n.name, case: caseName, ok: false, failure: why, repetitions: 1, size: 64, targets: downstreams,
      allReceived: { count: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }, completedRounds: 0, rounds,
      cpuUsPerRound: NaN, cpuUsPerRoundByProcess: {},
    }),
  }
}

/** The fan-out cases of one cluster: the first block of a new cluster, then the steady one. */
function fanOutCases (s: BenchSettings, downstreams: number): CaseSpec[] {
  const first = fanOutCase(s.fanOutRounds, downstreams)
  return s.fanOutSteadyAfter === undefined ? [first] : [first, fanOutCase(s.fanOutRounds, downstreams, s.fanOutSteadyAfter)]
}

function failureCase (s: BenchSettings): CaseSpec {
  return {
    label: 'failure (kill mid-stream)',
    scenario: 'failure',
    run: (c) => failure(c, {
      ratePerSecond: s.failureRatePerSecond, durationMs: s.failureDurationMs, killAtMs: s.failureKillAtMs, restartAfterMs: s.failureRestartAfterMs,
    }),
    failed: (v, n, why) => ({
      scenario: 'failure', variant: v.name, network: n.name, case: `kill ${v.failureTarget ?? 'nothing'}, restart after ${s.failureRestartAfterMs}ms, d1→d2 ${s.failureRatePerSecond}/s`,
      ok: false, failure: why, repetitions: 1, target: v.failureTarget ?? null, sent: 0, received: 0, lost: 0, duplicates: 0, outOfOrder: 0, corrupt: 0,
      recoveryMs: null, afterRestartMs: null, longestGapMs: NaN, worstDelayMs: NaN, outageDetected: true, restartedAfterMs: s.failureRestartAfterMs,
    }),
  }
}

function describeError (err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err)
  return msg.split('\n')[0]!.slice(0, 300)
}

/** Rotate `xs` left by `k`. */
function rotate<T> (xs: readonly T[], k: number): T[] {
  const n = xs.length
  return n === 0 ? [] : xs.map((_, i) => xs[(i + k) % n]!)
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const settings = settingsFor(args)
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ')
  const startedAt = new Date()
  const machine = machineInfo()
  const commit = commitInfo()
  const skipped: Array<{ what: string, reason: string }> = []

  let chosen = allVariants
  if (args.variants !== undefined) {
    const unknown = args.variants.filter((n) => !allVariants.some((v) => v.name === n))
    if (unknown.length > 0) usage(`unknown variant(s) ${unknown.join(', ')}; known: ${allVariants.map((v) => v.name).join(', ')}`)
    chosen = allVariants.filter((v) => args.variants!.includes(v.name))
  }
  const entries: VariantEntry[] = []
  const runnable: Variant[] = []
  for (const v of chosen) {
    const reason = await v.checkAvailable()
    entries.push({ name: v.name, summary: v.summary, reliable: v.guarantees.reliable, ordered: v.guarantees.ordered, failureTarget: v.failureTarget ?? null, skipped: reason ?? null })
    if (reason === undefined) runnable.push(v)
    else {
      skipped.push({ what: v.name, reason })
      process.stderr.write(`SKIPPED ${v.name}: ${reason}\n`)
    }
  }
  let lossPercents = settings.lossPercents
  if (lossPercents.length > 0) {
    const reason = await checkNetnsSupport()
    if (reason !== undefined) {
      skipped.push({ what: 'kernel packet loss (1 % and 5 %)', reason })
      process.stderr.write(`SKIPPED kernel packet loss scenarios: ${reason}\n`)
      lossPercents = []
    }
  } else if (!args.loss) {
    skipped.push({ what: 'kernel packet loss', reason: '--no-loss given' })
  }

  const s = settings
  const loopbackCases: CaseSpec[] = [
    pingCase(PROXY_ADDRESS, 1, 64, s.pingPongCount, s.pingPongWarmup),
    pingCase(1, 2, 64, s.pingPongCount, s.pingPongWarmup),
    pingCase(PROXY_ADDRESS, 1, 1024, s.pingPongCount, s.pingPongWarmup),
    pingCase(1, 2, 1024, s.pingPongCount, s.pingPongWarmup),
    // Sparse: after the cases above, so every process has run the code thousands of times.
    pingCase(1, 2, 64, s.sparseCount, 20, s.sparseGapMs),
    // The RTT check: sparse one-way traffic and a ping-pong beside it; what the node reports vs what the ping-pong measures.
    pingCase(1, 2, 64, s.rttCheckPings, 10, s.sparseGapMs, s.rttCheckOneWayPerPing),
    throughputCase(64, s.throughputCount64),
    throughputCase(1024, s.throughputCount1k),
    ...s.fanOutTargets.filter((n) => n === s.downstreams).flatMap((n) => fanOutCases(s, n)),
    failureCase(s), // last: it kills (and restarts) the variant's single point of failure
  ]
  // Fan-out to another number of downstreams: a cluster of that size each (a broadcast reaches every node).
  const wideSets = s.fanOutTargets.filter((n) => n !== s.downstreams).map((n) => ({ downstreams: n, cases: fanOutCases(s, n) }))
  const lossCases: CaseSpec[] = [pingCase(1, 2, 64, s.lossPingPongCount, 20)]
  // A floor (sealed-dgram) runs the scenarios it lists; the RTT check needs a variant that reports an RTT.
  const casesFor = (v: Variant, cases: readonly CaseSpec[]): readonly CaseSpec[] =>
    cases.filter((c) => (v.scenarios === undefined || v.scenarios.includes(c.scenario)) && (c.rttCheck !== true || v.reportsRtt === true))
  const lossRunnable = runnable.filter((v) => v.scenarios === undefined)
  const loopbackSteps = runnable.reduce((n, v) => n + casesFor(v, loopbackCases).length + wideSets.reduce((m, w) => m + casesFor(v, w.cases).length, 0), 0)
  const steps = s.repetitions * (loopbackSteps + lossPercents.length * lossRunnable.length * lossCases.length) + lossPercents.length
  const progress = new Progress(steps)
  const runs = new Map<string, ScenarioResult[]>()
  const keyOrder: string[] = []
  const record = (r: ScenarioResult, rep: number): void => {
    const key = `${r.network}\u0000${r.scenario}\u0000${r.case}\u0000${r.variant}`
    let list = runs.get(key)
    if (list === undefined) { list = []; runs.set(key, list); keyOrder.push(key) }
    list.push(r)
    progress.clear()
    process.stdout.write(`#${rep + 1} ${formatResult(r)}\n`)
    progress.tick()
  }

  const runSet = async (variant: Variant, network: Network, cases: readonly CaseSpec[], downstreams: number, rep: number): Promise<void> => {
    progress.label(`rep ${rep + 1}/${s.repetitions} ${variant.name} [${network.name}]: starting ${1 + downstreams} nodes`)
    let cluster: Cluster | undefined
    try {
      cluster = await Cluster.start(variant, { downstreams, network, startTimeoutMs: 60_000, taskTimeoutMs: 180_000 })
    } catch (err) {
      const why = err instanceof VariantUnavailableError ? `skipped: ${err.reason}` : `cluster did not start: ${describeError(err)}`
      for (const c of cases) record(c.failed(variant, network, why), rep)
      return
    }
    try {
      for (const c of cases) {
        progress.label(`rep ${rep + 1}/${s.repetitions} ${variant.name} [${network.name}]: ${c.label}`)
        let r: ScenarioResult
        try { r = await c.run(cluster) } catch (err) { r = c.failed(variant, network, describeError(err)) }
        record(r, rep)
      }
    } finally {
      await cluster.close()
    }
  }

  // Phase 1: loopback, every scenario.
  for (let rep = 0; rep < s.repetitions; rep++) {
    for (const v of rotate(runnable, rep)) {
      await runSet(v, loopback, casesFor(v, loopbackCases), s.downstreams, rep)
      for (const w of wideSets) {
        const cases = casesFor(v, w.cases)
        if (cases.length > 0) await runSet(v, loopback, cases, w.downstreams, rep)
      }
    }
  }

  // Phase 2: kernel packet loss, each process in its own namespace.
  const lossCalibration: LossCalibration[] = []
  for (const loss of lossPercents) {
    progress.label(`checking the ${loss} % nftables loss rule`)
    const net = await NetnsNetwork.create({ lossPercent: loss })
    try {
      const a = await net.addHost('calibrate-a') as NetnsHost
      const b = await net.addHost('calibrate-b') as NetnsHost
      const d = await measureDropRate(net, a, b, { datagrams: 4000 })
      lossCalibration.push({ lossPercent: loss, sent: d.sent, received: d.received, measuredLossPercent: d.lossRate * 100, nftDropped: d.nftDropped })
      progress.clear()
      process.stdout.write(`loss rule ${loss} %: ${(d.lossRate * 100).toFixed(2)} % of ${d.sent} datagrams dropped (nft counter ${d.nftDropped})\n`)
    } catch (err) {
      progress.clear()
      process.stdout.write(`loss rule ${loss} %: calibration failed: ${describeError(err)}\n`)
    } finally {
      await net.close()
      progress.tick()
    }
    for (let rep = 0; rep < s.repetitions; rep++) {
      for (const v of rotate(lossRunnable, rep)) {
        const network = await NetnsNetwork.create({ lossPercent: loss })
        try {
          await runSet(v, network, lossCases, 2, rep)
        } finally {
          await network.close()
        }
      }
    }
  }
  progress.clear()

  const results: CombinedResult[] = keyOrder.map((k) => combineRuns(runs.get(k)!))
  const finishedAt = new Date()
  const report: BenchReport = {
    schema: SCHEMA,
    command,
    commit,
    quick: args.quick,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 100) / 10,
    machine,
    settings: { ...settings, lossPercents },
    variants: entries,
    skipped,
    lossCalibration,
    results,
    ratios: computeRatios(results),
    goals: evaluateGoals(results),
  }

  process.stdout.write('\nmedians of the repetitions:\n')
  for (const r of results) process.stdout.write(`${formatResult(r)}\n`)
  process.stdout.write('\ngoals (warpmesh):\n')
  for (const g of report.goals) {
    const floors = [
      ...(g.floorRatio === null ? [] : [`raw ${g.floorRatio.toFixed(2)}×`]),
      ...(g.sealedFloorRatio === null ? [] : [`sealed ${g.sealedFloorRatio.toFixed(2)}×`]),
    ]
    const floorText = floors.length === 0 ? '' : `; floors: ${floors.join(', ')}${g.belowFloor ? ' (target below the floor)' : ''}`
    const spread = g.runRatios.length === 0 ? '' : `; each repetition ${g.runRatios.map((x) => `${x.toFixed(2)}×`).join(' / ')}`
    process.stdout.write(`  ${g.met === null ? 'NOT MEASURED' : g.met ? 'met        ' : 'MISSED     '}  ${g.description}: ${g.target}; ${g.measured}${spread}${floorText}\n`)
  }
  if (args.json !== undefined) {
    mkdirSync(dirname(resolve(args.json)), { recursive: true })
    writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n')
    process.stdout.write(`\nwrote ${args.json}\n`)
  }
  if (args.report) {
    writeFileSync(resolve(REPORT_DIR, 'RESULTS.md'), renderMarkdown(report))
    writeFileSync(resolve(REPORT_DIR, 'results.svg'), renderSvg(report))
    process.stdout.write(`wrote ${resolve(REPORT_DIR, 'RESULTS.md')} and results.svg\n`)
  }
  const failed = results.filter((r) => !r.ok).length
  process.stdout.write(`\n${results.length} cases, ${failed} FAILED (see the status columns), ${skipped.length} skipped, ${report.durationSeconds} s\n`)
}

main().then(() => { process.exit(0) }, (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
