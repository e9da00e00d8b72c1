/**
 * The protocol's own cost per round trip, with warm caches: two protected
 * {@link Endpoint}s in this one process over an in-memory transport (each
 * datagram copied, as the kernel copies it, and delivered from `setImmediate`,
 * as a socket callback comes), 64-B request/response on a reliable ordered
 * channel — against a sealed floor in the same process: the same payload
 * sealed and opened by warpmesh's {@link PacketProtector}, with the same copy
 * and delivery, and nothing else. The difference is what sessions, packet
 * numbers, acknowledgements, ordering and the flush cost, with no kernel and
 * no other process in the figure: a low-noise measure for changes to the
 * per-packet path, which the cross-process bench (`npm run bench`) cannot
 * resolve below ~10 %.
 *
 * `--touch KiB` reads and writes that much other memory before each delivery
 * (both variants), standing in for the other processes that run between two
 * packets of a real exchange (data caches only).
 *
 * `--idle-ms N` delivers each datagram N ms later (a timer; node waits at
 * least 1 ms) instead of from `setImmediate`: the process sleeps between two
 * packets and wakes for each, as the processes of a real exchange do. The
 * figures are then CPU time (user + system of this process) per round trip,
 * not elapsed time, which the sleeps would fill: what a packet costs to a
 * process that was idle when it came.
 *
 *   npm run bench:hot-path -- [--round-trips 30000] [--runs 5] [--size 64] [--touch 0] [--idle-ms 0]
 */
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { cpuUsage } from 'node:process'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Endpoint, type Session } from '../lib/endpoint.js'
import { PacketProtector } from '../lib/security/aead.js'
import type { DatagramHandler, Transport } from '../lib/transport/transport.js'
import { Delivery } from '../lib/wire/codec.js'
import { median } from './harness/stats.js'

/** Options of {@link hotPath}. */
export interface HotPathOptions {
  /** Measured round trips per run (as many again, unmeasured, before the first run of each). */
  readonly roundTrips: number
  /** Runs; the figures are their medians. */
  readonly runs: number
  /** Message size, bytes. */
  readonly size: number
  /** Memory read and written before each delivery, KiB (0: none). */
  readonly touchKiB: number
  /** Deliver each datagram this many ms later (0: from `setImmediate`); the figures are then CPU µs. Default 0. */
  readonly idleMs?: number
}

/** µs per round trip (elapsed; CPU time with `idleMs`), medians of the runs. */
export interface HotPathResult {
  readonly warpmesh: number
  readonly floor: number
  /** `warpmesh - floor` of each run, median. */
  readonly overhead: number
  readonly runs: ReadonlyArray<{ readonly warpmesh: number, readonly floor: number }>
}

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED } as const

/** Memory touched before each delivery (see `--touch`): one write per cache line, no allocation. */
class Toucher {
  readonly #mem: Int32Array
  readonly #sink = new Int32Array(1)
  constructor (kib: number) { this.#mem = new Int32Array(kib * 256) }
  touch (): void {
    const m = this.#mem
    let s = 0
    for (let i = 0; i < m.length; i += 16) s = (s + m[i]++) | 0
    this.#sink[0] = s
  }
}

/** How a datagram reaches its receiver, and what a run's figure measures: see `--idle-ms`. */
interface Delivering {
  /** Run `fn` as a socket callback would come: from `setImmediate`, or after `idleMs`. */
  readonly later: (fn: () => void) => void
  /** A reading of the run's clock (elapsed µs, or this process's CPU µs with `idleMs`). */
  readonly clock: () => number
}

function delivering (idleMs: number): Delivering {
  if (idleMs === 0) return { later: (fn) => { setImmediate(fn) }, clock: () => performance.now() * 1000 }
  return {
    later: (fn) => { setTimeout(fn, idleMs) },
    clock: () => { const c = cpuUsage(); return c.user + c.system },
  }
}

/** One end of an in-memory datagram pipe: a copy of each datagram reaches the peer's handler later (see {@link Delivering}). */
class LoopTransport implements Transport {
  readonly family = 'IPv4' as const
  readonly address = '127.0.0.1'
  readonly port: number
  peer: LoopTransport | null = null
  #handler: DatagramHandler = () => {}
  readonly #toucher: Toucher | null
  readonly #later: (fn: () => void) => void
  constructor (port: number, toucher: Toucher | null, later: (fn: () => void) => void) {
    this.port = port
    this.#toucher = toucher
    this.#later = later
  }

  send (chunks: readonly Uint8Array[], _port: number, _address: string): void {
    const data = chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks)
    const peer = this.peer!
    const from = this.port
    const toucher = this.#toucher
    this.#later(() => {
      toucher?.touch()
      peer.#handler(data, from, '127.0.0.1')
    })
  }

  setHandler (handler: DatagramHandler): void { this.#handler = handler }
  async close (): Promise<void> {}
}

interface Pair {
  readonly run: (n: number) => Promise<number>
  readonly close: () => Promise<void>
}

