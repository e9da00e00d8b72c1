/**
 * MeshNode: what users embed. Registers with every coordinator, keeps the
 * merged peer table, and sends directly to peers over its own endpoint.
 *
 * Direct sessions are opened lazily, on the first send to a peer (an eager
 * full mesh would cost every node a handshake with every other node on each
 * join: O(N²) sessions for a network where most pairs never talk). The first
 * message to a peer therefore waits one handshake; messages queue meanwhile
 * (bounded, see {@link OUTBOX_LIMIT}).
 *
 * Identification: the side that opens a direct session sends a HELLO (id,
 * epoch) on the control channel; the other side answers with its own. A
 * session is only used for peer X when the endpoint epoch at the far end is
 * X's epoch in the table, so a wrong `advertise` address (nobody there, or
 * another node there) never delivers X's messages elsewhere: the connect
 * fails (or the epoch differs), queued messages are dropped, pending requests
 * reject with `PeerDownError`, and a warning names the address to check.
 * A node whose own advertised address is wrong can still reach others: its
 * HELLO identifies the sessions it opens, and peers answer over them.
 *
 * Table: one view per coordinator, merged by id; when views disagree on an
 * id, the most recent change wins (so a restart's new epoch replaces the old
 * one). Entries are only removed when no coordinator holds them. All
 * coordinators down: views, table and sessions stay; sending goes on.
 */
import { Buffer } from 'node:buffer'
import { EventEmitter } from 'node:events'
import { Endpoint, formatAddress, type SendOptions, type Session, type SessionStats } from '../endpoint.js'
import { systemClock, type Clock, type TimerHandle } from '../transport/transport.js'
import { silentLogger, type Logger } from '../log.js'
import { Delivery } from '../wire/codec.js'
import {
  ClosedError, DuplicateIdError, HandshakeError, PeerDownError, QueueFullError, TimeoutError, UnknownPeerError,
  WarpmeshError,
} from '../errors.js'
import {
  APP_CHANNELS, CONTROL_CHANNEL, copyPeer, decodeControl, encodeControl, MAX_TOPICS, MESH_CHANNELS, MeshKind, meshEndpointOptions,
  metaProblem, samePeer, TOPIC_MAX_LENGTH, type MeshControl, type PeerInfo,
} from './control.js'
import { decodeEnvelope, encodePublish, encodeReply, encodeRequest } from './envelope.js'
import { DEFAULT_WARMUP, MAX_WARMUP_ROUND_TRIPS, STALL_MS, warmUp } from '../warmup.js'
import { warmUpMesh } from './warmup.js'

export type { PeerInfo } from './control.js'

/** Bytes queued per peer while its session is being opened; `send()` throws `QueueFullError` beyond. */
export const OUTBOX_LIMIT = 1024 * 1024
/** Above this many queued bytes (session not yet open) `send()` returns false. */
export const OUTBOX_HIGH_WATER = 256 * 1024
/** Messages buffered from a direct session before its HELLO names the peer. */
const EARLY_LIMIT = 256
/**
 * How long a start-up warm-up may take before the node starts anyway, ms.
 * It takes ~1 s alone on a 2-vCPU VM, but nodes often start together: 17
 * processes starting at once there took 5-10 s each (~1.5 s of CPU each),
 * and a 5-s limit cut every one of them short. A warm-up that cannot work
 * at all stops much sooner ({@link STALL_MS}).
 */
const WARMUP_TIMEOUT_MS = 20_000
/**
 * Round trips of the largest warm-up this process has run: V8's compiled
 * code is per process, so a node that starts after it needs none.
 */
let processWarmup = 0
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/
const ROLE_PATTERN = /^[a-z0-9_-]{1,32}$/
/**
 * `Session.send` options for every (channel, delivery), indexed
 * `[channel][delivery]`: one shared object each instead of one per message
 * (`Session.send` only reads them).
 */
const SEND_OPTIONS: readonly (readonly SendOptions[])[] = Array.from({ length: MESH_CHANNELS }, (_, channel) =>
  [Delivery.UNRELIABLE, Delivery.UNRELIABLE_SEQUENCED, Delivery.RELIABLE_UNORDERED, Delivery.RELIABLE_ORDERED]
    .map((delivery) => Object.freeze({ channel, delivery })))

/** A message received from a peer. */
export interface MeshMessage {
  /** Sender's node id. */
  from: string
  /** The payload, the receiver's own (the node keeps no reference to it and never writes it). */
  data: Uint8Array
  /** Application channel 0..15. */
  channel: number
  /** Delivery mode it was sent with. */
  delivery: Delivery
  /** Set for topic publications. */
  topic?: string
}

/** Options of {@link MeshNode.send}, `broadcast` and `publish`. */
export interface MeshSendOptions {
  /** Application channel 0..15. Default 0. */
  channel?: number
  /** Delivery mode. Default `Delivery.RELIABLE_ORDERED`. */
  delivery?: Delivery
}

