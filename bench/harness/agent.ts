/**
 * The bench agent: runs inside every node process, on top of the variant's
 * {@link BenchNode}, and executes the measured part of each scenario so that
 * the driver is never on the measured path. The driver sends it one task at
 * a time over IPC and gets one result back.
 *
 * Every node always answers pings and acknowledges broadcasts; everything
 * else is set up per run (`run` ids keep repetitions apart).
 */

import { setImmediate as yieldTurn } from 'node:timers/promises'
import type { BenchNode } from './variant.js'
import { Kind, MIN_PAYLOAD_BYTES, checkPayload, makePayload, payloadKind, payloadRun, payloadSeq } from './payload.js'

const hrtime = process.hrtime.bigint

/** Tasks the driver sends to an agent (one at a time per agent). */
export type Task =
  | PingPongTask
  | ExpectTask
  | BlastTask
  | FanOutTask
  | StreamTask
  | { readonly op: 'progress', readonly run: number }
  | { readonly op: 'collect', readonly run: number }
  | { readonly op: 'stats' }

/** Sequential request/response: send a ping, wait for its pong, repeat. */
export interface PingPongTask {
  readonly op: 'ping-pong'
  readonly run: number
  /** Address of the responder. */
  readonly peer: number
  /** Measured round trips. */
  readonly count: number
  /** Unmeasured round trips first. */
  readonly warmup: number
  /** Payload bytes, both ways. */
  readonly size: number
  /** A round trip not answered in this time counts as lost and the next one starts. */
  readonly timeoutMs: number
  /** Stop after this many lost round trips. */
  readonly maxLost: number
  /** Pause between a pong and the next ping, ms; 0: send it at once. */
  readonly gapMs: number
  /**
   * One-way Data messages (run `run`, sequence numbers from 0) sent to the
   * peer before each ping, `gapMs` apart, the ping `gapMs` after the last:
   * sparse one-way traffic beside the ping-pong (the RTT check). The peer
   * needs an `expect` task for `(warmup + count) × oneWayPerPing` of them.
   * Default 0.
   */
  readonly oneWayPerPing?: number
  /** After each measured pong, read the node's own RTT to the peer ({@link BenchNode.roundTripTime}). Default false. */
  readonly readRtt?: boolean
}

/** Prepare to receive `count` messages of one kind from one sender. */
export interface ExpectTask {
  readonly op: 'expect'
  readonly run: number
  readonly from: number
  readonly kind: number
  readonly count: number
  readonly size: number
  /** Keep the arrival time of every sequence number (for the failure and fan-out scenarios). */
  readonly recordTimes: boolean
  /** Answer every message with a {@link Kind.BroadcastAck} (fan-out pacing). */
  readonly ack: boolean
}

/** Send `count` Data messages to `to` as fast as the node accepts them. */
export interface BlastTask {
  readonly op: 'blast'
  readonly run: number
  readonly to: number
  readonly count: number
  readonly size: number
}

/** Broadcast `rounds` messages, each after every target acknowledged the previous one. */
export interface FanOutTask {
  readonly op: 'fan-out'
  readonly run: number
  readonly rounds: number
  readonly size: number
  readonly targets: readonly number[]
  /** A round not fully acknowledged in this time ends the task. */
  readonly timeoutMs: number
}

/** Send `count` Stream messages to `to` at a fixed rate, whatever happens. */
export interface StreamTask {
  readonly op: 'stream'
  readonly run: number
  readonly to: number
  readonly count: number
  readonly size: number
  readonly ratePerSecond: number
}

/** Result of a {@link PingPongTask}. */
export interface PingPongReport {
  /** Measured round-trip times in microseconds, in order. Excludes lost ones. */
  readonly rttUs: Float64Array
  /** Round trips that timed out (any phase, warmup included). */
  readonly lost: number
  /** Pongs whose bytes differed from the ping. */
  readonly corrupt: number
  /** Pongs for no outstanding ping (late after a timeout, or duplicated). */
  readonly unexpected: number
  /** Whether the run stopped early at `maxLost`. */
  readonly stopped: boolean
  /** One-way messages sent beside the pings ({@link PingPongTask.oneWayPerPing}). */
  readonly oneWaySent: number
  /** With `readRtt`: the node's reported RTT after each measured pong, in µs (NaN where it had none). */
  readonly reportedRttUs?: Float64Array
}

