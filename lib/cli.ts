#!/usr/bin/env node
/**
 * The `warpmesh` command: `coordinator`, `peers`, `send`, `listen`, `agent`, `keygen`,
 * `demo`, `help`. Configuration comes from the environment variables of
 * {@link ENV_VARS}; a flag overrides its variable and is named in errors
 * instead. Logs are JSON lines on stderr; command output is on stdout.
 *
 * Exit codes: 0 success (and graceful stop on SIGINT/SIGTERM), 1 runtime
 * failure (peer not found, address in use), 2 bad configuration or usage.
 *
 * Mesh modules are imported lazily, so `keygen` and `help` start fast and a
 * configuration error is reported before any socket exists.
 *
 * @module
 */

import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  agentOptionsFromEnv,
  type AgentEnvConfig,
  coordinatorOptionsFromEnv,
  type CoordinatorEnvConfig,
  DEFAULT_COORDINATOR_PORT,
  type Env,
  formatEnvHelp,
  formatHostPort,
  type HostPort,
  nodeOptionsFromEnv,
  type MeshEnvConfig,
  type NodeEnvConfig,
  parseDurationMs,
  parsePositiveInt,
} from './config.js'
import type { Session } from './endpoint.js'
import { ConfigError, isWarpmeshError } from './errors.js'
import { createLogger, type Logger } from './log.js'
import type { MetricsServer, MetricsSnapshot, PeerMetrics, TrafficCounters } from './metrics.js'
import { generateKey, INSECURE_VARIABLE } from './security/keys.js'
import { Delivery } from './wire/codec.js'

// ---------------------------------------------------------------- usage

/** Channels a node has by default (the endpoint's default): `--channel` takes 0 .. CLI_CHANNELS-1. */
export const CLI_CHANNELS = 16
/** Default of `--timeout` for `peers` and `send`: how long to wait for the table or the peer, in ms. */
export const CLI_WAIT_MS = 5000

/** The usage text `warpmesh help` prints before the environment table. */
export const USAGE = `Usage: warpmesh <command> [flags]

Commands:
  coordinator              Run a coordinator (peer table) until SIGINT/SIGTERM.
      --id ID              (WARPMESH_ID, default coordinator)
      --bind HOST:PORT     UDP address to listen on (WARPMESH_BIND, default 0.0.0.0:${DEFAULT_COORDINATOR_PORT})
      --metrics HOST:PORT  Prometheus endpoint (WARPMESH_METRICS)
      --log LEVEL          (WARPMESH_LOG, default info)
  peers                    Print the coordinators' peer table (asked for, not joined), then exit.
      --coordinator HOST:PORT[,...]  (WARPMESH_COORDINATORS, default 127.0.0.1:${DEFAULT_COORDINATOR_PORT})
      --json               One JSON array instead of a table
      --timeout DURATION   Longest wait for the table (default ${CLI_WAIT_MS / 1000}s)
  send --to ID MESSAGE     Join as a node, send MESSAGE (UTF-8) to node ID, leave.
      --channel N          Channel 0-${CLI_CHANNELS - 1} (default 0)
      --reliable           Reliable, ordered (default)
      --unreliable         Fire and forget
      --timeout DURATION   Longest wait for ID to appear, and then for the ack (default ${CLI_WAIT_MS / 1000}s)
      --coordinator, --id, --role, --bind, --advertise, --log as for the other commands
  listen                   Join as a node and print every message received, one per line:
                           "<from> <channel> <text>", or JSON with --json.
      --subscribe TOPIC    Also receive TOPIC (repeatable)
      --json               {"from","channel","delivery","topic","text","base64"} per line
      --id ID              (WARPMESH_ID, default listen-<random>; printed at start)
      --role ROLE          (WARPMESH_ROLE, default cli)
      --meta K=V,...       (WARPMESH_META)
      --coordinator, --bind, --advertise, --metrics, --log as above
  agent                    Serve local servers (Java, PHP, ...) on a local socket: each connection
                           becomes a mesh node (agent.proto). Runs until SIGINT/SIGTERM.
      --socket PATH        Unix socket, mode 0600 (WARPMESH_AGENT_SOCKET, default /tmp/warpmesh-agent.sock)
      --listen HOST:PORT   Also TCP on a loopback address; clients must send WARPMESH_AGENT_TOKEN
                           (WARPMESH_AGENT_LISTEN)
      --client-buffer SIZE Events buffered per slow client before it is cut off
                           (WARPMESH_AGENT_CLIENT_BUFFER, default 8MiB)
      --coordinator, --bind (port 0), --metrics, --log, --heartbeat, --lease-misses as above
  keygen                   Print a fresh network key (set it as WARPMESH_KEY on every node).
  demo                     A coordinator, a proxy and three downstream servers on 127.0.0.1,
                           as separate processes, with a live table. Ctrl-C stops everything.
      --duration DURATION  Stop after this long (e.g. 10s) instead of waiting for Ctrl-C
  help, --help             This text.

Every command but keygen, demo and help needs the network key: WARPMESH_KEY or
WARPMESH_KEY_FILE (there is deliberately no flag: command lines are visible to
other users), or ${INSECURE_VARIABLE}=1 to run without one.

Exit status: 0 ok, 1 runtime failure, 2 bad configuration or usage.
`

