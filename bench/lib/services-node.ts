/**
 * Entry of every `bench:services` node process: a warpmesh coordinator, or
 * one directory node (warpmesh or Redis, see services-backend.ts). Driven by
 * the driver over an IPC pipe (`serialization: 'advanced'`): requests carry
 * `reqId` and get one reply; the process also sends `report` messages on
 * its own when an expectation is met, stamped with `process.hrtime.bigint()`
 * (CLOCK_MONOTONIC on Linux: one clock for every process of the machine).
 *
 * It exits when asked to close, when the pipe goes away (the driver died),
 * or on an uncaught error (reported first).
 */

import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { Coordinator } from '../../lib/mesh/coordinator.js'
import { generateKey } from '../../lib/security/keys.js'
import { siblingModule } from '../harness/variant.js'
import type { BackendConfig, BackendModule, BenchPlayer, DirectoryBackend } from './services-backend.js'

/** Requests from the driver. */
export type ServicesRequest =
  | { op: 'start-coordinator', heartbeatMs: number, leaseMisses: number }
  | { op: 'start', backend: 'warpmesh' | 'redis', config: BackendConfig }
  | { op: 'create-network' }
  | { op: 'join', players: BenchPlayer[], server: string }
  | { op: 'leave', players: BenchPlayer[] }
  | { op: 'change-server', player: BenchPlayer, to: string }
  | { op: 'expect', id: number, player: BenchPlayer, server: string }
  | { op: 'expect-gone', id: number, owner: string, players: BenchPlayer[] }
  | { op: 'cancel', id: number }
  | { op: 'lookup-bench', players: Array<{ player: BenchPlayer, server: string }>, count: number, batch: number }
  | { op: 'wait', size?: number, owners?: string[], timeoutMs: number }
  /** Bind the floor's UDP socket (once; later calls answer its port). */
  | { op: 'udp-bind' }
  | { op: 'udp-fanout', id: number, ports: number[] }
  | { op: 'mesh-fanout', id: number, to: string[] }
  | { op: 'heap' }
  | { op: 'now' }
  | { op: 'stats' }
  | { op: 'close' }

/** A request as sent, with its id. */
export type ServicesEnvelope = ServicesRequest & { reqId: number }

/** Replies (`reqId` > 0) and reports (`report`). */
export type ServicesMessage =
  | { reqId: number, ok: true, value: unknown }
  | { reqId: number, ok: false, error: string }
  | { report: 'seen', id: number, atNs: bigint }
  | { report: 'gone', id: number, atNs: bigint, stillListed: number }
  | { report: 'fatal', error: string }

/** The final state of an expectation, returned by `cancel`. */
export interface ExpectationState {
  /** Whether it held when cancelled. */
  readonly met: boolean
  /** When it last became true (hrtime ns), 0n if never. */
  readonly atNs: bigint
  /** Times it became false again after being met. */
  readonly flaps: number
  /** Whether the sweep, not an event, saw it become true (then `atNs` may be up to the sweep period late). */
  readonly polled: boolean
}

/** Result of `lookup-bench`. */
export interface LookupBenchResult {
  /** `each`: every lookup awaited and timed alone; `batch`: `batch` calls timed together (a call is too short to time alone). */
  readonly kind: 'each' | 'batch'
  /** Nanoseconds per lookup: one value per lookup (`each`) or per batch (`batch`). */
  readonly perCallNs: number[]
  /** Lookups whose answer was not the expected server. */
  readonly mismatches: number
  readonly lookups: number
}

interface Expectation {
  readonly test: () => boolean
  met: boolean
  atNs: bigint
  flaps: number
  polled: boolean
  /** For `expect-gone`: reported once. */
  readonly onMet: (atNs: bigint) => void
}

/**
 * Sweep of pending expectations between events, ms. Events are the trigger
 * (both directories signal every change of a node's view); the sweep is a
 * fallback, kept slow so that it does not load the machine, and what it
 * catches is counted (`ExpectationState.polled`).
 */
const POLL_MS = 20

/**
 * Reports, and replies to the changes the bench times (join, leave,
 * change-server), are held this long, ms: sent at once they would wake the
 * driver while other nodes are still receiving the change, and on a small
 * machine the driver would compete with them for a CPU. The stamps are taken
 * before; only the IPC message waits.
 */
const QUIET_MS = 10

