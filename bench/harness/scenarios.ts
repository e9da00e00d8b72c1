/**
 * Bench scenarios. Each runs its measured part inside the node processes
 * (see agent.ts), checks everything that arrived, and returns a plain,
 * JSON-friendly result: a run that lost, duplicated, reordered (where the
 * variant promises order) or corrupted a message has `ok: false` and a
 * `failure` sentence, and is never reported as fast.
 *
 * Programmatic use:
 *
 * ```ts
 * import { variant as star } from '../variants/tcp-star.js'
 * const cluster = await Cluster.start(star, { downstreams: 2 })
 * try {
 *   const r = await pingPong(cluster, { from: 1, to: 2, size: 64, count: 10_000 })
 *   console.log(formatResult(r))
 * } finally { await cluster.close() }
 * // or, one call that starts and stops its own cluster:
 * const r = await runScenario(star, { scenario: 'throughput', size: 1024, count: 100_000 })
 * ```
 *
 * Times come from `process.hrtime.bigint()` in the node processes
 * (CLOCK_MONOTONIC, shared by every process of the machine, namespaces
 * included), so one-way times can be computed across processes.
 */

import { setTimeout as sleep } from 'node:timers/promises'
import type { BlastReport, FanOutReport, PingPongReport, ReceiverReport, StreamReport } from './agent.js'
import { Cluster } from './cluster.js'
import { cpuPerUnit } from './cpu.js'
import type { ClusterOptions } from './cluster.js'
import { Kind, checkPayloadSize } from './payload.js'
import type { Summary } from './stats.js'
import { formatLine, formatMicros, formatRate, formatSummary, median, medianSummary, summarize } from './stats.js'
import type { Variant } from './variant.js'
import { PROXY_ADDRESS, nodeName } from './variant.js'

/** Fields every result has. */
export interface ResultBase {
  readonly scenario: 'ping-pong' | 'throughput' | 'fan-out' | 'failure'
  readonly variant: string
  /** {@link Network.name} the run used (`loopback`, `netns loss 5%`). */
  readonly network: string
  /** The case, readable: `d1↔d2 64B`. */
  readonly case: string
  /** Whether every message arrived exactly once, intact (and in order where promised). */
  readonly ok: boolean
  /** Why `ok` is false. */
  readonly failure?: string
  /** Repetitions combined into this result (1 for a single run). */
  readonly repetitions: number
}

/** Options of {@link pingPong}. */
export interface PingPongOptions {
  /** Pinger address. Default 1 (d1). */
  readonly from?: number
  /** Responder address. Default 2 (d2); 0 measures proxy↔downstream. */
  readonly to?: number
  /** Payload bytes each way. Default 64. */
  readonly size?: number
  /** Measured round trips, one at a time. Default 10 000. */
  readonly count?: number
  /** Unmeasured round trips before. Default `min(1000, count)`. */
  readonly warmup?: number
  /**
   * Per round trip, in ms; an unanswered ping counts as lost and the next
   * one starts. Default 5000 for reliable variants (TCP may back off for
   * seconds under loss), 250 for unreliable ones (a lost datagram never comes).
   */
  readonly timeoutMs?: number
  /** Stop the run (failed) after this many lost round trips, bounding its time. Default 10. */
  readonly maxLost?: number
  /**
   * Pause between a pong and the next ping, ms (sparse traffic: every
   * process idles, and wakes, for each round trip, as servers exchanging a
   * few messages a second do). Default 0: back to back. The case name says
   * `, N ms apart`.
   */
  readonly gapMs?: number
  /**
   * The RTT check: before each ping, this many one-way messages to the
   * responder, `gapMs` apart (needs `gapMs` > 0), checked there (count,
   * content, order); after each measured pong the pinger reads the RTT its
   * node reports for the responder ({@link BenchNode.roundTripTime}), which
   * the result sets beside the ping-pong's own ({@link PingPongResult.reportedRtt}).
   * Default 0: a plain ping-pong. The case name says `, N one-way between`.
   */
  readonly oneWayPerPing?: number
}

