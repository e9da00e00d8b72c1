/**
 * Start-up warm-up: run warpmesh's own send and receive paths a few thousand
 * times before the first real message, so that V8 has compiled them with
 * its optimizing compiler by then.
 *
 * A node that exchanges a few messages a second runs its per-message code
 * rarely, and V8 optimizes a function only after it has run a while: for
 * its first thousands of messages such a node runs slower code. In the
 * comparison bench's fan-out (8 downstreams, ~1,100 messages each) the
 * downstreams that had not run the earlier cases spent about twice the CPU
 * per round of those that had, in every variant; warpmesh, which runs more
 * of its own code per message than a TCP relay, pays the most.
 *
 * `warmUp()` opens two private endpoints on 127.0.0.1 (ephemeral ports, a
 * random key, protected unless asked otherwise, and the 1200-byte datagrams
 * of a path between hosts), sends reliable ordered messages of a few sizes
 * back and forth — with one-way messages in the other delivery modes and a
 * few idle gaps in which the delayed ACK leaves alone and the timer fires,
 * as real traffic has — and closes them, twice: a short session first, closed
 * before the long one, so that closing costs no optimized code later
 * ({@link SETTLE_ROUND_TRIPS}). Nothing
 * it does is visible to the mesh: no coordinator, no other node, and the
 * node's own endpoint is not created yet when `MeshNode.start` calls it.
 * Only bad options reject: a warm-up that cannot run (no loopback, a closed
 * firewall) or stalls ends at its time limit and reports how far it got.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import { Endpoint, type Session } from './endpoint.js'
import { keyId } from './security/keys.js'
import { bindUdp } from './transport/udp.js'
import { Delivery } from './wire/codec.js'

/** Options of {@link warmUp}. */
export interface WarmupOptions {
  /** Request/response round trips, 1..100000. Default 3000 (~0.4 s on a 2-vCPU VM). */
  roundTrips?: number
  /** Encrypt the private session as a production one (the AEAD's paths warm too). Default true. */
  protect?: boolean
  /** Give up after this long, ms. Default 10000. */
  timeoutMs?: number
}

/** What {@link warmUp} did. */
export interface WarmupResult {
  /** Round trips completed (fewer than asked when it stopped early). */
  readonly roundTrips: number
  /** Private sessions they ran on: 2 from `2 × SETTLE_ROUND_TRIPS` round trips up, else 1. */
  readonly sessions: number
  /** Wall time, ms. */
  readonly ms: number
  /** Why it stopped early, or undefined when it completed. */
  readonly stopped?: string
}

/** `MeshNode.start`'s warm-up round trips when `warmup` is not given (~0.9 s on a 2-vCPU VM with the node half `MeshNode.start` adds), and `WARPMESH_WARMUP`'s default. */
export const DEFAULT_WARMUP = 3000

/** Largest `roundTrips`. */
export const MAX_WARMUP_ROUND_TRIPS = 100_000

/**
 * Message sizes cycled through: the small ones real traffic is mostly made
 * of, each in one datagram. A fragmented message in the cycle trained V8 on
 * shapes the common path never sees: the fan-out of bench:warmup gained
 * 0 % and 13 % with it, 19-35 % without.
 */
export const SIZES = [64, 64, 200, 64, 1024, 64, 16] as const

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED } as const

/** One-way messages (not answered) in the other delivery modes, one per this many round trips (both halves). */
export const ONE_WAY_EVERY = 16
export const ONE_WAY = [
  { channel: 1, delivery: Delivery.RELIABLE_UNORDERED },
  { channel: 2, delivery: Delivery.UNRELIABLE },
  { channel: 3, delivery: Delivery.UNRELIABLE_SEQUENCED },
  { channel: 1, delivery: Delivery.RELIABLE_ORDERED },
] as const
/** A message sent with `sendAcked` (a waiter), one per this many round trips. */
export const ACKED_EVERY = 64
/** Where the `sendAcked` messages and the bursts go: reliable-ordered, not the echoed channel. */
const SIDE = { channel: 1, delivery: Delivery.RELIABLE_ORDERED } as const
/**
 * A burst of BURST one-way messages in one turn, one per BURST_EVERY round
 * trips: small messages queued together travel as one batch frame, which real
 * traffic makes (a node with several messages for one peer) and plain
 * request/response never does; its first batch deoptimized send, the frame
 * decoder and the receive path.
 */