/** What a receiver saw; the result of `progress` and `collect`. */
export interface ReceiverReport {
  readonly expected: number
  /** Distinct valid messages. */
  readonly received: number
  readonly duplicates: number
  /** Messages that arrived after one with a higher sequence number. */
  readonly outOfOrder: number
  /** Wrong size, wrong bytes, or a sequence number outside the run. */
  readonly corrupt: number
  /** Messages of this run attributed to another sender. */
  readonly wrongSender: number
  /** hrtime (ns) of the first and last valid arrival; 0 when none. */
  readonly firstNs: bigint
  readonly lastNs: bigint
  /** Arrival hrtime (ns) per sequence number, 0 when never; only with `recordTimes`. */
  readonly arrivalNs?: BigInt64Array
}

/** Result of a {@link BlastTask}. */
export interface BlastReport {
  readonly startNs: bigint
  readonly endNs: bigint
  /** Times `send` returned false and the agent waited for `writable()`. */
  readonly waits: number
}

/** Result of a {@link FanOutTask}. */
export interface FanOutReport {
  /** hrtime (ns) of each round's broadcast call. */
  readonly sentNs: BigInt64Array
  /** Rounds fully acknowledged. */
  readonly completedRounds: number
  readonly timedOut: boolean
}

/** Result of a {@link StreamTask}. */
export interface StreamReport {
  readonly sentNs: BigInt64Array
  /** Times `send` returned false (the message was still handed over). */
  readonly backpressured: number
}

class Receiver {
  readonly task: ExpectTask
  readonly seen: Uint8Array
  readonly arrivalNs: BigInt64Array | undefined
  received = 0
  duplicates = 0
  outOfOrder = 0
  corrupt = 0
  wrongSender = 0
  highest = -1
  firstNs = 0n
  lastNs = 0n

  constructor (task: ExpectTask) {
    this.task = task
    this.seen = new Uint8Array(task.count)
    this.arrivalNs = task.recordTimes ? new BigInt64Array(task.count) : undefined
  }

  accept (from: number, payload: Buffer, now: bigint): boolean {
    const t = this.task
    if (from !== t.from) { this.wrongSender++; return false }
    const seq = payloadSeq(payload)
    if (seq >= t.count || !checkPayload(payload, t.size)) { this.corrupt++; return false }
    if (this.seen[seq] === 1) { this.duplicates++; return false }
    this.seen[seq] = 1
    if (seq < this.highest) this.outOfOrder++
    else this.highest = seq
    if (this.received === 0) this.firstNs = now
    this.lastNs = now
    this.received++
    if (this.arrivalNs !== undefined) this.arrivalNs[seq] = now
    return true
  }

  report (): ReceiverReport {
    return {
      expected: this.task.count,
      received: this.received,
      duplicates: this.duplicates,
      outOfOrder: this.outOfOrder,
      corrupt: this.corrupt,
      wrongSender: this.wrongSender,
      firstNs: this.firstNs,
      lastNs: this.lastNs,
      arrivalNs: this.arrivalNs,
    }
  }
}

interface Pinger {
  readonly task: PingPongTask
  readonly rttUs: Float64Array
  readonly reportedRttUs: Float64Array | undefined
  seq: number
  /** One-way messages still to send before the next ping, and the next one's sequence number. */
  oneWayLeft: number
  oneWaySeq: number
  sentNs: bigint
  sentAtMs: number
  measured: number
  lost: number
  corrupt: number
  unexpected: number
  done: (r: PingPongReport) => void
}

interface FanOut {
  readonly task: FanOutTask
  readonly sentNs: BigInt64Array
  readonly pending: Set<number>
  round: number
  sentAtMs: number
  done: (r: FanOutReport) => void
}

/** Executes {@link Task}s against one node. */
export class Agent {
  readonly #node: BenchNode
  readonly #receivers = new Map<number, Receiver>()
  #pinger: Pinger | undefined
  #fanOut: FanOut | undefined
  #watchdog: ReturnType<typeof setInterval> | undefined
  /** Messages that matched no task (late, stale run, unknown kind). */
  #unmatched = 0

