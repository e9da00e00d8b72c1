/**
 * The endpoint: one datagram socket, the sessions over it, the handshake,
 * one timer, and the coalescing flush: application sends when their callback
 * returns, acknowledgements at the end of the event-loop turn.
 *
 * Handshake (stateless until the initiator proves its address):
 *
 *     initiator                         responder
 *     HELLO {connId, epoch, nonce} ───▶  (no state) cookie = MAC(addr, port, connId, nonce, time)
 *          ◀─── CHALLENGE {cookie, epoch}        never larger than the HELLO
 *     CONNECT {…, cookie, proof} ─────▶  cookie ok, key proof ok → session
 *          ◀─── ACCEPT {connId, epoch, nonce, proof}
 *
 * With a network key both proofs are HMACs over the transcript, session keys
 * come from HKDF over the key and both nonces, and every DATA packet is sealed
 * with ChaCha20-Poly1305 (libsodium) whose associated data is the packet header
 * (up to the payload's tag).
 */
import { Buffer } from 'node:buffer'
import { EventEmitter } from 'node:events'
import { LRUCache } from 'lru-cache'
import { randomInt } from 'node:crypto'
import { isIP } from 'node:net'
import {
  Connection, closeReasonText, type ConnectionHost, type ConnectionOptions, type UndeliveredMessage,
} from './core/connection.js'
import {
  CloseReason, decodeFrames, decodePacket, Delivery, encodePacket, MAGIC, PacketType, payloadOffset, varintSize, VERSION,
  type MalformedReason, type Packet,
} from './wire/codec.js'
import { systemClock, type Clock, type TimerHandle, type Transport } from './transport/transport.js'
import { bindUdp, type UdpOptions } from './transport/udp.js'
import { dataAadSize, dataHeaderSize, encodeDataHeader, PAYLOAD_TAG, writeDataHeader } from './wire/fast.js'
import { CookieJar } from './security/cookie.js'
import {
  createNonce, deriveSessionKeys, NONCE_LENGTH, proveInitiator, proveResponder, verifyInitiator, verifyResponder,
  type Transcript,
} from './security/handshake.js'
import { PacketProtector, TAG_LENGTH } from './security/aead.js'
import { loadSodium } from './security/sodium.js'
import { keyId } from './security/keys.js'
import { ReplayWindow } from './security/replay.js'
import { ClosedError, HandshakeError, SessionClosedError, TimeoutError } from './errors.js'
import { silentLogger, type Logger } from './log.js'
import type { ConnectionStats } from './core/connection.js'

/** Options of an {@link Endpoint}. Times in milliseconds, sizes in bytes. */
export interface EndpointOptions extends ConnectionOptions {
  /**
   * Largest datagram sent to a peer on another host (576..65000), and the
   * size HELLO is padded to. 1200 fits every IPv6 path and common tunnels
   * without IP fragmentation. Default 1200.
   */
  maxDatagram?: number
  /**
   * Largest datagram sent to a peer at a loopback address (127.0.0.0/8,
   * `::1`, `::ffff:127.x.y.z`), 576..65000: on one host there is no link MTU
   * to respect (Linux's `lo` carries 64 KiB), and one `sendmsg` per 32 KiB
   * instead of per 1200 B is what lets a stream of small messages reach
   * millions per second. Set it to `maxDatagram` for 1200-B datagrams
   * everywhere. Each side advertises the size it accepts in the handshake
   * and a session uses the smaller of the two. Default 32768.
   */
  loopbackDatagram?: number
  /**
   * Most payload bytes in flight per session (see `ConnectionOptions`).
   * Default: half the transport's reported receive buffer (peers on one
   * network usually share a configuration), between 64 KiB and 2 MiB; 2 MiB
   * when the transport reports none.
   */
  maxInFlightBytes?: number
  /** Network keys, newest first; the first starts sessions, all are accepted. Default none. */
  keys?: readonly Uint8Array[]
  /** Allow running without a key (no authentication, no encryption). Default false. */
  insecure?: boolean
  /** Give up a handshake after this long. Default 5000. */
  handshakeTimeoutMs?: number
  /** Resend HELLO/CONNECT after this long without an answer (doubles each time). Default 200. */
  handshakeRetryMs?: number
  /** Most sessions (established and half-open) at once; further handshakes are refused. Default 4096. */
  maxSessions?: number
  /** Clock; tests pass a fake one. Default the system clock. */
  clock?: Clock
  /** Logger. Default silent. */
  logger?: Logger
}

/** Datagram size assumed for a peer that advertises none. */
const DEFAULT_DATAGRAM = 1200
/** Every IPv4 host accepts datagrams of 576 bytes; no smaller size is ever used. */
const MIN_DATAGRAM = 576
/** Largest `maxDatagram`/`loopbackDatagram`: under the largest IPv4 UDP payload (65507). */
const MAX_DATAGRAM = 65000

/** True for addresses that never leave this host: 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
export function isLoopbackAddress(address: string): boolean {
  if (address.startsWith('127.')) return isIP(address) === 4
  if (address === '::1') return true
  const a = address.toLowerCase()
  if (a.startsWith('::ffff:127.')) return isIP(a.slice(7)) === 4
  // Other spellings of ::1 (0:0:0:0:0:0:0:1, 0::1, ...).
  return isIP(a) === 6 && a.endsWith(':1') && /^[0:]*:1$/.test(a)
}

/** A host for connections built only to validate options. */
const NO_HOST: ConnectionHost = { output() {}, deliver() {}, drain() {}, closed() {} }

/** Half the reported receive buffer, within 64 KiB .. 2 MiB (2 MiB if unknown). */
function defaultInFlightBytes(recvBufferSize: number | undefined): number {
  if (recvBufferSize === undefined || !(recvBufferSize > 0)) return 2 << 20
  return Math.min(2 << 20, Math.max(64 << 10, Math.floor(recvBufferSize / 2)))
}

function datagramSize(name: string, value: number): number {
  if (!Number.isInteger(value) || value < MIN_DATAGRAM || value > MAX_DATAGRAM) {
    throw new RangeError(`${name} must be an integer ${MIN_DATAGRAM}..${MAX_DATAGRAM}, got ${value}`)
  }
  return value
}