export const BURST_EVERY = 32
const BURST = 4
/** An idle gap of IDLE_MS (longer than the ACK delay) after one round trip in this many. */
const IDLE_EVERY = 250
const IDLE_MS = 2

/** Datagram size of the private session: that of a path between hosts (the endpoint's default `maxDatagram`). */
const DATAGRAM = 1200

/**
 * Round trips of the first, short session: closing a session (its queues
 * cleared, its socket closed) changes what V8 assumed about those objects'
 * fields, and every optimized function built on the assumption is thrown
 * away. Paying that once here, before the main session, keeps the code the
 * main session trains: with one session, a node's first thousands of real
 * messages recompiled it all again (60-70 functions; a downstream's CPU per
 * message stayed at the cold figure for ~2,000 messages); after this short
 * session and close, 3-5 per 500 messages, as in steady state.
 */
export const SETTLE_ROUND_TRIPS = 300

/**
 * How `roundTrips` split over sessions (both halves): the first
 * {@link SETTLE_ROUND_TRIPS} on one of their own, the rest on a second;
 * all on one under twice that.
 */
export function sessionLengths(roundTrips: number): number[] {
  return roundTrips >= 2 * SETTLE_ROUND_TRIPS ? [SETTLE_ROUND_TRIPS, roundTrips - SETTLE_ROUND_TRIPS] : [roundTrips]
}

/**
 * Longest a private session may take to open (and, in the mesh half, a
 * private node to join), ms, whatever the time limit: on loopback it takes
 * milliseconds even on a machine busy starting many nodes at once, so a
 * longer wait means it cannot work here (a firewall, no loopback).
 */
export const STALL_MS = 2000

/**
 * Exchange `roundTrips` request/response pairs between two private
 * endpoints on 127.0.0.1 and close them: the first {@link SETTLE_ROUND_TRIPS}
 * on a session of their own, closed before the rest run on a second one
 * (all on one when `roundTrips` is under twice that). Rejects only for
 * invalid options; a warm-up that cannot run resolves with `stopped` set.
 */