/** Ops whose reply is held for {@link QUIET_MS}. */
const TIMED_OPS = new Set<string>(['join', 'leave', 'change-server', 'udp-fanout', 'mesh-fanout'])

let backend: DirectoryBackend | undefined
let coordinator: Coordinator | undefined
const expectations = new Map<number, Expectation>()
let poll: ReturnType<typeof setInterval> | undefined
/** The fan-out floor's raw UDP socket (no protocol, no crypto): every datagram received is reported with its stamp. */
let udp: Socket | undefined

function send(msg: ServicesMessage, then?: () => void): void {
  if (process.connected) process.send!(msg, undefined, {}, () => then?.())
  else then?.()
}

function sendQuietly(msg: ServicesMessage): void {
  setTimeout(() => { send(msg) }, QUIET_MS)
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

function need(): DirectoryBackend {
  if (backend === undefined) throw new Error('no directory started in this process (send start first)')
  return backend
}

function checkExpectations(polled = false): void {
  if (expectations.size === 0) return
  const now = process.hrtime.bigint()
  for (const e of expectations.values()) {
    const ok = e.test()
    if (ok && !e.met) {
      e.met = true
      e.atNs = now
      e.polled = polled
      e.onMet(now)
    } else if (!ok && e.met) {
      e.met = false
      e.flaps++
    }
  }
}

function addExpectation(id: number, e: Expectation): boolean {
  if (expectations.has(id)) throw new RangeError(`expectation ${id} already registered`)
  expectations.set(id, e)
  poll ??= setInterval(() => { checkExpectations(true) }, POLL_MS)
  checkExpectations()
  return e.met
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: () => string): Promise<number> {
  const start = performance.now()
  while (!pred()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return performance.now() - start
}

async function lookupBench(b: DirectoryBackend, req: Extract<ServicesRequest, { op: 'lookup-bench' }>): Promise<LookupBenchResult> {
  const { players, count, batch } = req
  if (players.length === 0) throw new RangeError('lookup-bench needs players')
  let mismatches = 0
  const first = b.lookup(players[0]!.player)
  const perCallNs: number[] = []
  if (first instanceof Promise) {
    await first
    for (let i = 0; i < count; i++) {
      const { player, server } = players[i % players.length]!
      const t0 = process.hrtime.bigint()
      const got = await b.lookup(player)
      perCallNs.push(Number(process.hrtime.bigint() - t0))
      if (got !== server) mismatches++
    }
    return { kind: 'each', perCallNs, mismatches, lookups: count }
  }
  const batches = Math.max(1, Math.ceil(count / batch))
  for (let k = 0; k < batches; k++) {
    const base = k * batch
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < batch; i++) {
      const { player, server } = players[(base + i) % players.length]!
      if (b.lookup(player) !== server) mismatches++
    }
    perCallNs.push(Number(process.hrtime.bigint() - t0) / batch)
  }
  return { kind: 'batch', perCallNs, mismatches, lookups: batches * batch }
}

async function heapUsed(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('heap needs the process started with --expose-gc')
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

async function handle(req: ServicesRequest): Promise<unknown> {
  switch (req.op) {
    case 'start-coordinator': {
      const key = generateKey()
      coordinator = await Coordinator.start({
        id: 'coordinator', address: '127.0.0.1', port: 0, keys: [Buffer.from(key, 'hex')],
        heartbeatMs: req.heartbeatMs, leaseMisses: req.leaseMisses,
      })
      return { host: '127.0.0.1', port: coordinator.port, key, pid: process.pid }
    }
    case 'start': {
      if (backend !== undefined) throw new Error('a directory is already started in this process')
      const mod = await import(siblingModule(import.meta.url, `services-${req.backend}`).href) as BackendModule
      backend = await mod.createBackend(req.config)
      backend.onChange(() => { checkExpectations() })
      backend.onMeshProbe?.((id, atNs) => { sendQuietly({ report: 'seen', id, atNs }) })
      return { pid: process.pid }
    }
    case 'create-network': {
      const b = need()
      if (b.createNetwork === undefined) throw new Error('this directory has no deferred network')
      b.createNetwork()
      return null
    }
    case 'join': {
      const atNs = process.hrtime.bigint()
      await need().join(req.players, req.server)
      return atNs
    }
    case 'leave': {
      const atNs = process.hrtime.bigint()
      await need().leave(req.players)
      return atNs
    }
    case 'change-server': {
      const b = need()
      if (b.changeServer === undefined) throw new Error('this directory moves players with leave + join')
      const atNs = process.hrtime.bigint()
      await b.changeServer(req.player, req.to)
      return atNs
    }
    case 'expect': {
      const b = need()
      const { id, player, server } = req
      return addExpectation(id, {
        test: () => b.serverOf(player) === server, met: false, atNs: 0n, flaps: 0, polled: false,
        onMet: (atNs) => { sendQuietly({ report: 'seen', id, atNs }) },
      })
    }
    case 'expect-gone': {
      const b = need()
      const { id, owner, players } = req
      let reported = false
      return addExpectation(id, {
        test: () => b.listedFor(owner) === 0, met: false, atNs: 0n, flaps: 0, polled: false,
        onMet: (atNs) => {
          if (reported) return
          reported = true
          b.stillListed(players).then(
            (stillListed) => { sendQuietly({ report: 'gone', id, atNs, stillListed }) },
            () => { sendQuietly({ report: 'gone', id, atNs, stillListed: -1 }) },
          )
        },
      })
    }
    case 'cancel': {
      const e = expectations.get(req.id)
      if (e === undefined) throw new RangeError(`no expectation ${req.id}`)
      checkExpectations(true)
      expectations.delete(req.id)
      if (expectations.size === 0 && poll !== undefined) { clearInterval(poll); poll = undefined }
      const state: ExpectationState = { met: e.met, atNs: e.atNs, flaps: e.flaps, polled: e.polled }
      return state
    }
    case 'lookup-bench':
      return await lookupBench(need(), req)
    case 'wait': {
      const b = need()
      const { size, owners, timeoutMs } = req
      return await waitUntil(
        () => (size === undefined || b.size() === size) && (owners === undefined || owners.every((o) => b.owners().includes(o))),
        timeoutMs,
        () => `${size === undefined ? '' : `${size} players (have ${b.size()})`} ${owners === undefined ? '' : `owners ${owners.join(',')} (have ${b.owners().join(',')})`}`,
      )
    }
    case 'udp-bind': {
      if (udp !== undefined) return udp.address().port
      const sock = createSocket('udp4')
      sock.on('message', (m) => {
        const atNs = process.hrtime.bigint()
        if (m.length >= 4) sendQuietly({ report: 'seen', id: m.readUInt32LE(0), atNs })
      })
      await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(0, '127.0.0.1', () => { sock.off('error', reject); resolve() }) })
      udp = sock
      return sock.address().port
    }
    case 'udp-fanout': {
      if (udp === undefined) throw new Error('udp-fanout before udp-bind')
      const m = Buffer.alloc(64)
      m.writeUInt32LE(req.id, 0)
      const atNs = process.hrtime.bigint()
      for (const port of req.ports) udp.send(m, port, '127.0.0.1')
      return atNs
    }
    case 'mesh-fanout': {
      const b = need()
      if (b.meshFanout === undefined) throw new Error('this directory has no mesh to probe')
      return b.meshFanout(req.id, req.to)
    }
    case 'heap':
      return await heapUsed()
    case 'now':
      return process.hrtime.bigint()
    case 'stats':
      return backend?.stats() ?? (coordinator === undefined ? {} : { ...coordinator.stats() })
    case 'close':
      if (poll !== undefined) clearInterval(poll)
      udp?.close()
      await Promise.race([
        Promise.all([backend?.close(), coordinator?.close()]),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ])
      return null
  }
}

process.on('message', (msg: ServicesEnvelope) => {
  handle(msg).then(
    (value) => {
      const reply: ServicesMessage = { reqId: msg.reqId, ok: true, value }
      if (TIMED_OPS.has(msg.op)) sendQuietly(reply)
      else send(reply, msg.op === 'close' ? () => process.exit(0) : undefined)
    },
    (err: unknown) => { send({ reqId: msg.reqId, ok: false, error: describe(err) }) },
  )
})

process.on('disconnect', () => { process.exit(0) })

process.on('uncaughtException', (err) => {
  send({ report: 'fatal', error: `uncaught in services node ${process.pid}: ${describe(err)}` }, () => process.exit(1))
  setTimeout(() => process.exit(1), 1000).unref()
})