/** How long a handshake cookie is accepted, ms. */
const COOKIE_LIFETIME_MS = 10_000
/**
 * Connection ids and epochs are drawn from 1 .. 2^30 - 1 (the wire carries
 * any u32): V8 keeps such integers unboxed ("Smi"). A field that has held
 * only Smis and then gets a larger number changes representation, and every
 * optimized function that touched such objects (packets, sessions,
 * handshakes) is thrown away: with ids drawn up to 2^32, a node whose
 * warm-up happened to draw small ones recompiled its hot path when its
 * first real session drew a large one (`--trace-generalization`).
 */
const ID_LIMIT = 2 ** 30

/** Options of one `send()`. */
export interface SendOptions {
  /** Channel, 0 .. channels-1. Default 0. */
  channel?: number
  /** Delivery mode. Default `Delivery.RELIABLE_ORDERED`. */
  delivery?: Delivery
}

/** Counters of the endpoint as a whole. */
export interface EndpointStats {
  datagramsReceived: number
  datagramsSent: number
  bytesReceived: number
  bytesSent: number
  /** Datagrams dropped before reaching a session, by reason. */
  dropped: Record<string, number>
  handshakesStarted: number
  handshakesCompleted: number
  handshakesFailed: number
  sessions: number
}

/** One peer's statistics. */
export interface SessionStats extends ConnectionStats {
  /**
   * The path's round trip, ms: the median of the recent RTT samples less the
   * peer's ack delay (`RttEstimator.pathRtt` in lib/core/rtt.ts); 0 before the first
   * sample. What to show as the latency to this peer.
   */
  roundTripTime: number
  /** Smoothed RTT (RFC 6298), ms: the retransmission timer's estimate, pulled up by slow samples. */
  srtt: number
  /** RTT variation, ms. */
  rttVar: number
  /** Current retransmission timeout, ms. */
  rto: number
  /** Bytes queued, not yet sent. */
  queuedBytes: number
  /** Ack-eliciting packets in flight. */
  inFlight: number
  /** Reliable messages sent and not yet acknowledged. */
  unackedMessages: number
  /** Reliable bytes held by the receiver for reordering or reassembly. */
  bufferedBytes: number
  /** Packets that failed authentication or replay checks. */
  authFailures: number
  /** Payload bytes of the packets in flight. */
  inFlightBytes: number
  /** Largest datagram this session sends ({@link Session.maxDatagram}). */
  maxDatagram: number
}

type DropReason = MalformedReason | 'unknown-connection' | 'auth-failed' | 'replayed' | 'replayed-connect' | 'bad-cookie' | 'bad-key'
  | 'unexpected' | 'session-limit' | 'address-mismatch' | 'refused' | 'closed'

/**
 * A session with one peer. Obtained from `endpoint.connect()` or the
 * endpoint's `'session'` event.
 */
export class Session {
  /** Our connection id (peers address packets to it). */
  readonly localId: number
  /** The peer's connection id. */
  readonly remoteId: number
  /** The peer's endpoint epoch: a restarted peer has a new one. */
  readonly remoteEpoch: number
  /** True when this side started the handshake. */
  readonly initiator: boolean
  /** Free slot for the application (the mesh keeps its peer record here). */
  data: unknown = null
  /** @internal */
  readonly conn: Connection
  /** @internal */
  readonly protector: PacketProtector | null
  /** @internal */
  readonly replay: ReplayWindow | null
  /** @internal ACCEPT bytes, resent while the initiator repeats CONNECT. */
  acceptPacket: Uint8Array | null = null
  /** @internal */
  authFailures = 0
  /** @internal */
  dirty = false
  /**
   * @internal The connection's `nextDeadline()` as last computed (after each
   * flush and timer pass); never later than the real one, because every
   * change that can bring a deadline closer ends in a flush. The timer reads
   * this, not the connection, for sessions that are not due: most firings
   * are for an RTO that an ACK has since moved, and re-deriving every
   * session's deadline then cost more than the firing (the code runs cold).
   * 0 until first computed.
   */
  deadline = 0
  readonly #endpoint: Endpoint
  #drainWaiters: (() => void)[] = []
  #closeReason: string | null = null

  /** @internal */
  constructor(endpoint: Endpoint, conn: Connection, init: {
    localId: number, remoteId: number, remoteEpoch: number, initiator: boolean,
    address: string, port: number, protector: PacketProtector | null, maxDatagram: number,
  }) {
    this.#endpoint = endpoint
    this.conn = conn
    conn.owner = this
    this.localId = init.localId
    this.remoteId = init.remoteId
    this.remoteEpoch = init.remoteEpoch
    this.initiator = init.initiator
    this.remoteAddress = init.address
    this.remotePort = init.port
    this.maxDatagram = init.maxDatagram
    this.protector = init.protector
    this.replay = init.protector === null ? null : new ReplayWindow(4096)
  }

  /** Peer's address. */
  readonly remoteAddress: string
  /** Peer's port. */
  readonly remotePort: number
  /**
   * Largest datagram this session sends: the smaller of what each side
   * accepts for this path (`loopbackDatagram` for a loopback peer, else
   * `maxDatagram`), exchanged in the handshake.
   */
  readonly maxDatagram: number

  /** `address:port` of the peer (IPv6 in brackets). */
  get remote(): string {
    return formatAddress(this.remoteAddress, this.remotePort)
  }

  /** False once the session ended. */
  get isOpen(): boolean {
    return this.conn.isOpen
  }

  /** Why the session ended (null while open). */
  get closeReason(): string | null {
    return this.#closeReason
  }

  /** The path's round trip in milliseconds (0 before the first sample); see {@link SessionStats.roundTripTime}. */
  get roundTripTime(): number {
    return this.conn.rtt.pathRtt
  }

  /**
   * Queue a message. Returns false when the send queue is above its
   * high-water mark: the message is queued, and `'drain'` (or
   * {@link waitDrain}) says when to continue. `data` is not copied: do not
   * modify it until it is acknowledged (reliable) or sent (unreliable). Throws `RangeError` for a bad
   * channel, delivery or a message over `maxMessageSize`, `QueueFullError`
   * past the hard queue limit, `SessionClosedError` after close.
   */
  send(data: Uint8Array, options?: SendOptions): boolean {
    this.#checkOpen()
    const ok = this.conn.send(data, options?.channel ?? 0, options?.delivery ?? Delivery.RELIABLE_ORDERED)
    this.#endpoint.markDirty(this, true)
    return ok
  }