export async function warmUp(options: WarmupOptions = {}): Promise<WarmupResult> {
  const roundTrips = options.roundTrips ?? 3000
  if (!Number.isInteger(roundTrips) || roundTrips < 1 || roundTrips > MAX_WARMUP_ROUND_TRIPS) {
    throw new RangeError(`roundTrips must be an integer 1..${MAX_WARMUP_ROUND_TRIPS}, got ${roundTrips}`)
  }
  const timeoutMs = options.timeoutMs ?? 10_000
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`)
  const started = performance.now()
  const deadline = started + timeoutMs
  // node's timer objects change layout when the process first makes an
  // interval (setTimeout leaves a field null that setInterval sets to a
  // number), and V8 then throws away every optimized function that arms a
  // timer, the endpoint's included. Applications make intervals (the bench
  // harness when its fan-out starts): made here, that costs nothing later.
  clearInterval(setInterval(noop, 1000))
  const protect = options.protect !== false
  let done = 0
  let sessions = 0
  let stopped: string | undefined
  for (const n of sessionLengths(roundTrips)) {
    const r = await runSession(n, protect, deadline, timeoutMs)
    done += r.done
    sessions++
    stopped = r.stopped
    if (stopped !== undefined) break
  }
  const ms = performance.now() - started
  return stopped === undefined ? { roundTrips: done, sessions, ms } : { roundTrips: done, sessions, ms, stopped }
}

/** One private session: `roundTrips` request/response pairs, then both endpoints closed; gives up at `deadline` (`limitMs` after the warm-up began). */
async function runSession(roundTrips: number, protect: boolean, deadline: number, limitMs: number): Promise<{ done: number, stopped?: string }> {
  const security = protect ? { keys: [warmupKey()] } : { insecure: true }
  const timeoutMs = Math.max(1, deadline - performance.now())
  const endpoints: Endpoint[] = []
  let done = 0
  let stopped: string | undefined
  try {
    const endpointOptions = { ...security, handshakeTimeoutMs: Math.min(timeoutMs, STALL_MS), loopbackDatagram: DATAGRAM }
    const server = new Endpoint(await bindUdp({ address: '127.0.0.1' }), endpointOptions)
    endpoints.push(server)
    const client = new Endpoint(await bindUdp({ address: '127.0.0.1' }), endpointOptions)
    endpoints.push(client)
    server.on('message', (data: Uint8Array, s: Session, channel: number) => { if (channel === ORDERED.channel) s.send(data, ORDERED) })
    const session = await client.connect('127.0.0.1', server.port)
    const messages = SIZES.map((n) => Buffer.alloc(n, 0x5a))
    await new Promise<void>((resolve) => {
      // Set when this promise settles: an idle gap's timer or a late answer must
      // not send on a session the finally below is closing.
      let finished = false
      const finish = (): void => { finished = true; clearTimeout(timer); resolve() }
      const timer = setTimeout(() => { stopped = `timed out after ${limitMs} ms`; finish() }, timeoutMs)
      const next = (): void => { if (!finished) session.send(messages[done % messages.length]!, ORDERED) }
      client.on('message', () => {
        if (finished) return
        if (++done >= roundTrips) { finish(); return }
        // What real traffic also does, so that it finds no path V8 has not seen:
        // one-way messages in the other delivery modes, and now and then an idle
        // gap in which the delayed ACK leaves on its own and the timer fires.
        if (done % ONE_WAY_EVERY === 0) session.send(messages[0]!, ONE_WAY[(done / ONE_WAY_EVERY) % ONE_WAY.length]!)
        if (done % ACKED_EVERY === 0) session.sendAcked(messages[0]!, SIDE).catch(() => {})
        if (done % BURST_EVERY === 0) for (let i = 0; i < BURST; i++) session.send(messages[i % 2]!, SIDE)
        if (done % IDLE_EVERY === 0) setTimeout(next, IDLE_MS)
        else next()
      })
      next()
    })
  } catch (err) {
    stopped = err instanceof Error ? err.message : String(err)
  } finally {
    // endpoints: [server, client]; the client first, so that the server hears it leave.
    await closeInOrder(endpoints[1], endpoints[0])
    await endpoints[0]?.close().catch(() => {})
  }
  return stopped === undefined ? { done } : { done, stopped }
}

/**
 * A random network key whose key id (a u32 the handshake carries) is 2^31 or
 * more. V8 keeps a number below 2^30 as a small integer and anything larger
 * as a heap number; code optimized on the warm-up's small ids was thrown away
 * ("lost precision", "wrong map": `decodePacket`, the handshake's fields)
 * when a real network key had a large one, as half of them do. Trained on a
 * large id, the same code takes both.
 */
export function warmupKey(): Buffer {
  for (;;) {
    const key = randomBytes(32)
    if (keyId(key) >= 0x80000000) return key
  }
}

function noop(): void {}

/** Longest {@link closeInOrder} waits for the other side to see a close, ms. */
const CLOSE_WAIT_MS = 100

/**
 * Close `first` and wait until the endpoint `second` has seen one of its
 * sessions close (at most {@link CLOSE_WAIT_MS}); the caller closes
 * `second` after. Receiving a peer's CLOSE is a
 * path real traffic meets (a peer shutting down); closing both at once, the
 * warm-up never met it, and its first real CLOSE — the private coordinator
 * of the node half hearing the private nodes leave, right before the node
 * starts — deoptimized the receive path for want of feedback (`readFrame`'s
 * reason field, `decodeFrames`, `receive`: "insufficient type feedback").
 * Also used by the node half (`warmUpMesh`, lib/mesh/warmup.ts).
 */
export async function closeInOrder(first: { close(): Promise<void> } | undefined, second: Endpoint | undefined): Promise<void> {
  const seen = second === undefined || second.sessions().length === 0
    ? Promise.resolve()
    : new Promise<void>((resolve) => {
      const onDown = (): void => { clearTimeout(timer); resolve() }
      const timer = setTimeout(() => { second.off('session-down', onDown); resolve() }, CLOSE_WAIT_MS)
      second.once('session-down', onDown)
    })
  await first?.close().catch(() => {})
  await seen
}