/** Options of {@link MeshNode.start}. Times in milliseconds. */
export interface MeshNodeOptions {
  /** Unique node id: 1..64 characters of `A-Z a-z 0-9 _ . : -`. Required. */
  id: string
  /** Role: 1..32 characters of `a-z 0-9 _ -`. Default `'downstream'`. */
  role?: string
  /** Address to bind. Default `'0.0.0.0'`. Ignored with `endpoint`. */
  address?: string
  /** Port to bind. Default 0 (any free port). Ignored with `endpoint`. */
  port?: number
  /** Address other nodes should send to (NAT, containers). Default: the address the coordinator sees. */
  advertise?: { host: string; port: number }
  /** Coordinators; the node registers with every one. At least one. */
  coordinators: { host: string; port: number }[]
  /** Initial metadata (≤ 32 pairs, keys ≤ 32 characters, values ≤ 128 bytes). Default `{}`. */
  meta?: Record<string, string>
  /** Network keys, newest first. Required unless `insecure`. Ignored with `endpoint`. */
  keys?: Uint8Array[]
  /**
   * Largest datagram sent to peers on other hosts, bytes (576..65000); sets the
   * endpoint's `maxDatagram`. Default 1200. Ignored with `endpoint`.
   */
  maxDatagram?: number
  /**
   * Largest datagram sent to peers at loopback addresses, bytes (576..65000);
   * sets the endpoint's `loopbackDatagram`. Default: the endpoint's (32768). Ignored with `endpoint`.
   */
  loopbackDatagram?: number
  /** Run without keys (no authentication, no encryption). Default false. */
  insecure?: boolean
  /** Heartbeat interval, ms. Default 1000. */
  heartbeatMs?: number
  /** Missed heartbeats before a coordinator expires this node's lease. Default 3. */
  leaseMisses?: number
  /** Default timeout of `request()`, ms. Default 5000. */
  requestTimeoutMs?: number
  /**
   * A direct peer that sends nothing for this long is declared down (sets the
   * endpoint's `idleTimeoutMs`; ignored with `endpoint`). Default heartbeatMs × leaseMisses.
   */
  peerTimeoutMs?: number
  /** How long `start()` waits for a coordinator to accept the registration, ms. Default 10000. */
  startTimeoutMs?: number
  /** Messages the `messages()` iterator buffers; when full the oldest is dropped (counted). Default 1024. */
  messageBufferSize?: number
  /** Most requests awaiting a reply; beyond it `request()` rejects with `QueueFullError`. Default 10000. */
  maxPendingRequests?: number
  /** How long `close()` waits for queued messages to be acknowledged, ms. Default 2000. */
  closeTimeoutMs?: number
  /** Logger. Default silent. */
  logger?: Logger
  /**
   * Before binding, run warpmesh's send and receive paths this many times
   * over private loopback sessions ({@link warmUp}), then as many round
   * trips through two private nodes and a private coordinator (the node
   * layer: {@link warmUpMesh}), so the first real messages run optimized
   * code: 0..100000 round trips, ~0.3 ms each in all. Default
   * {@link DEFAULT_WARMUP} (3000, ~1 s); 0: none. Once per process:
   * skipped when this process already ran a warm-up at least as long
   * (another node's). Gives up after 20 s, or 2 s without a private session
   * or node coming up, and starts anyway. Ignored with `endpoint`. See
   * docs/benchmarks.md ("Warm-up").
   */
  warmup?: number
  /**
   * Use this endpoint instead of binding one (simulated network). Create it
   * with {@link meshEndpointOptions} (17 channels). The node does not close it.
   */
  endpoint?: Endpoint
  /** Clock. Default the system clock (with `endpoint`, pass the endpoint's clock). */
  clock?: Clock
}

/** Totals of {@link MeshNode.stats}. */
export interface MeshTotals {
  /** Application messages handed to sessions or queued (send, broadcast, publish). */
  messagesSent: number
  /** Application messages received (including publications). */
  messagesReceived: number
  requestsSent: number
  requestsSucceeded: number
  requestsFailed: number
  requestsTimedOut: number
  requestsServed: number
  published: number
  /** Bytes of control messages exchanged with coordinators. */
  coordinatorBytesSent: number
  coordinatorBytesReceived: number
  /** Snapshots received from coordinators. */
  snapshots: number
  /** Deltas applied. */
  deltas: number
  /** Messages dropped because the `messages()` buffer was full. */
  iteratorDropped: number
  /** Queued messages dropped because the peer could not be reached. */
  undeliverable: number
  /** Malformed or unexpected control messages dropped. */
  dropped: number
  /** Peers in the table. */
  peers: number
  /** Coordinators currently registered with. */
  coordinatorsUp: number
}

interface ViewEntry { info: PeerInfo; seq: number; confirmed: boolean }

interface Coord {
  readonly host: string
  readonly port: number
  readonly key: string
  session: Session | null
  connecting: boolean
  registered: boolean
  up: boolean
  awaitingAnswer: boolean
  awaitingSnapshot: boolean
  retryRegister: boolean
  epoch: number
  version: number
  complete: boolean
  view: Map<string, ViewEntry>
  /** Why the last connect failed (for the start-up error). */
  lastError: string
}

interface OutItem { data: Uint8Array; channel: number; delivery: Delivery }

interface Link {
  readonly id: string
  session: Session | null
  connecting: boolean
  down: boolean
  outbox: OutItem[]
  outboxBytes: number
}

interface PeerSessionData {
  kind: 'peer'
  id: string | null
  helloSent: boolean
  early: [Uint8Array, number, Delivery][]
}
interface CoordSessionData { kind: 'coord'; coord: Coord }

interface PendingRequest {
  to: string
  resolve(data: Uint8Array): void
  reject(err: unknown): void
  timer: TimerHandle
}

interface Iter { queue: MeshMessage[]; wake: (() => void) | null; done: boolean }

/**
 * A mesh node. Events: `'message'` (MeshMessage), `'peer-up'` (PeerInfo),
 * `'peer-down'` (PeerInfo, reason: string), `'peer-updated'` (PeerInfo),
 * `'peer-removed'` (PeerInfo, reason: string: this incarnation left the
 * table; follows `'peer-down'`, or comes alone when the peer's session had
 * already gone down), `'close'` (the node has shut down),
 * `'coordinator-up'` / `'coordinator-down'` (address `host:port`),
 * `'peer-unreachable'` (id, error), `'error'` (DuplicateIdError when a
 * coordinator refuses a running node; only emitted when listened to).
 */
