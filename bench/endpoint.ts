/**
 * The endpoint benchmark (issue 2 §5, issue 4 "Benchmark"): side by side in
 * one run, each case in two fresh processes on 127.0.0.1.
 *
 *   npm run bench:endpoint -- [--quick] [--duration S (60)] [--json FILE]
 *                              [--only rtt,throughput,codec,heap] [--cpu-prof DIR]
 *                              [--rounds N (5; 3 with --quick)]
 *
 * `--cpu-prof DIR` runs every worker process with `node --cpu-prof` and
 * writes its profile into DIR (for finding the hot spots in lib/).
 *
 * - ping-pong RTT p50/p99/p99.9: raw node:dgram, raw node:dgram with every
 *   datagram sealed and opened by a PacketProtector (lib/security/aead.ts,
 *   sealed into a new buffer and opened in place as the endpoint does), and the
 *   endpoint's reliable-ordered channel unprotected and protected (network
 *   key), 64 B and 1 KiB;
 * - one-way throughput of 64 B and 1 KiB reliable-ordered messages,
 *   unprotected and protected; the sender batches (send() until it returns
 *   false, then waitDrain()), the receiver checks every message's sequence,
 *   length and content marks: a run with a lost, reordered or corrupt message
 *   is FAILED, never reported as a rate; CPU time of sender + receiver per
 *   message;
 * - the floors of the two protection goals, measured in the same run: what
 *   warpmesh's AEAD (ChaCha20-Poly1305, libsodium) alone costs on this machine, on the goals' scale
 *   (protected ÷ unprotected). RTT: the p50 µs raw+AEAD takes over raw,
 *   added to the unprotected endpoint's p50. CPU: after each round's
 *   unprotected/protected pair, one seal + one open (CPU time over a ≥ 0.3 s
 *   loop, here in the driver) of a payload of the protected run's average
 *   size, for its packets in both directions (data from the sender, ACKs
 *   from the receiver), per message, added to that round's unprotected CPU
 *   per message. No protocol using this AEAD can add
 *   less; a goal whose target is below its floor says so in its verdict (a
 *   floor never makes a goal met);
 * - codec ops/s: protobufjs encode + the endpoint's decoder (lib/wire/decode.ts)
 *   of a DATA packet;
 * - heap of both processes after a full GC, before and after a sustained
 *   protected 64-B stream of `--duration` seconds.
 *
 * The RTT and throughput cases run in `--rounds` rounds (at least 3), each
 * round running every mode once in a rotating order, so a noisy machine's
 * drift spreads over all of them; a case's figures are the medians over
 * its rounds (each percentile separately) and a case fails if any round
 * failed.
 *
 * Prints a table with ratios and the goals, and writes `--json FILE`:
 *
 *   { node, quick, durationS, rounds, date,
 *     rtt: RttResult[],              // mode 'raw' | 'raw-aead' | 'unprotected' | 'protected';
 *                                    // raw-aead: openFailures (ping + echo)
 *     throughput: ThroughputResult[],// senderPackets, senderPayloadBytes, receiverPackets,
 *                                    // receiverPayloadBytes: session counters over the measured
 *                                    // flood (payload = the frames a protected run seals);
 *                                    // roundRates, roundCpuUsPerMessage: each round's
 *                                    // (RttResult has roundP50s); the protection goals' measured
 *                                    // text lists each round's ratio
 *     codec, heap,
 *     floors: {
 *       rtt: { size, rawP50Us, rawAeadP50Us, ratio, addedUs, goalRatio }[],
 *                                    // ratio: raw+AEAD ÷ raw p50; addedUs: raw+AEAD − raw p50, the
 *                                    // µs the AEAD adds to a round trip; goalRatio: 1 + addedUs ÷
 *                                    // unprotected endpoint p50, the floor on the goal's scale
 *                                    // (null where a case failed or did not run)
 *       cpu: { size, ok, usPerMessage, ratio, rounds: CpuFloorRound[] }[]
 *                                    // usPerMessage: seal+open µs per message (median of rounds);
 *                                    // ratio: 1 + usPerMessage ÷ unprotected CPU µs/msg, per round,
 *                                    // median of rounds (comparable with the goal's prot ÷ unprot)
 *     },
 *     goals: { goal, measured, met, limit, floorRatio, verdict }[] }
 *                                    // limit: the goal's ratio bound (null if none); floorRatio:
 *                                    // the floor on the same scale as the measured ratio (null:
 *                                    // no floor for that goal, or not measured); verdict: the
 *                                    // printed one ('met', 'NOT MET', 'NOT MET (below floor)')
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { PacketProtector, TAG_LENGTH } from '../lib/security/aead.js'
import { addedFloorRatio, aeadUsPerMessage, averagePacket, deltaPercent, goalVerdict } from './lib/floor.js'
import { decodeFrames, decodePacket, Delivery, encodeFrames, encodePacket, FrameType, MAGIC, PacketType, VERSION } from '../lib/wire/codec.js'
import type { Summary } from './harness/stats.js'

const PARTS = ['rtt', 'throughput', 'codec', 'heap'] as const
type Part = (typeof PARTS)[number]

interface Options {
  quick: boolean
  durationS: number
  json: string | undefined
  only: Set<Part>
  cpuProf: string | undefined
  rounds: number | undefined
}

function parseArgs (argv: string[]): Options {
  const o: Options = { quick: false, durationS: 60, json: undefined, only: new Set(PARTS), cpuProf: undefined, rounds: undefined }
  let durationSet = false
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--quick': o.quick = true; break
      case '--duration': o.durationS = Number(argv[++i]); durationSet = true; break
      case '--json': o.json = argv[++i]; break
      case '--cpu-prof': o.cpuProf = argv[++i]; break
      case '--rounds': {
        const n = Number(argv[++i])
        if (!Number.isInteger(n) || n < 3) throw new TypeError(`--rounds must be an integer ≥ 3 (medians of at least 3); got ${argv[i]}`)
        o.rounds = n
        break
      }
      case '--only': {
        const parts = (argv[++i] ?? '').split(',')
        for (const p of parts) if (!(PARTS as readonly string[]).includes(p)) throw new TypeError(`--only takes a comma-separated list of ${PARTS.join(', ')}; got ${p}`)
        o.only = new Set(parts as Part[])
        break
      }
      default: throw new TypeError(`unknown argument ${argv[i]}; expected --quick, --duration S, --json FILE, --only PARTS, --cpu-prof DIR, --rounds N`)
    }
  }
  if (!(o.durationS > 0)) throw new RangeError('--duration must be a positive number of seconds')
  if (o.quick && !durationSet) o.durationS = 5
  if (o.json === '') throw new TypeError('--json needs a file name')
  return o
}

const WORKER = fileURLToPath(new URL('./lib/endpoint-worker.js', import.meta.url))
const children = new Set<ChildProcess>()
let workerArgs: string[] = ['--expose-gc']
function killAll (): void {
  for (const c of children) { try { process.kill(c.pid!, 'SIGKILL') } catch { /* gone */ } }
  children.clear()
}