/** The full `warpmesh help` text: {@link USAGE} and every environment variable. */
export function helpText(): string {
  return `${USAGE}\n${formatEnvHelp()}`
}

// ---------------------------------------------------------------- flags

/** A usage mistake (unknown command or flag, missing argument). Exit code 2. */
export class UsageError extends Error {
  static {
    this.prototype.name = 'UsageError'
  }
}

type FlagKind = 'string' | 'boolean' | 'strings'

/** Flag name → kind, and for configuration flags the variable it overrides. */
interface FlagSpec {
  readonly kind: FlagKind
  readonly env?: string
}

const CONFIG_FLAGS = {
  id: { kind: 'string', env: 'WARPMESH_ID' },
  role: { kind: 'string', env: 'WARPMESH_ROLE' },
  bind: { kind: 'string', env: 'WARPMESH_BIND' },
  advertise: { kind: 'string', env: 'WARPMESH_ADVERTISE' },
  coordinator: { kind: 'string', env: 'WARPMESH_COORDINATORS' },
  coordinators: { kind: 'string', env: 'WARPMESH_COORDINATORS' },
  meta: { kind: 'string', env: 'WARPMESH_META' },
  log: { kind: 'string', env: 'WARPMESH_LOG' },
  metrics: { kind: 'string', env: 'WARPMESH_METRICS' },
  heartbeat: { kind: 'string', env: 'WARPMESH_HEARTBEAT_MS' },
  'lease-misses': { kind: 'string', env: 'WARPMESH_LEASE_MISSES' },
  socket: { kind: 'string', env: 'WARPMESH_AGENT_SOCKET' },
  listen: { kind: 'string', env: 'WARPMESH_AGENT_LISTEN' },
  'client-buffer': { kind: 'string', env: 'WARPMESH_AGENT_CLIENT_BUFFER' },
} as const satisfies Record<string, FlagSpec>

type ConfigFlag = keyof typeof CONFIG_FLAGS

const pick = <K extends ConfigFlag>(...names: K[]): Record<K, FlagSpec> =>
  Object.fromEntries(names.map((n) => [n, CONFIG_FLAGS[n]])) as unknown as Record<K, FlagSpec>

const COMMAND_FLAGS: Readonly<Record<string, Readonly<Record<string, FlagSpec>>>> = {
  coordinator: pick('id', 'bind', 'metrics', 'log', 'heartbeat', 'lease-misses'),
  peers: { ...pick('coordinator', 'coordinators', 'bind', 'log'), json: { kind: 'boolean' }, timeout: { kind: 'string' } },
  send: {
    ...pick('id', 'role', 'bind', 'advertise', 'coordinator', 'coordinators', 'log', 'heartbeat', 'lease-misses'),
    to: { kind: 'string' },
    channel: { kind: 'string' },
    reliable: { kind: 'boolean' },
    unreliable: { kind: 'boolean' },
    timeout: { kind: 'string' },
  },
  listen: {
    ...pick('id', 'role', 'bind', 'advertise', 'coordinator', 'coordinators', 'meta', 'log', 'metrics', 'heartbeat', 'lease-misses'),
    json: { kind: 'boolean' },
    subscribe: { kind: 'strings' },
  },
  agent: pick('socket', 'listen', 'client-buffer', 'coordinator', 'coordinators', 'bind', 'metrics', 'log', 'heartbeat', 'lease-misses'),
  keygen: {},
  demo: { duration: { kind: 'string' } },
  help: {},
}

/** The commands, in usage order. */
export const COMMANDS = Object.freeze(Object.keys(COMMAND_FLAGS))

/** Parsed command line. */
export interface ParsedArgs {
  readonly command: string
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>
  readonly positionals: readonly string[]
  /** The environment with configuration flags applied over it. */
  readonly env: Env
  /** Variable name → the flag that set it, so errors name what the user typed. */
  readonly flagFor: ReadonlyMap<string, string>
}

/**
 * Parse `argv` (without node and the script) for a command.
 *
 * @throws UsageError for an unknown command or flag or a flag without its value.
 */
