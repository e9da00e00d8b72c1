/**
 * The pieces of `bench:services` (bench/services.ts), driver side: node
 * processes (bench/lib/services-node.ts), a redis-server started with the
 * redis variant's launcher, clusters of directory nodes, and the four
 * measurements. Every process is tracked and stopped by PID (also when the
 * driver dies: processes.ts), and every wait is bounded.
 *
 * Times: node processes stamp events with `process.hrtime.bigint()`, which
 * on Linux reads CLOCK_MONOTONIC, one clock for every process of the
 * machine; the driver compares those stamps with its own (and
 * {@link checkClock} verifies it on this machine).
 */

import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createRng } from '../../lib/testing.js'
import { loopback } from '../harness/network.js'
import { isRunning, stopProcess, trackProcess } from '../harness/processes.js'
import { summarize } from '../harness/stats.js'
import type { Summary } from '../harness/stats.js'
import type { ExternalContext } from '../harness/variant.js'
import { siblingModule } from '../harness/variant.js'
import { REDIS, variant as redisVariant } from '../variants/redis.js'
import type { BackendConfig, BenchPlayer } from './services-backend.js'
import type { ExpectationState, LookupBenchResult, ServicesMessage, ServicesRequest } from './services-node.js'
import { HEARTBEAT_MS as REDIS_HEARTBEAT_MS, PROXY_TIMEOUT_MS } from './services-redis.js'

const NODE_FILE = fileURLToPath(siblingModule(import.meta.url, 'services-node'))

/** The two directories compared. */
export type BackendName = 'warpmesh' | 'redis'

/** A report a node process sent on its own. */
export type ServicesReport = Extract<ServicesMessage, { report: 'seen' | 'gone' }>

// ---------------------------------------------------------------- processes

