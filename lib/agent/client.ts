/**
 * A Node client of the agent protocol ({@link AgentClient}): for tests, and
 * for Node servers that prefer a sidecar agent to an embedded `MeshNode`.
 *
 * Reconnect: when the connection to the agent drops (agent restarted,
 * socket closed), the client retries with a backoff of 100 ms doubling to
 * 2 s, for ever until {@link AgentClient.close}; it sends Hello again with
 * the same id and role and the current metadata and topics, and emits
 * `'reconnected'` once welcomed. Operations outstanding at the drop reject
 * with an {@link AgentError} of code `CLOSED`; operations started while
 * disconnected reject at once with `CLOSED` as well.
 *
 * Network services (`services: true`): the agent runs a `Network` on the
 * client's node; the client queries and changes it ({@link AgentClient.join},
 * {@link AgentClient.locate}, {@link AgentClient.transfer}, ...), answers the
 * agent's service calls with the handlers given at connect, and emits the
 * directory's and registry's events when `playerEvents` is set. Across a
 * reconnect the client announces its hosted players again and says Hello with
 * its current server settings (the new node starts with none of them).
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { connect, type Socket } from 'node:net'
import type {
  KickHandler, MoveHandler, PlayerAnnouncement, PlayerFilter, PlayerInfo, PlayerMessageHandler, ServerFilter, ServerInfo, ServerSelector,
  ServerSettings, TransferHook, TransferResult,
} from '../services/types.js'
import type { Delivery } from '../wire/codec.js'
import { FrameDecoder } from './framing.js'
import {
  AGENT_MAX_FRAME, AGENT_PROTOCOL_VERSION, type ClientBody, type Decoded, type DecodedMessage, DEFAULT_AGENT_SOCKET, PACKAGE_VERSION,
  PeerEventKind, PlayerEventKind, ServiceCallKind, createWriter, decodeAgentMessage, errorCodeName, idKey, playerIn, selectorOut,
  serverInfoIn, serverSettingsOut, type Uint64, writeClientMessage,
} from './protocol.js'

/** First reconnect delay, ms. */
export const RECONNECT_MIN_MS = 100
/** Bytes buffered towards the agent above which `send()` returns false. */
export const CLIENT_HIGH_WATER = 64 * 1024
/** Longest reconnect delay, ms. */
export const RECONNECT_MAX_MS = 2000

/**
 * An error the agent reported, or `CLOSED` when the connection dropped while
 * the operation was outstanding. `code` is the `agent.proto` `ErrorCode`
 * name: `TIMEOUT`, `UNKNOWN_PEER`, `PEER_DOWN`, `OVERLOADED`, `REMOTE_ERROR`,
 * `CLOSED`, `DUPLICATE_ID`, `INVALID_ARGUMENT`, ...
 */
export class AgentError extends Error {
  static {
    this.prototype.name = 'AgentError'
  }

  /** The `ErrorCode` name, e.g. `TIMEOUT`. */
  readonly code: string
  /** The agent closes the connection after this error. */
  readonly fatal: boolean

  /**
   * @param code - the `ErrorCode` name.
   * @param message - what was wrong.
   * @param fatal - whether the connection ends. Default false.
   */
  constructor(code: string, message: string, fatal = false) {
    super(message)
    this.code = code
    this.fatal = fatal
  }
}

/** A peer as the agent describes it. */
export interface AgentPeer {
  id: string
  role: string
  address: string
  port: number
  meta: Record<string, string>
  topics: string[]
}

/** A message from a peer (`'message'` event). */
export interface AgentMessageEvent {
  from: string
  /** The payload (a view of the received frame; copy it to keep it beyond the event). */
  data: Uint8Array
  /** Application channel 0..15. */
  channel: number
  /** Delivery mode (MeshNode's `Delivery`). */
  delivery: Delivery
  /** Topic of a publication; '' otherwise. */
  topic: string
}

/** A request from a peer (`'request'` event); answer with {@link AgentClient.reply}. */
export interface AgentRequestEvent {
  /** The agent's number of this request: pass it to `reply()`. */
  id: number
  from: string
  data: Uint8Array
}

/** Statistics of the client's node ({@link AgentClient.stats}). */
export interface AgentNodeStats {
  messagesSent: number
  messagesReceived: number
  requestsSent: number
  requestsSucceeded: number
  requestsFailed: number
  requestsTimedOut: number
  requestsServed: number
  undeliverable: number
  peers: number
  coordinatorsUp: number
  peerStats: { id: string; rttMs: number; packetsSent: number; packetsReceived: number; retransmits: number; bytesInFlight: number }[]
}

/**
 * The service calls a client answers ({@link AgentClientOptions.handlers}):
 * the same signatures as `Network`'s hooks. A handler's throw (or a
 * rejection) refuses with its message; so does a transfer hook returning a
 * string, or false (no reason).
 */
