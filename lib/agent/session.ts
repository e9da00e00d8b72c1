/**
 * One client connection of the agent: the stream socket ⇄ one {@link MeshNode}.
 *
 * Life: `hello` (only Hello accepted) → `starting` (the node registers; the
 * socket is not read) → `ready` → `closed`. Closing the connection, a
 * Goodbye, a fatal error or the agent stopping make the node leave the mesh
 * cleanly (`MeshNode.close()`).
 *
 * Flow control, client → mesh: the socket is read only while the client's
 * node takes more (a `send()` that returns false pauses reading until the
 * peer's queue drains) and while fewer than `maxPendingRequests` of its
 * requests wait for an answer. Mesh → client: frames go to the socket, corked
 * per tick; while the socket is full they wait in this session's queue, and
 * once that queue and the socket's buffer together pass `clientBuffer` bytes
 * the client gets `Error{SLOW_CLIENT, fatal}` and is disconnected (the
 * queue is dropped first, so the error is the next thing it reads).
 *
 * Network services (`Hello.services`): the session runs a {@link Network} on
 * the node (closed before the node), maps the services messages to its
 * methods, forwards its events when `Hello.player_events` asks, and answers
 * the Network's hooks for the `ServiceCall` kinds of `Hello.handles` by asking
 * the client. Service calls share the incoming requests' bound, numbering and
 * timeout; mesh messages on the services' channel are theirs and are not
 * forwarded to the client.
 *
 * Bad input never throws: the client gets an `Error` naming what was wrong
 * (fatal, and the connection closed, when the stream cannot be trusted), and
 * the case is counted by reason in the agent's statistics.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { timingSafeEqual } from 'node:crypto'
import { MeshNode, type MeshMessage, type MeshNodeOptions, type PeerInfo } from '../mesh/node.js'
import { MAX_TOPICS, TOPIC_MAX_LENGTH } from '../mesh/control.js'
import {
  ClosedError, DuplicateIdError, ErrorCode, NoSuchServerError, PeerDownError, QueueFullError, RefusedError, ServerFullError,
  TargetDownError, TimeoutError, TransferConflictError, UnknownPeerError, UnknownPlayerError, isWarpmeshError,
} from '../errors.js'
import type { Logger } from '../log.js'
import { Network } from '../services/network.js'
import {
  SERVICES_CHANNEL, type PlayerInfo, type ServerInfo, type ServerSelector, type ServerSettings, type TransferResult,
} from '../services/types.js'
import type { Delivery } from '../wire/codec.js'
import { FrameDecoder } from './framing.js'
import {
  AGENT_MAX_FRAME, AGENT_PROTOCOL_VERSION, type AgentBody, AgentErrorCode, type AgentErrorName, type DecodedMessage, PACKAGE_VERSION,
  PeerEventKind, PlayerEventKind, ServiceCallKind, type ServiceCallKindValue, type Uint64, createWriter, decodeClientMessage, idKey,
  meshDelivery, playerOut, protoDelivery, selectorIn, serverInfoOut, serverSettingsIn, writeAgentMessage,
} from './protocol.js'

/** MeshNode options every client node gets (the client's Hello adds id, role, meta). */
export type ClientNodeOptions = Omit<MeshNodeOptions, 'id' | 'role' | 'meta' | 'endpoint'>

/** What a session needs from its agent. */
export interface SessionHost {
  readonly nodeOptions: ClientNodeOptions
  readonly clientBuffer: number
  readonly maxPendingRequests: number
  readonly maxIncomingRequests: number
  readonly incomingTimeoutMs: number
  readonly helloTimeoutMs: number
  readonly logger: Logger
  /** Count a bad-input case (or other notable event) by reason. */
  count(reason: string): void
  /** Reserve a node id for `session`; false when another client of this agent holds it. */
  claimId(id: string, session: ClientSession): boolean
  releaseId(id: string, session: ClientSession): void
  /** The session is over (its node closed, its socket gone). */
  closed(session: ClientSession): void
}

type State = 'hello' | 'starting' | 'ready' | 'closing' | 'closed'

/** The client's answer to a ServiceCall. */
interface CallAnswer {
  ok: boolean
  reason: string
}

/** A peer's request (answered by Reply) or a ServiceCall (answered by ServiceAnswer) waiting for the client. */
interface Incoming {
  /** The requesting peer; '' for a ServiceCall (the Network watches its own peers). */
  from: string
  /** A ServiceCall rather than an IncomingRequest. */
  call: boolean
  resolve(value: Uint8Array | CallAnswer): void
  reject(err: Error): void
  deadline: number
}

/** What Hello asked of the network services. */
interface ServicesHello {
  server: ServerSettings | undefined
  playerEvents: boolean
  handles: ReadonlySet<number>
}

/** How long a socket that was ended (fatal error, goodbye) may take to flush before it is destroyed, ms. */
const END_GRACE_MS = 2000
/** Interval of the sweep that expires unanswered incoming requests, ms. */
const SWEEP_MS = 250
/** A batch writer whose buffer grew past this (one large tick) is replaced, not kept, bytes. */
const MAX_BATCH_BUFFER = 256 * 1024
/** Delay before asking again whether a peer's queue drained when its session is still opening, ms. */
const DRAIN_RETRY_MS = 2

// Scratch objects for the per-message paths: filled, encoded at once, never kept.
const SEND_OPTIONS = { channel: 0, delivery: 0 as Delivery }
const MESSAGE_OUT = { from: '', data: null as Uint8Array | null, channel: 0, delivery: 0, topic: '' }

/** A promise that never settles (a request the leaving node will not answer). */
const NEVER: Promise<never> = new Promise(() => {})

const HANDLER_PREFIX = /^request handler of ".*?" failed: /s