  constructor (node: BenchNode) {
    this.#node = node
    node.setHandler(this.#handle)
  }

  /** Run one task and resolve with its result. */
  async run (task: Task): Promise<unknown> {
    switch (task.op) {
      case 'ping-pong': return await this.#pingPong(task)
      case 'expect':
        this.#receivers.set(task.run, new Receiver(task))
        return { ok: true }
      case 'progress': return this.#receiver(task.run).report()
      case 'collect': {
        const r = this.#receiver(task.run).report()
        this.#receivers.delete(task.run)
        return r
      }
      case 'blast': return await this.#blast(task)
      case 'fan-out': return await this.#fanOutRun(task)
      case 'stream': return await this.#stream(task)
      case 'stats': return { ...this.#node.stats(), agentUnmatched: this.#unmatched }
    }
  }

  #receiver (run: number): Receiver {
    const r = this.#receivers.get(run)
    if (r === undefined) throw new Error(`no receiver for run ${run}`)
    return r
  }

  // One handler for every message, installed once: no closure per message.
  readonly #handle = (from: number, payload: Buffer): void => {
    const kind = payloadKind(payload)
    switch (kind) {
      case Kind.Ping: {
        // Echo the exact bytes back with the kind changed; the pinger checks them.
        const reply = Buffer.allocUnsafe(payload.length)
        payload.copy(reply)
        reply[0] = Kind.Pong
        this.#node.send(from, reply)
        return
      }
      case Kind.Pong: this.#handlePong(from, payload); return
      case Kind.BroadcastAck: this.#handleAck(from, payload); return
      case Kind.Data:
      case Kind.Broadcast:
      case Kind.Stream: {
        const now = hrtime()
        const r = this.#receivers.get(payloadRun(payload))
        if (r === undefined || r.task.kind !== kind) { this.#unmatched++; return }
        if (r.accept(from, payload, now) && r.task.ack) {
          this.#node.send(from, makePayload(Kind.BroadcastAck, r.task.run, payloadSeq(payload), MIN_PAYLOAD_BYTES))
        }
        return
      }
      default: this.#unmatched++
    }
  }

  #startWatchdog (): void {
    if (this.#watchdog !== undefined) return
    this.#watchdog = setInterval(this.#checkTimeouts, 20)
  }

  #stopWatchdogIfIdle (): void {
    if (this.#pinger === undefined && this.#fanOut === undefined && this.#watchdog !== undefined) {
      clearInterval(this.#watchdog)
      this.#watchdog = undefined
    }
  }

  readonly #checkTimeouts = (): void => {
    const now = performance.now()
    const p = this.#pinger
    if (p !== undefined && now - p.sentAtMs > p.task.timeoutMs) {
      p.lost++
      this.#sendNextPing(p)
    }
    const f = this.#fanOut
    if (f !== undefined && now - f.sentAtMs > f.task.timeoutMs) {
      this.#finishFanOut(f, true)
    }
  }

  // ---- ping-pong

  #pingPong (task: PingPongTask): Promise<PingPongReport> {
    if (this.#pinger !== undefined) throw new Error('ping-pong already running')
    return new Promise((resolve) => {
      const p: Pinger = {
        task,
        rttUs: new Float64Array(task.count),
        reportedRttUs: task.readRtt === true ? new Float64Array(task.count) : undefined,
        seq: -1,
        oneWayLeft: 0,
        oneWaySeq: 0,
        sentNs: 0n,
        sentAtMs: 0,
        measured: 0,
        lost: 0,
        corrupt: 0,
        unexpected: 0,
        done: resolve,
      }
      this.#pinger = p
      this.#startWatchdog()
      this.#sendNextPing(p)
    })
  }

  #sendNextPing (p: Pinger): void {
    const t = p.task
    const stopped = p.lost >= t.maxLost
    if (stopped || p.seq + 1 >= t.warmup + t.count) {
      this.#pinger = undefined
      this.#stopWatchdogIfIdle()
      p.done({
        rttUs: p.rttUs.slice(0, p.measured), lost: p.lost, corrupt: p.corrupt, unexpected: p.unexpected, stopped, oneWaySent: p.oneWaySeq,
        ...(p.reportedRttUs === undefined ? {} : { reportedRttUs: p.reportedRttUs.slice(0, p.measured) }),
      })
      return
    }
    p.seq++
    p.oneWayLeft = t.oneWayPerPing ?? 0
    if (t.gapMs > 0 && (p.seq > 0 || p.oneWayLeft > 0)) {
      // Sparse traffic: every process idles between round trips. The
      // watchdog must not count the pause against the round trip.
      p.sentAtMs = Infinity
      setTimeout(this.#sendPing, t.gapMs, p)
    } else this.#sendPing(p)
  }