export class MeshNode extends EventEmitter {
  /** This node's id. */
  readonly id: string
  /** This node's role. */
  readonly role: string
  readonly #endpoint: Endpoint
  readonly #ownsEndpoint: boolean
  readonly #clock: Clock
  readonly #log: Logger
  readonly #heartbeatMs: number
  readonly #requestTimeoutMs: number
  readonly #messageBufferSize: number
  readonly #maxPending: number
  readonly #closeTimeoutMs: number
  readonly #advertise: { host: string; port: number } | undefined
  readonly #coords: Coord[]
  readonly #table = new Map<string, PeerInfo>()
  /** The link of the last `send()`, valid while the table is unchanged (saves two lookups per message to the same peer). */
  #lastLink: Link | null = null
  readonly #links = new Map<string, Link>()
  readonly #pending = new Map<number, PendingRequest>()
  readonly #iters = new Set<Iter>()
  readonly #removalReason = new Map<string, string>()
  #meta: Record<string, string>
  #topics: string[] = []
  #handler: ((data: Uint8Array, from: string) => Uint8Array | Promise<Uint8Array>) | null = null
  #nextCorrelation = 1
  #seq = 0
  #timer: TimerHandle | null = null
  #updateScheduled = false
  #closing = false
  #closed = false
  #startWaiter: { resolve(): void; reject(e: unknown): void } | null = null
  readonly #totals: MeshTotals = {
    messagesSent: 0, messagesReceived: 0, requestsSent: 0, requestsSucceeded: 0, requestsFailed: 0,
    requestsTimedOut: 0, requestsServed: 0, published: 0, coordinatorBytesSent: 0, coordinatorBytesReceived: 0,
    snapshots: 0, deltas: 0, iteratorDropped: 0, undeliverable: 0, dropped: 0, peers: 0, coordinatorsUp: 0,
  }

  private constructor(endpoint: Endpoint, owns: boolean, o: MeshNodeOptions) {
    super()
    this.id = o.id
    this.role = o.role ?? 'downstream'
    this.#endpoint = endpoint
    this.#ownsEndpoint = owns
    this.#clock = o.clock ?? systemClock
    this.#log = (o.logger ?? silentLogger).child({ node: o.id })
    this.#heartbeatMs = o.heartbeatMs ?? 1000
    this.#requestTimeoutMs = o.requestTimeoutMs ?? 5000
    this.#messageBufferSize = o.messageBufferSize ?? 1024
    this.#maxPending = o.maxPendingRequests ?? 10000
    this.#closeTimeoutMs = o.closeTimeoutMs ?? 2000
    this.#advertise = o.advertise
    this.#meta = { ...(o.meta ?? {}) }
    this.#coords = o.coordinators.map((c) => ({
      host: c.host, port: c.port, key: formatAddress(c.host, c.port), session: null, connecting: false,
      registered: false, up: false, awaitingAnswer: false, awaitingSnapshot: false, retryRegister: false,
      epoch: 0, version: 0, complete: false, view: new Map(), lastError: '',
    }))
    endpoint.on('session', this.#onSession)
    endpoint.on('session-down', this.#onSessionDown)
    endpoint.on('message', this.#onMessage)
  }

  /**
   * Bind an endpoint (or adopt `o.endpoint`), register with every
   * coordinator, and resolve once one accepted the registration. Rejects with
   * `DuplicateIdError` when a coordinator refuses the id, `TimeoutError` when
   * none answered within `startTimeoutMs`; the endpoint is closed then.
   */
  static async start(o: MeshNodeOptions): Promise<MeshNode> {
    checkOptions(o)
    const heartbeatMs = o.heartbeatMs ?? 1000
    let endpoint = o.endpoint
    const warmup = o.warmup ?? DEFAULT_WARMUP
    if (endpoint === undefined && warmup > processWarmup) {
      processWarmup = warmup // before the await: nodes starting together warm up once
      const log = (o.logger ?? silentLogger).child({ node: o.id })
      const protect = o.insecure !== true || (o.keys?.length ?? 0) > 0
      // The endpoint's paths first, then the node layer above them.
      const w = await warmUp({ roundTrips: warmup, protect, timeoutMs: WARMUP_TIMEOUT_MS })
      const m = w.stopped === undefined
        ? await warmUpMesh((opts) => MeshNode.start(opts), { roundTrips: warmup, protect, timeoutMs: Math.max(1, WARMUP_TIMEOUT_MS - w.ms) })
        : undefined
      const stopped = w.stopped ?? m?.stopped
      if (stopped === undefined) log.debug('warm-up done', { roundTrips: w.roundTrips, meshRoundTrips: m?.roundTrips, ms: Math.round(w.ms + (m?.ms ?? 0)) })
      else log.warn('warm-up stopped early; starting anyway', { roundTrips: w.roundTrips, meshRoundTrips: m?.roundTrips ?? 0, of: warmup, reason: stopped })
    }
    if (endpoint === undefined) {
      endpoint = await Endpoint.create({
        ...meshEndpointOptions({ heartbeatMs, leaseMisses: o.leaseMisses, peerTimeoutMs: o.peerTimeoutMs }),
        address: o.address ?? '0.0.0.0',
        port: o.port ?? 0,
        keys: o.keys,
        maxDatagram: o.maxDatagram,
        loopbackDatagram: o.loopbackDatagram,
        insecure: o.insecure,
        logger: o.logger,
        clock: o.clock,
      })
    }
    const node = new MeshNode(endpoint, o.endpoint === undefined, o)
    const startTimeoutMs = o.startTimeoutMs ?? 10000
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = node.#clock.setTimer(() => {
          reject(new TimeoutError({
            timeoutMs: startTimeoutMs,
            message: `no coordinator accepted the registration of "${o.id}" within ${startTimeoutMs} ms (tried ${node.#coords.map((c) => c.lastError === '' ? c.key : `${c.key}: ${c.lastError}`).join('; ')})`,
          }))
        }, startTimeoutMs)
        node.#startWaiter = {
          resolve: () => { node.#clock.clearTimer(timer); resolve() },
          reject: (e) => { node.#clock.clearTimer(timer); reject(e) },
        }
        for (const c of node.#coords) node.#connectCoordinator(c)
        node.#armHeartbeat()
      })
    } catch (err) {
      node.#startWaiter = null
      await node.#shutdown()
      throw err
    }
    node.#startWaiter = null
    node.#log.info('node started', { id: node.id, role: node.role, port: endpoint.port, coordinators: node.#coords.length })
    return node
  }

  /** The endpoint underneath. */
  get endpoint(): Endpoint {
    return this.#endpoint
  }

  /** Local UDP port. */
  get port(): number {
    return this.#endpoint.port
  }

  /** This node's endpoint epoch (new on every start). */
  get epoch(): number {
    return this.#endpoint.epoch >>> 0
  }

  // ------------------------------------------------------------ sending

  /**
   * Send `data` to peer `to` directly. Returns false when the peer's queue is
   * above its high-water mark (the message is queued; see {@link waitDrain}).
   * Throws `UnknownPeerError` when `to` is not in the table, `RangeError` for
   * a bad channel (0..15) or delivery, `QueueFullError` past the hard queue
   * limit, `ClosedError` after close. `data` is referenced, not copied, until
   * it has been sent (and, for reliable delivery, acknowledged): do not modify it.
   */
  send(to: string, data: Uint8Array, o?: MeshSendOptions): boolean {
    this.#checkOpen()
    const channel = checkChannel(o?.channel)
    const delivery = checkDelivery(o?.delivery)
    let l = this.#lastLink
    if (l === null || l.id !== to) {
      if (!this.#table.has(to)) throw new UnknownPeerError(to)
      l = this.#lastLink = this.#link(to)
    }
    this.#totals.messagesSent++
    return this.#sendOn(l, data, channel, delivery)
  }

  /** Resolves when `to`'s send queue is below its high-water mark (at once when no session is open). */
  async waitDrain(to: string): Promise<void> {
    const s = this.#links.get(to)?.session
    if (s?.isOpen === true) await s.waitDrain().catch(() => {})
  }

  /**
   * Send a request and resolve with the reply. Rejects with `UnknownPeerError`
   * (not in the table), `TimeoutError` (no reply within `timeoutMs`, default
   * `requestTimeoutMs`), `PeerDownError` (the peer went down or could not be
   * reached), `ClosedError` (this node closed), `QueueFullError` (too many
   * pending), or a `WarpmeshError` carrying the handler's error text.
   */
  request(to: string, data: Uint8Array, o?: { timeoutMs?: number }): Promise<Uint8Array> {
    if (this.#closing) return Promise.reject(new ClosedError())
    if (!this.#table.has(to)) return Promise.reject(new UnknownPeerError(to))
    const timeoutMs = o?.timeoutMs ?? this.#requestTimeoutMs
    if (!(timeoutMs > 0)) return Promise.reject(new RangeError(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`))
    if (this.#pending.size >= this.#maxPending) return Promise.reject(new QueueFullError({ limit: this.#maxPending, message: `too many pending requests (limit ${this.#maxPending})` }))
    let correlation = this.#nextCorrelation
    while (this.#pending.has(correlation) || correlation === 0) correlation = (correlation + 1) >>> 0
    this.#nextCorrelation = (correlation + 1) >>> 0
    this.#totals.requestsSent++
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = this.#clock.setTimer(() => {
        if (this.#pending.delete(correlation)) {
          this.#totals.requestsTimedOut++
          reject(new TimeoutError({ timeoutMs, message: `request to "${to}" timed out after ${timeoutMs} ms` }))
        }
      }, timeoutMs)
      this.#pending.set(correlation, { to, resolve, reject, timer })
      try {
        this.#sendOn(this.#link(to), encodeRequest(correlation, data), CONTROL_CHANNEL, Delivery.RELIABLE_ORDERED)
      } catch (err) {
        this.#settle(correlation, err)
      }
    })
  }

  /** Set the request handler (replaces any previous one). Without one, requests fail with an error reply. */
  onRequest(handler: (data: Uint8Array, from: string) => Uint8Array | Promise<Uint8Array>): void {
    if (typeof handler !== 'function') throw new TypeError('onRequest(handler): handler must be a function')
    this.#handler = handler
  }

  /**
   * Send `data` directly to every peer matching the filter: `role` equal, and
   * `tag` among the comma-separated `tags` metadata value. Returns how many
   * peers it was sent to (a peer whose queue is full is skipped).
   */
  broadcast(filter: { role?: string; tag?: string }, data: Uint8Array, o?: MeshSendOptions): number {
    this.#checkOpen()
    const channel = checkChannel(o?.channel)
    const delivery = checkDelivery(o?.delivery)
    let n = 0
    for (const p of this.#table.values()) {
      if (filter.role !== undefined && p.role !== filter.role) continue
      if (filter.tag !== undefined && !tagsOf(p).includes(filter.tag)) continue
      try {
        this.#sendOn(this.#link(p.id), data, channel, delivery)
        this.#totals.messagesSent++
        n++
      } catch { /* queue full: skipped */ }
    }
    return n
  }

  /** Subscribe to a topic (travels in the peer table; ≤ 64 topics of ≤ 64 characters). */
  subscribe(topic: string): void {
    this.#checkOpen()
    checkTopic(topic)
    if (this.#topics.includes(topic)) return
    if (this.#topics.length >= MAX_TOPICS) throw new RangeError(`at most ${MAX_TOPICS} topics per node`)
    this.#topics = [...this.#topics, topic]
    this.#scheduleUpdate()
  }

  /** Unsubscribe from a topic. */
  unsubscribe(topic: string): void {
    this.#checkOpen()
    if (!this.#topics.includes(topic)) return
    this.#topics = this.#topics.filter((t) => t !== topic)
    this.#scheduleUpdate()
  }

  /** Send `data` directly to every peer subscribed to `topic` (not to this node). Returns the count. */
  publish(topic: string, data: Uint8Array, o?: MeshSendOptions): number {
    this.#checkOpen()
    checkTopic(topic)
    const channel = checkChannel(o?.channel)
    const delivery = checkDelivery(o?.delivery)
    let bytes: Uint8Array | null = null
    let n = 0
    for (const p of this.#table.values()) {
      if (!p.topics.includes(topic)) continue
      bytes ??= encodePublish(topic, channel, data)
      try {
        this.#sendOn(this.#link(p.id), bytes, CONTROL_CHANNEL, delivery)
        n++
      } catch { /* queue full: skipped */ }
    }
    this.#totals.published++
    this.#totals.messagesSent += n
    return n
  }

  /** A copy of the peer table (without this node). */
  peers(): PeerInfo[] {
    return [...this.#table.values()].map(copyPeer)
  }

  /** Replace this node's metadata everywhere (through the coordinators). */
  setMeta(meta: Record<string, string>): void {
    this.#checkOpen()
    const problem = metaProblem(meta)
    if (problem !== undefined) throw new RangeError(`setMeta(): ${problem}`)
    this.#meta = { ...meta }
    this.#scheduleUpdate()
  }

  /**
   * Incoming messages as an async iterator (each iterator sees every message
   * from its creation on, also emitted as `'message'` events). Each iterator
   * buffers up to `messageBufferSize` messages; when full the oldest is
   * dropped and counted in `stats().totals.iteratorDropped`. Ends on close.
   */
  messages(): AsyncIterableIterator<MeshMessage> {
    const it: Iter = { queue: [], wake: null, done: this.#closed }
    this.#iters.add(it)
    const finish = (): IteratorResult<MeshMessage> => {
      it.done = true
      this.#iters.delete(it)
      return { done: true, value: undefined }
    }
    const iterator: AsyncIterableIterator<MeshMessage> = {
      next: async () => {
        for (;;) {
          const m = it.queue.shift()
          if (m !== undefined) return { done: false, value: m }
          if (it.done) return finish()
          await new Promise<void>((resolve) => { it.wake = resolve })
          it.wake = null
        }
      },
      return: async () => finish(),
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  /** Per-peer session statistics (peers with an open direct session) and totals. */
  stats(): { peers: Record<string, SessionStats & { id: string }>; totals: MeshTotals } {
    const peers: Record<string, SessionStats & { id: string }> = {}
    for (const l of this.#links.values()) {
      if (l.session?.isOpen === true) peers[l.id] = { ...l.session.stats(), id: l.id }
    }
    return {
      peers,
      totals: { ...this.#totals, peers: this.#table.size, coordinatorsUp: this.#coords.filter((c) => c.up).length },
    }
  }

  /**
   * Graceful shutdown: pending requests reject with `ClosedError`, queued
   * messages are flushed (up to `closeTimeoutMs`), every coordinator is told
   * (deregister), then the endpoint is closed (when this node created it).
   */
  async close(): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    this.#timer = null
    for (const c of [...this.#pending.keys()]) this.#settle(c, new ClosedError({ message: 'node closed before the reply arrived' }))
    const deadline = this.#clock.now() + this.#closeTimeoutMs
    // Flush: every direct session has sent and had acknowledged what it holds.
    // A link still connecting holds its messages in the outbox: wait for it too,
    // so a send() right before close() is not dropped.
    await this.#until(() => [...this.#links.values()].every((l) => l.down ||
      (l.session === null ? !l.connecting || l.outbox.length === 0
        : !l.session.isOpen || (l.outbox.length === 0 && l.session.stats().unackedMessages === 0 && l.session.stats().queuedBytes === 0))), deadline)
    const bye = encodeControl({ kind: MeshKind.DEREGISTER, id: this.id, epoch: this.epoch })
    const acks: Promise<unknown>[] = []
    for (const c of this.#coords) {
      if (c.session?.isOpen === true && c.registered) {
        this.#totals.coordinatorBytesSent += bye.length
        acks.push(c.session.sendAcked(bye, { channel: CONTROL_CHANNEL }).catch(() => {}))
      }
    }
    let done = false
    void Promise.all(acks).then(() => { done = true })
    await this.#until(() => done, Math.max(deadline, this.#clock.now() + Math.min(1000, this.#closeTimeoutMs)))
    await this.#shutdown()
    this.#log.info('node closed', { id: this.id })
  }

  // ------------------------------------------------------------ internals

  #checkOpen(): void {
    if (this.#closing) throw new ClosedError()
  }

  /** Wait (polling on the node's clock, so fake clocks work) until `pred` or `deadline`. */
  async #until(pred: () => boolean, deadline: number): Promise<void> {
    while (!pred() && this.#clock.now() < deadline) {
      await new Promise<void>((resolve) => { this.#clock.setTimer(resolve, 5) })
    }
  }

  async #shutdown(): Promise<void> {
    this.#closing = true
    this.#closed = true
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    this.#timer = null
    for (const c of [...this.#pending.keys()]) this.#settle(c, new ClosedError())
    for (const it of this.#iters) {
      it.done = true
      it.wake?.()
    }
    this.#endpoint.off('session', this.#onSession)
    this.#endpoint.off('session-down', this.#onSessionDown)
    this.#endpoint.off('message', this.#onMessage)
    if (this.#ownsEndpoint) {
      await this.#endpoint.close()
    } else {
      for (const c of this.#coords) c.session?.close()
      for (const l of this.#links.values()) l.session?.close()
    }
    this.emit('close')
  }

  #link(id: string): Link {
    let l = this.#links.get(id)
    if (l === undefined) {
      l = { id, session: null, connecting: false, down: false, outbox: [], outboxBytes: 0 }
      this.#links.set(id, l)
    }
    return l
  }

  #sendOn(l: Link, data: Uint8Array, channel: number, delivery: Delivery): boolean {
    const s = l.session
    if (s !== null && s.isOpen) return s.send(data, SEND_OPTIONS[channel][delivery])
    return this.#enqueue(l, data, channel, delivery)
  }

  /**
   * Hold a message until `l`'s session opens. A method of its own, not part of
   * #sendOn: it runs for a peer's first messages only, so V8 calls it rather
   * than inlining it into send(), and its first use with each new peer (a
   * fresh outbox array) cannot deoptimize the send() a node's warm-up
   * compiled: it did, on every node, for the sessions the first real
   * messages opened.
   */
  #enqueue(l: Link, data: Uint8Array, channel: number, delivery: Delivery): boolean {
    if (l.outboxBytes + data.length > OUTBOX_LIMIT) {
      throw new QueueFullError({ limit: OUTBOX_LIMIT, message: `queue to "${l.id}" full while its session opens (limit ${OUTBOX_LIMIT} bytes)` })
    }
    l.outbox.push({ data: data.slice(), channel, delivery })
    l.outboxBytes += data.length
    this.#openSession(l)
    return l.outboxBytes <= OUTBOX_HIGH_WATER
  }

  #openSession(l: Link): void {
    if (l.connecting || this.#closed) return
    const info = this.#table.get(l.id)
    if (info === undefined) return
    l.connecting = true
    const where = formatAddress(info.address, info.port)
    this.#endpoint.connect(info.address, info.port).then((s) => {
      l.connecting = false
      if (this.#closed) return
      const current = this.#table.get(l.id)
      const sd = s.data as PeerSessionData | CoordSessionData | null
      if (current === undefined) return this.#failLink(l, new PeerDownError(l.id, { message: `peer "${l.id}" left the table` }))
      if ((s.remoteEpoch >>> 0) !== current.epoch || (sd?.kind === 'peer' && sd.id !== null && sd.id !== l.id) || sd?.kind === 'coord') {
        const who = sd?.kind === 'peer' && sd.id !== null ? `node "${sd.id}"` : `an endpoint with epoch ${s.remoteEpoch >>> 0}`
        this.#log.rateLimited(`wrong-address:${l.id}`, 5000).warn('peer advertises an address where another endpoint answers (check its WARPMESH_ADVERTISE)', {
          peer: l.id, address: where, expectedEpoch: current.epoch, found: who,
        })
        return this.#failLink(l, new PeerDownError(l.id, { message: `peer "${l.id}" is not at its advertised address ${where}: ${who} answers there` }))
      }
      this.#identify(s, l.id)
    }, (err: unknown) => {
      l.connecting = false
      if (this.#closed) return
      this.#log.rateLimited(`unreachable:${l.id}`, 5000).warn('cannot reach peer at its advertised address (is it up? check its WARPMESH_ADVERTISE)', {
        peer: l.id, address: where, error: (err as Error).message,
      })
      this.#failLink(l, new PeerDownError(l.id, { message: `peer "${l.id}" unreachable at ${where}: ${(err as Error).message}`, cause: err }))
    })
  }

  /** Drop what waits for `l` and fail the requests to it. */
  #failLink(l: Link, err: PeerDownError): void {
    this.#totals.undeliverable += l.outbox.length
    l.outbox = []
    l.outboxBytes = 0
    this.#failRequests(l.id, err)
    if (this.listenerCount('peer-unreachable') > 0) this.emit('peer-unreachable', l.id, err)
  }

  #failRequests(id: string, err: unknown): void {
    for (const [c, p] of [...this.#pending]) if (p.to === id) this.#settle(c, err)
  }

  #settle(correlation: number, err: unknown, reply?: Uint8Array): void {
    const p = this.#pending.get(correlation)
    if (p === undefined) return
    this.#pending.delete(correlation)
    this.#clock.clearTimer(p.timer)
    if (err === undefined) {
      this.#totals.requestsSucceeded++
      p.resolve(reply!)
    } else {
      this.#totals.requestsFailed++
      p.reject(err)
    }
  }

  /** `s` is (now known to be) the direct session with peer `id`. */
  #identify(s: Session, id: string): void {
    let sd = s.data as PeerSessionData | null
    if (sd === null || sd.kind !== 'peer') {
      sd = { kind: 'peer', id, helloSent: false, early: [] }
      s.data = sd
    }
    sd.id = id
    const l = this.#link(id)
    l.session = s
    if (!sd.helloSent) {
      sd.helloSent = true
      s.send(encodeControl({ kind: MeshKind.HELLO, id: this.id, epoch: this.epoch }), { channel: CONTROL_CHANNEL })
    }
    const info = this.#table.get(id)
    if (l.down && info !== undefined && info.epoch === (s.remoteEpoch >>> 0)) {
      l.down = false
      this.emit('peer-up', copyPeer(info))
    }
    const out = l.outbox
    l.outbox = []
    l.outboxBytes = 0
    for (let i = 0; i < out.length; i++) {
      try {
        s.send(out[i].data, SEND_OPTIONS[out[i].channel][out[i].delivery])
      } catch {
        this.#totals.undeliverable += out.length - i
        break
      }
    }
    const early = sd.early
    sd.early = []
    for (const [data, channel, delivery] of early) this.#onPeerMessage(data, s, sd, channel, delivery)
  }

  readonly #onSession = (s: Session): void => {
    if (s.data === null) s.data = { kind: 'peer', id: null, helloSent: false, early: [] } satisfies PeerSessionData
  }

  readonly #onSessionDown = (s: Session, reason: string): void => {
    const sd = s.data as PeerSessionData | CoordSessionData | null
    if (sd === null) return
    if (sd.kind === 'coord') {
      const c = sd.coord
      if (c.session !== s) return
      c.session = null
      c.registered = false
      c.awaitingAnswer = false
      if (c.up) {
        c.up = false
        this.#log.warn('coordinator down', { coordinator: c.key, reason })
        this.emit('coordinator-down', c.key)
      }
      if (!this.#closing) this.#connectCoordinator(c)
      return
    }
    if (sd.id === null) return
    const l = this.#links.get(sd.id)
    if (l === undefined || l.session !== s) return
    l.session = null
    this.#failRequests(sd.id, new PeerDownError(sd.id, { message: `peer "${sd.id}" is down: session ${reason}` }))
    const info = this.#table.get(sd.id)
    if (!this.#closing && info !== undefined && !l.down && info.epoch === (s.remoteEpoch >>> 0)) {
      l.down = true
      this.#log.info('peer down', { peer: sd.id, reason })
      this.emit('peer-down', copyPeer(info), reason)
    }
  }

  readonly #onMessage = (data: Uint8Array, s: Session, channel: number, delivery: Delivery): void => {
    if (this.#closed) return
    const sd = s.data as PeerSessionData | CoordSessionData | null
    if (sd === null) return
    if (sd.kind === 'coord') {
      if (channel !== CONTROL_CHANNEL) return
      this.#totals.coordinatorBytesReceived += data.length
      const m = decodeControl(data)
      if (m === null) {
        this.#totals.dropped++
        return
      }
      this.#onCoordinatorMessage(sd.coord, m)
      return
    }
    this.#onPeerMessage(data, s, sd, channel, delivery)
  }

  #onPeerMessage(data: Uint8Array, s: Session, sd: PeerSessionData, channel: number, delivery: Delivery): void {
    let m: MeshControl | null = null
    if (channel === CONTROL_CHANNEL) {
      m = decodeEnvelope(data)
      if (m === null) {
        this.#totals.dropped++
        return
      }
      if (m.kind === MeshKind.HELLO) {
        if (m.epoch !== (s.remoteEpoch >>> 0) || m.id === '' || m.id === this.id) {
          this.#totals.dropped++
          return
        }
        if (sd.id !== m.id) this.#identify(s, m.id)
        return
      }
    }
    if (sd.id === null) {
      // Data overtook the HELLO (another channel): keep it until the HELLO names the sender.
      if (sd.early.length < EARLY_LIMIT) sd.early.push([data.slice(), channel, delivery])
      else this.#totals.dropped++
      return
    }
    const from = sd.id
    if (m === null) return this.#deliver({ from, data: owned(data), channel, delivery })
    switch (m.kind) {
      case MeshKind.PUBLISH:
        return this.#deliver({ from, data: m.data.slice(), channel: m.channel, delivery, topic: m.topic })
      case MeshKind.REQUEST:
        return this.#serve(s, from, m.correlation, m.data.slice())
      case MeshKind.REPLY: {
        const p = this.#pending.get(m.correlation)
        if (p === undefined || p.to !== from) return
        if (m.failed) {
          this.#settle(m.correlation, new WarpmeshError(`request handler of "${from}" failed: ${Buffer.from(m.data).toString('utf8')}`))
        } else {
          this.#settle(m.correlation, undefined, m.data.slice())
        }
        return
      }
      default:
        this.#totals.dropped++
    }
  }

  #deliver(msg: MeshMessage): void {
    this.#totals.messagesReceived++
    if (this.#iters.size !== 0) for (const it of this.#iters) {
      if (it.queue.length >= this.#messageBufferSize) {
        it.queue.shift()
        this.#totals.iteratorDropped++
      }
      it.queue.push(msg)
      it.wake?.()
    }
    this.emit('message', msg)
  }

  #serve(s: Session, from: string, correlation: number, data: Uint8Array): void {
    const reply = (bytes: Uint8Array, failed: boolean): void => {
      if (!s.isOpen || this.#closed) return
      try {
        s.send(encodeReply(correlation, bytes, failed), SEND_OPTIONS[CONTROL_CHANNEL][Delivery.RELIABLE_ORDERED])
        this.#totals.requestsServed++
      } catch { /* queue full or closed: the requester times out */ }
    }
    const fail = (err: unknown): void => {
      reply(Buffer.from(err instanceof Error ? err.message : String(err)), true)
    }
    const h = this.#handler
    if (h === null) return fail(new Error(`node "${this.id}" has no request handler`))
    try {
      const r = h(data, from)
      if (r instanceof Uint8Array) reply(r, false)
      else Promise.resolve(r).then((v) => reply(v instanceof Uint8Array ? v : Buffer.from(String(v)), false), fail)
    } catch (err) {
      fail(err)
    }
  }

  // ------------------------------------------------------------ coordinators

  #selfRecord(): PeerInfo {
    return {
      id: this.id, role: this.role, address: this.#advertise?.host ?? '', port: this.#advertise?.port ?? 0,
      epoch: this.epoch, meta: this.#meta, topics: this.#topics,
    }
  }

  #sendToCoordinator(c: Coord, msg: Partial<MeshControl>): void {
    const s = c.session
    if (s === null || !s.isOpen) return
    const bytes = encodeControl(msg)
    try {
      s.send(bytes, { channel: CONTROL_CHANNEL })
      this.#totals.coordinatorBytesSent += bytes.length
    } catch { /* closed or full: the next heartbeat tick retries */ }
  }

  #register(c: Coord): void {
    // Only a first registration is answered (with the table). An update on a
    // registered session comes back as a delta, or not at all when nothing
    // changed; the heartbeat alone tells whether the coordinator is alive.
    if (!c.registered) c.awaitingAnswer = true
    c.retryRegister = false
    this.#sendToCoordinator(c, { kind: MeshKind.REGISTER, peers: [this.#selfRecord()] })
  }

  #connectCoordinator(c: Coord): void {
    if (c.connecting || this.#closing || (c.session !== null && c.session.isOpen)) return
    c.connecting = true
    this.#endpoint.connect(c.host, c.port).then((s) => {
      c.connecting = false
      if (this.#closing) return
      c.session = s
      s.data = { kind: 'coord', coord: c } satisfies CoordSessionData
      const epoch = s.remoteEpoch >>> 0
      if (epoch !== c.epoch) {
        // A new coordinator process: what it pushes starts from scratch; keep our view until it confirms or completes.
        c.epoch = epoch
        c.version = 0
        c.complete = false
        for (const e of c.view.values()) e.confirmed = false
      }
      c.registered = false
      c.awaitingSnapshot = true
      this.#register(c)
    }, (err: unknown) => {
      c.connecting = false
      if (this.#closing) return
      c.lastError = (err as Error).message
      if (err instanceof HandshakeError) {
        this.#log.rateLimited(`coord-handshake:${c.key}`, 5000).error('coordinator handshake failed (no matching network key?)', { coordinator: c.key, error: err.message })
        return // the heartbeat tick retries
      }
      // Timed out: nobody there yet. Try again at once so a restart is noticed quickly.
      this.#connectCoordinator(c)
    })
  }

  #armHeartbeat(): void {
    if (this.#closing) return
    this.#timer = this.#clock.setTimer(this.#tick, this.#heartbeatMs)
  }

  readonly #tick = (): void => {
    this.#timer = null
    if (this.#closing) return
    for (const c of this.#coords) {
      const s = c.session
      if (s === null || !s.isOpen) {
        this.#connectCoordinator(c)
      } else if (c.awaitingAnswer) {
        // No answer for a whole heartbeat: the coordinator died or restarted (a restarted one
        // silently drops our old session's packets). Open a new session; it re-registers.
        this.#log.debug('coordinator silent, reconnecting', { coordinator: c.key })
        s.close() // session-down reconnects
        if (c.session === s) {
          c.session = null
          this.#connectCoordinator(c)
        }
      } else if (c.retryRegister || !c.registered) {
        this.#register(c)
      } else {
        c.awaitingAnswer = true
        this.#sendToCoordinator(c, { kind: MeshKind.HEARTBEAT, id: this.id, epoch: this.epoch, version: c.version })
      }
    }
    this.#armHeartbeat()
  }

  #scheduleUpdate(): void {
    if (this.#updateScheduled) return
    this.#updateScheduled = true
    this.#clock.defer(() => {
      this.#updateScheduled = false
      if (this.#closing) return
      for (const c of this.#coords) if (c.registered) this.#register(c)
    })
  }

  #onCoordinatorMessage(c: Coord, m: MeshControl): void {
    switch (m.kind) {
      case MeshKind.SNAPSHOT: {
        c.awaitingAnswer = false
        c.awaitingSnapshot = false
        this.#totals.snapshots++
        this.#applySnapshot(c, m)
        if (!c.registered) {
          c.registered = true
          if (!c.up) {
            c.up = true
            this.#log.info('registered with coordinator', { coordinator: c.key, peers: this.#table.size })
            this.emit('coordinator-up', c.key)
          }
          this.#startWaiter?.resolve()
        }
        return
      }
      case MeshKind.DELTA: {
        if (c.awaitingSnapshot) return
        if (m.baseVersion === c.version) {
          this.#totals.deltas++
          this.#applyDelta(c, m)
        } else if (((m.version - c.version) | 0) > 0) {
          // Missed a version: ask for the whole table.
          c.awaitingSnapshot = true
          this.#sendToCoordinator(c, { kind: MeshKind.SNAPSHOT_REQUEST })
        }
        return
      }
      case MeshKind.HEARTBEAT_ACK:
        c.awaitingAnswer = false
        if (!c.awaitingSnapshot && m.version !== c.version) {
          c.awaitingSnapshot = true
          this.#sendToCoordinator(c, { kind: MeshKind.SNAPSHOT_REQUEST })
        }
        return
      case MeshKind.UNKNOWN:
        // The coordinator lost our registration (restarted, or our lease expired): register again.
        c.awaitingSnapshot = true
        this.#register(c)
        return
      case MeshKind.REFUSED: {
        c.awaitingAnswer = false
        c.retryRegister = true
        const err = new DuplicateIdError(this.id, { holder: m.holder || undefined, message: `coordinator ${c.key} refused registration: ${m.reason}` })
        this.#log.error('registration refused: duplicate node id', { coordinator: c.key, id: this.id, holder: m.holder, reason: m.reason })
        if (this.#startWaiter !== null) this.#startWaiter.reject(err)
        else if (this.listenerCount('error') > 0) this.emit('error', err)
        return
      }
      default:
        this.#totals.dropped++
    }
  }

  #applySnapshot(c: Coord, m: MeshControl): void {
    const touched = new Set<string>(c.view.keys())
    if (m.complete) {
      const old = c.view
      c.view = new Map()
      for (const p of m.peers) {
        if (p.id === this.id) continue
        const prev = old.get(p.id)
        const info = copyPeer(p)
        c.view.set(p.id, { info, seq: prev !== undefined && samePeer(prev.info, info) ? prev.seq : ++this.#seq, confirmed: true })
        touched.add(p.id)
      }
    } else {
      for (const p of m.peers) this.#upsertView(c, p, touched)
    }
    c.complete = m.complete
    c.version = m.version
    for (const id of touched) this.#recompute(id)
  }

  #applyDelta(c: Coord, m: MeshControl): void {
    const touched = new Set<string>()
    for (const r of m.removed) {
      if (c.view.delete(r.id)) {
        touched.add(r.id)
        this.#removalReason.set(r.id, r.reason || 'left')
      }
    }
    for (const p of m.peers) this.#upsertView(c, p, touched)
    if (m.complete && !c.complete) {
      for (const [id, e] of [...c.view]) {
        if (!e.confirmed) {
          c.view.delete(id)
          touched.add(id)
          this.#removalReason.set(id, 'expired')
        }
      }
    }
    c.complete = m.complete
    c.version = m.version
    for (const id of touched) this.#recompute(id)
  }

  #upsertView(c: Coord, p: PeerInfo, touched: Set<string>): void {
    if (p.id === this.id) return
    const prev = c.view.get(p.id)
    const info = copyPeer(p)
    if (prev !== undefined && samePeer(prev.info, info)) {
      prev.confirmed = true
      return
    }
    c.view.set(p.id, { info, seq: ++this.#seq, confirmed: true })
    touched.add(p.id)
  }

  /** Merge the views for `id` and report the change. */
  #recompute(id: string): void {
    this.#lastLink = null
    let best: ViewEntry | undefined
    for (const c of this.#coords) {
      const e = c.view.get(id)
      if (e !== undefined && (best === undefined || e.seq > best.seq)) best = e
    }
    const old = this.#table.get(id)
    const next = best?.info
    if (next === undefined) {
      if (old === undefined) return
      this.#table.delete(id)
      const reason = this.#removalReason.get(id) ?? 'left'
      this.#removalReason.delete(id)
      this.#peerGone(id, old, reason)
      this.#links.delete(id)
      return
    }
    if (old === undefined) {
      this.#table.set(id, next)
      const l = this.#links.get(id)
      if (l !== undefined) l.down = false
      this.emit('peer-up', copyPeer(next))
      return
    }
    if (old.epoch !== next.epoch) {
      this.#peerGone(id, old, 'restarted')
      this.#table.set(id, next)
      const l = this.#link(id)
      l.down = false
      this.emit('peer-up', copyPeer(next))
      return
    }
    if (!samePeer(old, next)) {
      this.#table.set(id, next)
      this.emit('peer-updated', copyPeer(next))
    }
  }

  /** The incarnation `old` of `id` is gone: close its session, fail what waits for it, tell the user once. */
  #peerGone(id: string, old: PeerInfo, reason: string): void {
    const l = this.#links.get(id)
    const err = new PeerDownError(id, { message: `peer "${id}" is down: ${reason}` })
    if (l !== undefined) {
      const s = l.session
      l.session = null
      if (s !== null && s.isOpen && (s.remoteEpoch >>> 0) === old.epoch) {
        (s.data as PeerSessionData).id = null
        s.close()
      }
      this.#totals.undeliverable += l.outbox.length
      l.outbox = []
      l.outboxBytes = 0
    }
    this.#failRequests(id, err)
    if (l?.down !== true) {
      this.#log.info('peer down', { peer: id, reason })
      this.emit('peer-down', copyPeer(old), reason)
    }
    if (l !== undefined) l.down = true
    this.emit('peer-removed', copyPeer(old), reason)
  }
}