export interface AgentServiceHandlers {
  /** At a target server: may this player come here? (After the Network's state and capacity checks.) */
  transferRequest?: TransferHook
  /** At the player's proxy (or server): move them to `server`. */
  move?: MoveHandler
  /** At the player's proxy (or server): show them `text`. */
  message?: PlayerMessageHandler
  /** At the player's proxy (or server): disconnect them with `reason`. */
  kick?: KickHandler
}

/** Resolution of {@link AgentClient.listPlayers}. */
export interface AgentPlayerList {
  /** All players matching the filter. */
  count: number
  /** At most `limit` of them (all when no limit was given). */
  players: PlayerInfo[]
}

/** Options of {@link AgentClient.connect}. */
export interface AgentClientOptions {
  /** Node id (1..64 of `A-Z a-z 0-9 _ . : -`). Required. */
  id: string
  /** Role. Default: the agent's default (`downstream`). */
  role?: string
  /** Initial metadata. Default `{}`. */
  meta?: Record<string, string>
  /** Topics to subscribe to from the start. Default none. */
  topics?: string[]
  /** Unix socket path of the agent. Default `/tmp/warpmesh-agent.sock`, unless `tcp` is given. */
  socket?: string
  /** TCP address of the agent (loopback), instead of the Unix socket. */
  tcp?: { host: string; port: number }
  /** Token for the TCP listener. Default ''. */
  token?: string
  /** Free text in Hello, for the agent's logs. Default `warpmesh-node/<version>`. */
  client?: string
  /** Reconnect after a drop. Default true. */
  reconnect?: boolean
  /** How long the first connection (connect, Hello, Welcome) may take, ms. Default 15000. */
  connectTimeoutMs?: number
  /** Run the network services on this node (`Hello.services`). Default false. */
  services?: boolean
  /** List this node in the server registry with these settings (needs `services`). Default: not listed (e.g. a proxy). */
  server?: ServerSettings
  /**
   * Emit `'player-joined'`, `'player-left'`, `'player-moved'`,
   * `'server-updated'` and `'server-removed'` (needs `services`). Default false.
   */
  playerEvents?: boolean
  /**
   * The service calls this client answers (needs `services`). The agent
   * learns in Hello which kinds have a handler; the others keep the Network's
   * default (transfer requests accepted after its own checks; moves, messages
   * and kicks refused). Replace a handler later with
   * {@link AgentClient.onMove} and the like. Default none.
   */
  handlers?: AgentServiceHandlers
}

/** Options of {@link AgentClient.transfer}, {@link AgentClient.message} and {@link AgentClient.kick}. */
export interface AgentServiceOptions {
  /** Timeout, ms. Default the Network's (5000). */
  timeoutMs?: number
}

/** Options of send, broadcast and publish. */
export interface AgentSendOptions {
  /** Application channel 0..15. Default 0. */
  channel?: number
  /** Delivery mode (MeshNode's `Delivery`). Default reliable ordered. */
  delivery?: Delivery
}

interface Op {
  resolve(value: unknown): void
  reject(err: AgentError): void
}

function wireDelivery(d: Delivery | undefined): number {
  return d === undefined ? 0 : d + 1
}

function peerIn(p: DecodedMessage): AgentPeer {
  return {
    id: p.id as string, role: p.role as string, address: p.address as string, port: p.port as number,
    meta: { ...(p.meta as Record<string, string>) }, topics: [...(p.topics as string[])],
  }
}

const NOT_HANDLED = 'not handled'

/** Key of a player in the hosted set (names are case-insensitive). */
function playerKey(name: string): string {
  return name.toLowerCase()
}

/**
 * A connection to `warpmesh agent`: one mesh node. Events: `'message'`
 * ({@link AgentMessageEvent}), `'request'` ({@link AgentRequestEvent}),
 * `'peer-up'` / `'peer-updated'` (peer), `'peer-down'` (peer, reason),
 * `'coordinator'` ({ up, address }), `'undelivered'` ({ peer, count, reason }),
 * `'agent-error'` (AgentError not tied to an operation), `'disconnected'`,
 * `'reconnected'`, `'closed'`; with `services` and `playerEvents`:
 * `'player-joined'` / `'player-left'` (PlayerInfo), `'player-moved'`
 * (PlayerInfo, from), `'server-updated'` (ServerInfo), `'server-removed'` (id).
 */