/** Result of {@link pingPong}. Times in µs. */
export interface PingPongResult extends ResultBase {
  readonly scenario: 'ping-pong'
  readonly size: number
  readonly rtt: Summary
  readonly lost: number
  readonly corrupt: number
  /** RTT check only ({@link PingPongOptions.oneWayPerPing}): one-way messages sent beside the pings, all checked at the responder. */
  readonly oneWay?: number
  /**
   * RTT check only: the RTT the pinger's node reported for the responder
   * after each measured pong, µs (readings where it had none are left out).
   */
  readonly reportedRtt?: Summary
}

/** Options of {@link throughput}. */
export interface ThroughputOptions {
  /** Sender address. Default 1. */
  readonly from?: number
  /** Receiver address. Default 2. */
  readonly to?: number
  /** Payload bytes. Default 64. */
  readonly size?: number
  /** Messages. Default 200 000. */
  readonly count?: number
  /**
   * Messages of an unmeasured (but checked) run first, so every process has
   * warmed up its JIT and buffers. Default `min(20 000, count)`; 0 skips it.
   */
  readonly warmup?: number
  /** Give up when the receiver makes no progress for this long after the sender finished, in ms. Default 2000. */
  readonly stallMs?: number
}

/** Result of {@link throughput}. */
export interface ThroughputResult extends ResultBase {
  readonly scenario: 'throughput'
  readonly size: number
  readonly count: number
  /** Messages per second, from the sender's first send to the receiver's last arrival. */
  readonly messagesPerSecond: number
  /** Payload bytes per second (same interval). */
  readonly bytesPerSecond: number
  readonly elapsedMs: number
  readonly received: number
  readonly duplicates: number
  readonly outOfOrder: number
  readonly corrupt: number
  /**
   * CPU µs per message of every process of the cluster while the measured
   * messages flowed (sender, receiver, any relay or server), summed; NaN
   * where /proc is not available. Clock-tick resolution (10 ms), so
   * meaningful for runs of a second or more.
   */
  readonly cpuUsPerMessage: number
  /** The same per process (node name or service id). */
  readonly cpuUsPerMessageByProcess: Readonly<Record<string, number>>
}

/** Options of {@link fanOut}. */
export interface FanOutOptions {
  /** Payload bytes. Default 64. */
  readonly size?: number
  /** Broadcasts, each after all downstreams acknowledged the previous one. Default 2000. */
  readonly rounds?: number
  /** Unmeasured (but checked) rounds first. Default `min(200, rounds)`; 0 skips them. */
  readonly warmup?: number
  /** Per round, in ms. Default 5000. */
  readonly timeoutMs?: number
}

/** Result of {@link fanOut}: time from the proxy's broadcast call until the last downstream has it, in µs. */
export interface FanOutResult extends ResultBase {
  readonly scenario: 'fan-out'
  readonly size: number
  readonly targets: number
  readonly allReceived: Summary
  readonly completedRounds: number
  readonly rounds: number
  /** CPU µs per completed round of every process of the cluster, summed (see {@link ThroughputResult.cpuUsPerMessage}). */
  readonly cpuUsPerRound: number
  /** The same per process. */
  readonly cpuUsPerRoundByProcess: Readonly<Record<string, number>>
}

/** Options of {@link failure}. d1 streams to d2; the cluster needs at least 2 downstreams. */
export interface FailureOptions {
  /** d1→d2 messages per second. Default 1000. */
  readonly ratePerSecond?: number
  /**
   * How long d1 streams, in ms. Default 4000. With a restart, leave room
   * after it for the process to start and the clients to reconnect (their
   * backoff reaches 1 s): recovery is seen only while traffic still flows.
   */
  readonly durationMs?: number
  /** When the failure target is SIGKILLed, in ms after the stream starts. Default 1000. */
  readonly killAtMs?: number
  /**
   * Restart the killed process this long after the kill, in ms, as a
   * supervisor would; `null` never restarts it. Default `null`.
   */
  readonly restartAfterMs?: number | null
  /** After the stream ends, wait at most this long for stragglers, in ms. Default 1500. */
  readonly drainMs?: number
  /**
   * A message delayed longer than this (send to arrival, in ms) counts as an
   * interruption. Default 200: far above scheduling noise on a busy VM.
   */
  readonly outageThresholdMs?: number
  /** Payload bytes. Default 64. */
  readonly size?: number
}

