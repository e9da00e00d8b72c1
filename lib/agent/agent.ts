/**
 * The agent: a local stream listener that turns every connection into a mesh
 * member (see lib/agent/session.ts for one connection). Listens on a Unix
 * domain socket (mode 0600; a stale file left by a crashed agent is
 * replaced, a live agent's is not; removed on close) and optionally on TCP at
 * a loopback address, where every Hello must carry the token.
 *
 * @module
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { isLoopbackHost } from '../config.js'
import { ConfigError, WarpmeshError } from '../errors.js'
import type { MeshNode } from '../mesh/node.js'
import { silentLogger, type Logger } from '../log.js'
import { AgentErrorCode, DEFAULT_AGENT_SOCKET, DEFAULT_CLIENT_BUFFER, encodeAgentFrame } from './protocol.js'
import { ClientSession, type ClientNodeOptions, type SessionHost } from './session.js'

/** Default {@link AgentOptions.maxClients}. */
export const DEFAULT_MAX_CLIENTS = 1024
/** Default {@link AgentOptions.maxPendingRequests}. */
export const DEFAULT_MAX_PENDING_REQUESTS = 1024
/** Default {@link AgentOptions.maxIncomingRequests}. */
export const DEFAULT_MAX_INCOMING_REQUESTS = 10_000
/** Default {@link AgentOptions.incomingTimeoutMs}. */
export const DEFAULT_INCOMING_TIMEOUT_MS = 30_000
/** Default {@link AgentOptions.helloTimeoutMs}. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000
/** How long {@link Agent.start} waits for an existing socket file to answer before calling it stale, ms. */
const PROBE_TIMEOUT_MS = 1000

/** Options of {@link Agent.start}. */
export interface AgentOptions {
  /**
   * Options of every client's `MeshNode` (coordinators, keys or insecure,
   * bind address, heartbeat, ...); the client's Hello adds id, role and
   * metadata. `port` should stay 0 (each node binds its own port). Required.
   */
  node: ClientNodeOptions
  /**
   * Path of the Unix domain socket; created with mode 0600. Default
   * `/tmp/warpmesh-agent.sock` ({@link DEFAULT_AGENT_SOCKET}). `null`: no Unix
   * socket (then `listen` is required).
   */
  socket?: string | null
  /**
   * Also listen on TCP at this loopback address (127.0.0.0/8 or ::1); port 0
   * picks a free one ({@link Agent.tcpPort}). Requires `token`. A
   * non-loopback address is refused (`ConfigError`). Default: no TCP.
   */
  listen?: { host: string; port: number }
  /** The token every Hello on the TCP listener must carry. Required with `listen`. */
  token?: string
  /**
   * Bytes of events buffered for one client that does not read them; past
   * it the client gets `Error{SLOW_CLIENT}` and is disconnected. Default
   * 8 MiB ({@link DEFAULT_CLIENT_BUFFER}).
   */
  clientBuffer?: number
  /** Most connections at once; more are answered `Error{OVERLOADED}` and closed. Default 1024. */
  maxClients?: number
  /**
   * Requests of one client waiting for an answer before the agent stops
   * reading its socket (until one is answered). Default 1024.
   */
  maxPendingRequests?: number
  /**
   * Requests from peers waiting for one client's Reply, together with the
   * network services' calls waiting for its ServiceAnswer; beyond it new ones
   * fail at once (the requester gets `REMOTE_ERROR`, a service call is
   * refused: `REFUSED`). Default 10000.
   */
  maxIncomingRequests?: number
  /**
   * How long a request from a peer (or a service call) waits for the
   * client's Reply (ServiceAnswer), ms; then it fails (the requester gets
   * `REMOTE_ERROR`, a service call is refused), unless the requester's own
   * timeout came first. Default 30000.
   */
  incomingTimeoutMs?: number
  /** How long a new connection may take to send Hello, ms. Default 10000. */
  helloTimeoutMs?: number
  /** Logger. Default silent. */
  logger?: Logger
}

/** What {@link Agent.stats} returns. */
export interface AgentStats {
  /** Connections open now (any state). */
  clients: number
  /** Connections accepted since start. */
  accepted: number
  /** Bad input and other notable cases, by reason (`malformed`, `too-large`, `not-hello`, `unauthorized`, `slow-client`, ...). */
  rejected: Record<string, number>
}