/** The agent error code and text for an error MeshNode or the network services threw or rejected with. */
export function mapMeshError(err: unknown): { code: AgentErrorName; message: string } {
  const message = err instanceof Error ? err.message : String(err)
  if (err instanceof UnknownPlayerError) return { code: 'UNKNOWN_PLAYER', message }
  if (err instanceof NoSuchServerError) return { code: 'NO_SUCH_SERVER', message }
  if (err instanceof ServerFullError) return { code: 'SERVER_FULL', message }
  // agent.proto: REFUSED carries the refusing side's reason as its message.
  if (err instanceof RefusedError) return { code: 'REFUSED', message: err.reason !== '' ? err.reason : message }
  if (err instanceof TargetDownError) return { code: 'TARGET_DOWN', message }
  if (err instanceof TransferConflictError) return { code: 'TRANSFER_CONFLICT', message }
  if (err instanceof UnknownPeerError) return { code: 'UNKNOWN_PEER', message }
  if (err instanceof TimeoutError) return { code: 'TIMEOUT', message }
  if (err instanceof PeerDownError) return { code: 'PEER_DOWN', message }
  if (err instanceof QueueFullError) return { code: 'OVERLOADED', message }
  if (err instanceof ClosedError) return { code: 'CLOSED', message }
  if (err instanceof RangeError || err instanceof TypeError) return { code: 'INVALID_ARGUMENT', message }
  if (isWarpmeshError(err, ErrorCode.Generic) && HANDLER_PREFIX.test(message)) {
    return { code: 'REMOTE_ERROR', message: message.replace(HANDLER_PREFIX, '') }
  }
  return { code: 'INTERNAL', message }
}

/** Why a refused ServiceCall failed, when the client gave no reason. */
const NO_REASON = 'refused by the client'

function refusal(a: CallAnswer): void {
  if (!a.ok) throw new Error(a.reason !== '' ? a.reason : NO_REASON)
}

function transferVerdict(a: CallAnswer): boolean | string {
  return a.ok ? true : a.reason !== '' ? a.reason : false
}