async function endpointPair (size: number, toucher: Toucher | null, d: Delivering): Promise<Pair> {
  const a = new LoopTransport(1, toucher, d.later)
  const b = new LoopTransport(2, toucher, d.later)
  a.peer = b
  b.peer = a
  const keys = [randomBytes(32)]
  const server = new Endpoint(b, { keys })
  const client = new Endpoint(a, { keys })
  server.on('message', (data: Uint8Array, s: Session) => { s.send(data, ORDERED) })
  const session = await client.connect('127.0.0.1', b.port)
  const message = Buffer.alloc(size, 0x5a)
  const run = (n: number): Promise<number> => new Promise((resolve, reject) => {
    let done = 0
    const t0 = d.clock()
    const onMessage = (data: Uint8Array): void => {
      if (data.length !== size || data[0] !== 0x5a || data[size - 1] !== 0x5a) {
        client.off('message', onMessage)
        reject(new Error(`hot-path: answer ${done} came back as ${data.length} bytes, not the ${size} sent`))
        return
      }
      if (++done < n) {
        session.send(message, ORDERED)
        return
      }
      client.off('message', onMessage)
      resolve((d.clock() - t0) / n)
    }
    client.on('message', onMessage)
    session.send(message, ORDERED)
  })
  return { run, close: async () => { await client.close(); await server.close() } }
}

function sealedPair (size: number, toucher: Toucher | null, d: Delivering): Pair {
  const k1 = randomBytes(32)
  const k2 = randomBytes(32)
  const ends = [new PacketProtector(k1, k2), new PacketProtector(k2, k1)] as const
  const header = Buffer.alloc(6, 1)
  const message = Buffer.alloc(size, 0x5a)
  const next = [0, 0]
  const run = (n: number): Promise<number> => new Promise((resolve, reject) => {
    let done = 0
    const t0 = d.clock()
    // `from` seals `data` and delivers a copy of it to the other end, which opens it.
    const deliver = (from: 0 | 1, data: Uint8Array): void => {
      const pn = next[from]!++
      const sealed = Buffer.from(ends[from].seal(header, pn, data))
      d.later(() => {
        toucher?.touch()
        const to = from === 0 ? 1 : 0
        const opened = ends[to].open(header, pn, sealed, sealed.subarray(0, sealed.length - 16))
        if (opened === null || opened.length !== size || opened[0] !== 0x5a || opened[size - 1] !== 0x5a) {
          reject(new Error('hot-path floor: a datagram did not open to what was sealed'))
          return
        }
        if (to === 1) deliver(1, opened)
        else if (++done < n) deliver(0, message)
        else resolve((d.clock() - t0) / n)
      })
    }
    deliver(0, message)
  })
  return { run, close: async () => {} }
}

/** Measure; see the module comment. */
export async function hotPath (o: HotPathOptions): Promise<HotPathResult> {
  const toucher = o.touchKiB > 0 ? new Toucher(o.touchKiB) : null
  const idleMs = o.idleMs ?? 0
  if (!Number.isInteger(idleMs) || idleMs < 0) throw new RangeError(`idleMs must be an integer ≥ 0, got ${idleMs}`)
  const d = delivering(idleMs)
  const w = await endpointPair(o.size, toucher, d)
  const f = sealedPair(o.size, toucher, d)
  try {
    await w.run(o.roundTrips)
    await f.run(o.roundTrips)
    const runs: Array<{ warpmesh: number, floor: number }> = []
    for (let i = 0; i < o.runs; i++) {
      // Alternating which goes first, so that neither always follows the other.
      if (i % 2 === 0) {
        const warpmesh = await w.run(o.roundTrips)
        runs.push({ warpmesh, floor: await f.run(o.roundTrips) })
      } else {
        const floor = await f.run(o.roundTrips)
        runs.push({ warpmesh: await w.run(o.roundTrips), floor })
      }
    }
    return {
      warpmesh: median(runs.map((r) => r.warpmesh)),
      floor: median(runs.map((r) => r.floor)),
      overhead: median(runs.map((r) => r.warpmesh - r.floor)),
      runs,
    }
  } finally {
    await w.close()
    await f.close()
  }
}

function positiveInt (name: string, value: string, min: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${value}`)
  return n
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      'round-trips': { type: 'string', default: '30000' },
      runs: { type: 'string', default: '5' },
      size: { type: 'string', default: '64' },
      touch: { type: 'string', default: '0' },
      'idle-ms': { type: 'string', default: '0' },
    },
  })
  const o: HotPathOptions = {
    roundTrips: positiveInt('round-trips', values['round-trips'], 1),
    runs: positiveInt('runs', values.runs, 1),
    size: positiveInt('size', values.size, 1),
    touchKiB: positiveInt('touch', values.touch, 0),
    idleMs: positiveInt('idle-ms', values['idle-ms'], 0),
  }
  const r = await hotPath(o)
  const f = (x: number): string => x.toFixed(2).padStart(7)
  const idle = o.idleMs! > 0 ? `, each datagram delivered ${o.idleMs} ms later (the process sleeps between packets)` : ''
  const unit = o.idleMs! > 0 ? 'CPU µs (user + system) per round trip' : 'µs per round trip'
  console.log(`round trips of ${o.size} B in one process, ${o.roundTrips} per run${o.touchKiB > 0 ? `, ${o.touchKiB} KiB touched before each delivery` : ''}${idle}; ${unit}`)
  console.log('run  warpmesh  sealed floor  warpmesh - floor')
  r.runs.forEach((x, i) => { console.log(`${String(i + 1).padStart(3)}  ${f(x.warpmesh)}   ${f(x.floor)}       ${f(x.warpmesh - x.floor)}`) })
  console.log(`med  ${f(r.warpmesh)}   ${f(r.floor)}       ${f(r.overhead)}`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`bench:hot-path: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