/** Result of {@link failure}. */
export interface FailureResult extends ResultBase {
  readonly scenario: 'failure'
  /** What was killed (`proxy`, `hub`, ...), or none when not applicable. */
  readonly target: string | null
  /** Set when the scenario does not apply to the variant. */
  readonly notApplicable?: string
  readonly sent: number
  readonly received: number
  /** Messages d2 never got. */
  readonly lost: number
  readonly duplicates: number
  readonly outOfOrder: number
  readonly corrupt: number
  /**
   * ms from the kill until d2 first received a message that d1 sent after
   * the driver saw the killed process exit (before that, a dying relay may
   * still forward); `null` when traffic never flowed again within the run.
   */
  readonly recoveryMs: number | null
  /**
   * ms from the restarted process being ready until traffic flowed again
   * (the clients' reconnection); `null` without a restart or a recovery.
   */
  readonly afterRestartMs: number | null
  /** ms from the kill until the restarted process was ready; `null` without a restart. */
  readonly restartReadyMs?: number | null
  /** Longest time without any arrival at d2 after the kill, in ms (to the end of the run if never recovered). */
  readonly longestGapMs: number
  /** Largest send-to-arrival time of any message that arrived, in ms. */
  readonly worstDelayMs: number
  /** Whether the run saw any interruption: loss, no recovery, or a message delayed over `outageThresholdMs`. */
  readonly outageDetected: boolean
  readonly restartedAfterMs: number | null
}

/** Any scenario result. */
export type ScenarioResult = PingPongResult | ThroughputResult | FanOutResult | FailureResult

function pair (from: number, to: number, arrow: string, size: number): string {
  return `${nodeName(from)}${arrow}${nodeName(to)} ${size}B`
}

/**
 * The case name of a {@link pingPong} result: `d1↔d2 64B`, `d1↔d2 64B, 10 ms
 * apart` with a gap, `d1↔d2 64B, 10 ms apart, 3 one-way between` for the RTT check.
 */
export function pingPongCaseName (from: number, to: number, size: number, gapMs = 0, oneWayPerPing = 0): string {
  return `${pair(from, to, '↔', size)}${gapMs > 0 ? `, ${gapMs} ms apart` : ''}${oneWayPerPing > 0 ? `, ${oneWayPerPing} one-way between` : ''}`
}

function checkAddress (cluster: Cluster, address: number, option: string): void {
  if (!Number.isInteger(address) || address < 0 || address > cluster.downstreams) {
    throw new RangeError(`${option} must be a node address from 0 to ${cluster.downstreams}, got ${address}`)
  }
}