export function parseCommandLine(argv: readonly string[], env: Env): ParsedArgs {
  const [first, ...rest] = argv
  if (first === undefined) throw new UsageError(`a command is missing; expected one of ${COMMANDS.join(', ')}`)
  const command = first === '--help' || first === '-h' ? 'help' : first
  const specs = COMMAND_FLAGS[command]
  if (specs === undefined || !Object.hasOwn(COMMAND_FLAGS, command)) {
    throw new UsageError(`unknown command ${JSON.stringify(first)}; expected one of ${COMMANDS.join(', ')}`)
  }
  if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', values: {}, positionals: [], env, flagFor: new Map() }
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {}
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: spec.kind === 'strings' }
  }
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(flagProblem(err as Error & { code?: string }, command, specs))
  }
  const overlay: Record<string, string | undefined> = { ...env }
  const flagFor = new Map<string, string>()
  for (const [name, value] of Object.entries(parsed.values)) {
    const variable = specs[name]?.env
    if (variable === undefined || typeof value !== 'string') continue
    overlay[variable] = value
    flagFor.set(variable, `--${name}`)
  }
  return { command, values: parsed.values as ParsedArgs['values'], positionals: parsed.positionals, env: overlay, flagFor }
}

function flagList(specs: Readonly<Record<string, FlagSpec>>): string {
  const names = Object.keys(specs)
  return names.length === 0 ? 'no flags' : `one of ${names.map((n) => `--${n}`).join(', ')}`
}