  /**
   * Send a reliable message and resolve once the peer acknowledged all of it;
   * rejects with `SessionClosedError` if the session ends first. Waits for
   * queue space instead of throwing `QueueFullError`.
   */
  async sendAcked(data: Uint8Array, options?: SendOptions): Promise<void> {
    const delivery = options?.delivery ?? Delivery.RELIABLE_ORDERED
    if (delivery !== Delivery.RELIABLE_ORDERED && delivery !== Delivery.RELIABLE_UNORDERED) {
      throw new RangeError('sendAcked() needs a reliable delivery mode')
    }
    while (this.conn.congested) await this.waitDrain()
    this.#checkOpen()
    return new Promise<void>((resolve, reject) => {
      this.conn.send(data, options?.channel ?? 0, delivery, { resolve, reject })
      this.#endpoint.markDirty(this, true)
    })
  }

  /** Resolves when the send queue is below its high-water mark; rejects if the session ends. */
  waitDrain(): Promise<void> {
    if (!this.conn.congested) return Promise.resolve()
    this.#checkOpen()
    return new Promise((resolve, reject) => {
      this.#drainWaiters.push(() => (this.isOpen ? resolve() : reject(new SessionClosedError(this.#closeReason ?? 'closed'))))
    })
  }

  /** @internal */
  onDrain(): void {
    const w = this.#drainWaiters
    this.#drainWaiters = []
    for (const f of w) f()
  }

  /** @internal */
  onClosed(reason: string): void {
    this.#closeReason = reason
    this.onDrain()
  }

  /** Close the session; the peer is told. Unacknowledged reliable messages are reported undelivered. */
  close(): void {
    if (!this.isOpen) return
    this.conn.close(CloseReason.NORMAL)
  }

  /** A snapshot of this session's counters. */
  stats(): SessionStats {
    const c = this.conn
    return {
      ...c.stats,
      roundTripTime: c.rtt.pathRtt,
      srtt: c.rtt.srtt,
      rttVar: c.rtt.rttVar,
      rto: c.rtt.rto,
      queuedBytes: c.queuedBytes,
      inFlight: c.inFlight,
      inFlightBytes: c.inFlightBytes,
      maxDatagram: this.maxDatagram,
      unackedMessages: c.unackedMessages,
      bufferedBytes: c.bufferedBytes,
      authFailures: this.authFailures,
    }
  }

  #checkOpen(): void {
    if (!this.isOpen) throw new SessionClosedError(this.#closeReason ?? 'closed')
  }
}

/** An outgoing handshake in progress. */
interface Pending {
  readonly address: string
  readonly port: number
  readonly key: string
  readonly localId: number
  readonly nonce: Buffer
  cookie: Uint8Array | null
  remoteEpoch: number
  /** Network key used for this handshake: our newest, or the newest the responder named in CHALLENGE. */
  networkKey: Uint8Array | undefined
  attempts: number
  nextRetry: number
  readonly deadline: number
  readonly waiters: { resolve(s: Session): void, reject(e: unknown): void }[]
}

/** Longest associated data copied into a scratch buffer (a DATA header is 9–19 bytes); longer gets a view. */
const MAX_SCRATCH_AAD = 32

/**
 * Events:
 * - `'session'` (session): a session is up (either side started it).
 * - `'session-down'` (session, reason: string, undelivered: UndeliveredMessage[]).
 * - `'message'` (data: Uint8Array, session, channel, delivery).
 * - `'drain'` (session): the session's send queue fell below its low-water mark.
 * - `'handshake-failed'` (address: string, reason: string).
 */