  readonly #sendPing = (p: Pinger): void => {
    const t = p.task
    if (p.oneWayLeft > 0) {
      p.oneWayLeft--
      this.#node.send(t.peer, makePayload(Kind.Data, t.run, p.oneWaySeq++, t.size))
      setTimeout(this.#sendPing, t.gapMs, p)
      return
    }
    const ping = makePayload(Kind.Ping, t.run, p.seq, t.size)
    p.sentAtMs = performance.now()
    p.sentNs = hrtime()
    this.#node.send(t.peer, ping)
  }

  #handlePong (from: number, payload: Buffer): void {
    const now = hrtime()
    const p = this.#pinger
    if (p === undefined || from !== p.task.peer || payloadRun(payload) !== p.task.run || payloadSeq(payload) !== p.seq) {
      if (p !== undefined) p.unexpected++
      else this.#unmatched++
      return
    }
    if (!checkPayload(payload, p.task.size)) {
      p.corrupt++
    } else if (p.seq >= p.task.warmup) {
      if (p.reportedRttUs !== undefined) p.reportedRttUs[p.measured] = (this.#node.roundTripTime?.(from) ?? NaN) * 1000
      p.rttUs[p.measured++] = Number(now - p.sentNs) / 1000
    }
    this.#sendNextPing(p)
  }

  // ---- one-way throughput

  async #blast (task: BlastTask): Promise<BlastReport> {
    const node = this.#node
    let waits = 0
    const startNs = hrtime()
    for (let seq = 0; seq < task.count;) {
      // Yield to the event loop now and then even without backpressure so
      // that variants flushing on setImmediate get to write.
      const end = Math.min(task.count, seq + 1024)
      let blocked = false
      while (seq < end) {
        if (!node.send(task.to, makePayload(Kind.Data, task.run, seq++, task.size))) { blocked = true; break }
      }
      if (blocked) { waits++; await node.writable() } else await yieldTurn()
    }
    return { startNs, endNs: hrtime(), waits }
  }

  // ---- fan-out

  #fanOutRun (task: FanOutTask): Promise<FanOutReport> {
    if (this.#fanOut !== undefined) throw new Error('fan-out already running')
    return new Promise((resolve) => {
      const f: FanOut = {
        task,
        sentNs: new BigInt64Array(task.rounds),
        pending: new Set(),
        round: -1,
        sentAtMs: 0,
        done: resolve,
      }
      this.#fanOut = f
      this.#startWatchdog()
      this.#broadcastNext(f)
    })
  }

  #broadcastNext (f: FanOut): void {
    if (f.round + 1 >= f.task.rounds) { this.#finishFanOut(f, false); return }
    f.round++
    for (const t of f.task.targets) f.pending.add(t)
    const msg = makePayload(Kind.Broadcast, f.task.run, f.round, f.task.size)
    f.sentAtMs = performance.now()
    f.sentNs[f.round] = hrtime()
    this.#node.broadcast(msg)
  }

  #finishFanOut (f: FanOut, timedOut: boolean): void {
    this.#fanOut = undefined
    this.#stopWatchdogIfIdle()
    f.done({ sentNs: f.sentNs, completedRounds: timedOut ? f.round : f.round + 1, timedOut })
  }

  #handleAck (from: number, payload: Buffer): void {
    const f = this.#fanOut
    if (f === undefined || payloadRun(payload) !== f.task.run || payloadSeq(payload) !== f.round) {
      this.#unmatched++
      return
    }
    f.pending.delete(from)
    if (f.pending.size === 0) this.#broadcastNext(f)
  }

  // ---- fixed-rate stream (failure scenario)

  #stream (task: StreamTask): Promise<StreamReport> {
    return new Promise((resolve) => {
      const sentNs = new BigInt64Array(task.count)
      let seq = 0
      let backpressured = 0
      const t0 = performance.now()
      const tick = (): void => {
        const due = Math.min(task.count, Math.floor((performance.now() - t0) * task.ratePerSecond / 1000) + 1)
        while (seq < due) {
          const msg = makePayload(Kind.Stream, task.run, seq, task.size)
          sentNs[seq] = hrtime()
          if (!this.#node.send(task.to, msg)) backpressured++
          seq++
        }
        if (seq >= task.count) {
          clearInterval(timer)
          resolve({ sentNs, backpressured })
        }
      }
      const timer = setInterval(tick, 1)
      tick()
    })
  }
}