function flagProblem(err: Error & { code?: string }, command: string, specs: Readonly<Record<string, FlagSpec>>): string {
  // node:util messages quote the flag: "Unknown option '--x'", "Option '--to <value>' argument missing".
  const flag = (/'(-[^' ]*)/.exec(err.message)?.[1] ?? '?').split('=')[0] as string
  const name = flag.replace(/^-+/, '')
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag} for "warpmesh ${command}"; expected ${flagList(specs)}`
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return specs[name]?.kind === 'boolean'
        ? `flag --${name} of "warpmesh ${command}" takes no value`
        : `flag --${name} of "warpmesh ${command}" needs a value, e.g. --${name} VALUE`
    /* c8 ignore next 2 */
    default:
      return `${err.message} ("warpmesh ${command}")`
  }
}

/** Re-throw a ConfigError about a variable set by a flag so that it names the flag. */
function nameFlag<T>(args: ParsedArgs, read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (err instanceof ConfigError) {
      const flag = args.flagFor.get(err.variable)
      if (flag !== undefined) {
        throw new ConfigError(flag, err.value, err.expected, { reason: err.reason, cause: err })
      }
    }
    throw err
  }
}

function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name]
  return typeof value === 'string' ? value : undefined
}

function durationFlag(args: ParsedArgs, name: string, fallback: number): number {
  const value = stringFlag(args, name)
  return value === undefined ? fallback : parseDurationMs(`--${name}`, value, { min: 1 })
}

function randomSuffix(): string {
  return Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0')
}

/** The environment of a CLI node: the defaults a command-line node needs on top of the user's. */
function cliNodeEnv(env: Env, idPrefix: string): Env {
  const blank = (name: string): boolean => (env[name] ?? '').trim() === ''
  const out: Record<string, string | undefined> = { ...env }
  if (blank('WARPMESH_ID')) out.WARPMESH_ID = `${idPrefix}-${randomSuffix()}`
  if (blank('WARPMESH_ROLE')) out.WARPMESH_ROLE = 'cli'
  if (blank('WARPMESH_COORDINATORS')) out.WARPMESH_COORDINATORS = `127.0.0.1:${DEFAULT_COORDINATOR_PORT}`
  return out
}

// ---------------------------------------------------------------- shared with the demo

/** Warn (once, at start-up) that the process runs without a network key. */
export function warnInsecure(logger: Logger, insecure: boolean): void {
  if (insecure) {
    logger.warn(`running WITHOUT a network key (${INSECURE_VARIABLE} is set): no authentication, no encryption; never do this in production`)
  }
}

/** `MeshNode.start()` options for a configuration read by `nodeOptionsFromEnv()`. */
export function meshNodeOptions(config: NodeEnvConfig, logger: Logger) {
  return {
    id: config.id,
    role: config.role,
    address: config.bind.host,
    port: config.bind.port,
    ...(config.advertise === undefined ? {} : { advertise: { host: config.advertise.host, port: config.advertise.port } }),
    meta: config.meta,
    ...sharedNodeOptions(config, logger),
  }
}

/** `Agent.start()` options for a configuration read by `agentOptionsFromEnv()`. */
export function agentStartOptions(config: AgentEnvConfig, logger: Logger) {
  return {
    socket: config.socket,
    ...(config.listen === undefined ? {} : { listen: { host: config.listen.host, port: config.listen.port } }),
    ...(config.token === undefined ? {} : { token: config.token }),
    clientBuffer: config.clientBuffer,
    node: { address: config.bind.host, port: 0, requestTimeoutMs: config.requestTimeoutMs, ...sharedNodeOptions(config, logger) },
    logger,
  }
}

/** The `MeshNode.start()` options every node takes from the settings the node and the agent share. */
function sharedNodeOptions(config: MeshEnvConfig, logger: Logger) {
  return {
    coordinators: config.coordinators.map(({ host, port }) => ({ host, port })),
    keys: config.keys,
    insecure: config.insecure,
    heartbeatMs: config.heartbeatMs,
    leaseMisses: config.leaseMisses,
    warmup: config.warmup,
    maxDatagram: config.maxDatagram,
    loopbackDatagram: config.loopbackDatagram,
    logger,
  }
}

/** The parts of an `Agent` {@link agentSnapshot} reads. */
export interface AgentLike {
  stats(): { rejected: Record<string, number> }
  nodes(): readonly { stats(): unknown }[]
}

/**
 * A {@link MetricsSnapshot} of an agent: the totals of all its client nodes
 * (no per-peer rows), and its bad-input counters as `malformed` reasons
 * prefixed `agent-`.
 */
export function agentSnapshot(agent: AgentLike): MetricsSnapshot {
  const totals = trafficCounters({})
  let peersUp = 0
  for (const node of agent.nodes()) {
    const snap = metricsSnapshot(node.stats())
    peersUp += snap.peersUp
    for (const key of Object.keys(totals) as (keyof TrafficCounters)[]) totals[key] += snap.totals[key]
  }
  const malformed: Record<string, number> = {}
  for (const [reason, n] of Object.entries(agent.stats().rejected)) malformed[`agent-${reason}`] = n
  return { peersUp, totals, peers: [], malformed }
}

/** `Coordinator.start()` options for a configuration read by `coordinatorOptionsFromEnv()`. */
export function coordinatorStartOptions(config: CoordinatorEnvConfig, logger: Logger) {
  return {
    id: config.id,
    address: config.bind.host,
    port: config.bind.port,
    keys: config.keys,
    insecure: config.insecure,
    heartbeatMs: config.heartbeatMs,
    leaseMisses: config.leaseMisses,
    maxDatagram: config.maxDatagram,
    loopbackDatagram: config.loopbackDatagram,
    logger,
  }
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0)

/** Traffic counters from endpoint/session statistics (`SessionStats` field names). */
export function trafficCounters(stats: unknown): TrafficCounters {
  const s = (stats ?? {}) as Record<string, unknown>
  return {
    packetsSent: num(s.packetsSent ?? s.datagramsSent),
    packetsReceived: num(s.packetsReceived ?? s.datagramsReceived),
    bytesSent: num(s.bytesSent),
    bytesReceived: num(s.bytesReceived),
    retransmits: num(s.framesRetransmitted ?? s.retransmits),
    losses: num(s.packetsLost ?? s.losses),
    messagesSent: num(s.messagesSent),
    messagesReceived: num(s.messagesReceived),
  }
}

/** `rttMs` (the path's round trip) and `srttMs` from a session's stats row, each only once it has a sample. */
function rttFields(row: unknown): Pick<PeerMetrics, 'rttMs' | 'srttMs'> {
  const r = (row ?? {}) as { roundTripTime?: unknown; srtt?: unknown }
  return {
    ...(typeof r.roundTripTime === 'number' && r.roundTripTime > 0 ? { rttMs: r.roundTripTime } : {}),
    ...(typeof r.srtt === 'number' && r.srtt > 0 ? { srttMs: r.srtt } : {}),
  }
}

/**
 * A {@link MetricsSnapshot} from `node.stats()` (`{ peers: Record<id,
 * SessionStats & { id }>, totals }`) and, when given, the endpoint's
 * statistics. Traffic totals are the endpoint's (coordinator traffic
 * included) or else the sum over peers; message totals come from
 * `stats.totals`. Missing fields read as 0.
 *
 * @param roles - peer id → role, for the `role` label.
 */
export function metricsSnapshot(
  stats: unknown,
  roles: ReadonlyMap<string, string> = new Map(),
  endpoint?: { datagramsSent: number; datagramsReceived: number; bytesSent: number; bytesReceived: number; dropped: Record<string, number> },
): MetricsSnapshot {
  const s = (stats ?? {}) as { peers?: Record<string, Record<string, unknown>>; totals?: Record<string, unknown> }
  const peers: PeerMetrics[] = []
  const totals = trafficCounters({})
  for (const [id, row] of Object.entries(s.peers ?? {})) {
    const peerId = typeof row?.id === 'string' ? row.id : id
    const counters = trafficCounters(row)
    for (const key of Object.keys(totals) as (keyof TrafficCounters)[]) totals[key] += counters[key]
    peers.push({ peerId, role: roles.get(peerId) ?? '', ...counters, ...rttFields(row) })
  }
  if (endpoint !== undefined) {
    totals.packetsSent = num(endpoint.datagramsSent)
    totals.packetsReceived = num(endpoint.datagramsReceived)
    totals.bytesSent = num(endpoint.bytesSent)
    totals.bytesReceived = num(endpoint.bytesReceived)
  }
  if (typeof s.totals?.messagesSent === 'number') totals.messagesSent = s.totals.messagesSent
  if (typeof s.totals?.messagesReceived === 'number') totals.messagesReceived = s.totals.messagesReceived
  return { peersUp: peers.length, totals, peers, ...(endpoint === undefined ? {} : { malformed: endpoint.dropped }) }
}

/** The parts of a `Coordinator` {@link coordinatorSnapshot} reads. */
export interface CoordinatorLike {
  table(): readonly { id: string; role: string; address: string; port: number }[]
  stats(): { controlMessagesSent: number; controlMessagesReceived: number }
  readonly endpoint: {
    stats(): { datagramsSent: number; datagramsReceived: number; bytesSent: number; bytesReceived: number; dropped: Record<string, number> }
    sessions(): readonly Pick<Session, 'remote' | 'isOpen' | 'stats'>[]
  }
}

/**
 * A {@link MetricsSnapshot} of a coordinator: one row per live session (named
 * by the peer table where the address matches), totals from its endpoint,
 * control messages as the message counters.
 */
export function coordinatorSnapshot(coordinator: CoordinatorLike): MetricsSnapshot {
  const byAddress = new Map(coordinator.table().map((p) => [formatHostPort({ host: p.address, port: p.port }), p]))
  const peers: PeerMetrics[] = []
  let retransmits = 0
  let losses = 0
  for (const session of coordinator.endpoint.sessions()) {
    if (!session.isOpen) continue
    const stats = session.stats()
    const info = byAddress.get(session.remote)
    const row = trafficCounters(stats)
    retransmits += row.retransmits
    losses += row.losses
    peers.push({ peerId: info?.id ?? session.remote, role: info?.role ?? '', ...row, ...rttFields(stats) })
  }
  const endpoint = coordinator.endpoint.stats()
  const control = coordinator.stats()
  return {
    peersUp: peers.length,
    totals: {
      ...trafficCounters(endpoint),
      retransmits,
      losses,
      messagesSent: control.controlMessagesSent,
      messagesReceived: control.controlMessagesReceived,
    },
    malformed: endpoint.dropped,
    peers,
  }
}

async function startMetrics(
  address: HostPort | undefined,
  collect: () => MetricsSnapshot,
  logger: Logger,
): Promise<MetricsServer | undefined> {
  if (address === undefined) return undefined
  const { startMetricsServer } = await import('./metrics.js')
  const server = await startMetricsServer({ host: address.host, port: address.port, collect, log: logger })
  logger.info('metrics listening', { url: server.url })
  return server
}

/** Resolve on the first SIGINT or SIGTERM (and on `extra`, if given). */
function untilSignal(extra?: Promise<unknown>): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(signal)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
    extra?.then(() => on('SIGTERM' as NodeJS.Signals), () => on('SIGTERM' as NodeJS.Signals))
  })
}

// ---------------------------------------------------------------- commands

interface Io {
  out(text: string): void
}

async function runCoordinator(args: ParsedArgs): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`"warpmesh coordinator" takes no arguments; got ${JSON.stringify(args.positionals[0])}`)
  const config = nameFlag(args, () => coordinatorOptionsFromEnv(args.env))
  const logger = createLogger({ level: config.logLevel, name: 'coordinator' })
  warnInsecure(logger, config.insecure)
  const { Coordinator } = await import('./mesh/coordinator.js')
  const coordinator = await Coordinator.start(coordinatorStartOptions(config, logger))
  logger.info('ready', { id: config.id, address: config.bind.host, port: coordinator.port, protected: !config.insecure })
  let metrics: MetricsServer | undefined
  try {
    metrics = await startMetrics(config.metrics, () => coordinatorSnapshot(coordinator), logger)
    const signal = await untilSignal()
    logger.info('stopping', { signal })
  } finally {
    await metrics?.close()
    await coordinator.close()
  }
  logger.info('stopped')
  return 0
}

async function runAgent(args: ParsedArgs): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`"warpmesh agent" takes no arguments; got ${JSON.stringify(args.positionals[0])}`)
  const config = nameFlag(args, () => agentOptionsFromEnv(args.env))
  const logger = createLogger({ level: config.logLevel, name: 'agent' })
  warnInsecure(logger, config.insecure)
  const { Agent } = await import('./agent/agent.js')
  const agent = await Agent.start(agentStartOptions(config, logger))
  logger.info('ready', { socket: config.socket, tcp: agent.tcpPort, protected: !config.insecure, pid: process.pid })
  let metrics: MetricsServer | undefined
  try {
    metrics = await startMetrics(config.metrics, () => agentSnapshot(agent), logger)
    const signal = await untilSignal()
    logger.info('stopping', { signal, clients: agent.clients })
  } finally {
    await metrics?.close()
    await agent.close()
  }
  logger.info('stopped')
  return 0
}

function roleMap(peers: readonly { id: string; role: string }[]): Map<string, string> {
  return new Map(peers.map((p) => [p.id, p.role]))
}

/** Wait until `check()` holds (checked on every `event` and every 50 ms), or `timeoutMs`. */
async function waitFor(
  emitter: { on(e: string, f: () => void): unknown; off(e: string, f: () => void): unknown },
  events: readonly string[],
  check: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  if (check()) return true
  return new Promise((resolve) => {
    const finish = (ok: boolean): void => {
      clearInterval(poll)
      clearTimeout(timer)
      for (const e of events) emitter.off(e, test)
      resolve(ok)
    }
    const test = (): void => {
      if (check()) finish(true)
    }
    const poll = setInterval(test, 50)
    const timer = setTimeout(() => finish(check()), timeoutMs)
    for (const e of events) emitter.on(e, test)
  })
}

/** One-shot commands log at `warn` unless WARPMESH_LOG (or --log) says otherwise. */
function quiet(args: ParsedArgs): ParsedArgs {
  return (args.env.WARPMESH_LOG ?? '').trim() === '' ? { ...args, env: { ...args.env, WARPMESH_LOG: 'warn' } } : args
}

async function startCliNode(args: ParsedArgs, idPrefix: string, name: string) {
  const config = nameFlag(args, () => nodeOptionsFromEnv(cliNodeEnv(args.env, idPrefix)))
  const logger = createLogger({ level: config.logLevel, name })
  warnInsecure(logger, config.insecure)
  const { MeshNode } = await import('./mesh/node.js')
  // A short-lived tool node: a warm-up (WARPMESH_WARMUP) would only delay it.
  const node = await MeshNode.start({ ...meshNodeOptions(config, logger), warmup: 0 })
  return { config, logger, node }
}

async function runPeers(args: ParsedArgs, io: Io): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`"warpmesh peers" takes no arguments; got ${JSON.stringify(args.positionals[0])}`)
  const timeoutMs = durationFlag(args, 'timeout', CLI_WAIT_MS)
  const q = quiet(args)
  const config = nameFlag(q, () => nodeOptionsFromEnv(cliNodeEnv(q.env, 'cli')))
  const logger = createLogger({ level: config.logLevel, name: 'peers' })
  warnInsecure(logger, config.insecure)
  const { peers, incomplete } = await queryPeerTable(config, logger, timeoutMs)
  for (const c of incomplete) {
    process.stderr.write(`warpmesh: coordinator ${c} started less than a lease ago; nodes registered with an earlier instance may not be back in its table yet\n`)
  }
  if (args.values.json === true) io.out(`${JSON.stringify(peers)}\n`)
  else io.out(formatPeers(peers))
  return 0
}

/**
 * Ask every coordinator for its table (a SNAPSHOT_REQUEST on a protected
 * session) without joining the mesh, so listing the peers does not make every
 * node see a node come and go. Tables of several coordinators are merged by
 * id (the first coordinator listed wins). Throws when none answers in time.
 */
async function queryPeerTable(config: NodeEnvConfig, logger: Logger, timeoutMs: number): Promise<{ peers: PeerRow[], incomplete: string[] }> {
  const { Endpoint } = await import('./endpoint.js')
  const { CONTROL_CHANNEL, copyPeer, decodeControl, encodeControl, MeshKind, meshEndpointOptions } = await import('./mesh/control.js')
  const endpoint = await Endpoint.create({
    address: config.bind.host,
    port: config.bind.port,
    keys: config.keys,
    insecure: config.insecure,
    maxDatagram: config.maxDatagram,
    loopbackDatagram: config.loopbackDatagram,
    logger,
    ...meshEndpointOptions({ heartbeatMs: config.heartbeatMs, leaseMisses: config.leaseMisses }),
  })
  try {
    const failures: string[] = []
    const incomplete: string[] = []
    const tables = await Promise.all(config.coordinators.map(async ({ host, port }) => {
      const where = formatHostPort({ host, port })
      let timer: ReturnType<typeof setTimeout> | undefined
      let onMessage: ((data: Uint8Array, s: Session, channel: number) => void) | undefined
      try {
        const answer = new Promise<PeerRow[]>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
          endpoint.connect(host, port).then((session) => {
            onMessage = (data, s, channel) => {
              if (s !== session || channel !== CONTROL_CHANNEL) return
              const m = decodeControl(data)
              if (m === null || m.kind !== MeshKind.SNAPSHOT) return
              if (!m.complete) incomplete.push(where)
              resolve(m.peers.map(copyPeer))
            }
            endpoint.on('message', onMessage)
            session.send(encodeControl({ kind: MeshKind.SNAPSHOT_REQUEST }), { channel: CONTROL_CHANNEL, delivery: Delivery.RELIABLE_ORDERED })
          }, reject)
        })
        return await answer
      } catch (err) {
        failures.push(`${where}: ${err instanceof Error ? err.message : String(err)}`)
        return null
      } finally {
        clearTimeout(timer)
        if (onMessage !== undefined) endpoint.off('message', onMessage)
      }
    }))
    const merged = new Map<string, PeerRow>()
    for (const table of tables) for (const p of table ?? []) if (!merged.has(p.id)) merged.set(p.id, p)
    if (tables.every((t) => t === null)) throw new Error(`no coordinator answered: ${failures.join('; ')}`)
    return { peers: [...merged.values()], incomplete }
  } finally {
    await endpoint.close()
  }
}

/** A peer as printed by `warpmesh peers`. */
export interface PeerRow {
  readonly id: string
  readonly role: string
  readonly address: string
  readonly port: number
  readonly epoch: number
  readonly meta?: Readonly<Record<string, string>>
  readonly topics?: readonly string[]
}

/** The readable table `warpmesh peers` prints, sorted by role then id, ending with a newline. */
export function formatPeers(peers: readonly PeerRow[]): string {
  const sorted = [...peers].sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id))
  const rows = sorted.map((p) => [
    p.id,
    p.role,
    formatHostPort({ host: p.address, port: p.port }),
    String(p.epoch),
    Object.entries(p.meta ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '-',
    (p.topics ?? []).join(',') || '-',
  ])
  const body = formatTable(['ID', 'ROLE', 'ADDRESS', 'EPOCH', 'META', 'TOPICS'], rows)
  return `${body}${peers.length} peer${peers.length === 1 ? '' : 's'}\n`
}

/** Left-aligned columns separated by two spaces, one line per row, ending with a newline. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(headers), ...rows.map(line), ''].join('\n')
}

async function runSend(args: ParsedArgs): Promise<number> {
  const to = stringFlag(args, 'to')
  if (to === undefined || to.trim() === '') throw new UsageError('"warpmesh send" needs --to ID, the id of the receiving node')
  if (args.positionals.length === 0) throw new UsageError('"warpmesh send" needs a MESSAGE, e.g. warpmesh send --to lobby-1 hello')
  if (args.values.reliable === true && args.values.unreliable === true) {
    throw new UsageError('"warpmesh send" takes --reliable or --unreliable, not both')
  }
  const channelText = stringFlag(args, 'channel')
  const channel = channelText === undefined ? 0 : parseChannel(channelText)
  const delivery = args.values.unreliable === true ? Delivery.UNRELIABLE : Delivery.RELIABLE_ORDERED
  const timeoutMs = durationFlag(args, 'timeout', CLI_WAIT_MS)
  const data = new TextEncoder().encode(args.positionals.join(' '))
  const { node, logger } = await startCliNode(quiet(args), 'send', 'send')
  try {
    const found = await waitFor(node, ['peer-up'], () => node.peers().some((p) => p.id === to), timeoutMs)
    if (!found) {
      process.stderr.write(`warpmesh: peer ${JSON.stringify(to)} did not appear in the peer table within ${timeoutMs} ms\n`)
      return 1
    }
    node.send(to, data, { channel, delivery })
    // Wait for the direct session to carry it (and, reliable, for the ack):
    // close() flushes open sessions only, and the session to `to` may still be
    // in its handshake right after the peer appeared.
    const reliable = delivery !== Delivery.UNRELIABLE
    const flushed = await waitFor(node, [], () => {
      const session = node.stats().peers[to]
      return session !== undefined && session.queuedBytes === 0 && (!reliable || session.unackedMessages === 0)
    }, timeoutMs)
    if (!flushed) {
      process.stderr.write(`warpmesh: the message to ${JSON.stringify(to)} was not ${reliable ? 'acknowledged' : 'sent'} within ${timeoutMs} ms\n`)
      return 1
    }
    logger.debug('sent', { to, channel, delivery, bytes: data.byteLength })
  } finally {
    await node.close()
  }
  return 0
}

function parseChannel(text: string): number {
  return parsePositiveInt('--channel', text, { min: 0, max: CLI_CHANNELS - 1 })
}

async function runListen(args: ParsedArgs, io: Io): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`"warpmesh listen" takes no arguments; got ${JSON.stringify(args.positionals[0])}`)
  const topics = (args.values.subscribe as string[] | undefined) ?? []
  const json = args.values.json === true
  const { node, config, logger } = await startCliNode(args, 'listen', 'listen')
  let metrics: MetricsServer | undefined
  try {
    for (const topic of topics) node.subscribe(topic)
    node.on('message', (message: { from: string; data: Uint8Array; channel: number; delivery: number; topic?: string }) => {
      io.out(formatMessage(message, json))
    })
    metrics = await startMetrics(config.metrics, () => metricsSnapshot(node.stats(), roleMap(node.peers()), node.endpoint.stats()), logger)
    logger.info('listening', { id: config.id, role: config.role, topics })
    const signal = await untilSignal()
    logger.info('stopping', { signal })
  } finally {
    await metrics?.close()
    await node.close()
  }
  return 0
}

const decoder = new TextDecoder('utf-8', { fatal: false })

/** One line of `warpmesh listen` output: `from channel text` (control characters escaped) or JSON. */
export function formatMessage(
  message: { from: string; data: Uint8Array; channel: number; delivery: number; topic?: string },
  json: boolean,
): string {
  const text = decoder.decode(message.data)
  if (json) {
    return `${JSON.stringify({
      from: message.from,
      channel: message.channel,
      delivery: message.delivery,
      ...(message.topic === undefined ? {} : { topic: message.topic }),
      text,
      base64: Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength).toString('base64'),
    })}\n`
  }
  // eslint-disable-next-line no-control-regex
  const safe = text.replace(/[\u0000-\u001f\u007f\\]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
  const topic = message.topic === undefined ? '' : ` #${message.topic}`
  return `${message.from} ${message.channel}${topic} ${safe}\n`
}