export class AgentClient extends EventEmitter {
  readonly #o: AgentClientOptions
  #socket: Socket | null = null
  #decoder = new FrameDecoder(AGENT_MAX_FRAME)
  readonly #ops = new Map<number, Op>()
  #nextId = 1
  #meta: Record<string, string>
  #topics: string[]
  readonly #peers = new Map<string, AgentPeer>()
  #welcomed = false
  #closed = false
  #backoff = RECONNECT_MIN_MS
  #reconnectTimer: NodeJS.Timeout | null = null
  #welcomeWaiter: { resolve(): void; reject(err: Error): void } | null = null
  /** This tick's frames, written as one buffer at its end. */
  #batch = createWriter()
  #flushScheduled = false
  #udpPort = 0
  #goodbye: (() => void) | null = null
  /** Connections opened so far: a service call's answer goes only to the connection that asked. */
  #generation = 0
  /** This node's server settings as last set (said again in Hello after a reconnect). */
  #server: ServerSettings | undefined
  /** Players this node announced, by lower-case name (announced again after a reconnect). */
  readonly #hosted = new Map<string, PlayerAnnouncement>()
  /** The ServiceCall kinds told to the agent in Hello. */
  readonly #handles: number[]
  readonly #handlers: AgentServiceHandlers

  private constructor(o: AgentClientOptions) {
    super()
    this.#o = o
    this.#meta = { ...(o.meta ?? {}) }
    this.#topics = [...(o.topics ?? [])]
    this.#server = o.server === undefined ? undefined : copySettings(o.server)
    this.#handlers = { ...(o.handlers ?? {}) }
    const h = this.#handlers
    this.#handles = [
      ...(h.transferRequest !== undefined ? [ServiceCallKind.TRANSFER_REQUEST] : []), ...(h.move !== undefined ? [ServiceCallKind.MOVE] : []),
      ...(h.message !== undefined ? [ServiceCallKind.MESSAGE] : []), ...(h.kick !== undefined ? [ServiceCallKind.KICK] : []),
    ]
  }

  /**
   * Connect, say Hello and resolve once welcomed. Rejects with an
   * {@link AgentError} the agent sent (e.g. `UNAUTHORIZED`,
   * `DUPLICATE_NODE`) or the socket error; the first connection is not retried.
   */
  static async connect(o: AgentClientOptions): Promise<AgentClient> {
    if (o === null || typeof o !== 'object' || typeof o.id !== 'string') throw new TypeError('AgentClient.connect(options): options.id is required')
    if (o.services !== true && (o.server !== undefined || o.playerEvents === true || o.handlers !== undefined)) {
      throw new TypeError('AgentClient.connect(options): server, playerEvents and handlers need services: true')
    }
    for (const [k, f] of Object.entries(o.handlers ?? {})) {
      if (!['transferRequest', 'move', 'message', 'kick'].includes(k)) {
        throw new TypeError(`AgentClient.connect(options): handlers.${k} is not a service call (transferRequest, move, message, kick)`)
      }
      if (f !== undefined && typeof f !== 'function') throw new TypeError(`AgentClient.connect(options): handlers.${k} must be a function`)
    }
    const c = new AgentClient(o)
    const timeoutMs = o.connectTimeoutMs ?? 15_000
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        c.#open(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new AgentError('TIMEOUT', `no Welcome from the agent within ${timeoutMs} ms`)), timeoutMs)
        }),
      ])
    } catch (err) {
      c.#closed = true
      c.#socket?.destroy()
      throw err
    } finally {
      clearTimeout(timer)
    }
    return c
  }

  /** This node's id. */
  get id(): string {
    return this.#o.id
  }

  /** The node's UDP port (from the last Welcome). */
  get udpPort(): number {
    return this.#udpPort
  }

  /** Whether the client is connected and welcomed now. */
  get connected(): boolean {
    return this.#welcomed
  }

  /** The peer table as known from Welcome and peer events (copies). */
  peers(): AgentPeer[] {
    return [...this.#peers.values()].map((p) => ({ ...p, meta: { ...p.meta }, topics: [...p.topics] }))
  }

  /** Whether `id` is in the peer table. */
  hasPeer(id: string): boolean {
    return this.#peers.has(id)
  }

  #open(): Promise<void> {
    this.#decoder = new FrameDecoder(AGENT_MAX_FRAME)
    this.#batch = createWriter()
    this.#welcomed = false
    this.#generation++
    const socket = this.#o.tcp !== undefined ? connect(this.#o.tcp.port, this.#o.tcp.host) : connect(this.#o.socket ?? DEFAULT_AGENT_SOCKET)
    if (this.#o.tcp !== undefined) socket.setNoDelay(true)
    this.#socket = socket
    return new Promise<void>((resolve, reject) => {
      this.#welcomeWaiter = { resolve, reject }
      socket.once('connect', () => {
        this.#write('hello', {
            protocolVersion: AGENT_PROTOCOL_VERSION, id: this.#o.id, role: this.#o.role ?? '', meta: this.#meta, topics: this.#topics,
            token: this.#o.token ?? '', client: this.#o.client ?? `warpmesh-node/${PACKAGE_VERSION}`,
            services: this.#o.services === true, playerEvents: this.#o.playerEvents === true, handles: this.#handles,
            ...(this.#server === undefined ? {} : { server: serverSettingsOut(this.#server) }),
        })
      })
      socket.on('data', this.#onData)
      socket.on('drain', this.#onDrain)
      socket.on('error', this.#onError)
      socket.on('close', this.#onClose)
    })
  }

  // ------------------------------------------------------------ operations

  /**
   * Send to one peer (no answer asked for; a failure arrives as an
   * `'agent-error'` event). Returns false when the socket's buffer is above
   * its high-water mark: await {@link waitDrain} before sending more.
   * Throws `AgentError{CLOSED}` while disconnected.
   */
  send(to: string, data: Uint8Array, o?: AgentSendOptions): boolean {
    this.#checkConnected()
    return this.#write('send', { id: 0, to, data, channel: o?.channel ?? 0, delivery: wireDelivery(o?.delivery) })
  }

  /**
   * Send to one peer and resolve once the agent has handed it to the mesh
   * (`Result`), or reject with the {@link AgentError} (`UNKNOWN_PEER`,
   * `INVALID_ARGUMENT`, `OVERLOADED`, `CLOSED`).
   */
  sendAcked(to: string, data: Uint8Array, o?: AgentSendOptions): Promise<void> {
    return this.#op('send', (id) => ({ id, to, data, channel: o?.channel ?? 0, delivery: wireDelivery(o?.delivery) })).then(() => {})
  }

  /** Resolves when the socket's buffer is below its high-water mark (at once if it is). */
  waitDrain(): Promise<void> {
    this.#flush()
    const s = this.#socket
    if (s === null || !s.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        s.off('drain', done)
        s.off('close', done)
        resolve()
      }
      s.on('drain', done)
      s.on('close', done)
    })
  }

  /**
   * Request/response: resolves with the reply, rejects with an
   * {@link AgentError}: `TIMEOUT`, `UNKNOWN_PEER`, `PEER_DOWN`, `OVERLOADED`,
   * `REMOTE_ERROR` (message: the peer's error text), `CLOSED`.
   *
   * @param o - `timeoutMs`: default the agent's (WARPMESH_REQUEST_TIMEOUT_MS, 5000).
   */
  request(to: string, data: Uint8Array, o?: { timeoutMs?: number }): Promise<Uint8Array> {
    return this.#op('request', (id) => ({ id, to, data, timeoutMs: o?.timeoutMs ?? 0 })) as Promise<Uint8Array>
  }

  /** Answer the incoming request `id` with `data`, or fail it with `error` text (the requester gets REMOTE_ERROR). */
  reply(id: number, data: Uint8Array, error?: string): void {
    if (!this.#welcomed) return // the request died with the connection
    this.#write('reply', { id, data, error: error ?? '' })
  }

  /** Send to every peer matching role and tag; resolves with how many peers it went to. */
  broadcast(filter: { role?: string; tag?: string }, data: Uint8Array, o?: AgentSendOptions): Promise<number> {
    return this.#op('broadcast', (id) => ({
      id, role: filter.role ?? '', tag: filter.tag ?? '', data, channel: o?.channel ?? 0, delivery: wireDelivery(o?.delivery),
    })) as Promise<number>
  }

  /** Send to every subscriber of `topic`; resolves with the count. */
  publish(topic: string, data: Uint8Array, o?: AgentSendOptions): Promise<number> {
    return this.#op('publish', (id) => ({ id, topic, data, channel: o?.channel ?? 0, delivery: wireDelivery(o?.delivery) })) as Promise<number>
  }

  /** Subscribe to `topic` (kept across reconnects). */
  async subscribe(topic: string): Promise<void> {
    await this.#op('subscribe', (id) => ({ id, topic }))
    if (!this.#topics.includes(topic)) this.#topics.push(topic)
  }

  /** Unsubscribe from `topic`. */
  async unsubscribe(topic: string): Promise<void> {
    await this.#op('unsubscribe', (id) => ({ id, topic }))
    this.#topics = this.#topics.filter((t) => t !== topic)
  }

  /** Replace this node's metadata everywhere (kept across reconnects). */
  async setMeta(meta: Record<string, string>): Promise<void> {
    await this.#op('setMeta', (id) => ({ id, meta }))
    this.#meta = { ...meta }
  }

  /** The agent's current peer table for this node. */
  async getPeers(): Promise<AgentPeer[]> {
    return (await this.#op('getPeers', (id) => ({ id }))) as AgentPeer[]
  }

  /** The node's statistics. */
  async stats(): Promise<AgentNodeStats> {
    return (await this.#op('getStats', (id) => ({ id }))) as AgentNodeStats
  }

  // ------------------------------------------------------------ network services

  /**
   * This node now hosts the player (`Network.join`; announced again after a
   * reconnect). Rejects with `SERVICES_OFF`, `INVALID_ARGUMENT` (bad name,
   * XUID or fields), `CLOSED`.
   */
  async join(p: PlayerAnnouncement): Promise<void> {
    await this.#op('playerJoin', (id) => ({ id, name: p.name, xuid: p.xuid ?? '', proxy: p.proxy ?? '', fields: p.fields ?? {} }))
    this.#hosted.set(playerKey(p.name), { ...p, ...(p.fields === undefined ? {} : { fields: { ...p.fields } }) })
  }

  /** This node no longer hosts the player (name in any case, or XUID); resolves false when it did not. */
  async leave(nameOrXuid: string): Promise<boolean> {
    const count = (await this.#op('playerLeave', (id) => ({ id, player: nameOrXuid }))) as number
    for (const [key, p] of this.#hosted) {
      if (key === playerKey(nameOrXuid) || (p.xuid !== undefined && p.xuid !== '' && p.xuid === nameOrXuid)) this.#hosted.delete(key)
    }
    return count === 1
  }

  /**
   * Update this node's registry entry (`Network.setServer`: lists it when
   * not yet listed; unset fields keep their value). An empty `mode` or
   * `state` keeps the current one (agent.proto cannot tell it from unset).
   */
  async setServer(s: ServerSettings): Promise<void> {
    await this.#op('setServer', (id) => ({ id, server: serverSettingsOut(s) }))
    this.#server = { ...this.#server, ...copySettings(s) }
  }

  /** Where the player is (name in any case, or XUID), from the agent's replicated directory; undefined when offline. */
  async locate(nameOrXuid: string): Promise<PlayerInfo | undefined> {
    return (await this.#op('locate', (id) => ({ id, player: nameOrXuid }))) as PlayerInfo | undefined
  }

  /** Whether any server lists the player. */
  async isOnline(nameOrXuid: string): Promise<boolean> {
    return (await this.locate(nameOrXuid)) !== undefined
  }

  /** The players matching the filter: their count, and at most `limit` of them (default all). */
  async listPlayers(filter: PlayerFilter & { limit?: number } = {}): Promise<AgentPlayerList> {
    return (await this.#op('listPlayers', (id) => ({ id, mode: filter.mode ?? '', server: filter.server ?? '', limit: filter.limit ?? 0 }))) as AgentPlayerList
  }

  /** How many players match the filter (network-wide by default). */
  async count(filter: PlayerFilter = {}): Promise<number> {
    return (await this.listPlayers({ ...filter, limit: 1 })).count
  }

  /** The registry's servers matching the filter (all by default). */
  async servers(filter: ServerFilter = {}): Promise<ServerInfo[]> {
    const states = filter.state === undefined ? [] : typeof filter.state === 'string' ? [filter.state] : filter.state
    return (await this.#op('getServers', (id) => ({ id, mode: filter.mode ?? '', states, tag: filter.tag ?? '' }))) as ServerInfo[]
  }

  /** One server of the registry, or undefined. */
  async server(id: string): Promise<ServerInfo | undefined> {
    return (await this.servers()).find((s) => s.id === id)
  }

  /**
   * Transfer a player to a server, or to the one a selector picks
   * (`Network.transfer`). Rejects with an {@link AgentError} whose code is
   * `UNKNOWN_PLAYER`, `NO_SUCH_SERVER`, `SERVER_FULL`, `REFUSED` (message: the
   * reason), `TARGET_DOWN`, `TRANSFER_CONFLICT`, `TIMEOUT`, `PEER_DOWN` (the
   * player's proxy went down), `INVALID_ARGUMENT`, `SERVICES_OFF` or `CLOSED`.
   */
  async transfer(player: string, target: string | ServerSelector, o?: AgentServiceOptions): Promise<TransferResult> {
    const timeoutMs = serviceTimeout(o)
    if (target === null || (typeof target !== 'string' && typeof target !== 'object')) {
      throw new TypeError('AgentClient.transfer(player, target): target must be a server id or a selector object')
    }
    return (await this.#op('transfer', (id) => ({
      id, player, ...(typeof target === 'string' ? { server: target } : { selector: selectorOut(target) }), timeoutMs,
    }))) as TransferResult
  }

  /** Show `text` to the player wherever they are; rejects as {@link transfer} (`UNKNOWN_PLAYER`, `REFUSED`, `TIMEOUT`, `PEER_DOWN`, ...). */
  async message(player: string, text: string, o?: AgentServiceOptions): Promise<void> {
    const timeoutMs = serviceTimeout(o)
    await this.#op('messagePlayer', (id) => ({ id, player, text, timeoutMs }))
  }

  /** Disconnect the player wherever they are, with `reason`; rejects as {@link message}. */
  async kick(player: string, reason: string, o?: AgentServiceOptions): Promise<void> {
    const timeoutMs = serviceTimeout(o)
    await this.#op('kickPlayer', (id) => ({ id, player, reason, timeoutMs }))
  }

  /**
   * Replace the transfer hook (null: accept, as the Network does without one).
   * Throws `TypeError` unless `handlers.transferRequest` was given at connect
   * (the agent learned in Hello which calls this client answers).
   */
  onTransferRequest(hook: TransferHook | null): void {
    this.#setHandler('transferRequest', hook)
  }

  /** Replace the move handler (null: refuse, "not handled"); as {@link onTransferRequest}, needs `handlers.move` at connect. */
  onMove(handler: MoveHandler | null): void {
    this.#setHandler('move', handler)
  }

  /** Replace the player message handler (null: refuse); needs `handlers.message` at connect. */
  onMessage(handler: PlayerMessageHandler | null): void {
    this.#setHandler('message', handler)
  }

  /** Replace the kick handler (null: refuse); needs `handlers.kick` at connect. */
  onKick(handler: KickHandler | null): void {
    this.#setHandler('kick', handler)
  }

  #setHandler<K extends keyof AgentServiceHandlers>(kind: K, f: AgentServiceHandlers[K] | null): void {
    if (!(kind in this.#handlers)) {
      throw new TypeError(`AgentClient: no ${kind} handler was given at connect, so the agent does not send these calls; pass handlers.${kind} to AgentClient.connect()`)
    }
    if (f !== null && typeof f !== 'function') throw new TypeError(`AgentClient: the ${kind} handler must be a function or null`)
    this.#handlers[kind] = f ?? undefined
  }

  /** Run the handler for a ServiceCall and send its ServiceAnswer (on the connection that asked). */
  #answerCall(x: DecodedMessage): void {
    const id = x.id as Uint64
    const generation = this.#generation
    const player = playerIn(x.player as DecodedMessage | null)
    const h = this.#handlers
    let run: () => unknown
    switch (x.kind) {
      case ServiceCallKind.TRANSFER_REQUEST:
        run = () => h.transferRequest === undefined ? true
          : h.transferRequest({ player, from: x.from as string, players: x.players as number, arriving: x.arriving as number })
        break
      case ServiceCallKind.MOVE:
        run = () => { if (h.move === undefined) throw new Error(NOT_HANDLED); return h.move(player, x.server as string) }
        break
      case ServiceCallKind.MESSAGE:
        run = () => { if (h.message === undefined) throw new Error(NOT_HANDLED); return h.message(player, x.text as string) }
        break
      case ServiceCallKind.KICK:
        run = () => { if (h.kick === undefined) throw new Error(NOT_HANDLED); return h.kick(player, x.text as string) }
        break
      default:
        run = () => { throw new Error(`ServiceCall.Kind ${String(x.kind)} is not known to this client`) }
    }
    const answer = (ok: boolean, reason: string): void => {
      if (this.#generation === generation && this.#welcomed) this.#write('serviceAnswer', { id, ok, reason })
    }
    new Promise((resolve) => resolve(run())).then(
      (v) => {
        if (x.kind === ServiceCallKind.TRANSFER_REQUEST && v !== true) answer(false, typeof v === 'string' ? v : '')
        else answer(true, '')
      },
      (err: unknown) => answer(false, err instanceof Error ? err.message : String(err)),
    )
  }

  /**
   * Leave: Goodbye, wait for the agent's Goodbye (or the connection to close,
   * at most `timeoutMs`, default 5000), no reconnect. Idempotent.
   */
  async close(reason = 'client closing', timeoutMs = 5000): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
    const s = this.#socket
    if (s !== null && !s.destroyed) {
      const done = new Promise<void>((resolve) => {
        this.#goodbye = resolve
        s.once('close', () => resolve())
      })
      if (this.#welcomed) {
        this.#write('goodbye', { reason })
        this.#flush()
      } else s.end()
      this.#welcomed = false
      let timer: NodeJS.Timeout | undefined
      await Promise.race([done, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })])
      clearTimeout(timer)
      s.destroy()
    }
    this.#failOps('client closed')
    this.emit('closed')
  }

  #checkConnected(): void {
    if (!this.#welcomed || this.#closed) throw new AgentError('CLOSED', this.#closed ? 'the client is closed' : 'not connected to the agent (reconnecting)')
  }

  #op(body: ClientBody, build: (id: number) => object): Promise<unknown> {
    if (!this.#welcomed || this.#closed) {
      return Promise.reject(new AgentError('CLOSED', this.#closed ? 'the client is closed' : 'not connected to the agent (reconnecting)'))
    }
    let id = this.#nextId
    while (this.#ops.has(id)) id = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1
    this.#nextId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1
    return new Promise((resolve, reject) => {
      this.#ops.set(id, { resolve, reject })
      this.#write(body, build(id))
    })
  }

  /**
   * Encode one ClientMessage into this tick's batch (one socket write at the
   * end of the tick). False when the batch and the socket's buffer hold more
   * than {@link CLIENT_HIGH_WATER} bytes.
   */
  #write(body: ClientBody, value: object): boolean {
    const w = this.#batch
    writeClientMessage(w, body, value)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(AgentClient.#flushBatch, this)
    }
    const s = this.#socket
    return s !== null && w.pos + s.writableLength < CLIENT_HIGH_WATER
  }

  static #flushBatch(c: AgentClient): void {
    c.#flushScheduled = false
    c.#flush()
  }

  #flush(): void {
    const w = this.#batch
    if (w.pos === 0) return
    const frames = w.finish()
    if (w.buf.length > CLIENT_HIGH_WATER * 4) this.#batch = createWriter()
    else w.pos = 0
    const s = this.#socket
    if (s !== null && !s.destroyed) s.write(frames)
  }

  // ------------------------------------------------------------ input

  readonly #onData = (chunk: Buffer): void => {
    const d = this.#decoder
    d.push(chunk)
    for (let frame = d.next(); frame !== null; frame = d.next()) {
      const m = decodeAgentMessage(frame)
      if (typeof m === 'string') {
        this.#protocolError(`malformed AgentMessage: ${m}`)
        return
      }
      this.#handle(m)
    }
    if (d.error !== null) this.#protocolError(`bad frame from the agent: ${d.error}`)
  }

  #protocolError(message: string): void {
    this.#emitError(new AgentError('BAD_MESSAGE', message, true))
    this.#socket?.destroy()
  }

  #emitError(err: AgentError): void {
    if (this.listenerCount('agent-error') > 0) this.emit('agent-error', err)
  }

  #settle(id: Uint64, value: unknown, err?: AgentError): void {
    const key = idKey(id)
    const op = typeof key === 'number' ? this.#ops.get(key) : undefined
    if (op === undefined) {
      if (err !== undefined) this.#emitError(err)
      return
    }
    this.#ops.delete(key as number)
    if (err !== undefined) op.reject(err)
    else op.resolve(value)
  }

  #handle(m: Decoded): void {
    const x = m.value
    switch (m.body) {
      case 'message': {
        const event: AgentMessageEvent = {
          from: x.from as string, data: x.data as Uint8Array, channel: x.channel as number,
          delivery: Math.max(0, (x.delivery as number) - 1) as Delivery, topic: x.topic as string,
        }
        this.emit('message', event)
        return
      }
      case 'incomingRequest': {
        this.emit('request', { id: idKey(x.id as Uint64) as number, from: x.from as string, data: x.data as Uint8Array } satisfies AgentRequestEvent)
        return
      }
      case 'response': {
        return this.#settle(x.id as Uint64, x.data)
      }
      case 'result': {
        return this.#settle(x.id as Uint64, x.count)
      }
      case 'playerResult': {
        return this.#settle(x.id as Uint64, x.found === true ? playerIn(x.player as DecodedMessage) : undefined)
      }
      case 'playerList': {
        return this.#settle(x.id as Uint64, { count: x.count as number, players: (x.players as DecodedMessage[]).map(playerIn) } satisfies AgentPlayerList)
      }
      case 'serverList': {
        return this.#settle(x.id as Uint64, (x.servers as DecodedMessage[]).map(serverInfoIn))
      }
      case 'transferDone': {
        const r: TransferResult = { player: x.player as string, server: x.server as string, from: x.from as string, via: x.via as string }
        return this.#settle(x.id as Uint64, r)
      }
      case 'serviceCall': {
        return this.#answerCall(x)
      }
      case 'playerEvent': {
        const p = playerIn(x.player as DecodedMessage)
        if (x.kind === PlayerEventKind.MOVED) this.emit('player-moved', p, x.from as string)
        else this.emit(x.kind === PlayerEventKind.LEFT ? 'player-left' : 'player-joined', p)
        return
      }
      case 'serverEvent': {
        const info = x.info as DecodedMessage | null
        if (x.removed === true) this.emit('server-removed', (info?.id as string | undefined) ?? '')
        else if (info !== null) this.emit('server-updated', serverInfoIn(info))
        return
      }
      case 'peers': {
        return this.#settle(x.id as Uint64, (x.peers as DecodedMessage[]).map(peerIn))
      }
      case 'stats': {
        const num = (v: unknown): number => Number(typeof v === 'number' ? v : String(v))
        const stats: AgentNodeStats = {
          messagesSent: num(x.messagesSent), messagesReceived: num(x.messagesReceived), requestsSent: num(x.requestsSent),
          requestsSucceeded: num(x.requestsSucceeded), requestsFailed: num(x.requestsFailed), requestsTimedOut: num(x.requestsTimedOut),
          requestsServed: num(x.requestsServed), undeliverable: num(x.undeliverable), peers: x.peers as number, coordinatorsUp: x.coordinatorsUp as number,
          peerStats: (x.peerStats as DecodedMessage[]).map((p) => ({
            id: p.id as string, rttMs: p.rttMs as number, packetsSent: num(p.packetsSent), packetsReceived: num(p.packetsReceived),
            retransmits: num(p.retransmits), bytesInFlight: num(p.bytesInFlight),
          })),
        }
        return this.#settle(x.id as Uint64, stats)
      }
      case 'error': {
        const err = new AgentError(errorCodeName(x.code as number), x.message as string, x.fatal as boolean)
        if (!this.#welcomed && x.fatal === true) {
          this.#welcomeWaiter?.reject(err)
          this.#welcomeWaiter = null
        }
        return this.#settle(x.id as Uint64, undefined, err)
      }
      case 'peerEvent': {
        const p = peerIn(x.peer as DecodedMessage)
        if (x.kind === PeerEventKind.DOWN) {
          this.#peers.delete(p.id)
          this.emit('peer-down', p, x.reason)
        } else {
          this.#peers.set(p.id, p)
          this.emit(x.kind === PeerEventKind.UP ? 'peer-up' : 'peer-updated', p)
        }
        return
      }
      case 'coordinatorEvent': {
        this.emit('coordinator', { up: x.up as boolean, address: x.address as string })
        return
      }
      case 'undelivered': {
        this.emit('undelivered', { peer: x.peer as string, count: x.count as number, reason: x.reason as string })
        return
      }
      case 'welcome': {
        this.#peers.clear()
        for (const p of x.peers as DecodedMessage[]) this.#peers.set(p.id as string, peerIn(p))
        this.#udpPort = x.udpPort as number
        this.#welcomed = true
        this.#backoff = RECONNECT_MIN_MS
        const waiter = this.#welcomeWaiter
        this.#welcomeWaiter = null
        waiter?.resolve()
        return
      }
      case 'goodbye':
        this.#goodbye?.()
        return
      /* c8 ignore next 2 */
      default:
        return
    }
  }

  readonly #onDrain = (): void => {
    this.emit('drain')
  }

  readonly #onError = (err: Error): void => {
    if (!this.#welcomed && this.#welcomeWaiter !== null) {
      this.#welcomeWaiter.reject(err)
      this.#welcomeWaiter = null
    }
  }

  #failOps(why: string): void {
    const ops = [...this.#ops.values()]
    this.#ops.clear()
    for (const op of ops) op.reject(new AgentError('CLOSED', why))
  }

  readonly #onClose = (): void => {
    const wasWelcomed = this.#welcomed
    this.#welcomed = false
    this.#socket = null
    if (this.#welcomeWaiter !== null) {
      this.#welcomeWaiter.reject(new AgentError('CLOSED', 'the agent closed the connection before Welcome'))
      this.#welcomeWaiter = null
    }
    this.#failOps('the connection to the agent dropped')
    if (this.#closed) return
    if (wasWelcomed) this.emit('disconnected')
    if (this.#o.reconnect === false) {
      this.#closed = true
      this.emit('closed')
      return
    }
    this.#scheduleReconnect()
  }

  #scheduleReconnect(): void {
    const delay = this.#backoff
    this.#backoff = Math.min(RECONNECT_MAX_MS, this.#backoff * 2)
    this.#reconnectTimer = setTimeout(this.#reconnect, delay)
  }

  readonly #reconnect = (): void => {
    this.#reconnectTimer = null
    if (this.#closed) return
    this.#open().then(() => {
      if (this.#closed) return
      // The new node hosts nothing yet: announce this server's players again.
      for (const p of this.#hosted.values()) {
        this.#write('playerJoin', { id: 0, name: p.name, xuid: p.xuid ?? '', proxy: p.proxy ?? '', fields: p.fields ?? {} })
      }
      this.emit('reconnected')
    }, () => { /* #onClose schedules the next attempt */ })
  }
}

function copySettings(s: ServerSettings): ServerSettings {
  return {
    ...s, ...(s.tags === undefined ? {} : { tags: [...s.tags] }), ...(s.fields === undefined ? {} : { fields: { ...s.fields } }),
  }
}

/** `timeout_ms` of a services operation (0 = the agent's default); throws `RangeError` for what uint32 milliseconds cannot say. */
function serviceTimeout(o: AgentServiceOptions | undefined): number {
  const v = o?.timeoutMs
  if (v === undefined) return 0
  if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw new RangeError(`timeoutMs must be an integer 1..${0xffffffff} (ms), got ${String(v)}`)
  return v
}