function checkPositive (value: number, option: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${option} must be a positive integer, got ${value}`)
}

/** Sequential ping-pong round trips between two nodes. */
export async function pingPong (cluster: Cluster, options: PingPongOptions = {}): Promise<PingPongResult> {
  const from = options.from ?? 1
  const to = options.to ?? 2
  const size = options.size ?? 64
  const count = options.count ?? 10_000
  const warmup = options.warmup ?? Math.min(1000, count)
  checkAddress(cluster, from, 'from')
  checkAddress(cluster, to, 'to')
  if (from === to) throw new RangeError('from and to must differ')
  checkPayloadSize(size)
  checkPositive(count, 'count')
  const gapMs = options.gapMs ?? 0
  if (!(Number.isFinite(gapMs) && gapMs >= 0)) throw new RangeError(`gapMs must be a number ≥ 0, got ${gapMs}`)
  const oneWayPerPing = options.oneWayPerPing ?? 0
  if (!Number.isInteger(oneWayPerPing) || oneWayPerPing < 0) throw new RangeError(`oneWayPerPing must be an integer ≥ 0, got ${oneWayPerPing}`)
  if (oneWayPerPing > 0 && gapMs === 0) throw new RangeError('oneWayPerPing needs gapMs > 0 (sparse one-way traffic)')
  const run = cluster.nextRun()
  const oneWayCount = oneWayPerPing * (warmup + count)
  if (oneWayCount > 0) {
    await cluster.task(to, { op: 'expect', run, from, kind: Kind.Data, count: oneWayCount, size, recordTimes: false, ack: false })
  }
  const report = await cluster.task<PingPongReport>(from, {
    op: 'ping-pong',
    run,
    peer: to,
    count,
    warmup,
    size,
    timeoutMs: options.timeoutMs ?? (cluster.variant.guarantees.reliable ? 5000 : 250),
    maxLost: options.maxLost ?? 10,
    gapMs,
    oneWayPerPing,
    readRtt: oneWayCount > 0,
  })
  const problems: string[] = []
  if (report.lost > 0) problems.push(`${report.lost} round trips lost${report.stopped ? ' (run stopped)' : ''}`)
  if (report.corrupt > 0) problems.push(`${report.corrupt} corrupt pongs`)
  if (problems.length === 0 && report.rttUs.length !== count) {
    problems.push(`measured ${report.rttUs.length} of ${count} round trips`)
  }
  let check: Pick<PingPongResult, 'oneWay' | 'reportedRtt'> = {}
  if (oneWayCount > 0) {
    // Every one-way message must have arrived, intact and in order, before the last pong.
    const r = await cluster.task<ReceiverReport>(to, { op: 'collect', run })
    if (!report.stopped) {
      if (report.oneWaySent !== oneWayCount) problems.push(`sent ${report.oneWaySent} of ${oneWayCount} one-way messages`)
      for (const p of receiverProblems(r, cluster.variant.guarantees.ordered)) problems.push(`one-way: ${p}`)
    }
    const readings = Array.from(report.reportedRttUs ?? []).filter((x) => Number.isFinite(x) && x > 0)
    if (problems.length === 0 && readings.length === 0) problems.push('the node reported no RTT')
    check = { oneWay: report.oneWaySent, reportedRtt: summarize(Float64Array.from(readings)) }
  }
  return {
    scenario: 'ping-pong',
    variant: cluster.variant.name,
    network: cluster.network.name,
    case: pingPongCaseName(from, to, size, gapMs, oneWayPerPing),
    ok: problems.length === 0,
    ...(problems.length > 0 ? { failure: problems.join(', ') } : {}),
    repetitions: 1,
    size,
    rtt: summarize(report.rttUs),
    lost: report.lost,
    corrupt: report.corrupt,
    ...check,
  }
}

function receiverProblems (r: ReceiverReport, ordered: boolean): string[] {
  const problems: string[] = []
  if (r.received < r.expected) problems.push(`lost ${r.expected - r.received} of ${r.expected}`)
  if (r.duplicates > 0) problems.push(`${r.duplicates} duplicates`)
  if (r.corrupt > 0) problems.push(`${r.corrupt} corrupt`)
  if (r.wrongSender > 0) problems.push(`${r.wrongSender} from the wrong sender`)
  if (r.outOfOrder > 0 && ordered) problems.push(`${r.outOfOrder} out of order`)
  return problems
}

/** Poll a receiver until it has everything, or it stalls for `stallMs` after `senderDone`. */
async function awaitReceiver (cluster: Cluster, address: number, run: number, expected: number, senderDone: Promise<unknown>, stallMs: number): Promise<ReceiverReport> {
  let done = false
  senderDone.then(() => { done = true }, () => { done = true })
  let last = -1
  let lastChange = performance.now()
  for (;;) {
    const p = await cluster.task<ReceiverReport>(address, { op: 'progress', run })
    const seen = p.received + p.duplicates + p.corrupt + p.wrongSender
    if (p.received >= expected) break
    if (seen !== last) { last = seen; lastChange = performance.now() }
    if (done && performance.now() - lastChange > stallMs) break
    await sleep(done ? 20 : 100)
  }
  return await cluster.task<ReceiverReport>(address, { op: 'collect', run })
}

async function flood (cluster: Cluster, from: number, to: number, size: number, count: number, stallMs: number): Promise<{ report: ReceiverReport, sent: BlastReport }> {
  const run = cluster.nextRun()
  await cluster.task(to, { op: 'expect', run, from, kind: Kind.Data, count, size, recordTimes: false, ack: false })
  const blast = cluster.task<BlastReport>(from, { op: 'blast', run, to, count, size })
  blast.catch(() => {})
  const report = await awaitReceiver(cluster, to, run, count, blast, stallMs)
  return { report, sent: await blast }
}

/** One-way flood of `count` messages; the receiver checks count, content and order. */
export async function throughput (cluster: Cluster, options: ThroughputOptions = {}): Promise<ThroughputResult> {
  const from = options.from ?? 1
  const to = options.to ?? 2
  const size = options.size ?? 64
  const count = options.count ?? 200_000
  checkAddress(cluster, from, 'from')
  checkAddress(cluster, to, 'to')
  if (from === to) throw new RangeError('from and to must differ')
  checkPayloadSize(size)
  checkPositive(count, 'count')
  const stallMs = options.stallMs ?? 2000
  const warmup = options.warmup ?? Math.min(20_000, count)
  const problems: string[] = []
  if (warmup > 0) {
    const w = await flood(cluster, from, to, size, warmup, stallMs)
    for (const p of receiverProblems(w.report, cluster.variant.guarantees.ordered)) problems.push(`warmup: ${p}`)
  }
  const cpuBefore = cluster.cpuSnapshot()
  const { report: r, sent } = await flood(cluster, from, to, size, count, stallMs)
  const cpu = cpuPerUnit(cpuBefore, cluster.cpuSnapshot(), count)
  problems.push(...receiverProblems(r, cluster.variant.guarantees.ordered))
  const elapsedNs = r.received > 0 ? Number(r.lastNs - sent.startNs) : NaN
  const rate = problems.length === 0 ? count / (elapsedNs / 1e9) : NaN
  return {
    scenario: 'throughput',
    variant: cluster.variant.name,
    network: cluster.network.name,
    case: pair(from, to, '→', size),
    ok: problems.length === 0,
    ...(problems.length > 0 ? { failure: problems.join(', ') } : {}),
    repetitions: 1,
    size,
    count,
    messagesPerSecond: rate,
    bytesPerSecond: rate * size,
    elapsedMs: elapsedNs / 1e6,
    received: r.received,
    duplicates: r.duplicates,
    outOfOrder: r.outOfOrder,
    corrupt: r.corrupt,
    cpuUsPerMessage: cpu.total,
    cpuUsPerMessageByProcess: cpu.byProcess,
  }
}

async function broadcastRounds (cluster: Cluster, targets: readonly number[], size: number, rounds: number, timeoutMs: number): Promise<{ sent: FanOutReport, reports: ReceiverReport[], problems: string[] }> {
  const run = cluster.nextRun()
  await Promise.all(targets.map((t) => cluster.task(t, {
    op: 'expect', run, from: PROXY_ADDRESS, kind: Kind.Broadcast, count: rounds, size, recordTimes: true, ack: true,
  })))
  const sent = await cluster.task<FanOutReport>(PROXY_ADDRESS, { op: 'fan-out', run, rounds, size, targets, timeoutMs })
  const reports = await Promise.all(targets.map((t) => cluster.task<ReceiverReport>(t, { op: 'collect', run })))
  const problems: string[] = []
  if (sent.timedOut) problems.push(`round ${sent.completedRounds} not acknowledged by every downstream within ${timeoutMs} ms`)
  reports.forEach((r, i) => {
    for (const p of receiverProblems(r, cluster.variant.guarantees.ordered)) problems.push(`${nodeName(targets[i]!)}: ${p}`)
  })
  return { sent, reports, problems }
}

/** The proxy broadcasts to every downstream; per round, time until the last one has it. */
export async function fanOut (cluster: Cluster, options: FanOutOptions = {}): Promise<FanOutResult> {
  const size = options.size ?? 64
  const rounds = options.rounds ?? 2000
  checkPayloadSize(size)
  checkPositive(rounds, 'rounds')
  const timeoutMs = options.timeoutMs ?? 5000
  const warmup = options.warmup ?? Math.min(200, rounds)
  const targets = Array.from({ length: cluster.downstreams }, (_, i) => i + 1)
  const problems: string[] = []
  if (warmup > 0) {
    const w = await broadcastRounds(cluster, targets, size, warmup, timeoutMs)
    problems.push(...w.problems.map((p) => `warmup: ${p}`))
  }
  const cpuBefore = cluster.cpuSnapshot()
  const { sent, reports, problems: measured } = await broadcastRounds(cluster, targets, size, rounds, timeoutMs)
  const cpu = cpuPerUnit(cpuBefore, cluster.cpuSnapshot(), sent.completedRounds)
  problems.push(...measured)
  const times = new Float64Array(sent.completedRounds)
  for (let round = 0; round < sent.completedRounds; round++) {
    let last = 0n
    for (const r of reports) {
      const t = r.arrivalNs![round]!
      if (t > last) last = t
    }
    times[round] = Number(last - sent.sentNs[round]!) / 1000
  }
  return {
    scenario: 'fan-out',
    variant: cluster.variant.name,
    network: cluster.network.name,
    case: `proxy→${targets.length} downstreams ${size}B`,
    ok: problems.length === 0,
    ...(problems.length > 0 ? { failure: problems.join(', ') } : {}),
    repetitions: 1,
    size,
    targets: targets.length,
    allReceived: summarize(times),
    completedRounds: sent.completedRounds,
    rounds,
    cpuUsPerRound: cpu.total,
    cpuUsPerRoundByProcess: cpu.byProcess,
  }
}

/**
 * d1 streams to d2 at a fixed rate while the variant's single point of
 * failure is SIGKILLed (and optionally restarted): how many messages were
 * lost and how long until traffic flowed again. A variant without a failure
 * target gets a "not applicable" result with `ok: true`.
 *
 * The target stays dead unless `restartAfterMs` is set; a cluster can run
 * this again only after a restart (or the run starts with the target down).
 */
export async function failure (cluster: Cluster, options: FailureOptions = {}): Promise<FailureResult> {
  const variant = cluster.variant
  const rate = options.ratePerSecond ?? 1000
  const durationMs = options.durationMs ?? 4000
  const killAtMs = options.killAtMs ?? 1000
  const restartAfterMs = options.restartAfterMs ?? null
  const size = options.size ?? 64
  checkPayloadSize(size)
  checkPositive(rate, 'ratePerSecond')
  checkPositive(durationMs, 'durationMs')
  if (!(killAtMs >= 0 && killAtMs < durationMs)) throw new RangeError(`killAtMs must be from 0 to durationMs, got ${killAtMs}`)
  if (cluster.downstreams < 2) throw new RangeError('the failure scenario needs at least 2 downstreams')
  const count = Math.ceil(rate * durationMs / 1000)
  const base = {
    scenario: 'failure' as const,
    variant: variant.name,
    network: cluster.network.name,
    case: `kill ${variant.failureTarget ?? 'nothing'}${restartAfterMs === null ? '' : `, restart after ${restartAfterMs}ms`}, d1→d2 ${rate}/s`,
    repetitions: 1,
    target: variant.failureTarget ?? null,
    restartedAfterMs: restartAfterMs,
  }
  if (variant.failureTarget === undefined) {
    return {
      ...base, ok: true, notApplicable: 'no single process to kill', sent: 0, received: 0, lost: 0, duplicates: 0,
      outOfOrder: 0, corrupt: 0, recoveryMs: 0, afterRestartMs: null, restartReadyMs: null, longestGapMs: 0, worstDelayMs: 0, outageDetected: false,
    }
  }
  const target = variant.failureTarget
  const run = cluster.nextRun()
  await cluster.task(2, { op: 'expect', run, from: 1, kind: Kind.Stream, count, size, recordTimes: true, ack: false })
  const stream = cluster.task<StreamReport>(1, { op: 'stream', run, to: 2, count, size, ratePerSecond: rate })
  stream.catch(() => {})
  await sleep(killAtMs)
  const kill = cluster.kill(target)
  const killNs = kill.signalledNs
  // Traffic "flows again" only with messages sent after the target is gone:
  // on a loaded machine a killed relay can still forward what d1 sends in the
  // moment after the signal.
  const goneNs = await Promise.race([kill.exited, sleep(2000).then(() => process.hrtime.bigint())])
  let readyNs = 0n
  if (restartAfterMs !== null) {
    await sleep(restartAfterMs)
    await cluster.restart(target)
    readyNs = process.hrtime.bigint()
  }
  const sent = await stream
  const r = await awaitReceiver(cluster, 2, run, count, Promise.resolve(), options.drainMs ?? 1500)
  const endNs = process.hrtime.bigint()
  const arrivals = r.arrivalNs!
  // First arrival of a message sent after the target was gone.
  let recoveredNs = 0n
  for (let seq = 0; seq < count; seq++) {
    if (sent.sentNs[seq]! <= goneNs) continue
    const a = arrivals[seq]!
    if (a !== 0n && (recoveredNs === 0n || a < recoveredNs)) recoveredNs = a
  }
  let worstDelayNs = 0n
  for (let seq = 0; seq < count; seq++) {
    const a = arrivals[seq]!
    if (a !== 0n && a - sent.sentNs[seq]! > worstDelayNs) worstDelayNs = a - sent.sentNs[seq]!
  }
  // Longest silence at d2 after the kill (arrival times in order).
  const after = Array.from(arrivals).filter((a) => a > killNs).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
  let gapNs = 0n
  let prev = killNs
  for (const a of after) { if (a - prev > gapNs) gapNs = a - prev; prev = a }
  if (recoveredNs === 0n && endNs - prev > gapNs) gapNs = endNs - prev
  const lost = count - r.received
  const problems = receiverProblems(r, variant.guarantees.ordered)
  const recoveryMs = recoveredNs === 0n ? null : Number(recoveredNs - killNs) / 1e6
  if (recoveryMs === null) problems.push('traffic never flowed again')
  const worstDelayMs = Number(worstDelayNs) / 1e6
  return {
    ...base,
    ok: problems.length === 0,
    ...(problems.length > 0 ? { failure: problems.join(', ') } : {}),
    sent: count,
    received: r.received,
    lost,
    duplicates: r.duplicates,
    outOfOrder: r.outOfOrder,
    corrupt: r.corrupt,
    recoveryMs,
    afterRestartMs: readyNs === 0n || recoveredNs === 0n ? null : Number(recoveredNs - readyNs) / 1e6,
    restartReadyMs: readyNs === 0n ? null : Number(readyNs - killNs) / 1e6,
    longestGapMs: Number(gapNs) / 1e6,
    worstDelayMs,
    outageDetected: lost > 0 || recoveryMs === null || worstDelayMs > (options.outageThresholdMs ?? 200),
  }
}

/** A scenario and its options, for {@link runScenario}. */
export type ScenarioSpec =
  | ({ readonly scenario: 'ping-pong' } & PingPongOptions)
  | ({ readonly scenario: 'throughput' } & ThroughputOptions)
  | ({ readonly scenario: 'fan-out' } & FanOutOptions)
  | ({ readonly scenario: 'failure' } & FailureOptions)

/**
 * Start a cluster for `variant` (8 downstreams for fan-out, otherwise as
 * many as the scenario's addresses need, at least 2), run one scenario, stop
 * the cluster.
 * Throws {@link VariantUnavailableError} when the variant cannot run here.
 */
export async function runScenario (variant: Variant, spec: ScenarioSpec, options: ClusterOptions = {}): Promise<ScenarioResult> {
  const needed = spec.scenario === 'fan-out'
    ? 8
    : spec.scenario === 'failure' ? 2 : Math.max(2, spec.from ?? 1, spec.to ?? 2)
  const cluster = await Cluster.start(variant, { downstreams: needed, ...options })
  try {
    switch (spec.scenario) {
      case 'ping-pong': return await pingPong(cluster, spec)
      case 'throughput': return await throughput(cluster, spec)
      case 'fan-out': return await fanOut(cluster, spec)
      case 'failure': return await failure(cluster, spec)
    }
  } finally {
    await cluster.close()
  }
}

/** Run `fn` `times` times (sequentially) and return every result. */
export async function repeat<T> (times: number, fn: (repetition: number) => Promise<T>): Promise<T[]> {
  checkPositive(times, 'times')
  const out: T[] = []
  for (let i = 0; i < times; i++) out.push(await fn(i))
  return out
}

/**
 * Combine repetitions of one case into one result: medians of the
 * figures, `ok` only if every repetition was ok (failures joined).
 */
export function combineRepetitions<T extends PingPongResult | ThroughputResult | FanOutResult> (results: readonly T[]): T {
  if (results.length === 0) throw new RangeError('no results to combine')
  const first = results[0]!
  const failures = results.filter((r) => !r.ok).map((r, i) => `#${i + 1}: ${r.failure ?? 'failed'}`)
  const common = {
    ok: failures.length === 0,
    ...(failures.length > 0 ? { failure: failures.join('; ') } : { failure: undefined }),
    repetitions: results.reduce((a, r) => a + r.repetitions, 0),
  }
  switch (first.scenario) {
    case 'ping-pong': {
      const rs = results as readonly PingPongResult[]
      return { ...first, ...common, rtt: medianSummary(rs.map((r) => r.rtt)), lost: rs.reduce((a, r) => a + r.lost, 0), corrupt: rs.reduce((a, r) => a + r.corrupt, 0) } as T
    }
    case 'throughput': {
      const rs = results as readonly ThroughputResult[]
      const rate = common.ok ? median(rs.map((r) => r.messagesPerSecond)) : NaN
      return { ...first, ...common, messagesPerSecond: rate, bytesPerSecond: rate * first.size, elapsedMs: median(rs.map((r) => r.elapsedMs)) } as T
    }
    case 'fan-out': {
      const rs = results as readonly FanOutResult[]
      return { ...first, ...common, allReceived: medianSummary(rs.map((r) => r.allReceived)) } as T
    }
  }
}