/** Driver-side handle of one services node process. */
export class ServicesProc {
  readonly label: string
  readonly child: ChildProcess
  readonly pid: number
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: ReturnType<typeof setTimeout> }>()
  readonly #listeners = new Set<(r: ServicesReport, from: ServicesProc) => void>()
  #fatal: string | undefined
  #killed = false

  /** @param exposeGc - start node with `--expose-gc` (the memory measurement). */
  constructor(label: string, o: { exposeGc?: boolean } = {}) {
    this.label = label
    const args = [...process.execArgv, ...(o.exposeGc === true ? ['--expose-gc'] : []), NODE_FILE]
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    this.pid = trackProcess(this.child)
    this.child.on('message', (msg: ServicesMessage) => {
      if ('report' in msg) {
        if (msg.report === 'fatal') { this.#fatal = msg.error; return }
        for (const l of this.#listeners) l(msg, this)
        return
      }
      const p = this.#pending.get(msg.reqId)
      if (p === undefined) return
      this.#pending.delete(msg.reqId)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.value)
      else p.reject(new Error(`${this.label}: ${msg.error}`))
    })
    this.child.on('exit', (code, signal) => {
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id)
        clearTimeout(p.timer)
        p.reject(new Error(`${this.label} (pid ${this.pid}) ${this.#killed ? 'was killed' : (this.#fatal ?? `exited (${signal ?? `code ${code}`})`)}`))
      }
    })
    this.child.on('error', () => { /* surfaces as 'exit' or a request timeout */ })
  }

  /** Send one request; rejects on an error reply, an exit, or after `timeoutMs` (default 60 000). */
  request<T>(req: ServicesRequest, timeoutMs = 60_000): Promise<T> {
    if (!isRunning(this.child) || !this.child.connected) {
      return Promise.reject(new Error(`${this.label} (pid ${this.pid}) is not running${this.#fatal === undefined ? '' : `: ${this.#fatal}`}`))
    }
    const reqId = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(reqId)
        reject(new Error(`${this.label}: no answer to ${req.op} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.child.send({ ...req, reqId }, (err) => {
        if (err == null) return
        this.#pending.delete(reqId)
        clearTimeout(timer)
        reject(new Error(`${this.label}: IPC send failed: ${err.message}`))
      })
    })
  }

  /** Listen to the reports of this process; returns the function that stops listening. */
  onReport(listener: (r: ServicesReport, from: ServicesProc) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** SIGKILL by PID; resolves with the hrtime (ns) read just before the signal. */
  kill(): bigint {
    this.#killed = true
    const at = process.hrtime.bigint()
    try { process.kill(this.pid, 'SIGKILL') } catch { /* already gone */ }
    return at
  }

  /** Ask it to close, then make sure it is gone (by PID). */
  async stop(): Promise<void> {
    this.#killed = true
    if (isRunning(this.child) && this.child.connected) await this.request({ op: 'close' }, 3000).catch(() => {})
    await stopProcess(this.child, 'SIGTERM', 1000)
  }
}

/** A redis-server on loopback, started by the redis variant's launcher (bench/variants/redis.ts). */
export interface RedisServer {
  readonly host: string
  readonly port: number
  readonly pid: number
  stop(): Promise<void>
}

/** Why Redis cannot run here, or undefined. */
export function redisUnavailable(): Promise<string | undefined> {
  return redisVariant.checkAvailable()
}

/** Start a redis-server (no persistence) on a free loopback port. */
export async function startRedisServer(): Promise<RedisServer> {
  const reason = await redisVariant.checkAvailable()
  if (reason !== undefined) throw new Error(reason)
  const launch = redisVariant.services?.find((s) => s.id === REDIS)?.launch
  if (launch === undefined || launch === 'node-process') throw new Error('the redis variant has no external redis-server launcher')
  const host = await loopback.addHost(REDIS)
  const children: ChildProcess[] = []
  const ctx: ExternalContext = {
    host: host.address,
    previous: undefined,
    freePort: () => host.freePort(),
    spawn: (file, args) => {
      const child = spawn(file, [...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      child.on('error', () => { /* surfaces as an early exit */ })
      trackProcess(child)
      child.stderr?.resume()
      children.push(child)
      return child
    },
  }
  const stopAll = async (): Promise<void> => { await Promise.all(children.map((c) => stopProcess(c, 'SIGTERM', 2000))) }
  try {
    const started = await launch(ctx)
    return { host: host.address, port: (started.info as { port: number }).port, pid: started.process.pid!, stop: stopAll }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/**
 * Check that the node processes' hrtime and the driver's are one clock:
 * a node's stamp must fall between the driver's before and after reading.
 * Returns the largest round trip seen, in µs.
 */
export async function checkClock(proc: ServicesProc, rounds = 20): Promise<number> {
  let worst = 0
  for (let i = 0; i < rounds; i++) {
    const before = process.hrtime.bigint()
    const there = await proc.request<bigint>({ op: 'now' })
    const after = process.hrtime.bigint()
    if (there < before || there > after) throw new Error(`${proc.label}: its clock read ${there} outside the driver's [${before}, ${after}]; process.hrtime is not one clock here`)
    worst = Math.max(worst, Number(after - before) / 1000)
  }
  return worst
}

// ---------------------------------------------------------------- players

/** `count` players with unique names (mixed case), XUIDs and UUIDs; `tag` keeps sets apart. */
export function makePlayers(count: number, tag: string): BenchPlayer[] {
  const out: BenchPlayer[] = []
  for (let i = 0; i < count; i++) {
    out.push({ name: `${tag}Player${i}`, xuid: String(2535_0000_0000_0000 + i * 7919 + tag.length), uuid: randomUUID() })
  }
  return out
}

// ---------------------------------------------------------------- clusters

/** Heartbeat settings of a run. */
export interface Timing {
  /** warpmesh heartbeat, ms (default 1000). */
  readonly meshHeartbeatMs: number
  /** warpmesh missed heartbeats before the lease expires (default 3). */
  readonly leaseMisses: number
  /** Redis proxy heartbeat, ms (RedisBungee: 1000). */
  readonly redisHeartbeatMs: number
  /** Redis proxy timeout, ms (RedisBungee: 30 000). */
  readonly redisTimeoutMs: number
  /** Redis heartbeat stamp resolution, ms (RedisBungee: 1000, epoch seconds). */
  readonly redisStampUnitMs: number
  /** warpmesh nodes' warm-up round trips before binding (`MeshNodeOptions.warmup`; the library's default 0). */
  readonly meshWarmup?: number
}

/** The defaults: warpmesh's own, and the anchors' (RedisBungee). */
export const DEFAULT_TIMING: Timing = {
  meshHeartbeatMs: 1000, leaseMisses: 3,
  redisHeartbeatMs: REDIS_HEARTBEAT_MS, redisTimeoutMs: PROXY_TIMEOUT_MS, redisStampUnitMs: 1000,
}

/** Short settings for tests (`--quick`): everything ten to thirty times faster. */
export const QUICK_TIMING: Timing = {
  meshHeartbeatMs: 200, leaseMisses: 3,
  redisHeartbeatMs: 100, redisTimeoutMs: 1000, redisStampUnitMs: 1,
}

/** Where the cluster places a player: its server (a node id), and for Redis the proxy (node id) that hosts them. */
interface Placement {
  readonly player: BenchPlayer
  server: string
  /** Node hosting the player: the server for warpmesh, the proxy for Redis. */
  host: string
}

/**
 * `nodes` directory nodes of one kind (ids `n1`..`nN`), each its own
 * process, plus the coordinator (warpmesh) or redis-server (Redis).
 */
export class DirectoryCluster {
  readonly backend: BackendName
  readonly timing: Timing
  readonly nodes: ServicesProc[] = []
  /** The driver's truth: every hosted player. */
  readonly players = new Map<string, Placement>()
  #coordinator: ServicesProc | undefined
  #coordinatorInfo: { host: string, port: number, key: string } | undefined
  #redis: RedisServer | undefined
  readonly #extra = new Set<ServicesProc>()
  #nextExpectation = 1

  private constructor(backend: BackendName, timing: Timing) {
    this.backend = backend
    this.timing = timing
  }

  /** Start the cluster and wait until every node knows every other; on failure everything started is stopped. */
  static async start(backend: BackendName, o: { nodes: number, timing: Timing, startTimeoutMs?: number }): Promise<DirectoryCluster> {
    if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > 50) throw new RangeError(`nodes must be an integer from 2 to 50, got ${o.nodes}`)
    const c = new DirectoryCluster(backend, o.timing)
    const timeout = o.startTimeoutMs ?? 30_000
    try {
      if (backend === 'warpmesh') {
        c.#coordinator = new ServicesProc('coordinator')
        c.#coordinatorInfo = await c.#coordinator.request({ op: 'start-coordinator', heartbeatMs: o.timing.meshHeartbeatMs, leaseMisses: o.timing.leaseMisses }, timeout)
      } else {
        c.#redis = await startRedisServer()
      }
      const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`)
      await Promise.all(ids.map(async (id) => { c.nodes.push(await c.#startNode(id, {}, timeout)) }))
      c.nodes.sort((a, b) => Number(a.label.slice(1)) - Number(b.label.slice(1)))
      await Promise.all(c.nodes.map((n) => n.request({ op: 'wait', owners: ids, timeoutMs: timeout }, timeout + 5000)))
    } catch (err) {
      await c.close()
      throw err
    }
    return c
  }

  /** The config a node `id` starts with. */
  config(id: string, o: { deferNetwork?: boolean, listed?: boolean } = {}): BackendConfig {
    const t = this.timing
    return this.backend === 'warpmesh'
      ? { id, coordinator: this.#coordinatorInfo, heartbeatMs: t.meshHeartbeatMs, leaseMisses: t.leaseMisses, deferNetwork: o.deferNetwork, listed: o.listed, warmup: t.meshWarmup }
      : { id, redis: { host: this.#redis!.host, port: this.#redis!.port }, heartbeatMs: t.redisHeartbeatMs, timeoutMs: t.redisTimeoutMs, stampUnitMs: t.redisStampUnitMs }
  }

  async #startNode(id: string, o: { exposeGc?: boolean, deferNetwork?: boolean, listed?: boolean }, timeoutMs: number): Promise<ServicesProc> {
    const proc = new ServicesProc(id, { exposeGc: o.exposeGc })
    this.#extra.add(proc)
    await proc.request({ op: 'start', backend: this.backend, config: this.config(id, o) }, timeoutMs)
    return proc
  }

  /** Start one more node (a kill victim, a memory observer), not counted in `nodes`. Stop it with {@link stopExtra}. */
  async addNode(id: string, o: { exposeGc?: boolean, deferNetwork?: boolean, listed?: boolean } = {}): Promise<ServicesProc> {
    return await this.#startNode(id, o, 30_000)
  }

  /** Stop (or reap, when killed) a node started with {@link addNode}. */
  async stopExtra(proc: ServicesProc): Promise<void> {
    await proc.stop()
    this.#extra.delete(proc)
  }

  /** PIDs of every process the cluster started and still tracks (nodes, extra nodes, coordinator, redis-server). */
  pids(): number[] {
    const out = [...this.nodes, ...this.#extra].map((p) => p.pid)
    if (this.#coordinator !== undefined) out.push(this.#coordinator.pid)
    if (this.#redis !== undefined) out.push(this.#redis.pid)
    return [...new Set(out)]
  }

  /** Node by id. */
  node(id: string): ServicesProc {
    const n = this.nodes.find((p) => p.label === id)
    if (n === undefined) throw new RangeError(`no node ${id}`)
    return n
  }

  /** Node `i` (0-based) hosts `players`, on server `n<i+1>`; waits until every node lists them all. */
  async place(players: readonly BenchPlayer[], timeoutMs = 60_000): Promise<void> {
    const n = this.nodes.length
    const per: BenchPlayer[][] = Array.from({ length: n }, () => [])
    players.forEach((p, i) => { per[i % n]!.push(p) })
    await Promise.all(this.nodes.map(async (node, i) => {
      for (let k = 0; k < per[i]!.length; k += 1000) {
        await node.request({ op: 'join', players: per[i]!.slice(k, k + 1000), server: node.label }, timeoutMs)
      }
      for (const p of per[i]!) this.players.set(p.name, { player: p, server: node.label, host: node.label })
    }))
    await Promise.all(this.nodes.map((node) => node.request({ op: 'wait', size: this.players.size, timeoutMs }, timeoutMs + 5000)))
  }

  /** Each node's directory counters (warpmesh: `Network.stats()`), by id. */
  async stats(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {}
    await Promise.all(this.nodes.map(async (n) => { out[n.label] = await n.request<Record<string, number>>({ op: 'stats' }, 5000).catch(() => ({})) }))
    return out
  }

  /** A fresh expectation id. */
  nextExpectation(): number {
    return this.#nextExpectation++
  }

  /** Stop every process by PID (nodes, extra nodes, coordinator, redis-server). Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.nodes, ...this.#extra].map((p) => p.stop()))
    this.#extra.clear()
    await this.#coordinator?.stop()
    await this.#redis?.stop()
  }
}

/** Wait until every proc in `from` has sent a report for expectation `id`; resolves with them by label. */
function awaitReports(from: readonly ServicesProc[], id: number, timeoutMs: number, what: string): { done: Promise<Map<string, ServicesReport>>, cancel: () => void } {
  const got = new Map<string, ServicesReport>()
  const offs: Array<() => void> = []
  let timer: ReturnType<typeof setTimeout> | undefined
  const cancel = (): void => { clearTimeout(timer); for (const off of offs) off() }
  const done = new Promise<Map<string, ServicesReport>>((resolve, reject) => {
    timer = setTimeout(() => {
      cancel()
      reject(new Error(`${what}: after ${timeoutMs} ms still waiting for ${from.filter((p) => !got.has(p.label)).map((p) => p.label).join(', ')}`))
    }, timeoutMs)
    for (const p of from) {
      offs.push(p.onReport((r) => {
        if (r.id !== id || got.has(p.label)) return
        got.set(p.label, r)
        if (got.size === from.length) { cancel(); resolve(got) }
      }))
    }
  })
  return { done, cancel }
}

const ms = (ns: bigint): number => Number(ns) / 1e6

// ---------------------------------------------------------------- 1. moves

/** One repetition of the move measurement. */
export interface MoveRun {
  /**
   * From the new server's announcement (warpmesh: its `join(p)` call; Redis:
   * the proxy's HSET + PUBLISH) until every node's view shows the player on
   * the new server, ms, per move.
   */
  readonly visibleMs: Summary
  readonly moves: number
  /** Times a node's view left the new server again after showing it (should be 0). */
  readonly flaps: number
  /** Node observations caught by the fallback sweep instead of an event (should be 0: such a stamp may be late). */
  readonly polled: number
}

/**
 * `moves` moves, one at a time: a random player to a random other server.
 * warpmesh: the old server calls `leave(p)`, then (once it answered, which
 * it does 10 ms later: services-node.ts) the new one calls `join(p)`, as when
 * a player leaves one server and connects to another; Redis: the player's proxy does HSET + PUBLISH. Then the time
 * until the last node's view (`locate` / the server cache) shows the new server.
 */
export async function measureMoves(c: DirectoryCluster, o: { moves: number, seed: number, gapMs?: number, timeoutMs?: number }): Promise<MoveRun> {
  const rand = createRng(o.seed)
  const names = [...c.players.keys()].sort()
  const servers = c.nodes.map((n) => n.label)
  const samples: number[] = []
  let flaps = 0
  let polled = 0
  for (let m = 0; m < o.moves; m++) {
    const place = c.players.get(names[Math.floor(rand() * names.length)]!)!
    const others = servers.filter((s) => s !== place.server)
    const to = others[Math.floor(rand() * others.length)]!
    const id = c.nextExpectation()
    await Promise.all(c.nodes.map((n) => n.request({ op: 'expect', id, player: place.player, server: to })))
    const reports = awaitReports(c.nodes, id, o.timeoutMs ?? 30_000, `move ${m + 1} of ${place.player.name} to ${to}`)
    let t0: bigint
    try {
      if (c.backend === 'warpmesh') {
        await c.node(place.server).request<bigint>({ op: 'leave', players: [place.player] })
        t0 = await c.node(to).request<bigint>({ op: 'join', players: [place.player], server: to })
        place.host = to
      } else {
        t0 = await c.node(place.host).request<bigint>({ op: 'change-server', player: place.player, to })
      }
      place.server = to
      await reports.done
    } catch (err) {
      reports.cancel()
      throw err
    }
    const states = await Promise.all(c.nodes.map((n) => n.request<ExpectationState>({ op: 'cancel', id })))
    const missing = states.findIndex((s) => !s.met)
    if (missing >= 0) throw new Error(`move ${m + 1}: ${c.nodes[missing]!.label} no longer shows ${place.player.name} on ${to}`)
    flaps += states.reduce((a, s) => a + s.flaps, 0)
    polled += states.filter((s) => s.polled).length
    const last = states.reduce((a, s) => (s.atNs > a ? s.atNs : a), 0n)
    samples.push(Math.max(0, ms(last - t0)))
    if (o.gapMs !== undefined && o.gapMs > 0) await new Promise((resolve) => setTimeout(resolve, o.gapMs))
  }
  return { visibleMs: summarize(samples), moves: samples.length, flaps, polled }
}

/**
 * Fan-out floors under a move, measured between the node processes of a
 * warpmesh cluster: one node sends a 64-B message to every other, back to
 * back, `rounds` times (the sender taking turns), 10 ms apart; the time until
 * the last process received it, ms. `udp`: raw datagrams (no protocol, no
 * encryption), the least any one-hop fan-out takes on this machine. `mesh`:
 * `MeshNode.send`, reliable-ordered and encrypted, as the services send a
 * delta, without the services' work.
 */
export async function measureFanoutFloor(c: DirectoryCluster, o: { rounds: number, kind: 'udp' | 'mesh' }): Promise<Summary> {
  const ports = o.kind === 'udp' ? await Promise.all(c.nodes.map((n) => n.request<number>({ op: 'udp-bind' }))) : []
  const samples: number[] = []
  for (let r = 0; r < o.rounds; r++) {
    const from = r % c.nodes.length
    const receivers = c.nodes.filter((_, i) => i !== from)
    const id = c.nextExpectation()
    const reports = awaitReports(receivers, id, 10_000, `${o.kind} fan-out floor round ${r + 1}`)
    let got: Map<string, ServicesReport>
    let t0: bigint
    try {
      t0 = await c.nodes[from]!.request<bigint>(o.kind === 'udp'
        ? { op: 'udp-fanout', id, ports: ports.filter((_, i) => i !== from) }
        : { op: 'mesh-fanout', id, to: receivers.map((n) => n.label) })
      got = await reports.done
    } catch (err) {
      reports.cancel()
      throw err
    }
    let last = 0n
    for (const rep of got.values()) if (rep.atNs > last) last = rep.atNs
    samples.push(ms(last - t0))
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return summarize(samples)
}

// ---------------------------------------------------------------- 2. lookups

/** One repetition of the lookup measurement. */
export interface LookupRun {
  /** ns per lookup: per call (Redis, each awaited) or per call of a timed batch (warpmesh). */
  readonly perCallNs: Summary
  readonly kind: 'each' | 'batch'
  readonly lookups: number
}

/** `count` lookups of known players on node n1, each answer checked against the driver's truth. */
export async function measureLookups(c: DirectoryCluster, o: { count: number, batch?: number }): Promise<LookupRun> {
  const players = [...c.players.values()].map((p) => ({ player: p.player, server: p.server }))
  const r = await c.nodes[0]!.request<LookupBenchResult>({ op: 'lookup-bench', players, count: o.count, batch: o.batch ?? 1000 }, 300_000)
  if (r.mismatches > 0) throw new Error(`${c.backend} lookups: ${r.mismatches} of ${r.lookups} answers were not the player's server`)
  return { perCallNs: summarize(r.perCallNs), kind: r.kind, lookups: r.lookups }
}

// ---------------------------------------------------------------- 3. kill

/** One repetition of the kill measurement. */
export interface KillRun {
  /** From SIGKILL until the last node's view listed none of the victim's players, ms. */
  readonly goneMs: number
  /** Each node's time, ms, by id. */
  readonly byNode: Record<string, number>
  readonly players: number
  /** Node observations caught by the fallback sweep instead of an event. */
  readonly polled: number
}

/**
 * A fresh node `victim` hosts `players` players; once every node lists them
 * it is SIGKILLed (by PID) and the driver waits until every node's view lists
 * none of them; each node then checks with a full query (warpmesh: locate
 * every player; Redis: SUNION of the live proxies' sets) that none is listed.
 */
export async function measureKill(c: DirectoryCluster, o: { victim: string, players: number, timeoutMs: number }): Promise<KillRun> {
  const victim = await c.addNode(o.victim)
  try {
    const owners = [...c.nodes.map((n) => n.label), o.victim]
    await victim.request({ op: 'wait', owners, timeoutMs: 30_000 }, 35_000)
    await Promise.all(c.nodes.map((n) => n.request({ op: 'wait', owners, timeoutMs: 30_000 }, 35_000)))
    const players = makePlayers(o.players, o.victim)
    await victim.request({ op: 'join', players, server: o.victim })
    const total = c.players.size + players.length
    await Promise.all(c.nodes.map((n) => n.request({ op: 'wait', size: total, timeoutMs: 30_000 }, 35_000)))
    const id = c.nextExpectation()
    const met = await Promise.all(c.nodes.map((n) => n.request<boolean>({ op: 'expect-gone', id, owner: o.victim, players })))
    if (met.some((m) => m)) throw new Error(`kill ${o.victim}: a node listed none of its players before the kill`)
    const reports = awaitReports(c.nodes, id, o.timeoutMs, `kill of ${o.victim}`)
    const t0 = victim.kill()
    let got: Map<string, ServicesReport>
    try {
      got = await reports.done
    } catch (err) {
      await Promise.all(c.nodes.map((n) => n.request({ op: 'cancel', id }).catch(() => {})))
      throw err
    }
    const states = await Promise.all(c.nodes.map((n) => n.request<ExpectationState>({ op: 'cancel', id })))
    const byNode: Record<string, number> = {}
    let last = 0n
    c.nodes.forEach((n, i) => {
      const r = got.get(n.label) as Extract<ServicesReport, { report: 'gone' }>
      if (r.stillListed !== 0) throw new Error(`kill ${o.victim}: ${n.label} stopped counting its players, but a full query still lists ${r.stillListed}`)
      if (!states[i]!.met) throw new Error(`kill ${o.victim}: ${n.label} lists its players again`)
      byNode[n.label] = ms(states[i]!.atNs - t0)
      if (states[i]!.atNs > last) last = states[i]!.atNs
    })
    return { goneMs: ms(last - t0), byNode, players: players.length, polled: states.filter((s) => s.polled).length }
  } finally {
    await c.stopExtra(victim)
  }
}

// ---------------------------------------------------------------- 4. memory

/** One repetition of the memory measurement. */
export interface MemoryRun {
  readonly players: number
  readonly heapBeforeBytes: number
  readonly heapAfterBytes: number
  readonly bytesPerPlayer: number
  /** From `Network.create` until the observer held every player, ms. */
  readonly fillMs: number
}

/**
 * A fresh observer process (`--expose-gc`) starts its MeshNode, measures
 * the heap after forced GC, creates its `Network` (not listed as a server),
 * waits until its directory holds every player the cluster's nodes host,
 * and measures again.
 */
export async function measureMemory(c: DirectoryCluster, o: { observer: string, timeoutMs: number }): Promise<MemoryRun> {
  if (c.backend !== 'warpmesh') throw new Error('the memory measurement is for warpmesh')
  const obs = await c.addNode(o.observer, { exposeGc: true, deferNetwork: true, listed: false })
  try {
    const players = c.players.size
    const heapBeforeBytes = await obs.request<number>({ op: 'heap' })
    await obs.request({ op: 'create-network' })
    const fillMs = await obs.request<number>({ op: 'wait', size: players, timeoutMs: o.timeoutMs }, o.timeoutMs + 5000)
    const heapAfterBytes = await obs.request<number>({ op: 'heap' })
    return { players, heapBeforeBytes, heapAfterBytes, bytesPerPlayer: (heapAfterBytes - heapBeforeBytes) / players, fillMs }
  } finally {
    await c.stopExtra(obs)
  }
}