type Ev = { ev: string, [k: string]: unknown }

/** One worker process; `request` sends a command and waits (bounded) for the reply event. */
class Worker {
  readonly child: ChildProcess
  readonly #queue: Ev[] = []
  #wake: (() => void) | null = null
  #exited = false

  constructor () {
    this.child = spawn(process.execPath, [...workerArgs, WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.add(this.child)
    this.child.on('message', (m: Ev) => { this.#queue.push(m); this.#wake?.() })
    this.child.on('exit', () => { this.#exited = true; children.delete(this.child); this.#wake?.() })
  }

  async next (ev: string, timeoutMs: number): Promise<Ev> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.#queue.findIndex((m) => m.ev === ev || m.ev === 'error')
      if (i >= 0) {
        const m = this.#queue.splice(i, 1)[0]!
        if (m.ev === 'error') throw new Error(`worker: ${String(m.error)}`)
        return m
      }
      if (this.#exited) throw new Error(`worker exited while waiting for ${ev}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${ev} from the worker within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#wake = () => { clearTimeout(t); this.#wake = null; resolve() }
      })
    }
  }

  async request (cmd: Record<string, unknown>, ev: string, timeoutMs = 30_000): Promise<Ev> {
    this.child.send(cmd)
    return this.next(ev, timeoutMs)
  }

  async cpuUs (): Promise<number> {
    const c = await this.request({ cmd: 'cpu' }, 'cpu')
    return (c.user as number) + (c.system as number)
  }

  /** Ask for a clean exit (profiles are written then); SIGKILL by PID after 3 s. */
  async kill (): Promise<void> {
    if (this.#exited) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    if (this.child.connected) this.child.send({ cmd: 'exit' })
    const timer = setTimeout(() => { try { process.kill(this.child.pid!, 'SIGKILL') } catch { /* gone */ } }, 3000)
    await exited
    clearTimeout(timer)
  }
}

async function pair<T> (fn: (a: Worker, b: Worker) => Promise<T>): Promise<T> {
  const a = new Worker()
  const b = new Worker()
  try {
    await Promise.all([a.next('started', 10_000), b.next('started', 10_000)])
    return await fn(a, b)
  } finally {
    await Promise.all([a.kill(), b.kill()])
  }
}

// ---- cases -----------------------------------------------------------------

type Mode = 'raw' | 'raw-aead' | EndpointMode
type EndpointMode = 'unprotected' | 'protected'
const isEndpoint = (mode: Mode): mode is EndpointMode => mode === 'unprotected' || mode === 'protected'
interface RttResult {
  kind: 'rtt', mode: Mode, size: number, ok: boolean, error?: string, summary?: Summary
  /** Rounds combined into this result (medians over them) and each round's p50, µs. */
  rounds?: number, roundP50s?: number[]
  /** Endpoint cases: the client's session counters (a loss-free loopback should retransmit nothing). */
  packetsSent?: number, retransmitted?: number, lost?: number, spurious?: number, rtoExpirations?: number
  /** raw-aead: datagrams that failed to open (any fails the case), ping + echo. */
  openFailures?: number
}
interface ThroughputResult {
  kind: 'throughput', mode: EndpointMode, size: number, ok: boolean, error?: string, messages: number,
  seconds?: number, messagesPerSecond?: number, megabytesPerSecond?: number, cpuUsPerMessage?: number,
  senderCpuUs?: number, receiverCpuUs?: number, packetsSent?: number, retransmitted?: number, drainWaits?: number,
  lost?: number, spurious?: number, rtoExpirations?: number, srttMs?: number, rtoMs?: number,
  /** Rounds combined into this result and each round's msgs/s. */
  rounds?: number, roundRates?: number[], roundCpuUsPerMessage?: number[],
  /** Packets and payload bytes (the frames, what protection seals) each side's session sent during the measured flood. */
  senderPackets?: number, senderPayloadBytes?: number, receiverPackets?: number, receiverPayloadBytes?: number,
}

function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

const sum = (xs: readonly (number | undefined)[]): number => xs.reduce<number>((a, x) => a + (x ?? 0), 0)

/** `items` rotated left by `by`: round r of the bench starts with a different mode. */
function rotate<T> (items: readonly T[], by: number): T[] {
  const k = by % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

/** One case over its rounds: each percentile the median of the rounds'; failed if any round failed. */
function combineRtt (rounds: readonly RttResult[]): RttResult {
  const first = rounds[0]!
  const failed = rounds.findIndex((r) => !r.ok)
  if (failed >= 0) return { ...rounds[failed]!, error: `round ${failed + 1} of ${rounds.length}: ${rounds[failed]!.error}`, rounds: rounds.length }
  const ss = rounds.map((r) => r.summary!)
  const summary: Summary = {
    count: sum(ss.map((x) => x.count)),
    min: Math.min(...ss.map((x) => x.min)),
    p50: median(ss.map((x) => x.p50)),
    p90: median(ss.map((x) => x.p90)),
    p99: median(ss.map((x) => x.p99)),
    p999: median(ss.map((x) => x.p999)),
    max: Math.max(...ss.map((x) => x.max)),
    mean: median(ss.map((x) => x.mean)),
  }
  return {
    kind: 'rtt', mode: first.mode, size: first.size, ok: true, summary, rounds: rounds.length, roundP50s: ss.map((x) => x.p50),
    ...(isEndpoint(first.mode) ? {
      packetsSent: sum(rounds.map((r) => r.packetsSent)), retransmitted: sum(rounds.map((r) => r.retransmitted)),
      lost: sum(rounds.map((r) => r.lost)), spurious: sum(rounds.map((r) => r.spurious)), rtoExpirations: sum(rounds.map((r) => r.rtoExpirations)),
    } : {}),
    ...(first.mode === 'raw-aead' ? { openFailures: sum(rounds.map((r) => r.openFailures)) } : {}),
  }
}

/** One case over its rounds: median rate and CPU per message; counters summed; failed if any round failed. */
function combineThroughput (rounds: readonly ThroughputResult[]): ThroughputResult {
  const first = rounds[0]!
  const messages = sum(rounds.map((r) => r.messages))
  const failed = rounds.findIndex((r) => !r.ok)
  if (failed >= 0) return { ...rounds[failed]!, messages, error: `round ${failed + 1} of ${rounds.length}: ${rounds[failed]!.error}`, rounds: rounds.length }
  const rates = rounds.map((r) => r.messagesPerSecond!)
  return {
    kind: 'throughput', mode: first.mode, size: first.size, ok: true, messages,
    seconds: sum(rounds.map((r) => r.seconds)),
    messagesPerSecond: median(rates),
    megabytesPerSecond: median(rounds.map((r) => r.megabytesPerSecond!)),
    cpuUsPerMessage: median(rounds.map((r) => r.cpuUsPerMessage!)),
    senderCpuUs: sum(rounds.map((r) => r.senderCpuUs)), receiverCpuUs: sum(rounds.map((r) => r.receiverCpuUs)),
    packetsSent: sum(rounds.map((r) => r.packetsSent)), retransmitted: sum(rounds.map((r) => r.retransmitted)),
    drainWaits: sum(rounds.map((r) => r.drainWaits)), lost: sum(rounds.map((r) => r.lost)),
    spurious: sum(rounds.map((r) => r.spurious)), rtoExpirations: sum(rounds.map((r) => r.rtoExpirations)),
    srttMs: median(rounds.map((r) => r.srttMs!)), rtoMs: median(rounds.map((r) => r.rtoMs!)),
    rounds: rounds.length, roundRates: rates, roundCpuUsPerMessage: rounds.map((r) => r.cpuUsPerMessage!),
    senderPackets: sum(rounds.map((r) => r.senderPackets)), senderPayloadBytes: sum(rounds.map((r) => r.senderPayloadBytes)),
    receiverPackets: sum(rounds.map((r) => r.receiverPackets)), receiverPayloadBytes: sum(rounds.map((r) => r.receiverPayloadBytes)),
  }
}

/** Worker commands of each RTT mode: [echo side, ping side]. */
const RTT_COMMANDS: Record<Mode, readonly [string, string]> = {
  raw: ['raw-echo', 'raw-ping'],
  'raw-aead': ['raw-aead-echo', 'raw-aead-ping'],
  unprotected: ['ep-echo', 'ep-ping'],
  protected: ['ep-echo', 'ep-ping'],
}

async function rtt (mode: Mode, size: number, count: number, warmup: number, key: string): Promise<RttResult> {
  try {
    return await pair(async (server, client) => {
      const keyArg = mode === 'protected' || mode === 'raw-aead' ? { key } : {}
      const [echoCmd, pingCmd] = RTT_COMMANDS[mode]
      const ready = await server.request({ cmd: echoCmd, ...keyArg }, 'ready')
      const r = await client.request({ cmd: pingCmd, port: ready.port, size, count, warmup, ...keyArg }, 'rtt', 120_000)
      const bad = r.bad as number
      const aead: { openFailures?: number } = mode === 'raw-aead' ? await aeadCounters(r, server) : {}
      if (aead.openFailures !== undefined && aead.openFailures > 0) {
        return { kind: 'rtt', mode, size, ok: false, error: `${aead.openFailures} datagrams failed to open (AEAD)`, ...aead }
      }
      if (bad > 0) return { kind: 'rtt', mode, size, ok: false, error: `${bad} replies did not match their ping` }
      return {
        kind: 'rtt', mode, size, ok: true, summary: r.summary as Summary, ...aead,
        ...(isEndpoint(mode) ? {
          packetsSent: r.packetsSent as number, retransmitted: r.retransmitted as number, lost: r.lost as number,
          spurious: r.spurious as number, rtoExpirations: r.rtoExpirations as number,
        } : {}),
      }
    })
  } catch (err) {
    return { kind: 'rtt', mode, size, ok: false, error: String((err as Error).message ?? err) }
  }
}

/** raw-aead: the ping's counters (in its reply) plus the echo's (asked for). */
async function aeadCounters (ping: Ev, echo: Worker): Promise<{ openFailures: number }> {
  const e = await echo.request({ cmd: 'aead-stats' }, 'aead-stats')
  return {
    openFailures: (ping.openFailures as number) + (e.openFailures as number),
  }
}

/** Flood `count` messages sender → sink; the sink must report every one, in order, intact. */
async function floodOnce (sender: Worker, sink: Worker, port: number, size: number, count: number, keyArg: object) {
  await sink.request({ cmd: 'sink-expect', size, count }, 'sink-ready')
  sender.child.send({ cmd: 'ep-flood', port, size, count, ...keyArg })
  // Generous bound: 20k msgs/s plus start-up. A stall here means lost messages.
  const timeoutMs = 20_000 + count / 20
  const done = await sink.next('sink-done', timeoutMs)
  const flood = await sender.next('flood-done', 10_000)
  return { done, flood }
}

/** Packets and payload bytes sent so far by the sessions of a worker's endpoint. */
async function sentBy (w: Worker): Promise<{ packets: number, bytes: number }> {
  const r = await w.request({ cmd: 'ep-stats' }, 'ep-stats')
  const sessions = r.sessions as { packetsSent: number, bytesSent: number }[]
  return { packets: sum(sessions.map((s) => s.packetsSent)), bytes: sum(sessions.map((s) => s.bytesSent)) }
}

async function throughput (mode: EndpointMode, size: number, count: number, key: string): Promise<ThroughputResult> {
  const base: ThroughputResult = { kind: 'throughput', mode, size, ok: false, messages: count }
  try {
    return await pair(async (sink, sender) => {
      const keyArg = mode === 'protected' ? { key } : {}
      const ready = await sink.request({ cmd: 'ep-sink', ...keyArg }, 'ready')
      const port = ready.port as number
      const warm = await floodOnce(sender, sink, port, size, Math.min(50_000, count), keyArg)
      if ((warm.done.bad as number) > 0) return { ...base, error: `warm-up: ${String(warm.done.firstBad)}` }
      // Packet counts around (not inside) the CPU window, so asking costs no measured CPU.
      const [t0s, t0r] = [await sentBy(sender), await sentBy(sink)]
      const [c0s, c0r] = [await sender.cpuUs(), await sink.cpuUs()]
      const { done, flood } = await floodOnce(sender, sink, port, size, count, keyArg)
      const [c1s, c1r] = [await sender.cpuUs(), await sink.cpuUs()]
      const [t1s, t1r] = [await sentBy(sender), await sentBy(sink)]
      if ((done.bad as number) > 0) {
        return { ...base, error: `${String(done.bad)} messages out of order or corrupt; first: ${String(done.firstBad)}` }
      }
      const seconds = Number(BigInt(done.lastNs as string) - BigInt(flood.startNs as string)) / 1e9
      return {
        ...base,
        ok: true,
        seconds,
        messagesPerSecond: count / seconds,
        megabytesPerSecond: count * size / seconds / 1e6,
        senderCpuUs: c1s - c0s,
        receiverCpuUs: c1r - c0r,
        cpuUsPerMessage: (c1s - c0s + c1r - c0r) / count,
        packetsSent: flood.packetsSent as number,
        retransmitted: flood.retransmitted as number,
        drainWaits: flood.drainWaits as number,
        lost: flood.lost as number,
        spurious: flood.spurious as number,
        rtoExpirations: flood.rtoExpirations as number,
        srttMs: flood.srttMs as number,
        rtoMs: flood.rtoMs as number,
        senderPackets: t1s.packets - t0s.packets,
        senderPayloadBytes: t1s.bytes - t0s.bytes,
        receiverPackets: t1r.packets - t0r.packets,
        receiverPayloadBytes: t1r.bytes - t0r.bytes,
      }
    })
  } catch (err) {
    return { ...base, error: `FAILED (nothing reported as a rate): ${String((err as Error).message ?? err)}` }
  }
}

// ---- floors: what the AEAD alone costs --------------------------------------

/**
 * CPU µs of one seal + one open of a `bytes`-byte payload (20-byte header
 * as associated data) by PacketProtector, over a loop of at least `minMs`.
 * Only the AEAD's work: no header encoding, no copies (sealed into a
 * preallocated output; one sealed packet is opened over and over into a
 * preallocated plaintext buffer — open keeps no replay state).
 */
function sealOpenUs (bytes: number, minMs = 300): number {
  const key = randomBytes(32)
  const sealer = new PacketProtector(key, key)
  const opener = new PacketProtector(key, key)
  const header = randomBytes(20)
  const plaintext = randomBytes(bytes)
  const sealed = sealer.seal(header, 0, plaintext)
  const out = Buffer.alloc(bytes + TAG_LENGTH)
  const opened = Buffer.alloc(bytes)
  let pn = 1
  const batch = (n: number): void => {
    for (let i = 0; i < n; i++) {
      sealer.seal(header, pn++, plaintext, out)
      if (opener.open(header, 0, sealed, opened) === null) throw new Error('AEAD floor: a packet failed to open')
    }
  }
  batch(2000) // unmeasured: JIT and OpenSSL's first-use lookups
  const end = process.hrtime.bigint() + BigInt(minMs) * 1_000_000n
  const c0 = process.cpuUsage()
  let n = 0
  while (process.hrtime.bigint() < end) { batch(500); n += 500 }
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / n
}

/** One round's AEAD CPU floor of one size, from that round's protected and unprotected runs. */
interface CpuFloorRound {
  round: number, size: number, messages: number,
  /** The protected run's packets each way (data from the sender, ACKs from the receiver) and their average payload, bytes. */
  senderPackets: number, senderPayload: number, receiverPackets: number, receiverPayload: number,
  /** CPU µs of one seal + one open at those payload sizes. */
  senderSealOpenUs: number, receiverSealOpenUs: number,
  /** AEAD µs per message, the same round's unprotected CPU µs per message, and the floor ratio (see addedFloorRatio). */
  usPerMessage: number, unprotectedCpuUsPerMessage: number, ratio: number,
}
interface CpuFloor { size: number, ok: boolean, error?: string, usPerMessage: number | null, ratio: number | null, rounds: (CpuFloorRound | string)[] }

/** Measure the floor for a round's pair of runs, or say why there is none (a failed run leaves nothing to compare). */
function cpuFloorRound (round: number, unprotected: ThroughputResult | undefined, prot: ThroughputResult | undefined): CpuFloorRound | string {
  if (unprotected?.ok !== true || prot?.ok !== true) return `round ${round}: a throughput run failed`
  try {
    return measureCpuFloor(round, unprotected, prot)
  } catch (err) {
    return `round ${round}: ${String((err as Error).message ?? err)}`
  }
}

function measureCpuFloor (round: number, unprotected: ThroughputResult, prot: ThroughputResult): CpuFloorRound {
  const senderPayload = averagePacket(prot.senderPayloadBytes!, prot.senderPackets!)
  const receiverPayload = averagePacket(prot.receiverPayloadBytes!, prot.receiverPackets!)
  const senderSealOpenUs = prot.senderPackets! > 0 ? sealOpenUs(senderPayload) : 0
  const receiverSealOpenUs = prot.receiverPackets! > 0 ? sealOpenUs(receiverPayload) : 0
  const usPerMessage = aeadUsPerMessage([
    { packets: prot.senderPackets!, sealOpenUs: senderSealOpenUs },
    { packets: prot.receiverPackets!, sealOpenUs: receiverSealOpenUs },
  ], prot.messages)
  return {
    round, size: prot.size, messages: prot.messages,
    senderPackets: prot.senderPackets!, senderPayload, receiverPackets: prot.receiverPackets!, receiverPayload,
    senderSealOpenUs, receiverSealOpenUs,
    usPerMessage, unprotectedCpuUsPerMessage: unprotected.cpuUsPerMessage!, ratio: addedFloorRatio(usPerMessage, unprotected.cpuUsPerMessage!),
  }
}

/** A size's floor over its rounds: medians; not ok if any round had no floor. */
function combineCpuFloor (size: number, rounds: readonly (CpuFloorRound | string)[]): CpuFloor {
  const error = rounds.find((r) => typeof r === 'string')
  if (error !== undefined) return { size, ok: false, error, usPerMessage: null, ratio: null, rounds: [...rounds] }
  const rs = rounds as readonly CpuFloorRound[]
  return { size, ok: true, usPerMessage: median(rs.map((r) => r.usPerMessage)), ratio: median(rs.map((r) => r.ratio)), rounds: [...rs] }
}

interface HeapResult {
  ok: boolean, error?: string, mode: Mode, size: number, seconds: number, messages: number, messagesPerSecond: number,
  senderBefore: number, senderAfter: number, receiverBefore: number, receiverAfter: number,
  samples: { t: number, sender: number, receiver: number }[]
}

async function sustained (durationS: number, key: string): Promise<HeapResult> {
  const size = 64
  const chunk = 100_000
  const res: HeapResult = {
    ok: false, mode: 'protected', size, seconds: 0, messages: 0, messagesPerSecond: 0,
    senderBefore: 0, senderAfter: 0, receiverBefore: 0, receiverAfter: 0, samples: [],
  }
  try {
    return await pair(async (sink, sender) => {
      const keyArg = { key }
      const heap = async (w: Worker): Promise<number> => (await w.request({ cmd: 'heap' }, 'heap')).heapUsed as number
      const ready = await sink.request({ cmd: 'ep-sink', ...keyArg }, 'ready')
      const port = ready.port as number
      // Warm up (JIT, pools, the session's structures at working size), then measure.
      for (let i = 0; i < 3; i++) await floodOnce(sender, sink, port, size, chunk, keyArg)
      res.senderBefore = await heap(sender)
      res.receiverBefore = await heap(sink)
      const start = Date.now()
      let nextSample = start
      const sampleEvery = durationS * 1000 / 6
      while (Date.now() - start < durationS * 1000) {
        const { done } = await floodOnce(sender, sink, port, size, chunk, keyArg)
        if ((done.bad as number) > 0) throw new Error(`out of order or corrupt: ${String(done.firstBad)}`)
        res.messages += chunk
        if (Date.now() >= nextSample) {
          res.samples.push({ t: (Date.now() - start) / 1000, sender: await heap(sender), receiver: await heap(sink) })
          nextSample += sampleEvery
        }
      }
      res.seconds = (Date.now() - start) / 1000
      res.messagesPerSecond = res.messages / res.seconds
      res.senderAfter = await heap(sender)
      res.receiverAfter = await heap(sink)
      res.ok = true
      return res
    })
  } catch (err) {
    return { ...res, error: String((err as Error).message ?? err) }
  }
}

interface CodecResult { opsPerSecond: number, packetBytes: number }

/** protobufjs encode + lib/wire/decode.ts decode of a DATA packet carrying one 64-B DATA frame and an ACK frame. */
function codec (ms: number): CodecResult {
  const data = randomBytes(64)
  let ops = 0
  let bytes = 0
  let check = 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(ms) * 1_000_000n
  let now = start
  while (now < end) {
    for (let i = 0; i < 1000; i++) {
      const payload = encodeFrames([
        { type: FrameType.DATA, channel: 3, delivery: Delivery.RELIABLE_ORDERED, sequence: ops + i, data },
        { type: FrameType.ACK, largest: 100_000 + i, ackDelayUs: 250, firstRange: 3, ranges: [1, 2] },
      ])
      const packet = encodePacket({ magic: MAGIC, version: VERSION, type: PacketType.DATA, connectionId: 0x1234567, packetNumber: ops + i, payload })
      bytes = packet.length
      const p = decodePacket(packet)
      if (typeof p === 'string') throw new Error(`codec bench: packet rejected (${p})`)
      const frames = decodeFrames(p.payload)
      if (typeof frames === 'string' || frames.length !== 2 || frames[0]!.sequence !== ops + i || frames[0]!.data.length !== 64) {
        throw new Error('codec bench: round trip mismatch')
      }
      check += frames[1]!.largest
    }
    ops += 1000
    now = process.hrtime.bigint()
  }
  if (check === 0) throw new Error('unreachable')
  return { opsPerSecond: ops / (Number(now - start) / 1e9), packetBytes: bytes }
}

// ---- output ----------------------------------------------------------------

const fmt = (n: number | undefined, digits = 1): string => n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits)
const int = (n: number | undefined): string => n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US')
const mib = (n: number): string => (n / 1048576).toFixed(2)
const pad = (s: string, n: number): string => s.length >= n ? s : s + ' '.repeat(n - s.length)
const lpad = (s: string, n: number): string => s.length >= n ? s : ' '.repeat(n - s.length) + s

/** One size's CPU floor, with what it is made of (medians over the rounds). */
function cpuFloorLine (f: CpuFloor): string {
  if (!f.ok) return `${f.size} B: no floor (${f.error})`
  const rs = f.rounds as CpuFloorRound[]
  const m = (pick: (r: CpuFloorRound) => number): number => median(rs.map(pick))
  const flow = (packets: (r: CpuFloorRound) => number, payload: (r: CpuFloorRound) => number, us: (r: CpuFloorRound) => number): string =>
    `1 per ${fmt(m((r) => r.messages / packets(r)), 1)} msgs, ${int(m(payload))} B, ${fmt(m(us), 2)} µs each`
  return `${f.size} B: ${fmt(f.usPerMessage!, 2)} µs/msg = ${deltaPercent(f.ratio)} on unprotected ${fmt(m((r) => r.unprotectedCpuUsPerMessage), 2)} µs/msg ` +
    `(data ${flow((r) => r.senderPackets, (r) => r.senderPayload, (r) => r.senderSealOpenUs)}; ` +
    `ACKs ${flow((r) => r.receiverPackets, (r) => r.receiverPayload, (r) => r.receiverSealOpenUs)})`
}

function table (rows: string[][], right: boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r, ri) => r.map((c, i) => (right[i] && ri > 0 ? lpad(c, widths[i]!) : pad(c, widths[i]!))).join('  ').trimEnd()).join('\n')
}

async function main (): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const key = randomBytes(32).toString('hex')
  const rttCount = o.quick ? 5_000 : 50_000
  const rttWarmup = o.quick ? 500 : 2_000
  // Messages per round and mode: long enough (~0.5 s at the rates measured
  // here) that one scheduler hiccup or GC does not decide a round's CPU figure.
  const tpCount: Record<number, number> = o.quick ? { 64: 200_000, 1024: 50_000 } : { 64: 1_000_000, 1024: 250_000 }
  const sizes = [64, 1024]
  const started = Date.now()
  const log = (s: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${s}\n`) }

  if (o.cpuProf !== undefined) workerArgs = ['--expose-gc', '--cpu-prof', '--cpu-prof-dir', o.cpuProf]
  const rounds = o.rounds ?? (o.quick ? 3 : 5)
  const rttModes = ['raw', 'raw-aead', 'unprotected', 'protected'] as const
  const tpModes = ['unprotected', 'protected'] as const
  const rttRounds = new Map<string, RttResult[]>()
  const tpRounds = new Map<string, ThroughputResult[]>()
  const floorRounds = new Map<string, (CpuFloorRound | string)[]>()
  const push = <T>(m: Map<string, T[]>, k: string, v: T): void => { const a = m.get(k); if (a === undefined) m.set(k, [v]); else a.push(v) }
  for (let r = 0; r < rounds; r++) {
    if (o.only.has('rtt')) for (const size of sizes) {
      for (const mode of rotate(rttModes, r)) {
        log(`round ${r + 1}/${rounds}: rtt ${mode} ${size} B`)
        push(rttRounds, `${mode} ${size}`, await rtt(mode, size, Math.ceil(rttCount / rounds), rttWarmup, key))
      }
    }
    if (o.only.has('throughput')) for (const size of sizes) {
      const thisRound: Partial<Record<EndpointMode, ThroughputResult>> = {}
      for (const mode of rotate(tpModes, r)) {
        log(`round ${r + 1}/${rounds}: throughput ${mode} ${size} B`)
        const res = thisRound[mode] = await throughput(mode, size, tpCount[size]!, key)
        push(tpRounds, `${mode} ${size}`, res)
      }
      // Between cases (no worker busy), against this round's unprotected CPU: the same conditions.
      log(`round ${r + 1}/${rounds}: AEAD CPU floor ${size} B`)
      push(floorRounds, `${size}`, cpuFloorRound(r + 1, thisRound.unprotected, thisRound.protected))
    }
  }
  const rtts: RttResult[] = []
  const tps: ThroughputResult[] = []
  for (const size of sizes) {
    for (const mode of rttModes) { const rs = rttRounds.get(`${mode} ${size}`); if (rs !== undefined) rtts.push(combineRtt(rs)) }
    for (const mode of tpModes) { const rs = tpRounds.get(`${mode} ${size}`); if (rs !== undefined) tps.push(combineThroughput(rs)) }
  }
  const cpuFloors = sizes.flatMap((size) => { const rs = floorRounds.get(`${size}`); return rs === undefined ? [] : [combineCpuFloor(size, rs)] })
  if (o.only.has('codec')) log('codec')
  const cod = o.only.has('codec') ? codec(o.quick ? 300 : 2000) : { opsPerSecond: NaN, packetBytes: 0 }
  if (o.only.has('heap')) log(`sustained ${o.durationS} s (heap)`)
  const heap: HeapResult = o.only.has('heap') ? await sustained(o.durationS, key) : {
    ok: false, error: 'not run (--only)', mode: 'protected', size: 64, seconds: 0, messages: 0, messagesPerSecond: 0,
    senderBefore: 0, senderAfter: 0, receiverBefore: 0, receiverAfter: 0, samples: [],
  }

  const rttOf = (mode: Mode, size: number): RttResult | undefined => rtts.find((r) => r.mode === mode && r.size === size)
  const tpOf = (mode: Mode, size: number): ThroughputResult | undefined => tps.find((r) => r.mode === mode && r.size === size)
  const p50 = (mode: Mode, size: number): number => rttOf(mode, size)?.summary?.p50 ?? NaN
  const finiteOrNull = (n: number): number | null => Number.isFinite(n) ? n : null
  // The AEAD's µs on the round trip are what it adds to raw dgram's; the goal
  // divides by the unprotected endpoint's (larger) p50, so its floor is
  // those µs on top of that p50, not raw+AEAD ÷ raw (kept as `ratio`, which
  // would overstate it by the ratio of the two denominators). A negative
  // difference (noise) is a floor of zero.
  const rttFloors = sizes.map((size) => {
    const addedUs = p50('raw-aead', size) - p50('raw', size)
    return {
      size, rawP50Us: finiteOrNull(p50('raw', size)), rawAeadP50Us: finiteOrNull(p50('raw-aead', size)),
      ratio: finiteOrNull(p50('raw-aead', size) / p50('raw', size)), addedUs: finiteOrNull(addedUs),
      goalRatio: finiteOrNull(addedFloorRatio(Math.max(0, addedUs), p50('unprotected', size))),
    }
  })
  const cpuFloorOf = (size: number): CpuFloor | undefined => cpuFloors.find((f) => f.size === size)

  const out: string[] = []
  out.push(`warpmesh endpoint benchmark — ${o.quick ? 'quick' : 'full'} run, node ${process.version}, ${new Date().toISOString()}`)
  out.push('')
  out.push(`Ping-pong RTT over 127.0.0.1, two processes, µs: ${rounds} rounds × ${int(Math.ceil(rttCount / rounds))} samples (after ${int(rttWarmup)} warm-up each), modes alternating; medians over the rounds`)
  const rttRows: string[][] = [['case', 'size', 'p50', 'p99', 'p99.9', 'max', 'p50 ÷ raw', 'p50 prot ÷ unprot', 'retx']]
  const rttCase: Record<Mode, string> = {
    raw: 'raw node:dgram', 'raw-aead': 'raw node:dgram + AEAD', unprotected: 'endpoint unprotected', protected: 'endpoint protected',
  }
  for (const r of rtts) {
    const s = r.summary
    rttRows.push([
      rttCase[r.mode], `${r.size} B`,
      r.ok ? fmt(s!.p50) : `FAILED: ${r.error}`, r.ok ? fmt(s!.p99) : '', r.ok ? fmt(s!.p999) : '', r.ok ? fmt(s!.max, 0) : '',
      r.mode === 'raw' ? '' : fmt(p50(r.mode, r.size) / p50('raw', r.size), 2) + '×',
      r.mode === 'protected' ? fmt(p50('protected', r.size) / p50('unprotected', r.size), 2) + '×' : '',
      !isEndpoint(r.mode) || !r.ok ? '' : int(r.retransmitted),
    ])
  }
  out.push(table(rttRows, [false, true, true, true, true, true, true, true, true]))
  if (rtts.some((r) => r.mode === 'raw-aead')) {
    out.push('  (raw node:dgram + AEAD: the raw ping-pong with every datagram sealed and opened by PacketProtector, ChaCha20-Poly1305, ' +
      'sealed into a new buffer and opened in place as the endpoint does; the µs its p50 adds over raw, on top of the unprotected endpoint\'s p50, ' +
      'are the floor of the protection RTT goal)')
  }
  out.push('')
  out.push(`One-way reliable-ordered throughput, batched sender, every message checked (sequence, length, content); medians of ${rounds} rounds`)
  const tpRows: string[][] = [['case', 'size', 'messages', 'msgs/s', 'MB/s', 'CPU µs/msg', 'CPU prot ÷ unprot', 'packets', 'retx', 'lost (spurious)', 'RTO exp']]
  for (const r of tps) {
    const u = tpOf('unprotected', r.size)
    tpRows.push([
      `endpoint ${r.mode}`, `${r.size} B`, int(r.messages),
      r.ok ? int(r.messagesPerSecond) : `FAILED: ${r.error}`, r.ok ? fmt(r.megabytesPerSecond) : '',
      r.ok ? fmt(r.cpuUsPerMessage, 2) : '',
      r.mode === 'protected' && r.ok && u?.ok === true ? fmt(r.cpuUsPerMessage! / u.cpuUsPerMessage!, 2) + '×' : '',
      r.ok ? int(r.packetsSent) : '', r.ok ? int(r.retransmitted) : '',
      r.ok ? `${int(r.lost)} (${int(r.spurious)})` : '', r.ok ? int(r.rtoExpirations) : '',
    ])
  }
  out.push(table(tpRows, [false, true, true, true, true, true, true, true, true, true, true]))
  out.push('  (loopback drops nothing: retx/lost here are spurious retransmissions or receive-buffer overflow)')
  if (cpuFloors.length > 0) {
    out.push(`AEAD CPU floor: ChaCha20-Poly1305 seal + open (libsodium via PacketProtector, timed in this process) of the protected run's packets, per message; medians of ${rounds} rounds`)
    for (const f of cpuFloors) out.push(`  ${cpuFloorLine(f)}`)
  }
  out.push('')
  out.push(`Codec (protobufjs encode + lib/wire/decode.ts decode) of a ${cod.packetBytes}-B DATA packet (64-B DATA frame + ACK frame): ${int(cod.opsPerSecond)} ops/s (${fmt(1e6 / cod.opsPerSecond, 2)} µs each)`)
  out.push('')
  if (heap.ok) {
    out.push(`Heap after full GC, sustained protected 64-B stream: ${fmt(heap.seconds, 0)} s, ${int(heap.messages)} messages (${int(heap.messagesPerSecond)}/s), all checked`)
    out.push(`  sender   ${mib(heap.senderBefore)} MiB → ${mib(heap.senderAfter)} MiB (${heap.senderAfter >= heap.senderBefore ? '+' : ''}${mib(heap.senderAfter - heap.senderBefore)})`)
    out.push(`  receiver ${mib(heap.receiverBefore)} MiB → ${mib(heap.receiverAfter)} MiB (${heap.receiverAfter >= heap.receiverBefore ? '+' : ''}${mib(heap.receiverAfter - heap.receiverBefore)})`)
    out.push(`  samples (s: sender/receiver MiB): ${heap.samples.map((s) => `${fmt(s.t, 0)}: ${mib(s.sender)}/${mib(s.receiver)}`).join(', ')}`)
  } else {
    out.push(`Heap: sustained run FAILED: ${heap.error}`)
  }
  out.push('')

  // Goals, judged on the measured numbers; `limit` and `floorRatio` are on the measured ratio's scale.
  const goals: { goal: string, measured: string, met: boolean, limit: number | null, floorRatio: number | null, verdict: string }[] = []
  const goal = (g: string, measured: string, met: boolean, limit: number | null = null, floorRatio: number | null = null): void => {
    goals.push({ goal: g, measured, met, limit, floorRatio, verdict: goalVerdict(met, limit, floorRatio) })
  }
  for (const size of sizes) {
    const ratio = p50('unprotected', size) / p50('raw', size)
    goal(`endpoint p50 RTT ≤ 1.3 × raw dgram (${size} B)`, Number.isFinite(ratio) ? `${fmt(ratio, 2)}×` : 'not measured', ratio <= 1.3, 1.3)
  }
  for (const mode of ['unprotected', 'protected'] as const) {
    const r = tpOf(mode, 64)
    goal(`≥ 1,000,000 64-B reliable msgs/s one-way, none lost (${mode})`,
      r?.ok === true ? `${int(r.messagesPerSecond)}/s` : (r === undefined ? 'not measured' : 'FAILED'),
      r?.ok === true && r.messagesPerSecond! >= 1e6)
  }
  const growth = heap.ok ? Math.max(heap.senderAfter - heap.senderBefore, heap.receiverAfter - heap.receiverBefore) : NaN
  goal('heap flat (growth < 1 MiB per process after the sustained run)', heap.ok ? `${growth >= 0 ? '+' : ''}${mib(growth)} MiB` : (o.only.has('heap') ? 'FAILED' : 'not measured'), heap.ok && growth < 1048576)
  // Each round's ratio beside the median's: the spread says how much the machine's noise decides a goal.
  const perRound = (prot: readonly number[] | undefined, unprot: readonly number[] | undefined): string =>
    prot === undefined || unprot === undefined || prot.length !== unprot.length ? '' : ` (rounds ${prot.map((x, i) => deltaPercent(x / unprot[i]!)).join(' / ')})`
  for (const size of sizes) {
    const ratio = p50('protected', size) / p50('unprotected', size)
    const rp = rttOf('protected', size)
    const ru = rttOf('unprotected', size)
    goal(`protection ≤ +15 % p50 RTT (${size} B)`, Number.isFinite(ratio) ? deltaPercent(ratio) + perRound(rp?.roundP50s, ru?.roundP50s) : 'not measured', ratio <= 1.15,
      1.15, rttFloors.find((f) => f.size === size)!.goalRatio)
    const u = tpOf('unprotected', size)
    const p = tpOf('protected', size)
    const cpu = u?.ok === true && p?.ok === true ? p.cpuUsPerMessage! / u.cpuUsPerMessage! : NaN
    goal(`protection ≤ +25 % CPU per message (${size} B)`, Number.isFinite(cpu) ? deltaPercent(cpu) + perRound(p?.roundCpuUsPerMessage, u?.roundCpuUsPerMessage) : 'not measured', cpu <= 1.25,
      1.25, cpuFloorOf(size)?.ratio ?? null)
  }
  out.push('Goals')
  out.push(table([['goal', 'measured', 'floor', 'verdict'], ...goals.map((g) => [g.goal, g.measured, g.floorRatio === null ? '' : deltaPercent(g.floorRatio), g.verdict])],
    [false, true, true, false]))
  out.push('  floor: what the AEAD alone adds to the unprotected endpoint, measured in this run — RTT: the p50 µs raw node:dgram + AEAD ' +
    'takes over raw node:dgram, ÷ unprotected p50; CPU: seal + open of the protected run\'s packets per message ÷ unprotected CPU per message. ' +
    'A target below its floor cannot be met here by any protocol that protects each packet with this AEAD.')
  console.log(out.join('\n'))

  if (o.json !== undefined) {
    writeFileSync(o.json, JSON.stringify({
      node: process.version, quick: o.quick, durationS: o.durationS, rounds, date: new Date().toISOString(),
      rtt: rtts, throughput: tps, codec: cod, heap, floors: { rtt: rttFloors, cpu: cpuFloors }, goals,
    }, null, 2) + '\n')
    log(`wrote ${o.json}`)
  }
  const failed = rtts.some((r) => !r.ok) || tps.some((r) => !r.ok) || cpuFloors.some((f) => !f.ok) || (o.only.has('heap') && !heap.ok)
  process.exitCode = failed ? 1 : 0
}

process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { killAll(); process.exit(130) })
main().catch((err) => {
  console.error(err)
  killAll()
  process.exit(1)
})