/** One readable line for a result. */
export function formatResult (r: ScenarioResult): string {
  const label = `${r.variant.padEnd(10)} ${r.scenario.padEnd(10)} ${r.case}`
  const parts: string[] = []
  switch (r.scenario) {
    case 'ping-pong':
      parts.push(formatSummary(r.rtt))
      if (r.reportedRtt !== undefined) parts.push(`node reports p50 ${formatMicros(r.reportedRtt.p50)} (${(r.reportedRtt.p50 / r.rtt.p50).toFixed(2)}× the ping-pong p50)`)
      break
    case 'fan-out':
      parts.push(`all received ${formatSummary(r.allReceived)}`)
      if (Number.isFinite(r.cpuUsPerRound)) parts.push(`CPU ${r.cpuUsPerRound.toFixed(0)}µs per round`)
      break
    case 'throughput':
      if (r.ok) parts.push(formatRate(r.messagesPerSecond), `${(r.bytesPerSecond / 1e6).toFixed(1)} MB/s`, `(${r.count} msgs in ${r.elapsedMs.toFixed(0)}ms)`)
      break
    case 'failure':
      if (r.notApplicable !== undefined) { parts.push(`n/a: ${r.notApplicable}`); break }
      parts.push(
        `lost ${r.lost}/${r.sent}`,
        `recovered ${r.recoveryMs === null ? 'never' : `after ${formatMicros(r.recoveryMs * 1000)}`}`,
        `longest gap ${formatMicros(r.longestGapMs * 1000)}`,
        `worst delay ${formatMicros(r.worstDelayMs * 1000)}`,
      )
      break
  }
  if (r.network !== 'loopback') parts.push(`[${r.network}]`)
  if (!r.ok) parts.push(`FAILED: ${r.failure ?? 'unknown'}`)
  return formatLine(label, parts, 48)
}