export class Endpoint extends EventEmitter {
  /** Random per start; peers use it to tell a restarted endpoint from the old one. */
  readonly epoch: number
  readonly transport: Transport
  readonly #clock: Clock
  readonly #log: Logger
  readonly #options: EndpointOptions
  readonly #maxDatagram: number
  readonly #loopbackDatagram: number
  /** Smallest datagram whose fragments carry a `maxMessageSize` message: no session goes below it. */
  readonly #minDatagram: number
  /** Where protected packets' payloads are built (sealed at once, so one buffer serves every packet). */
  readonly #scratch: Buffer
  /**
   * The AEAD's associated data (a DATA packet's header before the payload's
   * tag) copied into a buffer of its exact length, one per length: sodium
   * takes it as a typed array of its own, and a view of the datagram cost a
   * typed array (and a runtime call for its buffer) per packet. Lengths: 9,
   * 14 or 19 as sent; up to {@link MAX_SCRATCH_AAD} received.
   */
  readonly #aadScratch: Array<Buffer | null> = new Array<Buffer | null>(MAX_SCRATCH_AAD + 1).fill(null)
  readonly #keys: Uint8Array[]
  readonly #handshakeTimeout: number
  readonly #handshakeRetry: number
  readonly #maxSessions: number
  readonly #cookies: CookieJar
  /** CONNECTs accepted within a cookie lifetime, so a replay cannot open a second session. */
  readonly #accepted: LRUCache<string, true>
  readonly #byId = new Map<number, Session>()
  readonly #byAddress = new Map<string, Session>()
  readonly #pending = new Map<string, Pending>()
  readonly #dirty: Session[] = []
  readonly #host: ConnectionHost
  #flushScheduled = false
  #flushSoonScheduled = false
  readonly #soon: (fn: () => void) => void
  /**
   * Inside a datagram's callback with a clock that has `soon`: an application
   * send made there is flushed when the datagram is done, not by a microtask
   * (the same moment, without a promise and a queued job per reply).
   */
  #inDatagram = false
  #timer: TimerHandle | null = null
  #timerAt = Infinity
  #turnNow = NaN
  #closed = false
  readonly #stats: EndpointStats = {
    datagramsReceived: 0, datagramsSent: 0, bytesReceived: 0, bytesSent: 0, dropped: {},
    handshakesStarted: 0, handshakesCompleted: 0, handshakesFailed: 0, sessions: 0,
  }

  constructor(transport: Transport, options: EndpointOptions = {}) {
    super()
    this.transport = transport
    this.#options = options
    const clock = options.clock ?? systemClock
    this.#clock = clock
    this.#soon = clock.soon !== undefined ? (fn) => clock.soon!(fn) : (fn) => clock.defer(fn)
    this.#log = options.logger ?? silentLogger
    this.#maxDatagram = datagramSize('maxDatagram', options.maxDatagram ?? DEFAULT_DATAGRAM)
    this.#loopbackDatagram = datagramSize('loopbackDatagram', options.loopbackDatagram ?? 32768)
    this.#scratch = Buffer.allocUnsafe(Math.max(this.#maxDatagram, this.#loopbackDatagram))
    this.#keys = [...(options.keys ?? [])]
    for (const k of this.#keys) {
      if (k.length < 32) throw new RangeError('every network key must be at least 32 bytes')
    }
    if (this.#keys.length === 0 && options.insecure !== true) {
      throw new TypeError('an endpoint needs network keys (options.keys), or options.insecure: true to run unauthenticated')
    }
    // Protected sessions seal every packet with libsodium: fail now, with how to fix it, if it cannot load.
    if (this.#keys.length > 0) loadSodium()
    this.#handshakeTimeout = options.handshakeTimeoutMs ?? 5000
    this.#handshakeRetry = options.handshakeRetryMs ?? 200
    this.#maxSessions = options.maxSessions ?? 4096
    this.epoch = randomInt(1, ID_LIMIT)
    this.#cookies = new CookieJar({ now: () => this.#now(), lifetimeMs: COOKIE_LIFETIME_MS })
    this.#accepted = new LRUCache<string, true>({
      max: Math.min(this.#maxSessions, 1024), ttl: COOKIE_LIFETIME_MS + 1000, perf: { now: () => this.#now() },
    })
    // Validate connection options now rather than at the first session, with the smallest
    // datagram a session uses (maxMessageSize must fit in limits.maxFragments fragments).
    const smallest = Math.min(this.#maxDatagram, this.#loopbackDatagram)
    new Connection(NO_HOST, 0, this.#connectionOptions(smallest))
    this.#minDatagram = this.#smallestValidDatagram(smallest)
    this.#host = {
      output: (conn, pn, payload) => this.#sendData(conn.owner as Session, pn, payload),
      // A protected packet's payload is consumed by the seal (the ciphertext is a new buffer): build
      // it in one preallocated scratch. An unprotected payload goes to the socket, which may hold it.
      packetBuffer: (conn, size) => (conn.owner as Session).protector !== null && size <= this.#scratch.length
        ? this.#scratch.subarray(0, size)
        : Buffer.allocUnsafe(size),
      deliver: (conn, data, channel, delivery) => this.emit('message', data, conn.owner as Session, channel, delivery),
      drain: (conn) => {
        const s = conn.owner as Session
        s.onDrain()
        this.emit('drain', s)
      },
      closed: (conn, reason, byPeer, undelivered) => this.#onClosed(conn.owner as Session, reason, byPeer, undelivered),
    }
    transport.setHandler(clock.soon !== undefined ? this.#onDatagramThenFlush : (data, port, address) => this.#onDatagram(data, port, address))
  }

  /**
   * Bind a UDP socket (`address` default 0.0.0.0, `port` default 0 = any;
   * an IPv6 address binds IPv6) and start an endpoint on it.
   */
  static async create(options: EndpointOptions & UdpOptions = {}): Promise<Endpoint> {
    const transport = await bindUdp(options)
    try {
      return new Endpoint(transport, options)
    } catch (err) {
      await transport.close()
      throw err
    }
  }

  /** True when packets are authenticated and encrypted. */
  get secure(): boolean {
    return this.#keys.length > 0
  }

  /** Channels per session (0 .. channels-1). */
  get channels(): number {
    return this.#options.channels ?? 16
  }

  /** Local port. */
  get port(): number {
    return this.transport.port
  }

  /** Local address. */
  get address(): string {
    return this.transport.address
  }

  /** Connection options for a session whose datagrams are at most `datagram` bytes. */
  #connectionOptions(datagram: number): ConnectionOptions {
    const header = 5 + 2 + 2 + 5 + 5 + 1 + varintSize(datagram)
    return {
      ...this.#options,
      maxInFlightBytes: this.#options.maxInFlightBytes ?? defaultInFlightBytes(this.transport.recvBufferSize),
      maxPayload: datagram - header - (this.secure ? TAG_LENGTH : 0),
      // A reply leaves before the bookkeeping of what its request acknowledged (#flushDirty settles).
      deferAcks: this.#options.deferAcks ?? true,
    }
  }

  /** The largest datagram this endpoint sends to and accepts from `address`. */
  #datagramFor(address: string): number {
    return isLoopbackAddress(address) ? this.#loopbackDatagram : this.#maxDatagram
  }

  /**
   * A session's datagram size: the smaller of ours for the path and the
   * peer's (0: it named none, 1200 assumed), but never below the smallest
   * that still carries a `maxMessageSize` message in `limits.maxFragments`
   * fragments (576 unless maxMessageSize is tens of MiB).
   */
  #negotiateDatagram(address: string, advertised: number): number {
    const theirs = advertised === 0 ? DEFAULT_DATAGRAM : advertised
    return Math.min(this.#datagramFor(address), Math.max(theirs, this.#minDatagram))
  }

  /** Binary search of MIN_DATAGRAM .. `valid` (known valid) for the smallest datagram the connection options accept. */
  #smallestValidDatagram(valid: number): number {
    let lo = MIN_DATAGRAM
    let hi = valid
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      try {
        new Connection(NO_HOST, 0, this.#connectionOptions(mid))
        hi = mid
      } catch {
        lo = mid + 1
      }
    }
    return lo
  }

  #now(): number {
    if (Number.isNaN(this.#turnNow)) this.#turnNow = this.#clock.now()
    return this.#turnNow
  }

  #drop(reason: DropReason): void {
    this.#stats.dropped[reason] = (this.#stats.dropped[reason] ?? 0) + 1
  }

  /** Live sessions. */
  sessions(): Session[] {
    return [...this.#byId.values()]
  }

  /** The session with `address:port`, if any. */
  session(address: string, port: number): Session | undefined {
    return this.#byAddress.get(formatAddress(address, port))
  }

  /** Endpoint-wide counters. */
  stats(): EndpointStats {
    return { ...this.#stats, dropped: { ...this.#stats.dropped }, sessions: this.#byId.size }
  }

  /**
   * Open a session to `address:port` (or return the one that exists).
   * Rejects with `TimeoutError` when the peer does not answer within
   * `handshakeTimeoutMs`, `HandshakeError` when it refuses (no common key).
   */
  connect(address: string, port: number): Promise<Session> {
    if (this.#closed) return Promise.reject(new ClosedError())
    const key = formatAddress(address, port)
    const existing = this.#byAddress.get(key)
    if (existing?.isOpen) return Promise.resolve(existing)
    let p = this.#pending.get(key)
    if (p === undefined) {
      if (this.#byId.size + this.#pending.size >= this.#maxSessions) {
        return Promise.reject(new RangeError(`maxSessions (${this.#maxSessions}) reached`))
      }
      const now = this.#now()
      p = {
        address, port, key, localId: this.#newConnectionId(), nonce: createNonce(), cookie: null, remoteEpoch: 0,
        networkKey: this.#keys[0],
        attempts: 0, nextRetry: now, deadline: now + this.#handshakeTimeout, waiters: [],
      }
      this.#pending.set(key, p)
      this.#stats.handshakesStarted++
      this.#sendHandshake(p, now)
      this.#schedule()
    }
    const pending = p
    return new Promise((resolve, reject) => { pending.waiters.push({ resolve, reject }) })
  }

  #newConnectionId(): number {
    for (;;) {
      const id = randomInt(1, ID_LIMIT)
      if (!this.#byId.has(id)) return id
    }
  }

  #sendHandshake(p: Pending, now: number): void {
    const first = p.networkKey
    const type = p.cookie === null ? PacketType.HELLO : PacketType.CONNECT
    const maxDatagram = this.#datagramFor(p.address)
    const hs = {
      connectionId: p.localId,
      epoch: this.epoch,
      nonce: p.nonce,
      cookie: p.cookie ?? undefined,
      keyId: first !== undefined ? keyId(first) : 0,
      maxDatagram,
      proof: p.cookie !== null && first !== undefined
        ? proveInitiator(first, {
          initiatorNonce: p.nonce, initiatorConnId: p.localId, initiatorEpoch: this.epoch,
          responderEpoch: p.remoteEpoch, cookie: p.cookie, initiatorMaxDatagram: maxDatagram,
        })
        : undefined,
    }
    this.#sendRaw(padTo(encodePacket({ magic: MAGIC, version: VERSION, type, handshake: hs as never }), hs, type, this.#maxDatagram), p.port, p.address)
    p.attempts++
    // Backoff capped at 4×, so a lossy path still gets ~8 tries within the default 5 s timeout (16× left room for 5).
    p.nextRetry = now + this.#handshakeRetry * 2 ** Math.min(p.attempts - 1, 2)
  }

  #sendRaw(data: Uint8Array, port: number, address: string): void {
    this.#stats.datagramsSent++
    this.#stats.bytesSent += data.length
    this.transport.send([data], port, address)
  }

  /** The first `length` bytes of `datagram`, as associated data (see #aadScratch). Valid until the next call. */
  #aad(datagram: Buffer, length: number): Buffer {
    if (length > MAX_SCRATCH_AAD) return datagram.subarray(0, length)
    const aad = this.#aadScratch[length] ?? (this.#aadScratch[length] = Buffer.allocUnsafeSlow(length))
    for (let i = 0; i < length; i++) aad[i] = datagram[i]!
    return aad
  }

  #sendData(s: Session, pn: number, payload: Buffer): void {
    const protector = s.protector
    this.#stats.datagramsSent++
    if (protector === null) {
      const header = encodeDataHeader(s.remoteId, pn, payload.length)
      this.#stats.bytesSent += header.length + payload.length
      this.transport.send([header, payload], s.remotePort, s.remoteAddress)
      return
    }
    // Header and ciphertext in one new buffer, sent as one chunk: `payload` is the endpoint's
    // scratch, and the socket may hold what it is given.
    const sealedLength = payload.length + TAG_LENGTH
    const headerLength = dataHeaderSize(s.remoteId, pn, sealedLength)
    const datagram = Buffer.allocUnsafe(headerLength + sealedLength)
    writeDataHeader(datagram, s.remoteId, pn, sealedLength)
    protector.seal(this.#aad(datagram, dataAadSize(s.remoteId, pn)), pn, payload, datagram.subarray(headerLength))
    this.#stats.bytesSent += datagram.length
    this.transport.send([datagram], s.remotePort, s.remoteAddress)
  }

  /**
   * @internal Session has something to send. `soon` (application sends):
   * flush when the current callback returns, so everything it queued leaves
   * together and a reply does not wait for the loop's next phase — at the
   * end of the datagram being handled when there is one (no microtask), by
   * the clock's `soon` otherwise. Otherwise
   * (acknowledgements after received packets): flush before the loop idles,
   * one flush for a whole batch of received datagrams — unless a flush is
   * already due when the current callback returns (the handler answered):
   * it flushes every dirty session, the acknowledgement rides on the
   * answer, and a second flush in the loop's check phase would find nothing
   * to do (it cost a setImmediate and an extra turn of the loop per request).
   */
  markDirty(s: Session, soon = false): void {
    if (!s.dirty) {
      s.dirty = true
      this.#dirty.push(s)
    }
    if (soon) {
      if (!this.#flushSoonScheduled) {
        this.#flushSoonScheduled = true
        if (!this.#inDatagram) this.#soon(this.#flushSoon)
      }
    } else if (!this.#flushScheduled && !this.#flushSoonScheduled) {
      this.#flushScheduled = true
      this.#clock.defer(this.#flush)
    }
  }

  readonly #flushSoon = (): void => {
    this.#flushSoonScheduled = false
    if (this.#dirty.length > 0) this.#flushDirty()
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    this.#flushDirty()
  }

  #flushDirty(): void {
    // A fresh clock, not the turn's: packets leave now, and an ACK's delay
    // must include the time the handler took (QUIC's ack_delay), or the
    // peer's RTT samples count our processing as path.
    this.#turnNow = NaN
    const now = this.#now()
    const dirty = this.#dirty
    for (let i = 0; i < dirty.length; i++) {
      const s = dirty[i]
      s.dirty = false
      s.conn.flush(now)
    }
    // ACKs held back on receipt: processed once every session's packets are
    // out (a broadcast's last datagram does not wait for the bookkeeping of
    // the first ones); what they free (window, losses found) goes in a
    // second flush.
    for (let i = 0; i < dirty.length; i++) {
      const s = dirty[i]
      if (s.conn.settle()) s.conn.flush(now)
    }
    // Only the sessions just flushed (and handshakes) can have a new deadline:
    // every other session's is unchanged since the timer was last armed, so a
    // flush costs O(sessions flushed), not O(sessions).
    let at = this.#pendingDeadline()
    for (let i = 0; i < dirty.length; i++) {
      const s = dirty[i]
      const d = s.deadline = s.conn.nextDeadline()
      if (d < at) at = d
    }
    while (dirty.length > 0) dirty.pop() // not `length = 0`, a runtime call; mostly one session
    this.#arm(at)
    this.#turnNow = NaN
  }

  #pendingDeadline(): number {
    let at = Infinity
    for (const p of this.#pending.values()) {
      const d = Math.min(p.nextRetry, p.deadline)
      if (d < at) at = d
    }
    return at
  }

  /** Arm the one timer for the earliest deadline of any session or handshake. */
  #schedule(): void {
    let at = this.#pendingDeadline()
    for (const s of this.#byId.values()) {
      const d = s.deadline = s.conn.nextDeadline()
      if (d < at) at = d
    }
    this.#arm(at)
  }

  /**
   * Make sure the timer fires by `at`. A later deadline keeps the armed
   * timer: it fires early, scans every session and re-arms. Re-arming on
   * every flush would cost a timer allocation per packet.
   */
  #arm(at: number): void {
    if (this.#timer !== null && at >= this.#timerAt) return
    if (at === Infinity) return
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    this.#timer = null
    this.#timerAt = at
    if (at !== Infinity && !this.#closed) {
      this.#timer = this.#clock.setTimer(this.#onTimer, Math.max(0, at - this.#clock.now()))
    }
  }

  readonly #onTimer = (): void => {
    this.#timer = null
    this.#timerAt = Infinity
    this.#turnNow = NaN
    const now = this.#now()
    // One pass over the cached deadlines (Session.deadline): only a session
    // whose cached deadline passed asks its connection, and is handled if
    // the deadline still stands. The timer mostly fires for nothing (an RTO
    // that an ACK moved later since the timer was armed: in a fan-out each
    // downstream's timer fires every ~6 ms, 95 % of them for nothing), so a
    // firing costs one number per session. Deleting the current entry (a
    // session closing) is safe in a Map's loop.
    let at = Infinity
    for (const s of this.#byId.values()) {
      let d = s.deadline
      if (d <= now) {
        d = s.conn.nextDeadline()
        if (d <= now) {
          s.conn.onTimer(now)
          s.conn.flush(now)
          d = s.conn.nextDeadline()
        }
        s.deadline = d
      }
      if (d < at) at = d
    }
    // Copied (a failed handshake leaves the map), and only when there are handshakes: most firings have none.
    if (this.#pending.size !== 0) for (const p of [...this.#pending.values()]) {
      if (p.deadline <= now) {
        this.#failPending(p, new TimeoutError({ timeoutMs: this.#handshakeTimeout, message: `handshake with ${p.key} timed out after ${this.#handshakeTimeout} ms` }))
      } else if (p.nextRetry <= now) {
        this.#sendHandshake(p, now)
      }
    }
    const pending = this.#pendingDeadline()
    this.#arm(pending < at ? pending : at)
    this.#turnNow = NaN
  }

  #failPending(p: Pending, err: unknown): void {
    this.#pending.delete(p.key)
    this.#stats.handshakesFailed++
    this.emit('handshake-failed', p.key, err instanceof Error ? err.message : String(err))
    for (const w of p.waiters) w.reject(err)
  }

  /**
   * A datagram, then the flush of what the application sent while it was
   * handled (a reply): what `soon` would have done when the callback
   * returned. Also when a handler throws, or a flush would be owed forever.
   */
  readonly #onDatagramThenFlush = (data: Buffer, port: number, address: string): void => {
    this.#inDatagram = true
    try {
      this.#onDatagram(data, port, address)
    } finally {
      this.#inDatagram = false
      if (this.#flushSoonScheduled) this.#flushSoon()
    }
  }

  #onDatagram(data: Buffer, port: number, address: string): void {
    if (this.#closed) return
    this.#stats.datagramsReceived++
    this.#stats.bytesReceived += data.length
    const packet = decodePacket(data)
    if (typeof packet === 'string') {
      if (packet === 'bad-version') {
        // One key for every source: spoofed addresses cannot multiply the lines.
        this.#log.rateLimited('bad-version', 5000).warn('dropped a datagram of another warpmesh protocol version: are nodes of different releases in one network?', {
          from: formatAddress(address, port), version: VERSION,
        })
      }
      return this.#drop(packet)
    }
    if (packet.type === PacketType.DATA) return this.#onData(packet, data, port, address)
    this.#onHandshake(packet, data, port, address)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      this.#clock.defer(this.#flush)
    }
  }

  #onData(packet: Packet, data: Buffer, port: number, address: string): void {
    const s = this.#byId.get(packet.connectionId)
    if (s === undefined) return this.#drop('unknown-connection')
    if (s.remotePort !== port || s.remoteAddress !== address) return this.#drop('address-mismatch')
    let payload: Uint8Array = packet.payload
    const pn = packet.packetNumber
    if (s.protector !== null) {
      if (!s.replay!.check(pn)) {
        s.authFailures++
        return this.#drop('replayed')
      }
      // Associated data: the header before the payload's tag (see encodeDataAad);
      // the payload must end the datagram, so its tag and length are implied.
      const aadEnd = payloadOffset(data, packet) - 1 - varintSize(payload.length)
      // Decrypted in place: the received datagram is this endpoint's to use (unprotected payloads are kept by reference too).
      const opened = aadEnd >= 0 && data[aadEnd] === PAYLOAD_TAG && payload.byteOffset + payload.length === data.byteOffset + data.length &&
        payload.length >= TAG_LENGTH
        ? s.protector.open(this.#aad(data, aadEnd), pn, payload, payload.subarray(0, payload.length - TAG_LENGTH))
        : null
      if (opened === null) {
        s.authFailures++
        return this.#drop('auth-failed')
      }
      s.replay!.commit(pn)
      payload = opened
    }
    const frames = decodeFrames(payload)
    if (typeof frames === 'string') return this.#drop(frames)
    s.acceptPacket = null // the initiator has the ACCEPT: it is talking to us
    s.conn.receive(pn, frames, data.length, this.#now())
    if (s.isOpen) this.markDirty(s)
  }

  #onHandshake(packet: Packet, data: Buffer, port: number, address: string): void {
    const hs = packet.handshake!
    const key = formatAddress(address, port)
    switch (packet.type) {
      case PacketType.HELLO: {
        if (hs.nonce.length !== NONCE_LENGTH) return this.#drop('bad-handshake')
        const cookie = this.#cookies.issue(address, port, hs.connectionId, hs.nonce)
        // Name the key to prove with: the one offered if we have it, else our newest (key rotation).
        const offered = this.#keys.find((k) => keyId(k) === hs.keyId)
        const named = offered ?? this.#keys[0]
        const reply = encodePacket({
          magic: MAGIC, version: VERSION, type: PacketType.CHALLENGE, connectionId: hs.connectionId,
          handshake: { connectionId: 0, epoch: this.epoch, cookie, keyId: named !== undefined ? keyId(named) : 0 } as never,
        })
        // Never answer an unproven address with more than it sent.
        if (reply.length > data.length) return this.#drop('refused')
        return this.#sendRaw(reply, port, address)
      }
      case PacketType.CHALLENGE: {
        const p = this.#pending.get(key)
        if (p === undefined || p.localId !== packet.connectionId || hs.cookie.length === 0) return this.#drop('unexpected')
        // A CHALLENGE to a retried HELLO, after a CONNECT already left: keep the
        // first cookie (it outlives the handshake timeout). The responder may
        // accept that CONNECT, and its ACCEPT proves a transcript with the
        // cookie the CONNECT echoed; a cookie issued in a later second would
        // make that proof fail as if the keys differed (QUIC keeps one Retry too).
        if (p.cookie !== null) return this.#drop('unexpected')
        p.cookie = Buffer.from(hs.cookie)
        p.remoteEpoch = hs.epoch
        p.networkKey = this.#keys.find((k) => keyId(k) === hs.keyId) ?? this.#keys[0]
        // A new round trip starts: CONNECT gets its own retry schedule, not HELLO's backed-off one.
        p.attempts = 0
        this.#sendHandshake(p, this.#now())
        return
      }
      case PacketType.CONNECT:
        return this.#onConnect(hs, port, address, key, data.length)
      case PacketType.ACCEPT:
        return this.#onAccept(packet, port, address, key)
      case PacketType.REJECT: {
        const p = this.#pending.get(key)
        if (p === undefined || p.localId !== packet.connectionId) return this.#drop('unexpected')
        const why = hs.reason === CloseReason.BAD_KEY ? 'no matching network key' : `refused (reason ${hs.reason})`
        this.#log.rateLimited(`handshake-rejected:${key}`, 5000).warn('handshake failed: the peer has no matching network key', { peer: key, reason: why })
        this.#failPending(p, new HandshakeError(`handshake with ${key} failed: ${why}`, { address: key }))
        return
      }
    }
  }

  #onConnect(hs: Packet['handshake'] & object, port: number, address: string, key: string, size: number): void {
    if (hs.nonce.length !== NONCE_LENGTH || !this.#cookies.verify(hs.cookie, address, port, hs.connectionId, hs.nonce)) {
      return this.#drop('bad-cookie')
    }
    // The address is proven from here on.
    const existing = this.#byAddress.get(key)
    if (existing !== undefined && existing.remoteId === hs.connectionId) {
      // CONNECT repeated: our ACCEPT was lost. (A restarted peer picks a new connection id.)
      if (existing.remoteEpoch !== hs.epoch) return this.#drop('replayed-connect')
      if (existing.acceptPacket !== null) this.#sendRaw(existing.acceptPacket, port, address)
      return
    }
    // A CONNECT accepted once must not open a second session while its cookie lives.
    const connectKey = `${hs.connectionId}:${Buffer.from(hs.nonce).toString('base64')}`
    if (this.#accepted.has(connectKey)) return this.#drop('replayed-connect')
    const mine = this.#pending.get(key)
    if (mine !== undefined && Buffer.compare(mine.nonce, hs.nonce) > 0) {
      // Both sides connect at once: the side with the larger nonce stays initiator.
      return this.#drop('unexpected')
    }
    let sessionKey: Buffer | null = null
    const transcript: Transcript = {
      initiatorNonce: hs.nonce, initiatorConnId: hs.connectionId, initiatorEpoch: hs.epoch,
      responderEpoch: this.epoch, cookie: hs.cookie, initiatorMaxDatagram: hs.maxDatagram,
      responderNonce: Buffer.alloc(0), responderConnId: 0, responderMaxDatagram: this.#datagramFor(address),
    }
    if (this.secure) {
      sessionKey = verifyInitiator(this.#keys as Buffer[], hs.keyId, transcript, hs.proof)
      if (sessionKey === null) {
        this.#drop('bad-key')
        this.#stats.handshakesFailed++
        this.#log.rateLimited(`bad-key:${key}`, 5000).warn('handshake failed: the peer has no matching network key', { peer: key })
        this.emit('handshake-failed', key, 'no matching network key')
        const reject = encodePacket({
          magic: MAGIC, version: VERSION, type: PacketType.REJECT, connectionId: hs.connectionId,
          handshake: { epoch: this.epoch, reason: CloseReason.BAD_KEY } as never,
        })
        if (reject.length <= size) this.#sendRaw(reject, port, address)
        return
      }
    }
    if (this.#byId.size + this.#pending.size >= this.#maxSessions && existing === undefined) return this.#drop('session-limit')
    if (existing !== undefined) existing.conn.close(CloseReason.SUPERSEDED) // the peer restarted
    const localId = this.#newConnectionId()
    const nonce = createNonce()
    transcript.responderNonce = nonce
    transcript.responderConnId = localId
    let protector: PacketProtector | null = null
    let proof: Buffer | undefined
    if (sessionKey !== null) {
      proof = proveResponder(sessionKey, transcript)
      const k = deriveSessionKeys(sessionKey, hs.nonce, nonce, hs.connectionId, localId)
      protector = new PacketProtector(k.responderToInitiator, k.initiatorToResponder)
    }
    const s = this.#createSession(localId, hs.connectionId, hs.epoch, false, address, port, protector,
      this.#negotiateDatagram(address, hs.maxDatagram))
    this.#accepted.set(connectKey, true)
    s.acceptPacket = encodePacket({
      magic: MAGIC, version: VERSION, type: PacketType.ACCEPT, connectionId: hs.connectionId,
      handshake: {
        connectionId: localId, epoch: this.epoch, nonce, proof, keyId: sessionKey !== null ? keyId(sessionKey) : 0,
        maxDatagram: transcript.responderMaxDatagram,
      } as never,
    })
    this.#sendRaw(s.acceptPacket, port, address)
    this.#stats.handshakesCompleted++
    if (mine !== undefined) {
      this.#pending.delete(key)
      for (const w of mine.waiters) w.resolve(s)
    }
    this.emit('session', s)
  }

  #onAccept(packet: Packet, port: number, address: string, key: string): void {
    const hs = packet.handshake!
    const p = this.#pending.get(key)
    if (p === undefined || p.localId !== packet.connectionId || p.cookie === null || hs.nonce.length !== NONCE_LENGTH) {
      return this.#drop('unexpected')
    }
    let protector: PacketProtector | null = null
    if (this.secure) {
      const transcript: Transcript = {
        initiatorNonce: p.nonce, initiatorConnId: p.localId, initiatorEpoch: this.epoch,
        responderEpoch: p.remoteEpoch, cookie: p.cookie, initiatorMaxDatagram: this.#datagramFor(p.address),
        responderNonce: hs.nonce, responderConnId: hs.connectionId, responderMaxDatagram: hs.maxDatagram,
      }
      const sessionKey = verifyResponder(this.#keys as Buffer[], hs.keyId, transcript, hs.proof)
      if (sessionKey === null) {
        this.#drop('bad-key')
        this.#log.rateLimited(`bad-key:${key}`, 5000).warn('handshake failed: the peer has no matching network key', { peer: key })
        this.#failPending(p, new HandshakeError(`handshake with ${key} failed: no matching network key`, { address: key }))
        return
      }
      const k = deriveSessionKeys(sessionKey, p.nonce, hs.nonce, p.localId, hs.connectionId)
      protector = new PacketProtector(k.initiatorToResponder, k.responderToInitiator)
    }
    this.#pending.delete(key)
    const old = this.#byAddress.get(key)
    if (old !== undefined) old.conn.close(CloseReason.SUPERSEDED)
    // Negotiated for p.address: the path our CONNECT advertised (and proved) a size for.
    const s = this.#createSession(p.localId, hs.connectionId, hs.epoch, true, address, port, protector,
      this.#negotiateDatagram(p.address, hs.maxDatagram))
    this.#stats.handshakesCompleted++
    // Tell the responder at once that ACCEPT arrived (it stops keeping it).
    s.conn.ping()
    this.markDirty(s)
    for (const w of p.waiters) w.resolve(s)
    this.emit('session', s)
  }

  #createSession(localId: number, remoteId: number, remoteEpoch: number, initiator: boolean,
    address: string, port: number, protector: PacketProtector | null, maxDatagram: number): Session {
    const options = this.#connectionOptions(maxDatagram)
    if (!initiator) options.keepaliveMs = responderKeepalive(options)
    const conn = new Connection(this.#host, this.#now(), options)
    const s = new Session(this, conn, { localId, remoteId, remoteEpoch, initiator, address, port, protector, maxDatagram })
    this.#byId.set(localId, s)
    this.#byAddress.set(formatAddress(address, port), s)
    this.#log.debug('session up', { peer: s.remote, initiator, epoch: remoteEpoch })
    return s
  }

  #onClosed(s: Session, reason: CloseReason, byPeer: boolean, undelivered: UndeliveredMessage[]): void {
    this.#byId.delete(s.localId)
    const key = formatAddress(s.remoteAddress, s.remotePort)
    if (this.#byAddress.get(key) === s) this.#byAddress.delete(key)
    const text = closeReasonText(reason, byPeer)
    s.onClosed(text)
    this.#log.debug('session down', { peer: s.remote, reason: text, undelivered: undelivered.length })
    this.emit('session-down', s, text, undelivered)
  }

  /**
   * Close every session (peers are told), fail pending handshakes, close the
   * socket. Resolves when the socket is closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#turnNow = NaN
    for (const s of [...this.#byId.values()]) s.conn.close(CloseReason.SHUTDOWN)
    for (const p of [...this.#pending.values()]) this.#failPending(p, new ClosedError())
    this.#closed = true
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    this.#timer = null
    await this.transport.close()
  }
}

/** Pad HELLO and CONNECT to `size` so no reply can be larger (anti-amplification). */
function padTo(encoded: Uint8Array, hs: Record<string, unknown>, type: number, size: number): Uint8Array {
  let pad = size - encoded.length - 3
  if (pad <= 0) return encoded
  for (;;) {
    const out = encodePacket({
      magic: MAGIC, version: VERSION, type, handshake: { ...hs, padding: Buffer.alloc(pad) } as never,
    })
    if (out.length <= size || pad === 0) return out
    pad = Math.max(0, pad - (out.length - size))
  }
}

/** `host:port`, IPv6 in brackets. */
export function formatAddress(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}


/**
 * The responder of a session probes an idle session 1.5× later than the
 * initiator (never later than half the idle timeout, never sooner than the
 * initiator): the initiator's PING and its immediate acknowledgement reset
 * both sides' timers, so only one PING and one ACK cross an idle session per
 * keepalive interval. With equal intervals both timers fell due within the
 * same millisecond and both sides sent PINGs.
 */
function responderKeepalive(o: ConnectionOptions): number {
  const keepalive = o.keepaliveMs ?? 1000
  const idle = o.idleTimeoutMs ?? 5000
  return Math.max(keepalive, Math.min(Math.round(keepalive * 1.5), Math.floor(idle / 2)))
}