function peerOut(p: PeerInfo): Record<string, unknown> {
  return { id: p.id, role: p.role, address: p.address, port: p.port, meta: p.meta, topics: p.topics }
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8')
  const b = Buffer.from(expected, 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}

/** One client connection. Created by the agent for every accepted socket. */
export class ClientSession {
  readonly #socket: Socket
  readonly #host: SessionHost
  /** The token Hello must carry (TCP listener), or undefined (Unix socket). */
  readonly #token: string | undefined
  readonly #decoder = new FrameDecoder(AGENT_MAX_FRAME)
  readonly #log: Logger
  #state: State = 'hello'
  #id = ''
  #node: MeshNode | null = null
  /** What Hello asked of the network services; null without `Hello.services`. */
  #servicesHello: ServicesHello | null = null
  /** The node's network services, once started (with `Hello.services`). */
  #network: Network | null = null
  /** Key of the next outstanding operation sent with id 0 (MessagePlayer, KickPlayer). */
  #nextAnonymous = 1
  /** Outstanding requests of the client: id key → the id as received. */
  readonly #requests = new Map<number | string, Uint64>()
  /** Requests from peers waiting for the client's Reply, and ServiceCalls waiting for its ServiceAnswer, by agent-chosen number. */
  readonly #incoming = new Map<number, Incoming>()
  #nextIncoming = 1
  #sweep: NodeJS.Timeout | null = null
  #helloTimer: NodeJS.Timeout | null = null
  #endTimer: NodeJS.Timeout | null = null
  /** Reading paused until this peer's queue drains. */
  #drainPeer: string | null = null
  /** Frames waiting for the socket to drain. */
  #out: Uint8Array[] = []
  #outBytes = 0
  #blocked = false
  /** This tick's frames, written as one buffer at its end. */
  #batch = createWriter()
  #flushScheduled = false
  /** Disconnected for being too slow (the limit is not checked again). */
  #cutOff = false
  #lastUndeliverable = 0
  #closeDone: Promise<void> | null = null

  /**
   * @param socket - the accepted connection.
   * @param host - the agent.
   * @param token - the token Hello must carry, for the TCP listener; undefined on the Unix socket.
   */
  constructor(socket: Socket, host: SessionHost, token: string | undefined) {
    this.#socket = socket
    this.#host = host
    this.#token = token
    this.#log = host.logger
    socket.setNoDelay?.(true)
    socket.on('data', this.#onData)
    socket.on('drain', this.#onDrain)
    socket.on('error', this.#onSocketError)
    socket.on('close', this.#onSocketClose)
    socket.on('end', this.#onEnd)
    this.#helloTimer = setTimeout(this.#onHelloTimeout, host.helloTimeoutMs)
  }

  /** The node id from Hello ('' before it). */
  get id(): string {
    return this.#id
  }

  /** The client's node, once started. */
  get node(): MeshNode | null {
    return this.#node
  }

  /** The node's network services, when Hello asked for them and the node started. */
  get network(): Network | null {
    return this.#network
  }

  /** Requests of the client waiting for an answer. */
  get pendingRequests(): number {
    return this.#requests.size
  }

  /** Requests from peers waiting for the client's Reply, and ServiceCalls waiting for its ServiceAnswer. */
  get pendingIncoming(): number {
    return this.#incoming.size
  }

  /** Bytes of frames waiting for the client to read (this session's queue and the socket's buffer). */
  get bufferedBytes(): number {
    return this.#outBytes + this.#socket.writableLength
  }

  // ------------------------------------------------------------ input

  readonly #onData = (chunk: Buffer): void => {
    this.#decoder.push(chunk)
    this.#readFrames()
  }

  #canRead(): boolean {
    const s = this.#state
    if (s === 'hello') return true
    return s === 'ready' && this.#drainPeer === null && this.#requests.size < this.#host.maxPendingRequests
  }

  /** Handle the frames the decoder holds while reading is allowed; pause or resume the socket to match. */
  #readFrames(): void {
    while (this.#canRead()) {
      const frame = this.#decoder.next()
      if (frame === null) {
        if (this.#decoder.error !== null) this.#frameError()
        break
      }
      this.#handleFrame(frame)
    }
    if (this.#state === 'closing' || this.#state === 'closed') return
    if (this.#canRead()) {
      if (this.#socket.isPaused()) this.#socket.resume()
    } else if (!this.#socket.isPaused()) {
      this.#socket.pause()
    }
  }

  #frameError(): void {
    if (this.#decoder.error === 'too-large') {
      this.#fatal('TOO_LARGE', `frame of ${this.#decoder.errorLength} bytes declared; the maximum is ${AGENT_MAX_FRAME}`, 'too-large')
    } else {
      this.#fatal('BAD_MESSAGE', 'malformed frame length (a varint longer than 5 bytes)', 'bad-length')
    }
  }

  #handleFrame(frame: Buffer): void {
    const msg = decodeClientMessage(frame)
    if (typeof msg === 'string') {
      if (this.#state === 'hello') return this.#fatal('BAD_MESSAGE', `malformed ClientMessage before Hello: ${msg}`, 'malformed')
      return this.#error(0, 'BAD_MESSAGE', `malformed ClientMessage (${frame.length} bytes): ${msg}`, 'malformed')
    }
    const body = msg.body
    if (this.#state === 'hello') {
      if (body !== 'hello') return this.#fatal('NOT_HELLO', `the first message must be Hello, got ${body ?? 'an empty message'}`, 'not-hello')
      return this.#hello(msg.value)
    }
    const node = this.#node as MeshNode
    switch (body) {
      case 'send': return this.#send(node, msg.value)
      case 'request': return this.#request(node, msg.value)
      case 'reply': return this.#reply(msg.value)
      case 'broadcast': return this.#broadcast(node, msg.value)
      case 'publish': return this.#publish(node, msg.value)
      case 'subscribe': return this.#simple(msg.value, 'subscribe')
      case 'unsubscribe': return this.#simple(msg.value, 'unsubscribe')
      case 'setMeta': return this.#simple(msg.value, 'setMeta')
      case 'getPeers': return this.#getPeers(node, msg.value)
      case 'getStats': return this.#getStats(node, msg.value)
      case 'playerJoin': return this.#playerJoin(msg.value)
      case 'playerLeave': return this.#playerLeave(msg.value)
      case 'setServer': return this.#setServer(msg.value)
      case 'locate': return this.#locate(msg.value)
      case 'listPlayers': return this.#listPlayers(msg.value)
      case 'getServers': return this.#getServers(msg.value)
      case 'transfer': return this.#transfer(msg.value)
      case 'messagePlayer': return this.#deliver(msg.value, false)
      case 'kickPlayer': return this.#deliver(msg.value, true)
      case 'serviceAnswer': return this.#serviceAnswer(msg.value)
      case 'goodbye': {
        const reason = String(msg.value.reason ?? '')
        this.#log.debug('agent client says goodbye', { id: this.#id, reason })
        void this.close('goodbye')
        return
      }
      case 'hello': return this.#fatal('NOT_HELLO', 'a second Hello on the same connection', 'second-hello')
      default: return this.#error(0, 'BAD_MESSAGE', 'a ClientMessage without a body (empty, or a kind this agent does not know)', 'no-body')
    }
  }

  // ------------------------------------------------------------ hello

  #hello(h: DecodedMessage): void {
    this.#clearHelloTimer()
    const version = h.protocolVersion as number
    if (version !== AGENT_PROTOCOL_VERSION) {
      return this.#fatal('BAD_MESSAGE', `Hello.protocol_version ${version} is not supported; this agent speaks ${AGENT_PROTOCOL_VERSION}`, 'bad-version')
    }
    if (this.#token !== undefined && !tokenMatches(String(h.token ?? ''), this.#token)) {
      return this.#fatal('UNAUTHORIZED', h.token === '' ? 'Hello.token is missing (this TCP listener requires WARPMESH_AGENT_TOKEN)' : 'Hello.token is wrong', 'unauthorized')
    }
    const id = String(h.id ?? '')
    const topics = (h.topics as string[] | undefined) ?? []
    if (topics.length > MAX_TOPICS) return this.#fatal('INVALID_ARGUMENT', `Hello.topics: ${topics.length} topics, at most ${MAX_TOPICS}`, 'invalid-argument')
    for (const t of topics) {
      if (t.length === 0 || t.length > TOPIC_MAX_LENGTH) {
        return this.#fatal('INVALID_ARGUMENT', `Hello.topics: a topic must be 1..${TOPIC_MAX_LENGTH} characters, got ${JSON.stringify(t)}`, 'invalid-argument')
      }
    }
    const services = this.#readServicesHello(h)
    if (services === false) return
    this.#servicesHello = services
    if (!this.#host.claimId(id, this)) {
      return this.#fatal('DUPLICATE_NODE', `node id ${JSON.stringify(id)} is already used by another client of this agent`, 'duplicate-node')
    }
    this.#id = id
    this.#state = 'starting'
    const role = String(h.role ?? '')
    const meta = (h.meta as Record<string, string> | undefined) ?? {}
    MeshNode.start({ ...this.#host.nodeOptions, id, ...(role === '' ? {} : { role }), meta: { ...meta } }).then(
      (node) => this.#started(node, topics),
      (err: unknown) => this.#startFailed(err),
    )
  }

  /** What Hello asks of the network services (null: none); false when invalid (a fatal error was sent). */
  #readServicesHello(h: DecodedMessage): ServicesHello | null | false {
    const handles = (h.handles as number[] | undefined) ?? []
    const server = h.server as DecodedMessage | null | undefined
    const playerEvents = h.playerEvents === true
    if (h.services !== true) {
      if (handles.length === 0 && (server === null || server === undefined) && !playerEvents) return null
      this.#fatal('INVALID_ARGUMENT', 'Hello.server, Hello.player_events and Hello.handles need Hello.services = true', 'invalid-argument')
      return false
    }
    for (const k of handles) {
      if (k < ServiceCallKind.TRANSFER_REQUEST || k > ServiceCallKind.KICK) {
        this.#fatal('INVALID_ARGUMENT', `Hello.handles: ${k} is not a ServiceCall.Kind (1 TRANSFER_REQUEST, 2 MOVE, 3 MESSAGE, 4 KICK)`, 'invalid-argument')
        return false
      }
    }
    return { server: server === null || server === undefined ? undefined : serverSettingsIn(server), playerEvents, handles: new Set(handles) }
  }

  #started(node: MeshNode, topics: readonly string[]): void {
    if (this.#state !== 'starting') {
      // The client left while its node was starting.
      this.#host.releaseId(this.#id, this)
      void node.close().finally(() => this.#finish())
      return
    }
    this.#node = node
    try {
      for (const t of topics) node.subscribe(t)
    } catch (err) {
      this.#fatal('INVALID_ARGUMENT', `Hello.topics: ${(err as Error).message}`, 'invalid-argument')
      return
    }
    node.on('message', this.#onMessage)
    node.on('peer-up', this.#onPeerUp)
    node.on('peer-down', this.#onPeerDown)
    node.on('peer-updated', this.#onPeerUpdated)
    node.on('coordinator-up', this.#onCoordinatorUp)
    node.on('coordinator-down', this.#onCoordinatorDown)
    node.on('peer-unreachable', this.#onPeerUnreachable)
    node.on('error', this.#onNodeError)
    node.onRequest(this.#onRequest)
    if (this.#servicesHello !== null && !this.#startServices(node, this.#servicesHello)) return
    this.#state = 'ready'
    this.#write('welcome', {
        protocolVersion: AGENT_PROTOCOL_VERSION, id: this.#id, udpPort: node.port, peers: node.peers().map(peerOut),
        maxFrame: AGENT_MAX_FRAME, agentVersion: PACKAGE_VERSION,
    })
    this.#log.info('agent client joined', { id: this.#id, role: node.role, port: node.port })
    this.#readFrames()
  }

  #startFailed(err: unknown): void {
    this.#host.releaseId(this.#id, this)
    if (this.#state !== 'starting') return this.#finish()
    this.#state = 'hello' // no node: close() finishes at once
    const message = err instanceof Error ? err.message : String(err)
    if (err instanceof DuplicateIdError) return this.#fatal('DUPLICATE_NODE', message, 'duplicate-node')
    if (err instanceof TypeError || err instanceof RangeError) return this.#fatal('INVALID_ARGUMENT', `Hello: ${message}`, 'invalid-argument')
    this.#fatal('START_FAILED', `the mesh node could not start: ${message}`, 'start-failed')
  }

  /** Start the network services on `node`; false when they could not start (a fatal error was sent). */
  #startServices(node: MeshNode, h: ServicesHello): boolean {
    let network: Network
    try {
      network = Network.create(node, { ...(h.server === undefined ? {} : { server: h.server }), logger: this.#log })
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (err instanceof TypeError || err instanceof RangeError) this.#fatal('INVALID_ARGUMENT', `Hello.server: ${message}`, 'invalid-argument')
      else this.#fatal('INTERNAL', `the network services could not start: ${message}`, 'services-failed')
      return false
    }
    this.#network = network
    const { handles } = h
    if (handles.has(ServiceCallKind.TRANSFER_REQUEST)) {
      // agent.proto: ServiceCall.from is the player's current server.
      network.onTransferRequest((r) => {
        return this.#call(ServiceCallKind.TRANSFER_REQUEST, r.player, '', r.player.server, '', r.players, r.arriving).then(transferVerdict)
      })
    }
    if (handles.has(ServiceCallKind.MOVE)) network.onMove((p, server) => this.#call(ServiceCallKind.MOVE, p, server, '', '', 0, 0).then(refusal))
    if (handles.has(ServiceCallKind.MESSAGE)) network.onMessage((p, text) => this.#call(ServiceCallKind.MESSAGE, p, '', '', text, 0, 0).then(refusal))
    if (handles.has(ServiceCallKind.KICK)) network.onKick((p, reason) => this.#call(ServiceCallKind.KICK, p, '', '', reason, 0, 0).then(refusal))
    if (h.playerEvents) {
      network.on('player-joined', this.#onPlayerJoined)
      network.on('player-left', this.#onPlayerLeft)
      network.on('player-moved', this.#onPlayerMoved)
      network.on('server-updated', this.#onServerUpdated)
      network.on('server-removed', this.#onServerRemoved)
    }
    return true
  }

  readonly #onHelloTimeout = (): void => {
    this.#helloTimer = null
    if (this.#state === 'hello') this.#fatal('NOT_HELLO', `no Hello within ${this.#host.helloTimeoutMs} ms`, 'hello-timeout')
  }

  #clearHelloTimer(): void {
    if (this.#helloTimer !== null) clearTimeout(this.#helloTimer)
    this.#helloTimer = null
  }

  // ------------------------------------------------------------ operations

  /** False (and an error sent) when `id` collides with an outstanding request. */
  #checkId(id: Uint64): boolean {
    const key = idKey(id)
    if (key === 0 || !this.#requests.has(key)) return true
    this.#error(id, 'DUPLICATE_ID', `operation id ${String(id)} is already outstanding`, 'duplicate-id')
    return false
  }

  /** Fill {@link SEND_OPTIONS}; false (and an error sent) for an out-of-range delivery. */
  #sendOptions(id: Uint64, channel: number, delivery: number): boolean {
    const d = meshDelivery(delivery)
    if (d === -1) {
      this.#error(id, 'INVALID_ARGUMENT', `delivery ${delivery} is not a Delivery value (0..4)`, 'invalid-argument')
      return false
    }
    SEND_OPTIONS.channel = channel
    SEND_OPTIONS.delivery = d
    return true
  }

  #send(node: MeshNode, m: DecodedMessage): void {
    const id = m.id as Uint64
    if (!this.#checkId(id) || !this.#sendOptions(id, m.channel as number, m.delivery as number)) return
    const to = m.to as string
    let ok: boolean
    try {
      ok = node.send(to, m.data as Uint8Array, SEND_OPTIONS)
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (!ok) this.#waitDrain(to)
    if (idKey(id) !== 0) this.#write('result', { id, count: 1 })
  }

  #waitDrain(to: string): void {
    this.#drainPeer = to
    ;(this.#node as MeshNode).waitDrain(to).then(this.#onPeerDrained, this.#onPeerDrained)
  }

  readonly #onPeerDrained = (): void => {
    const to = this.#drainPeer
    const node = this.#node
    if (to === null || node === null || this.#state !== 'ready') return
    // waitDrain() resolves at once while the session to the peer is still opening
    // (its messages wait in the node's outbox): ask again shortly.
    if (node.stats().peers[to] === undefined && node.peers().some((p) => p.id === to)) {
      setTimeout(this.#retryDrain, DRAIN_RETRY_MS)
      return
    }
    this.#drainPeer = null
    this.#readFrames()
  }

  readonly #retryDrain = (): void => {
    const to = this.#drainPeer
    if (to === null || this.#node === null || this.#state !== 'ready') return
    this.#node.waitDrain(to).then(this.#onPeerDrained, this.#onPeerDrained)
  }

  #request(node: MeshNode, m: DecodedMessage): void {
    const id = m.id as Uint64
    const key = idKey(id)
    if (key === 0) return this.#error(0, 'INVALID_ARGUMENT', 'Request.id must be non-zero', 'invalid-argument')
    if (!this.#checkId(id)) return
    const timeoutMs = m.timeoutMs as number
    this.#requests.set(key, id)
    node.request(m.to as string, m.data as Uint8Array, timeoutMs > 0 ? { timeoutMs } : undefined).then(
      (data) => this.#answered(key, id, data, null),
      (err: unknown) => this.#answered(key, id, null, err),
    )
  }

  #answered(key: number | string, id: Uint64, data: Uint8Array | null, err: unknown): void {
    if (!this.#requests.delete(key)) return
    if (this.#state !== 'ready') return
    if (data !== null) this.#write('response', { id, data })
    else this.#meshError(id, err)
    if (this.#requests.size === this.#host.maxPendingRequests - 1) this.#readFrames()
  }

  #reply(m: DecodedMessage): void {
    const n = idKey(m.id as Uint64)
    const entry = typeof n === 'number' ? this.#incoming.get(n) : undefined
    if (entry === undefined) {
      return this.#error(0, 'UNKNOWN_REQUEST', `Reply to incoming request ${String(m.id)}: not pending (already answered, expired, or never sent)`, 'unknown-request')
    }
    if (entry.call) {
      return this.#error(0, 'UNKNOWN_REQUEST', `Reply to ${String(m.id)}: that is a ServiceCall; answer it with ServiceAnswer`, 'unknown-request')
    }
    this.#incoming.delete(n as number)
    const error = m.error as string
    if (error !== '') entry.reject(new Error(error))
    else entry.resolve(m.data as Uint8Array)
  }

  #broadcast(node: MeshNode, m: DecodedMessage): void {
    const id = m.id as Uint64
    if (!this.#checkId(id) || !this.#sendOptions(id, m.channel as number, m.delivery as number)) return
    const role = m.role as string
    const tag = m.tag as string
    let count: number
    try {
      count = node.broadcast({ ...(role === '' ? {} : { role }), ...(tag === '' ? {} : { tag }) }, m.data as Uint8Array, SEND_OPTIONS)
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (idKey(id) !== 0) this.#write('result', { id, count })
  }

  #publish(node: MeshNode, m: DecodedMessage): void {
    const id = m.id as Uint64
    if (!this.#checkId(id) || !this.#sendOptions(id, m.channel as number, m.delivery as number)) return
    let count: number
    try {
      count = node.publish(m.topic as string, m.data as Uint8Array, SEND_OPTIONS)
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (idKey(id) !== 0) this.#write('result', { id, count })
  }

  #simple(m: DecodedMessage, op: 'subscribe' | 'unsubscribe' | 'setMeta'): void {
    const id = m.id as Uint64
    if (!this.#checkId(id)) return
    const node = this.#node as MeshNode
    try {
      if (op === 'subscribe') node.subscribe(m.topic as string)
      else if (op === 'unsubscribe') node.unsubscribe(m.topic as string)
      else node.setMeta({ ...(m.meta as Record<string, string>) })
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (idKey(id) !== 0) this.#write('result', { id, count: 0 })
  }

  #getPeers(node: MeshNode, m: DecodedMessage): void {
    const id = m.id as Uint64
    if (!this.#checkId(id)) return
    this.#write('peers', { id, peers: node.peers().map(peerOut) })
  }

  #getStats(node: MeshNode, m: DecodedMessage): void {
    const id = m.id as Uint64
    if (!this.#checkId(id)) return
    const { peers, totals } = node.stats()
    this.#write('stats', {
        id,
        messagesSent: totals.messagesSent,
        messagesReceived: totals.messagesReceived,
        requestsSent: totals.requestsSent,
        requestsSucceeded: totals.requestsSucceeded,
        requestsFailed: totals.requestsFailed,
        requestsTimedOut: totals.requestsTimedOut,
        requestsServed: totals.requestsServed,
        undeliverable: totals.undeliverable,
        peers: totals.peers,
        coordinatorsUp: totals.coordinatorsUp,
        peerStats: Object.values(peers).map((s) => ({
          id: s.id, rttMs: s.srtt, packetsSent: s.packetsSent, packetsReceived: s.packetsReceived,
          retransmits: s.framesRetransmitted, bytesInFlight: s.inFlightBytes,
        })),
    })
  }

  // ------------------------------------------------------------ network services

  /** The session's Network; null (and `SERVICES_OFF` sent) when Hello did not ask for services. */
  #services(id: Uint64, what: string): Network | null {
    const network = this.#network
    if (network === null) {
      this.#error(id, 'SERVICES_OFF', `${what}: the network services are off on this connection (Hello.services was not set)`, 'services-off')
    }
    return network
  }

  #playerJoin(m: DecodedMessage): void {
    const id = m.id as Uint64
    const network = this.#services(id, 'PlayerJoin')
    if (network === null || !this.#checkId(id)) return
    const xuid = m.xuid as string
    const proxy = m.proxy as string
    try {
      network.join({
        name: m.name as string, ...(xuid === '' ? {} : { xuid }), ...(proxy === '' ? {} : { proxy }),
        fields: { ...(m.fields as Record<string, string>) },
      })
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (idKey(id) !== 0) this.#write('result', { id, count: 1 })
  }

  #playerLeave(m: DecodedMessage): void {
    const id = m.id as Uint64
    const network = this.#services(id, 'PlayerLeave')
    if (network === null || !this.#checkId(id)) return
    let hosted: boolean
    try {
      hosted = network.leave(m.player as string)
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (idKey(id) !== 0) this.#write('result', { id, count: hosted ? 1 : 0 })
  }

  #setServer(m: DecodedMessage): void {
    const id = m.id as Uint64
    const network = this.#services(id, 'SetServer')
    if (network === null || !this.#checkId(id)) return
    const server = m.server as DecodedMessage | null | undefined
    if (server === null || server === undefined) return this.#error(id, 'INVALID_ARGUMENT', 'SetServer.server is required', 'invalid-argument')
    try {
      network.setServer(serverSettingsIn(server))
    } catch (err) {
      return this.#meshError(id, err)
    }
    if (idKey(id) !== 0) this.#write('result', { id, count: 0 })
  }

  #locate(m: DecodedMessage): void {
    const id = m.id as Uint64
    const network = this.#services(id, 'Locate')
    if (network === null || !this.#checkId(id)) return
    let p: PlayerInfo | undefined
    try {
      p = network.locate(m.player as string)
    } catch (err) {
      return this.#meshError(id, err)
    }
    this.#write('playerResult', p === undefined ? { id, found: false } : { id, found: true, player: playerOut(p) })
  }

  #listPlayers(m: DecodedMessage): void {
    const id = m.id as Uint64
    const network = this.#services(id, 'ListPlayers')
    if (network === null || !this.#checkId(id)) return
    const mode = m.mode as string
    const server = m.server as string
    const limit = m.limit as number
    const filter = { ...(mode === '' ? {} : { mode }), ...(server === '' ? {} : { server }) }
    let count: number
    let players: PlayerInfo[]
    try {
      count = network.count(filter)
      players = network.list(limit === 0 ? filter : { ...filter, limit })
    } catch (err) {
      return this.#meshError(id, err)
    }
    this.#write('playerList', { id, count, players: players.map(playerOut) })
  }

  #getServers(m: DecodedMessage): void {
    const id = m.id as Uint64
    const network = this.#services(id, 'GetServers')
    if (network === null || !this.#checkId(id)) return
    const mode = m.mode as string
    const states = m.states as string[]
    const tag = m.tag as string
    let servers: ServerInfo[]
    try {
      servers = network.servers({
        ...(mode === '' ? {} : { mode }), ...(states.length === 0 ? {} : { state: [...states] }), ...(tag === '' ? {} : { tag }),
      })
    } catch (err) {
      return this.#meshError(id, err)
    }
    this.#write('serverList', { id, servers: servers.map(serverInfoOut) })
  }

  #transfer(m: DecodedMessage): void {
    const id = m.id as Uint64
    const key = idKey(id)
    const network = this.#services(id, 'Transfer')
    if (network === null) return
    if (key === 0) return this.#error(0, 'INVALID_ARGUMENT', 'Transfer.id must be non-zero', 'invalid-argument')
    if (!this.#checkId(id)) return
    const server = m.server as string
    const selector = m.selector as DecodedMessage | null | undefined
    let target: string | ServerSelector
    if (server !== '') target = server
    else if (selector !== null && selector !== undefined) {
      try {
        target = selectorIn(selector)
      } catch (err) {
        return this.#meshError(id, err)
      }
    } else return this.#error(id, 'INVALID_ARGUMENT', 'Transfer: set server (the target) or selector', 'invalid-argument')
    const timeoutMs = m.timeoutMs as number
    let done: Promise<TransferResult>
    try {
      done = network.transfer(m.player as string, target, timeoutMs > 0 ? { timeoutMs } : undefined)
    } catch (err) {
      return this.#meshError(id, err)
    }
    this.#requests.set(key, id)
    done.then(
      (r) => this.#serviceDone(key, id, 'transferDone', { id, player: r.player, server: r.server, from: r.from, via: r.via }, null),
      (err: unknown) => this.#serviceDone(key, id, null, null, err),
    )
  }

  /** MessagePlayer (`kick` false) or KickPlayer. */
  #deliver(m: DecodedMessage, kick: boolean): void {
    const id = m.id as Uint64
    const network = this.#services(id, kick ? 'KickPlayer' : 'MessagePlayer')
    if (network === null || !this.#checkId(id)) return
    const timeoutMs = m.timeoutMs as number
    const o = timeoutMs > 0 ? { timeoutMs } : undefined
    let done: Promise<unknown>
    try {
      done = kick ? network.kick(m.player as string, m.reason as string, o) : network.message(m.player as string, m.text as string, o)
    } catch (err) {
      return this.#meshError(id, err)
    }
    // Outstanding operations sent with id 0 count against the bound too, under keys no id can have.
    let key = idKey(id)
    if (key === 0) key = `anonymous:${this.#nextAnonymous++}`
    this.#requests.set(key, id)
    done.then(
      () => this.#serviceDone(key, id, 'result', { id, count: 1 }, null),
      (err: unknown) => this.#serviceDone(key, id, null, null, err),
    )
  }

  /** A services operation ended: answer with `body` (success; none for id 0) or the error, and read on if the bound held reading. */
  #serviceDone(key: number | string, id: Uint64, body: AgentBody | null, value: object | null, err: unknown): void {
    if (!this.#requests.delete(key)) return
    if (this.#state !== 'ready') return
    if (body === null) this.#meshError(id, err)
    else if (idKey(id) !== 0) this.#write(body, value as object)
    if (this.#requests.size === this.#host.maxPendingRequests - 1) this.#readFrames()
  }

  #serviceAnswer(m: DecodedMessage): void {
    if (this.#services(0, 'ServiceAnswer') === null) return
    const n = idKey(m.id as Uint64)
    const entry = typeof n === 'number' ? this.#incoming.get(n) : undefined
    if (entry === undefined) {
      return this.#error(0, 'UNKNOWN_REQUEST', `ServiceAnswer to call ${String(m.id)}: not pending (already answered, expired, or never sent)`, 'unknown-request')
    }
    if (!entry.call) {
      return this.#error(0, 'UNKNOWN_REQUEST', `ServiceAnswer to ${String(m.id)}: that is an IncomingRequest; answer it with Reply`, 'unknown-request')
    }
    this.#incoming.delete(n as number)
    entry.resolve({ ok: m.ok === true, reason: m.reason as string })
  }

  /**
   * Ask the client (ServiceCall) and resolve with its ServiceAnswer. Shares
   * the incoming requests' bound, numbering and timeout: past the bound, or
   * unanswered in time, it rejects (the Network refuses with that text).
   */
  #call(
    kind: ServiceCallKindValue, player: PlayerInfo, server: string, from: string, text: string, players: number, arriving: number,
  ): Promise<CallAnswer> {
    if (this.#state !== 'ready') return NEVER
    if (this.#incoming.size >= this.#host.maxIncomingRequests) {
      this.#host.count('incoming-overflow')
      return Promise.reject(new Error(`node "${this.#id}" has ${this.#incoming.size} unanswered requests and calls (the agent's limit)`))
    }
    const n = this.#nextIncoming++
    return new Promise<CallAnswer>((resolve, reject) => {
      this.#incoming.set(n, { from: '', call: true, resolve: resolve as Incoming['resolve'], reject, deadline: Date.now() + this.#host.incomingTimeoutMs })
      this.#sweep ??= setInterval(this.#expireIncoming, SWEEP_MS)
      this.#write('serviceCall', { id: n, kind, player: playerOut(player), server, from, text, players, arriving })
    })
  }

  readonly #onPlayerJoined = (p: PlayerInfo): void => {
    this.#write('playerEvent', { kind: PlayerEventKind.JOINED, player: playerOut(p), from: '' })
  }

  readonly #onPlayerLeft = (p: PlayerInfo): void => {
    this.#write('playerEvent', { kind: PlayerEventKind.LEFT, player: playerOut(p), from: '' })
  }

  readonly #onPlayerMoved = (p: PlayerInfo, from: string): void => {
    this.#write('playerEvent', { kind: PlayerEventKind.MOVED, player: playerOut(p), from })
  }

  readonly #onServerUpdated = (s: ServerInfo): void => {
    this.#write('serverEvent', { removed: false, info: serverInfoOut(s) })
  }

  readonly #onServerRemoved = (id: string): void => {
    this.#write('serverEvent', { removed: true, info: { id } })
  }

  // ------------------------------------------------------------ events from the node

  readonly #onMessage = (m: MeshMessage): void => {
    // The services' own traffic, on a node that runs them (what Network takes: channel 15, not a publication).
    if (m.channel === SERVICES_CHANNEL && m.topic === undefined && this.#network !== null) return
    MESSAGE_OUT.from = m.from
    MESSAGE_OUT.data = m.data
    MESSAGE_OUT.channel = m.channel
    MESSAGE_OUT.delivery = protoDelivery(m.delivery)
    MESSAGE_OUT.topic = m.topic ?? ''
    this.#write('message', MESSAGE_OUT)
    MESSAGE_OUT.data = null
  }

  readonly #onRequest = (data: Uint8Array, from: string): Promise<Uint8Array> => {
    // Leaving: never answered; the requester gets PEER_DOWN once the node is gone.
    if (this.#state !== 'ready') return NEVER
    if (this.#incoming.size >= this.#host.maxIncomingRequests) {
      this.#host.count('incoming-overflow')
      return Promise.reject(new Error(`node "${this.#id}" has ${this.#incoming.size} unanswered requests (the agent's limit)`))
    }
    const n = this.#nextIncoming++
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#incoming.set(n, { from, call: false, resolve: resolve as Incoming['resolve'], reject, deadline: Date.now() + this.#host.incomingTimeoutMs })
      this.#sweep ??= setInterval(this.#expireIncoming, SWEEP_MS)
      this.#write('incomingRequest', { id: n, from, data })
    })
  }

  readonly #expireIncoming = (): void => {
    const now = Date.now()
    // Insertion order is deadline order (one timeout for all).
    for (const [n, entry] of this.#incoming) {
      if (entry.deadline > now) break
      this.#incoming.delete(n)
      this.#host.count('incoming-expired')
      entry.reject(new Error(`not answered by the client within ${this.#host.incomingTimeoutMs} ms`))
    }
    if (this.#incoming.size === 0 && this.#sweep !== null) {
      clearInterval(this.#sweep)
      this.#sweep = null
    }
  }

  readonly #onPeerUp = (p: PeerInfo): void => {
    this.#write('peerEvent', { kind: PeerEventKind.UP, peer: peerOut(p), reason: '' })
  }

  readonly #onPeerDown = (p: PeerInfo, reason: string): void => {
    // Its requests can no longer be answered: forget them (a late Reply gets UNKNOWN_REQUEST).
    for (const [n, entry] of this.#incoming) {
      if (entry.from !== p.id) continue
      this.#incoming.delete(n)
      entry.reject(new Error(`requester "${p.id}" is down`))
    }
    this.#write('peerEvent', { kind: PeerEventKind.DOWN, peer: peerOut(p), reason })
    this.#reportUndelivered(p.id, `peer down: ${reason}`)
  }

  readonly #onPeerUpdated = (p: PeerInfo): void => {
    this.#write('peerEvent', { kind: PeerEventKind.UPDATED, peer: peerOut(p), reason: '' })
  }

  readonly #onCoordinatorUp = (address: string): void => {
    this.#write('coordinatorEvent', { up: true, address })
  }

  readonly #onCoordinatorDown = (address: string): void => {
    this.#write('coordinatorEvent', { up: false, address })
  }

  readonly #onPeerUnreachable = (id: string, err: Error): void => {
    this.#reportUndelivered(id, err.message)
  }

  readonly #onNodeError = (err: Error): void => {
    // A coordinator refused the running node (duplicate id): tell the client; the node keeps retrying.
    this.#error(0, err instanceof DuplicateIdError ? 'DUPLICATE_NODE' : 'INTERNAL', err.message, 'node-error')
  }

  /** Send an Undelivered notice when the node dropped queued messages since the last one. */
  #reportUndelivered(peer: string, reason: string): void {
    const total = (this.#node as MeshNode).stats().totals.undeliverable
    const count = total - this.#lastUndeliverable
    this.#lastUndeliverable = total
    if (count > 0) this.#write('undelivered', { peer, count, reason })
  }

  // ------------------------------------------------------------ output

  /**
   * Encode one AgentMessage into this tick's batch; the batch goes to the
   * socket in one write at the end of the tick (or waits in the queue while
   * the socket is full).
   */
  #write(body: AgentBody, value: object): void {
    if (this.#state === 'closed' || this.#socket.destroyed || !this.#socket.writable) return
    const w = this.#batch
    writeAgentMessage(w, body, value)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(ClientSession.#flushBatch, this)
    }
    if (this.#outBytes + this.#socket.writableLength + w.pos > this.#host.clientBuffer) this.#slowClient()
  }

  static #flushBatch(s: ClientSession): void {
    s.#flushScheduled = false
    s.#flush()
  }

  /** Hand the batch to the socket, or queue it while the socket is full. */
  #flush(): void {
    const w = this.#batch
    if (w.pos === 0) return
    const frames = w.finish()
    // Reuse the writer's buffer unless one large batch grew it.
    if (w.buf.length > MAX_BATCH_BUFFER) this.#batch = createWriter()
    else w.pos = 0
    if (this.#socket.destroyed || !this.#socket.writable) return
    if (!this.#blocked) {
      if (!this.#socket.write(frames)) this.#blocked = true
      return
    }
    this.#out.push(frames)
    this.#outBytes += frames.length
    if (this.#outBytes + this.#socket.writableLength > this.#host.clientBuffer) this.#slowClient()
  }

  readonly #onDrain = (): void => {
    this.#blocked = false
    const out = this.#out
    let i = 0
    while (i < out.length) {
      const frames = out[i++] as Uint8Array
      this.#outBytes -= frames.length
      if (!this.#socket.write(frames)) {
        this.#blocked = true
        break
      }
    }
    out.splice(0, i)
  }

  #slowClient(): void {
    if (this.#cutOff) return
    this.#cutOff = true
    const limit = this.#host.clientBuffer
    this.#out = []
    this.#outBytes = 0
    this.#batch = createWriter()
    this.#blocked = false // the error goes to the socket's buffer, after what is already there
    this.#log.warn('agent client too slow: disconnected', { id: this.#id, limit })
    this.#fatal('SLOW_CLIENT', `more than ${limit} bytes of events waited for this client to read them (WARPMESH_AGENT_CLIENT_BUFFER); disconnected`, 'slow-client')
  }

  /** Report an error to the client (not fatal). */
  #error(id: Uint64, code: AgentErrorName, message: string, reason: string): void {
    this.#host.count(reason)
    this.#write('error', { id, code: AgentErrorCode[code], message, fatal: false })
  }

  #meshError(id: Uint64, err: unknown): void {
    const { code, message } = mapMeshError(err)
    if (code === 'UNKNOWN_PEER' || code === 'INVALID_ARGUMENT') this.#host.count(code === 'UNKNOWN_PEER' ? 'unknown-peer' : 'invalid-argument')
    this.#write('error', { id, code: AgentErrorCode[code], message, fatal: false })
  }

  /** Report an error the connection does not survive, and close it. */
  #fatal(code: AgentErrorName, message: string, reason: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return
    this.#host.count(reason)
    this.#log.debug('agent client error (fatal)', { id: this.#id, code, message })
    this.#write('error', { id: 0, code: AgentErrorCode[code], message, fatal: true })
    void this.close(null)
  }

  // ------------------------------------------------------------ closing

  readonly #onEnd = (): void => {
    // The client half-closed: it sends nothing more; leave.
    void this.close(null)
  }

  readonly #onSocketError = (err: Error): void => {
    this.#log.debug('agent client socket error', { id: this.#id, error: err.message })
  }

  readonly #onSocketClose = (): void => {
    void this.close(null)
  }

  /**
   * Make the node leave the mesh and end the connection. `goodbye` is the
   * reason told to the client in a Goodbye (null: none, e.g. after an error or
   * when the client is gone). Resolves once the node is closed.
   */
  close(goodbye: string | null): Promise<void> {
    if (this.#closeDone !== null) return this.#closeDone
    const wasStarting = this.#state === 'starting' && this.#node === null
    this.#state = 'closing'
    this.#clearHelloTimer()
    this.#socket.pause()
    this.#drainPeer = null
    this.#requests.clear()
    // Unanswered requests from peers are dropped, not failed: the node leaves
    // next, and their requesters get PEER_DOWN (a failure reply would read as
    // REMOTE_ERROR).
    this.#incoming.clear()
    if (this.#sweep !== null) clearInterval(this.#sweep)
    this.#sweep = null
    const node = this.#node
    const network = this.#network
    this.#closeDone = (async () => {
      // The services stop before the node, so their peers drop this node's facts at once.
      if (network !== null) {
        network.off('player-joined', this.#onPlayerJoined)
        network.off('player-left', this.#onPlayerLeft)
        network.off('player-moved', this.#onPlayerMoved)
        network.off('server-updated', this.#onServerUpdated)
        network.off('server-removed', this.#onServerRemoved)
        await network.close().catch(() => {})
      }
      if (node !== null) {
        node.off('message', this.#onMessage)
        node.off('peer-up', this.#onPeerUp)
        node.off('peer-down', this.#onPeerDown)
        node.off('peer-updated', this.#onPeerUpdated)
        node.off('coordinator-up', this.#onCoordinatorUp)
        node.off('coordinator-down', this.#onCoordinatorDown)
        node.off('peer-unreachable', this.#onPeerUnreachable)
        await node.close().catch(() => {})
        this.#host.releaseId(this.#id, this)
        this.#log.info('agent client left', { id: this.#id })
      }
      if (goodbye !== null) this.#write('goodbye', { reason: goodbye })
      this.#state = 'closed'
      this.#endSocket()
      // A node still starting closes when its start settles (see #started / #startFailed).
      if (!wasStarting) this.#finish()
    })()
    return this.#closeDone
  }

  #endSocket(): void {
    const socket = this.#socket
    if (socket.destroyed) return
    // What is queued goes out before the end (a fatal error's reason above all).
    this.#flush()
    for (const frames of this.#out) socket.write(frames)
    this.#out = []
    this.#outBytes = 0
    socket.end()
    this.#endTimer = setTimeout(ClientSession.#destroy, END_GRACE_MS, this)
    this.#endTimer.unref()
  }

  static #destroy(s: ClientSession): void {
    s.#endTimer = null
    s.#socket.destroy()
  }

  #finished = false

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#host.closed(this)
  }
}