async function runDemo(args: ParsedArgs): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`"warpmesh demo" takes no arguments; got ${JSON.stringify(args.positionals[0])}`)
  const text = stringFlag(args, 'duration')
  const durationMs = text === undefined ? undefined : parseDurationMs('--duration', /^[0-9.]+$/.test(text.trim()) ? `${text.trim()}s` : text, { min: 1 })
  const { runDemo: demo } = await import('./demo.js')
  return demo({ durationMs })
}

// ---------------------------------------------------------------- main

/**
 * Run the command line `argv` (without node and the script).
 *
 * @returns the exit code.
 */
export async function main(argv: readonly string[], env: Env = process.env): Promise<number> {
  const io: Io = { out: (text) => void process.stdout.write(text) }
  try {
    const args = parseCommandLine(argv, env)
    switch (args.command) {
      case 'help':
        io.out(helpText())
        return 0
      case 'keygen':
        if (args.positionals.length > 0) throw new UsageError('"warpmesh keygen" takes no arguments')
        io.out(`${generateKey()}\n`)
        return 0
      case 'coordinator':
        return await runCoordinator(args)
      case 'peers':
        return await runPeers(args, io)
      case 'send':
        return await runSend(args)
      case 'listen':
        return await runListen(args, io)
      case 'agent':
        return await runAgent(args)
      case 'demo':
        return await runDemo(args)
      /* c8 ignore next 2 */
      default:
        throw new UsageError(`unknown command ${JSON.stringify(args.command)}`)
    }
  } catch (err) {
    return reportError(err, env)
  }
}

function reportError(err: unknown, env: Env): number {
  if (err instanceof UsageError) {
    process.stderr.write(`warpmesh: ${err.message}\nRun "warpmesh help" for usage.\n`)
    return 2
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`warpmesh: ${err.message}\n`)
    return 2
  }
  const debug = /^(debug|trace)$/i.test((env.WARPMESH_LOG ?? '').trim())
  const message = err instanceof Error ? err.message : String(err)
  const code = isWarpmeshError(err) || (err as { code?: unknown })?.code !== undefined ? ` (${String((err as { code?: unknown }).code)})` : ''
  process.stderr.write(`warpmesh: ${message}${code}\n`)
  if (debug && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`)
  return 1
}

function isMain(): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    /* c8 ignore next */
    return false
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
      // Let stdout drain, then leave even if a handle lingers.
      setTimeout(() => process.exit(code), 100).unref()
    },
    /* c8 ignore next 4 */
    (err: unknown) => {
      process.stderr.write(`warpmesh: ${String(err)}\n`)
      process.exit(1)
    },
  )
}

