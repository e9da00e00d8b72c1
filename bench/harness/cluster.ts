/**
 * A running set of processes for one variant: its services, the proxy and
 * N downstreams, each a separate process on a {@link Host} of a
 * {@link Network}. The driver talks to node processes over IPC pipes only;
 * measured traffic flows between the node processes over the variant's own
 * sockets.
 *
 * Every process is tracked and stopped by PID: by {@link Cluster.close}, on
 * a failed start, and by an exit/signal hook if the driver dies.
 */

import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Task } from './agent.js'
import { cpuSnapshot } from './cpu.js'
import type { Host, Network } from './network.js'
import { loopback } from './network.js'
import type { ControlReply } from './node-proc.js'
import { isRunning, signalProcess, stopProcess, trackProcess } from './processes.js'
import type { Directory, ExternalContext, NodeContext, ServiceContext, ServiceSpec, Variant } from './variant.js'
import { PROXY_ADDRESS, nodeName, siblingModule } from './variant.js'

const NODE_PROC = fileURLToPath(siblingModule(import.meta.url, 'node-proc'))

/** Thrown by {@link Cluster.start} when the variant cannot run here; `reason` says why. */
export class VariantUnavailableError extends Error {
  readonly code = 'ERR_VARIANT_UNAVAILABLE'
  readonly reason: string
  constructor (variant: string, reason: string) {
    super(`${variant} skipped: ${reason}`)
    this.name = 'VariantUnavailableError'
    this.reason = reason
  }
}

/** A node process failed, exited unexpectedly, or did not answer in time. */
export class NodeProcessError extends Error {
  readonly code = 'ERR_NODE_PROCESS'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NodeProcessError'
  }
}

/** Options of {@link Cluster.start}. */
export interface ClusterOptions {
  /** Downstream servers (addresses 1..N). Default 2. */
  readonly downstreams?: number
  /** Where processes run. Default {@link loopback}. The caller owns (and closes) it. */
  readonly network?: Network
  /** Time allowed for each process to start and for every node to connect, in ms. Default 30 000. */
  readonly startTimeoutMs?: number
  /** Time allowed for any one task, in ms. Default 300 000. */
  readonly taskTimeoutMs?: number
}

