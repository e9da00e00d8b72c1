/**
 * The contract between the benchmark harness and one messaging system under
 * test ("variant"). A variant module is a single file in `bench/variants/`
 * that is imported in two places:
 *
 * - by the **driver** (the bench runner, one process) for its `variant`
 *   export: a {@link Variant} that describes the processes the system needs;
 * - by every **node process** (one per proxy / downstream / service, started
 *   by the harness) for its `createNode` / `createService` exports
 *   ({@link NodeModule}).
 *
 * The harness owns everything else: starting and stopping processes (always
 * by PID), placing them on loopback or in network namespaces with kernel
 * loss, running the scenarios inside the node processes so that control
 * traffic (IPC pipes) is never on the measured path, and checking every
 * delivered byte.
 *
 * Topology: node **addresses** are small integers. Address 0 is the proxy,
 * addresses 1..N are the downstream servers. Services (a TCP hub, a
 * redis-server, a warpmesh coordinator) have string ids and no address: they
 * never send or receive bench messages themselves.
 *
 * Adding a variant (for example warpmesh):
 *
 * ```ts
 * // bench/variants/warpmesh.ts
 * export const variant: Variant = {
 *   name: 'warpmesh',
 *   summary: 'UDP mesh, direct peer-to-peer, coordinator keeps the peer table',
 *   guarantees: { reliable: true, ordered: true },
 *   module: siblingModule(import.meta.url, 'warpmesh'),
 *   services: [{ id: 'coordinator', launch: 'node-process' }],
 *   failureTarget: 'coordinator',
 *   async checkAvailable () { return undefined },
 * }
 * export async function createService (ctx: ServiceContext): Promise<ServiceInstance> { ... }
 * export async function createNode (ctx: NodeContext): Promise<BenchNode> { ... }
 * ```
 *
 * and list it in `bench/variants/index.ts`.
 */

import type { ChildProcess } from 'node:child_process'

/** Node address of the proxy. Downstream servers are 1..N. */
export const PROXY_ADDRESS = 0

/** Largest node address a variant must support (it fits in a u16 header field). */
export const MAX_NODE_ADDRESS = 0xfffe

/** The role of a messaging node. */
export type NodeRole = 'proxy' | 'downstream'

/** What the harness passes to {@link NodeModule.createNode} in the node process. */
export interface NodeContext {
  /** This node's address: 0 for the proxy, 1..N for downstreams. */
  readonly address: number
  /** Display name: `proxy`, `d1`, `d2`, ... */
  readonly name: string
  /** Role derived from the address. */
  readonly role: NodeRole
  /**
   * IP address of the host this process runs on: `127.0.0.1` on loopback,
   * a 198.18.0.0/15 address in a network namespace. Bind listening and
   * datagram sockets to it (never to 0.0.0.0).
   */
  readonly host: string
  /**
   * The {@link BenchNode.info} this node published before it was killed,
   * when the harness restarts it (failure scenario); `undefined` on a first
   * start. A server should listen on the same port again.
   */
  readonly previous: unknown
}

/**
 * The directory every node receives once all processes have started: how
 * to reach every node and every service. `info` values are whatever each
 * one published ({@link BenchNode.info}, {@link ServiceInstance.info},
 * {@link ExternalService.info}).
 */
export interface Directory {
  /** Messaging nodes, indexed by address (index 0 is the proxy). */
  readonly nodes: ReadonlyArray<{ readonly address: number, readonly name: string, readonly host: string, readonly info: unknown }>
  /** Services by id. */
  readonly services: Readonly<Record<string, { readonly host: string, readonly info: unknown }>>
}

/** Called once per delivered message. `payload` is only valid during the call. */
export type MessageHandler = (from: number, payload: Buffer) => void

/**
 * One messaging endpoint (the proxy or a downstream), living in its own node
 * process. The harness's agent drives it; the variant implements it as a
 * competent user of its transport would.
 *
 * Ownership: `send`/`broadcast` take ownership of `payload` (the caller never
 * modifies it afterwards, so the node may keep a reference or copy it, as it
 * prefers). Received payloads are lent to the handler for the duration of the
 * call only.
 */
export interface BenchNode {
  /**
   * JSON-serialisable facts other processes need to reach this node (for
   * example `{ port }`). Published to everyone in the {@link Directory}.
   */
  readonly info: unknown
  /**
   * Connect to whatever this node needs (server, hub, peers). Must resolve
   * only when messages sent to this node by any other node will be
   * delivered, for example after a server has acknowledged registration or
   * after a subscription is active: the harness starts measuring right
   * after every node's `connect` has resolved.
   */
  connect(directory: Directory): Promise<void>
  /**
   * Queue one message for the node at address `to`. Returns `false` when the
   * node has queued more than its high-water mark: the message is still
   * accepted (unless a hard bound is hit, in which case it is dropped and
   * counted in {@link BenchNode.stats}), and the caller should await
   * {@link BenchNode.writable} before sending more. Never throws for network
   * conditions.
   */
  send(to: number, payload: Buffer): boolean
  /** Send `payload` to every other messaging node, by the variant's natural broadcast. Same return value as `send`. */
  broadcast(payload: Buffer): boolean
  /** Resolves when `send` would return `true` again (immediately if it already would). */
  writable(): Promise<void>
  /** Install the one message handler (replaces any previous one). */
  setHandler(handler: MessageHandler): void
  /** Variant-specific counters (drops, reconnects, ...), reported alongside results. */
  stats(): Record<string, number>
  /**
   * The round-trip time to node `to` that the system itself reports to its
   * users (its stats, metrics, dashboards), in ms; NaN before it has one.
   * Only for variants that report one (warpmesh); the RTT check compares it
   * with a ping-pong measured beside it.
   */
  roundTripTime?(to: number): number
  /** Release sockets and timers. The process exits afterwards regardless. */
  close(): Promise<void>
}

