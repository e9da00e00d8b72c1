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
 * back and forth, and closes them. Nothing
 * it does is visible to the mesh: no coordinator, no other node, and the
 * node's own endpoint is not created yet when `MeshNode.start` calls it.
 * Only bad options reject: a warm-up that cannot run (no loopback, a closed
 * firewall) or stalls ends at its time limit and reports how far it got.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { Endpoint, type Session } from './endpoint.js'
import { bindUdp } from './transport/udp.js'
import { Delivery } from './wire/codec.js'

/** Options of {@link warmUp}. */
export interface WarmupOptions {
  /** Request/response round trips, 1..100000. Default 3000 (~0.3 s on a 2-vCPU VM). */
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
  /** Wall time, ms. */
  readonly ms: number
  /** Why it stopped early, or undefined when it completed. */
  readonly stopped?: string
}

/** Largest `roundTrips`. */
export const MAX_WARMUP_ROUND_TRIPS = 100_000

/**
 * Message sizes cycled through: the small ones real traffic is mostly made
 * of, each in one datagram. A fragmented message in the cycle trained V8 on
 * shapes the common path never sees: the fan-out of bench:warmup gained
 * 0 % and 13 % with it, 19-35 % without.
 */
const SIZES = [64, 64, 200, 64, 1024, 64, 16] as const

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED } as const

/** Datagram size of the private session: that of a path between hosts (the endpoint's default `maxDatagram`). */
const DATAGRAM = 1200

/**
 * Exchange `roundTrips` request/response pairs between two private
 * endpoints on 127.0.0.1, then close them. Rejects only for invalid
 * options; a warm-up that cannot run resolves with `stopped` set.
 */
export async function warmUp(options: WarmupOptions = {}): Promise<WarmupResult> {
  const roundTrips = options.roundTrips ?? 3000
  if (!Number.isInteger(roundTrips) || roundTrips < 1 || roundTrips > MAX_WARMUP_ROUND_TRIPS) {
    throw new RangeError(`roundTrips must be an integer 1..${MAX_WARMUP_ROUND_TRIPS}, got ${roundTrips}`)
  }
  const timeoutMs = options.timeoutMs ?? 10_000
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`)
  const security = options.protect === false ? { insecure: true } : { keys: [randomBytes(32)] }
  const started = performance.now()
  const endpoints: Endpoint[] = []
  let done = 0
  let stopped: string | undefined
  try {
    const endpointOptions = { ...security, handshakeTimeoutMs: timeoutMs, loopbackDatagram: DATAGRAM }
    const server = new Endpoint(await bindUdp({ address: '127.0.0.1' }), endpointOptions)
    endpoints.push(server)
    const client = new Endpoint(await bindUdp({ address: '127.0.0.1' }), endpointOptions)
    endpoints.push(client)
    server.on('message', (data: Uint8Array, s: Session) => { s.send(data, ORDERED) })
    const session = await client.connect('127.0.0.1', server.port)
    const messages = SIZES.map((n) => Buffer.alloc(n, 0x5a))
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { stopped = `timed out after ${timeoutMs} ms`; resolve() }, timeoutMs)
      client.on('message', () => {
        if (++done < roundTrips) session.send(messages[done % messages.length]!, ORDERED)
        else { clearTimeout(timer); resolve() }
      })
      session.send(messages[0]!, ORDERED)
    })
  } catch (err) {
    stopped = err instanceof Error ? err.message : String(err)
  } finally {
    await Promise.all(endpoints.map((e) => e.close().catch(() => {})))
  }
  const ms = performance.now() - started
  return stopped === undefined ? { roundTrips: done, ms } : { roundTrips: done, ms, stopped }
}