function checkOptions(o: MeshNodeOptions): void {
  if (o === null || typeof o !== 'object') throw new TypeError('MeshNode.start(options): options must be an object')
  if (typeof o.id !== 'string' || !ID_PATTERN.test(o.id)) {
    throw new TypeError(`id must be 1-64 characters of A-Z a-z 0-9 _ . : -, got ${JSON.stringify(o.id)}`)
  }
  if (o.role !== undefined && !ROLE_PATTERN.test(o.role)) {
    throw new TypeError(`role must be 1-32 characters of a-z 0-9 _ -, got ${JSON.stringify(o.role)}`)
  }
  if (!Array.isArray(o.coordinators) || o.coordinators.length === 0) {
    throw new TypeError('coordinators must list at least one { host, port }')
  }
  for (const c of o.coordinators) {
    if (typeof c?.host !== 'string' || c.host === '' || !Number.isInteger(c.port) || c.port < 1 || c.port > 65535) {
      throw new TypeError(`every coordinator must be { host: string, port: 1..65535 }, got ${JSON.stringify(c)}`)
    }
  }
  if (o.warmup !== undefined && !(Number.isInteger(o.warmup) && o.warmup >= 0 && o.warmup <= MAX_WARMUP_ROUND_TRIPS)) {
    throw new RangeError(`warmup must be an integer 0..${MAX_WARMUP_ROUND_TRIPS} (round trips), got ${o.warmup}`)
  }
  if (o.heartbeatMs !== undefined && !(o.heartbeatMs > 0)) throw new RangeError(`heartbeatMs must be a positive number of milliseconds, got ${o.heartbeatMs}`)
  if (o.leaseMisses !== undefined && !(Number.isInteger(o.leaseMisses) && o.leaseMisses >= 1)) throw new RangeError(`leaseMisses must be an integer >= 1, got ${o.leaseMisses}`)
  if (o.meta !== undefined) {
    const problem = metaProblem(o.meta)
    if (problem !== undefined) throw new RangeError(`meta: ${problem}`)
  }
}