/** What the harness passes to {@link NodeModule.createService} in a service process. */
export interface ServiceContext {
  /** The service id from {@link ServiceSpec.id}. */
  readonly id: string
  /** Host IP address to bind to (see {@link NodeContext.host}). */
  readonly host: string
  /** Previously published info when restarted, else `undefined` (see {@link NodeContext.previous}). */
  readonly previous: unknown
}

/** A service running in a harness node process (a TCP hub, a coordinator). */
export interface ServiceInstance {
  /** JSON-serialisable facts nodes need to reach it, published in the {@link Directory}. */
  readonly info: unknown
  /** Counters reported alongside results. */
  stats(): Record<string, number>
  /** Stop serving. */
  close(): Promise<void>
}

/**
 * Exports of a variant module as seen from a node process. `createService`
 * is required only when the variant declares `'node-process'` services.
 */
export interface NodeModule {
  createNode(ctx: NodeContext): Promise<BenchNode>
  createService?(ctx: ServiceContext): Promise<ServiceInstance>
}

/** Helpers the harness lends to an {@link ExternalLauncher}. */
export interface ExternalContext {
  /** Host IP address the program must listen on. */
  readonly host: string
  /** Previously published info when restarted, else `undefined`. */
  readonly previous: unknown
  /**
   * A TCP port that is free on `host` right now (best effort: bind, read,
   * close). Launchers should retry on a lost race.
   */
  freePort(): Promise<number>
  /**
   * Start `file` with `args` on the host (inside its network namespace when
   * there is one). The harness records the PID and kills it, by PID, when
   * the cluster closes or the driver exits. stdout and stderr are piped.
   */
  spawn(file: string, args: readonly string[]): ChildProcess
}

/** A running external program (for example `redis-server`). */
export interface ExternalService {
  /** Facts nodes need to reach it, published in the {@link Directory}. */
  readonly info: unknown
  /** The process the harness stops (and kills in the failure scenario), by PID. */
  readonly process: ChildProcess
}

/** Starts an external program; must resolve only once it accepts connections. */
export type ExternalLauncher = (ctx: ExternalContext) => Promise<ExternalService>

/** A process a variant needs besides the messaging nodes. */
export interface ServiceSpec {
  /** Unique id, used in the {@link Directory} and as a failure target. */
  readonly id: string
  /**
   * `'node-process'`: a harness node process calls the module's
   * `createService`. A function: an external program the launcher starts.
   */
  readonly launch: 'node-process' | ExternalLauncher
}

/** What a variant promises; scenarios judge results against it. */
export interface Guarantees {
  /** Every message sent while the system is healthy is delivered exactly once. */
  readonly reliable: boolean
  /** Messages from one sender to one receiver arrive in the order sent. */
  readonly ordered: boolean
}

/**
 * Driver-side description of a variant: the `variant` export of a variant
 * module.
 */
export interface Variant {
  /** Short unique name used in output and JSON (`tcp-star`). */
  readonly name: string
  /** One line describing the architecture, for reports. */
  readonly summary: string
  /** What the scenarios may expect. All current scenarios treat any loss as a failed run. */
  readonly guarantees: Guarantees
  /**
   * File URL of the module node processes import. Use {@link siblingModule}
   * so it points at the `.ts` source under the TypeScript loader (tests) and
   * at the compiled `.js` otherwise.
   */
  readonly module: URL
  /** Processes to start, in order, before the messaging nodes. Default none. */
  readonly services?: readonly ServiceSpec[]
  /**
   * Which process the failure scenario kills with SIGKILL: `'proxy'` or a
   * service id. `undefined` when the variant has no single point of
   * failure worth testing (the scenario then reports "not applicable").
   */
  readonly failureTarget?: string
  /**
   * The loopback scenarios the driver runs for this variant; default all.
   * A floor rather than a system anyone would deploy (sealed dgram) runs the
   * latency cases only: ping-pong (back to back and sparse) and fan-out.
   * Kernel-loss cases run only for variants that run every scenario.
   */
  readonly scenarios?: ReadonlyArray<'ping-pong' | 'throughput' | 'fan-out' | 'failure'>
  /** Whether nodes implement {@link BenchNode.roundTripTime}: the driver then runs the RTT check (a ping-pong case). Default false. */
  readonly reportsRtt?: boolean
  /**
   * Resolves to `undefined` when the variant can run on this machine, or to
   * a human-readable reason to skip it (for example "redis-server not found
   * on PATH; install it with `apt-get install redis-server`").
   */
  checkAvailable(): Promise<string | undefined>
}

/**
 * URL of module `name` next to the module whose `import.meta.url` is `here`,
 * with the same extension: `.ts` when running from source under a
 * TypeScript loader, `.js` when compiled into `dist/`.
 */
export function siblingModule (here: string, name: string): URL {
  const ext = here.endsWith('.ts') ? '.ts' : '.js'
  return new URL(`./${name}${ext}`, here)
}

/** Display name of a node address: `proxy`, `d1`, `d2`, ... */
export function nodeName (address: number): string {
  return address === PROXY_ADDRESS ? 'proxy' : `d${address}`
}