/** True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z (see lib/config.ts). */
export const isLoopbackAddress = isLoopbackHost

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${String(value)}`)
  return v
}

/** Whether something accepts connections at `path` (a live agent), within the probe timeout. */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    const done = (live: boolean): void => {
      clearTimeout(timer)
      s.destroy()
      resolve(live)
    }
    const timer = setTimeout(done, PROBE_TIMEOUT_MS, true)
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

function listenOn(server: Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const ready = (): void => {
      server.off('error', reject)
      resolve()
    }
    if (typeof target === 'string') server.listen(target, ready)
    else server.listen(target.port, target.host, ready)
  })
}

/**
 * A running agent. Create with {@link Agent.start}; stop with
 * {@link Agent.close} (every client node leaves the mesh cleanly, the socket
 * file is removed).
 */
export class Agent implements SessionHost {
  readonly nodeOptions: ClientNodeOptions
  readonly clientBuffer: number
  readonly maxPendingRequests: number
  readonly maxIncomingRequests: number
  readonly incomingTimeoutMs: number
  readonly helloTimeoutMs: number
  readonly logger: Logger
  readonly #maxClients: number
  readonly #token: string | undefined
  readonly #socketPath: string | null
  #unix: Server | null = null
  #tcp: Server | null = null
  readonly #sessions = new Set<ClientSession>()
  readonly #ids = new Map<string, ClientSession>()
  readonly #rejected = new Map<string, number>()
  #accepted = 0
  #closing: Promise<void> | null = null

  private constructor(o: AgentOptions) {
    this.nodeOptions = o.node
    this.clientBuffer = positiveInt('clientBuffer', o.clientBuffer, DEFAULT_CLIENT_BUFFER)
    this.#maxClients = positiveInt('maxClients', o.maxClients, DEFAULT_MAX_CLIENTS)
    this.maxPendingRequests = positiveInt('maxPendingRequests', o.maxPendingRequests, DEFAULT_MAX_PENDING_REQUESTS)
    this.maxIncomingRequests = positiveInt('maxIncomingRequests', o.maxIncomingRequests, DEFAULT_MAX_INCOMING_REQUESTS)
    this.incomingTimeoutMs = positiveInt('incomingTimeoutMs', o.incomingTimeoutMs, DEFAULT_INCOMING_TIMEOUT_MS)
    this.helloTimeoutMs = positiveInt('helloTimeoutMs', o.helloTimeoutMs, DEFAULT_HELLO_TIMEOUT_MS)
    this.logger = (o.logger ?? silentLogger).child({ component: 'agent' })
    this.#token = o.token
    this.#socketPath = o.socket === null ? null : (o.socket ?? DEFAULT_AGENT_SOCKET)
  }

  /**
   * Start listening. Throws `ConfigError` for a non-loopback `listen` address
   * or `listen` without `token`, `RangeError`/`TypeError` for bad options, and
   * `WarpmeshError` when the socket path is held by a live agent or is not a
   * socket (it is never deleted then).
   */
  static async start(o: AgentOptions): Promise<Agent> {
    if (o === null || typeof o !== 'object' || o.node === null || typeof o.node !== 'object') {
      throw new TypeError('Agent.start(options): options.node (the MeshNode options of every client) is required')
    }
    if (o.listen !== undefined) {
      const where = o.listen.host.includes(':') ? `[${o.listen.host}]:${o.listen.port}` : `${o.listen.host}:${o.listen.port}`
      if (!isLoopbackAddress(o.listen.host)) {
        throw new ConfigError('WARPMESH_AGENT_LISTEN', where, 'a loopback address and port, e.g. 127.0.0.1:7500', {
          reason: `${o.listen.host} is not a loopback address; the agent's TCP listener only serves this host (127.0.0.0/8 or ::1)`,
        })
      }
      if (o.token === undefined || o.token === '') {
        throw new ConfigError('WARPMESH_AGENT_TOKEN', undefined, 'a secret string every client sends in Hello.token (required with WARPMESH_AGENT_LISTEN)')
      }
    }
    if (o.socket === null && o.listen === undefined) throw new TypeError('Agent.start(options): socket is null and listen is unset: nothing to listen on')
    const agent = new Agent(o)
    try {
      if (agent.#socketPath !== null) await agent.#listenUnix(agent.#socketPath)
      if (o.listen !== undefined) {
        const server = createServer({ noDelay: true }, agent.#onTcpConnection)
        agent.#tcp = server
        await listenOn(server, o.listen)
      }
    } catch (err) {
      await agent.close()
      throw err
    }
    agent.logger.info('agent listening', { socket: agent.#socketPath, tcp: agent.tcpPort })
    return agent
  }

  async #listenUnix(path: string): Promise<void> {
    let stat
    try {
      stat = lstatSync(path)
    } catch { /* absent: fine */ }
    if (stat !== undefined) {
      if (!stat.isSocket()) throw new WarpmeshError(`agent socket path ${path} exists and is not a socket; not replacing it`)
      if (await probe(path)) throw new WarpmeshError(`another agent is listening on ${path}; stop it first or set WARPMESH_AGENT_SOCKET to another path`)
      this.logger.warn('replacing a stale agent socket file (left by an agent that did not stop cleanly)', { socket: path })
      unlinkSync(path)
    }
    const server = createServer(this.#onUnixConnection)
    // Create the socket file without group/other permissions, so no other user can connect even for an instant.
    const umask = process.umask(0o177)
    try {
      await listenOn(server, path)
    } finally {
      process.umask(umask)
    }
    chmodSync(path, 0o600)
    this.#unix = server
  }

  /** The Unix socket path, or null. */
  get socketPath(): string | null {
    return this.#socketPath
  }

  /** The TCP port listened on, or undefined. */
  get tcpPort(): number | undefined {
    const a = this.#tcp?.address()
    return a !== null && typeof a === 'object' ? a.port : undefined
  }

  /** Connections open now. */
  get clients(): number {
    return this.#sessions.size
  }

  /** The mesh nodes of the connected clients (started ones). */
  nodes(): MeshNode[] {
    const out: MeshNode[] = []
    for (const s of this.#sessions) if (s.node !== null) out.push(s.node)
    return out
  }

  /** The session of the client whose node has id `id`, if any (diagnostics, tests). */
  session(id: string): ClientSession | undefined {
    return this.#ids.get(id)
  }

  /** Counters; see {@link AgentStats}. */
  stats(): AgentStats {
    return { clients: this.#sessions.size, accepted: this.#accepted, rejected: Object.fromEntries(this.#rejected) }
  }

  readonly #onUnixConnection = (socket: Socket): void => {
    this.#accept(socket, undefined)
  }

  readonly #onTcpConnection = (socket: Socket): void => {
    this.#accept(socket, this.#token)
  }

  #accept(socket: Socket, token: string | undefined): void {
    if (this.#closing !== null) {
      socket.destroy()
      return
    }
    this.#accepted++
    const session = new ClientSession(socket, this, token)
    this.#sessions.add(session)
    if (this.#sessions.size > this.#maxClients) {
      this.count('too-many-clients')
      socket.end(encodeOverloaded(this.#maxClients))
      void session.close(null)
    }
  }

  // ------------------------------------------------------------ SessionHost

  /** @internal */
  count(reason: string): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1)
  }

  /** @internal */
  claimId(id: string, session: ClientSession): boolean {
    const holder = this.#ids.get(id)
    if (holder !== undefined && holder !== session) return false
    this.#ids.set(id, session)
    return true
  }

  /** @internal */
  releaseId(id: string, session: ClientSession): void {
    if (this.#ids.get(id) === session) this.#ids.delete(id)
  }

  /** @internal */
  closed(session: ClientSession): void {
    this.#sessions.delete(session)
  }

  /**
   * Stop: no new connections; every client is told Goodbye and its node
   * leaves the mesh cleanly; the socket file is removed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closing = [this.#unix, this.#tcp].map((s) => s === null ? Promise.resolve() : new Promise<void>((resolve) => s.close(() => resolve())))
      await Promise.all([...this.#sessions].map((s) => s.close('agent stopping')))
      await Promise.all(closing)
      if (this.#unix !== null && this.#socketPath !== null) {
        try {
          unlinkSync(this.#socketPath)
        } catch { /* already gone */ }
      }
      this.logger.info('agent stopped')
    })()
    return this.#closing
  }
}

function encodeOverloaded(max: number): Uint8Array {
  return encodeAgentFrame({ error: { id: 0, code: AgentErrorCode.OVERLOADED, message: `the agent serves at most ${max} clients`, fatal: true } })
}