/**
 * Tags of table entries (`meta.tags` split on commas, trimmed), parsed once
 * per entry: an entry is replaced, never modified, when the peer's record
 * changes, so a cached list never goes stale and is dropped with its entry.
 */
const TAGS = new WeakMap<PeerInfo, readonly string[]>()

function tagsOf(p: PeerInfo): readonly string[] {
  let tags = TAGS.get(p)
  if (tags === undefined) {
    tags = (p.meta.tags ?? '').split(',').map((s) => s.trim())
    TAGS.set(p, tags)
  }
  return tags
}

/**
 * Received data as the application gets it. The endpoint delivers each
 * message as its own Buffer view (of a datagram or decrypted payload it
 * keeps no reference to), which is passed on as is: `Buffer#slice()`, used
 * here before, made another view of the same bytes, not a copy. Anything
 * else is copied.
 */
function owned(data: Uint8Array): Uint8Array {
  return Buffer.isBuffer(data) ? data : data.slice()
}

function checkChannel(channel: number | undefined): number {
  const c = channel ?? 0
  if (!Number.isInteger(c) || c < 0 || c >= APP_CHANNELS) throw new RangeError(`channel must be an integer 0..${APP_CHANNELS - 1} (16 is reserved for mesh control), got ${c}`)
  return c
}

function checkDelivery(delivery: Delivery | undefined): Delivery {
  const d = delivery ?? Delivery.RELIABLE_ORDERED
  if (!Number.isInteger(d) || d < 0 || d > 3) throw new RangeError(`delivery must be one of Delivery.*, got ${d}`)
  return d
}

function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > TOPIC_MAX_LENGTH) {
    throw new RangeError(`topic must be 1..${TOPIC_MAX_LENGTH} characters, got ${JSON.stringify(topic)}`)
  }
}