/** Driver-side handle of one harness node process. */
class ControlledProcess {
  readonly label: string
  readonly child: ChildProcess
  readonly pid: number
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: ReturnType<typeof setTimeout> }>()
  #nextId = 1
  /** Set before a deliberate kill so the exit is not reported as a failure. */
  expectExit = false
  fatal: string | undefined

  constructor (host: Host, label: string) {
    this.label = label
    const { file, args } = host.command(process.execPath, [...process.execArgv, NODE_PROC])
    this.child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    this.pid = trackProcess(this.child)
    this.child.on('message', (msg: ControlReply) => {
      if (msg.id === 0 && !msg.ok) { this.fatal = msg.error; return }
      const p = this.#pending.get(msg.id)
      if (p === undefined) return
      this.#pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.value)
      else p.reject(new NodeProcessError(`${this.label}: ${msg.error}`))
    })
    this.child.on('exit', (code, signal) => {
      const why = this.fatal ?? `exited (${signal ?? `code ${code}`})`
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id)
        clearTimeout(p.timer)
        p.reject(new NodeProcessError(`${this.label} (pid ${this.pid}) ${this.expectExit ? 'was killed' : why}`))
      }
    })
    this.child.on('error', () => { /* reported through 'exit' or the request timeout */ })
  }

  request (body: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (!isRunning(this.child) || !this.child.connected) {
      return Promise.reject(new NodeProcessError(`${this.label} (pid ${this.pid}) is not running`))
    }
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new NodeProcessError(`${this.label}: no answer to ${String(body.op)} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject, timer })
      this.child.send({ ...body, id }, (err) => {
        if (err != null) {
          this.#pending.delete(id)
          clearTimeout(timer)
          reject(new NodeProcessError(`${this.label}: IPC send failed`, { cause: err }))
        }
      })
    })
  }

  /** Ask the process to close, then make sure it is gone (by PID). */
  async stop (): Promise<void> {
    this.expectExit = true
    if (isRunning(this.child) && this.child.connected) {
      await this.request({ op: 'close' }, 3000).catch(() => {})
    }
    await stopProcess(this.child, 'SIGTERM', 1000)
  }
}

/**
 * When {@link Cluster.kill} sent SIGKILL, and when the driver saw the process
 * exit (hrtime ns). A killed process can still run, and relay, for a moment
 * after the signal on a loaded machine.
 */
export interface KillTimes {
  readonly signalledNs: bigint
  readonly exited: Promise<bigint>
}

/** One messaging node of a cluster, as seen from the driver. */
export interface NodeHandle {
  readonly address: number
  readonly name: string
  readonly host: Host
  /** What it published on its last start. */
  readonly info: unknown
  /** PID of its current process. */
  readonly pid: number
}

/** One service of a cluster, as seen from the driver. */
export interface ServiceHandle {
  readonly id: string
  readonly host: Host
  readonly info: unknown
  readonly pid: number
}

interface NodeEntry { address: number, name: string, host: Host, info: unknown, proc: ControlledProcess }
interface ServiceEntry { spec: ServiceSpec, host: Host, info: unknown, proc: ControlledProcess | undefined, child: ChildProcess }

/** See the module comment. */
export class Cluster {
  readonly variant: Variant
  readonly network: Network
  readonly #nodes: NodeEntry[] = []
  readonly #services = new Map<string, ServiceEntry>()
  /** Every process ever started (node processes and external ones), so none escapes `close`. */
  readonly #allProcs = new Set<ControlledProcess>()
  readonly #extraChildren = new Set<ChildProcess>()
  readonly #startTimeoutMs: number
  readonly #taskTimeoutMs: number
  #nextRun = 1
  #closed = false

  private constructor (variant: Variant, network: Network, options: ClusterOptions) {
    this.variant = variant
    this.network = network
    this.#startTimeoutMs = options.startTimeoutMs ?? 30_000
    this.#taskTimeoutMs = options.taskTimeoutMs ?? 300_000
  }

  /**
   * Start every process of `variant` and connect the nodes. Throws
   * {@link VariantUnavailableError} when the variant cannot run here.
   * On any failure everything already started is stopped before rethrowing.
   */
  static async start (variant: Variant, options: ClusterOptions = {}): Promise<Cluster> {
    const downstreams = options.downstreams ?? 2
    if (!Number.isInteger(downstreams) || downstreams < 1 || downstreams > 253) {
      throw new RangeError(`downstreams must be an integer from 1 to 253, got ${downstreams}`)
    }
    const reason = await variant.checkAvailable()
    if (reason !== undefined) throw new VariantUnavailableError(variant.name, reason)
    const cluster = new Cluster(variant, options.network ?? loopback, options)
    try {
      for (const spec of variant.services ?? []) {
        const host = await cluster.network.addHost(spec.id)
        cluster.#services.set(spec.id, await cluster.#startService(spec, host, undefined))
      }
      await Promise.all(Array.from({ length: downstreams + 1 }, async (_, address) => {
        const name = nodeName(address)
        const host = await cluster.network.addHost(name)
        const entry: NodeEntry = { address, name, host, info: undefined, proc: undefined as unknown as ControlledProcess }
        cluster.#nodes[address] = entry
        await cluster.#startNode(entry, undefined)
      }))
      const directory = cluster.directory()
      await Promise.all(cluster.#nodes.map((n) => n.proc.request({ op: 'connect', directory }, cluster.#startTimeoutMs)))
    } catch (err) {
      await cluster.close()
      throw err
    }
    return cluster
  }

  async #startNode (entry: NodeEntry, previous: unknown): Promise<void> {
    const proc = new ControlledProcess(entry.host, entry.name)
    this.#allProcs.add(proc)
    entry.proc = proc
    const ctx: NodeContext = {
      address: entry.address,
      name: entry.name,
      role: entry.address === PROXY_ADDRESS ? 'proxy' : 'downstream',
      host: entry.host.address,
      previous,
    }
    const started = await proc.request({ op: 'start-node', module: this.variant.module.href, ctx }, this.#startTimeoutMs) as { info: unknown }
    entry.info = started.info
  }

  async #startService (spec: ServiceSpec, host: Host, previous: unknown): Promise<ServiceEntry> {
    if (spec.launch === 'node-process') {
      const proc = new ControlledProcess(host, spec.id)
      this.#allProcs.add(proc)
      const ctx: ServiceContext = { id: spec.id, host: host.address, previous }
      const started = await proc.request({ op: 'start-service', module: this.variant.module.href, ctx }, this.#startTimeoutMs) as { info: unknown }
      return { spec, host, info: started.info, proc, child: proc.child }
    }
    let last: ChildProcess | undefined
    const ctx: ExternalContext = {
      host: host.address,
      previous,
      freePort: () => host.freePort(),
      spawn: (file, args) => {
        const cmd = host.command(file, args)
        const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] })
        child.on('error', () => { /* surfaces as an early exit */ })
        trackProcess(child)
        child.stderr?.resume()
        last = child
        this.#extraChildren.add(child)
        return child
      },
    }
    try {
      const started = await spec.launch(ctx)
      return { spec, host, info: started.info, proc: undefined, child: started.process }
    } catch (err) {
      if (last !== undefined) await stopProcess(last, 'SIGKILL')
      throw err
    }
  }

  /** How to reach every node and service, as given to the nodes. */
  directory (): Directory {
    const services: Record<string, { host: string, info: unknown }> = {}
    for (const [id, s] of this.#services) services[id] = { host: s.host.address, info: s.info }
    return {
      nodes: this.#nodes.map((n) => ({ address: n.address, name: n.name, host: n.host.address, info: n.info })),
      services,
    }
  }

  /** Messaging nodes by address (0 is the proxy). */
  get nodes (): readonly NodeHandle[] {
    return this.#nodes.map((n) => ({ address: n.address, name: n.name, host: n.host, info: n.info, pid: n.proc.pid }))
  }

  /** Number of downstream servers. */
  get downstreams (): number {
    return this.#nodes.length - 1
  }

  /** Services by id. */
  get services (): ReadonlyMap<string, ServiceHandle> {
    const m = new Map<string, ServiceHandle>()
    for (const [id, s] of this.#services) m.set(id, { id, host: s.host, info: s.info, pid: s.child.pid! })
    return m
  }

  /** CPU µs used so far by every process of the cluster, by node name or service id (NaN where not measurable; see cpu.ts). */
  cpuSnapshot (): Map<string, number> {
    return cpuSnapshot([
      ...this.#nodes.map((n) => ({ name: n.name, pid: n.proc.pid })),
      ...[...this.#services].map(([id, s]) => ({ name: id, pid: s.child.pid ?? -1 })),
    ])
  }

  /** A fresh run id (u16, never 0) to tell repetitions apart. */
  nextRun (): number {
    const run = this.#nextRun
    this.#nextRun = this.#nextRun >= 0xffff ? 1 : this.#nextRun + 1
    return run
  }

  /** Run one agent task on the node at `address` and resolve with its result. */
  async task<T = unknown> (address: number, task: Task): Promise<T> {
    const n = this.#nodes[address]
    if (n === undefined) throw new RangeError(`no node at address ${address}`)
    return await n.proc.request({ op: 'task', task }, this.#taskTimeoutMs) as T
  }

  /** Variant counters of every node and node-process service, by name. */
  async stats (): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {}
    const procs: Array<[string, ControlledProcess]> = this.#nodes.map((n) => [n.name, n.proc])
    for (const [id, s] of this.#services) if (s.proc !== undefined) procs.push([id, s.proc])
    await Promise.all(procs.map(async ([name, p]) => {
      if (!isRunning(p.child)) return
      out[name] = await p.request({ op: 'stats' }, 5000).catch(() => ({})) as Record<string, number>
    }))
    return out
  }

  #target (target: string): { child: ChildProcess, proc: ControlledProcess | undefined } {
    const node = this.#nodes.find((n) => n.name === target)
    if (node !== undefined) return { child: node.proc.child, proc: node.proc }
    const s = this.#services.get(target)
    if (s !== undefined) return { child: s.child, proc: s.proc }
    throw new RangeError(`no node or service named ${target}`)
  }

  /**
   * SIGKILL the process of node `target` (`proxy`, `d1`, ...) or service
   * `target`, by PID. Returns the hrtime (ns) just before the signal and a
   * promise of the hrtime at which its exit was seen.
   */
  kill (target: string): KillTimes {
    const { child, proc } = this.#target(target)
    if (proc !== undefined) proc.expectExit = true
    const exited = child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve(process.hrtime.bigint())
      : new Promise<bigint>((resolve) => child.once('exit', () => resolve(process.hrtime.bigint())))
    const signalledNs = process.hrtime.bigint()
    signalProcess(child, 'SIGKILL')
    return { signalledNs, exited }
  }

  /**
   * Start `target` again on the same host, handing it its previous info so
   * it can listen on the same port; a restarted node is connected with the
   * current directory. Resolves when it is ready.
   */
  async restart (target: string): Promise<void> {
    const node = this.#nodes.find((n) => n.name === target)
    if (node !== undefined) {
      await stopProcess(node.proc.child, 'SIGKILL')
      await this.#startNode(node, node.info)
      await node.proc.request({ op: 'connect', directory: this.directory() }, this.#startTimeoutMs)
      return
    }
    const s = this.#services.get(target)
    if (s === undefined) throw new RangeError(`no node or service named ${target}`)
    await stopProcess(s.child, 'SIGKILL')
    this.#services.set(target, await this.#startService(s.spec, s.host, s.info))
  }

  /** Stop every process (nodes first, then services in reverse order), by PID. Idempotent. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all(this.#nodes.filter((n) => n?.proc !== undefined).map((n) => n.proc.stop()))
    for (const s of [...this.#services.values()].reverse()) {
      if (s.proc !== undefined) await s.proc.stop()
      else await stopProcess(s.child, 'SIGTERM', 2000)
    }
    await Promise.all([...this.#allProcs].map((p) => p.stop()))
    this.#allProcs.clear()
    for (const c of this.#extraChildren) await stopProcess(c, 'SIGKILL')
    this.#extraChildren.clear()
  }
}
