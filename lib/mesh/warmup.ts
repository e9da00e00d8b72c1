/**
 * The mesh half of the start-up warm-up: `MeshNode.start` runs it after the
 * endpoint's ({@link warmUp}), so that the node layer above the sessions
 * (sending by peer id, broadcast, requests, publications, the envelope, the
 * `'message'` event) is compiled by V8's optimizing compiler too.
 *
 * Why it is needed: a downstream that gets one message per broadcast runs
 * the node layer once per message, and V8 optimizes a function only after
 * it has run a while. Measured with `perf` in a 16-downstream fan-out, the
 * downstreams still ran `#onPeerMessage`, `#sendOn` and the node's
 * `#deliver` as baseline code (property loads through inline-cache stubs)
 * after 3,000 rounds; with this half, `#onPeerMessage` is optimized before
 * the node starts (`--trace-opt`). What it saves in CPU per round was inside
 * the machine's noise in alternating runs (docs/sparse-fanout.md).
 *
 * It runs a private {@link Coordinator} and two private nodes on 127.0.0.1
 * (ephemeral ports, a random key), exchanges request/response traffic of
 * every kind the node layer carries, and closes them all: a short run first,
 * closed before the long one, for the reason {@link SETTLE_ROUND_TRIPS}
 * gives. Nothing of it is visible to the real mesh.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { Buffer } from 'node:buffer'
import { closeInOrder, ONE_WAY, ONE_WAY_EVERY, SETTLE_ROUND_TRIPS, sessionLengths, SIZES, STALL_MS, warmupKey } from '../warmup.js'
import { Coordinator } from './coordinator.js'
import type { MeshMessage, MeshNode, MeshNodeOptions } from './node.js'

/** What {@link warmUpMesh} did. */
export interface MeshWarmupResult {
  /** Round trips completed. */
  readonly roundTrips: number
  /** Wall time, ms. */
  readonly ms: number
  /** What the round trips and one-way messages carried, by kind. */
  readonly kinds: Readonly<Record<Kind | 'oneWay', number>>
  /** Why it stopped early, or undefined when it completed. */
  readonly stopped?: string
}

/** A kind of round trip: a direct message, a broadcast, a request, a publication. */
export type Kind = typeof KINDS[number]

/** Role of the private nodes (never seen by a real mesh). */
const ROLE = 'warmup'
const TOPIC = 'warmup'
/** Answered by the echoing node; the other channels carry one-way messages. */
const ECHO_CHANNEL = 0
/**
 * What each round trip does, cycled: mostly direct messages, as real
 * traffic, and the other kinds the node layer carries.
 */
const KINDS = ['send', 'send', 'broadcast', 'send', 'request', 'send', 'publish', 'send'] as const

/**
 * Run `roundTrips` round trips between two private nodes started with
 * `start` (`MeshNode.start`; passed in so that this module does not import
 * the node's), the first {@link SETTLE_ROUND_TRIPS} on a pair of their own.
 * Gives up at `timeoutMs`; rejects only for invalid options.
 */
export async function warmUpMesh(
  start: (o: MeshNodeOptions) => Promise<MeshNode>,
  options: { roundTrips: number, protect: boolean, timeoutMs: number },
): Promise<MeshWarmupResult> {
  const { roundTrips, protect, timeoutMs } = options
  if (!Number.isInteger(roundTrips) || roundTrips < 1) throw new RangeError(`roundTrips must be a positive integer, got ${roundTrips}`)
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`)
  const started = performance.now()
  const deadline = started + timeoutMs
  let done = 0
  let stopped: string | undefined
  const kinds = { send: 0, broadcast: 0, request: 0, publish: 0, oneWay: 0 }
  for (const n of sessionLengths(roundTrips)) {
    const r = await runPair(start, n, protect, deadline, kinds)
    done += r.done
    stopped = r.stopped
    if (stopped !== undefined) break
  }
  const ms = performance.now() - started
  return stopped === undefined ? { roundTrips: done, ms, kinds } : { roundTrips: done, ms, kinds, stopped }
}

async function runPair(
  start: (o: MeshNodeOptions) => Promise<MeshNode>,
  roundTrips: number, protect: boolean, deadline: number, kinds: Record<Kind | 'oneWay', number>,
): Promise<{ done: number, stopped?: string }> {
  const security = protect ? { keys: [warmupKey()] } : { insecure: true }
  const left = (): number => Math.max(1, deadline - performance.now())
  let coordinator: Coordinator | undefined
  const nodes: MeshNode[] = []
  let done = 0
  let timer: NodeJS.Timeout | undefined
  let closing = false
  try {
    coordinator = await Coordinator.start({ address: '127.0.0.1', port: 0, ...security })
    const common = {
      role: ROLE, address: '127.0.0.1', port: 0, coordinators: [{ host: '127.0.0.1', port: coordinator.port }],
      warmup: 0, startTimeoutMs: Math.min(left(), STALL_MS), requestTimeoutMs: left(), ...security,
    }
    const a = await start({ ...common, id: 'warmup-a' })
    nodes.push(a)
    const b = await start({ ...common, id: 'warmup-b' })
    nodes.push(b)
    b.subscribe(TOPIC)
    // Messages still arrive while the nodes close (below): b answers only while the run lasts.
    b.on('message', (m: MeshMessage) => { if (!closing && m.channel === ECHO_CHANNEL) b.send(m.from, m.data) })
    b.onRequest((data) => data)
    // b's subscription travels through the coordinator: wait for it, so publications reach b.
    while (!a.peers().some((p) => p.id === 'warmup-b' && p.topics.includes(TOPIC))) {
      if (performance.now() > deadline) throw new Error('the private nodes did not see each other in time')
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    const messages = SIZES.map((n) => Buffer.alloc(n, 0x5a))
    await new Promise<void>((resolve, reject) => {
      let finished = false
      const finish = (err?: Error): void => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        if (err === undefined) resolve()
        else reject(err)
      }
      timer = setTimeout(() => finish(new Error('timed out')), left())
      const answered = (): void => {
        if (finished) return
        if (++done >= roundTrips) { finish(); return }
        if (done % ONE_WAY_EVERY === 0) {
          a.send('warmup-b', messages[0]!, ONE_WAY[(done / ONE_WAY_EVERY) % ONE_WAY.length]!)
          kinds.oneWay++
        }
        next()
      }
      const next = (): void => {
        const data = messages[done % messages.length]!
        let kind = KINDS[done % KINDS.length]!
        // A broadcast or publication reaches nobody only if b's entry changed in a's table meanwhile: then a plain send.
        if (kind === 'broadcast' && a.broadcast({ role: ROLE }, data) === 0) kind = 'send'
        else if (kind === 'publish' && a.publish(TOPIC, data) === 0) kind = 'send'
        else if (kind === 'request') a.request('warmup-b', data).then(answered, finish)
        if (kind === 'send') a.send('warmup-b', data)
        kinds[kind]++
      }
      a.on('message', (m: MeshMessage) => { if (m.channel === ECHO_CHANNEL) answered() })
      next()
    })
    return { done }
  } catch (err) {
    return { done, stopped: err instanceof Error ? err.message : String(err) }
  } finally {
    closing = true
    clearTimeout(timer)
    // One at a time, each after the others have heard the previous one leave:
    // see closeInOrder. a, then b, then the coordinator.
    const [a, b] = nodes
    await closeInOrder(a, b?.endpoint)
    await closeInOrder(b, coordinator?.endpoint)
    await coordinator?.close().catch(() => {})
  }
}
