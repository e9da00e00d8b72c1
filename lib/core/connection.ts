/**
 * The reliability core of one session: packet numbers, acknowledgements,
 * RTT/RTO, loss detection and retransmission of lost frames, delivery modes
 * per channel, fragmentation and reassembly, flow control and liveness.
 *
 * It does no I/O and never reads a clock: the endpoint passes `now` in, takes
 * packets out through `ConnectionHost.output`, and arms one timer for
 * `nextDeadline()` across all connections (KCP's input/update/check shape).
 */
import { Buffer } from 'node:buffer'
import { LRUCache } from 'lru-cache'
import { ReceivedPackets, validAckFields, type AckFields } from './acks.js'
import { RttEstimator, type RttOptions } from './rtt.js'
import { seqAdd, seqDiff, seqLess } from './seq.js'
import { QueueFullError, SessionClosedError, type SessionCloseReason } from '../errors.js'
import {
  ackEntrySize, batchEntrySize, batchItemSize, dataEntrySize, readBatchItems, writeAckEntry, writeBatchEntry, writeBatchItem, writeDataEntry,
} from '../wire/fast.js'
import {
  CloseReason, Delivery, encodeFrameEntry, FrameType, limits,
  type Frame,
} from '../wire/codec.js'

/** Options of a connection. Times in milliseconds, sizes in bytes. */
export interface ConnectionOptions {
  /** Most bytes of frames one packet may carry (the endpoint subtracts header and AEAD tag). Default 1162. */
  maxPayload?: number
  /** Number of channels, 1..256. Default 16. */
  channels?: number
  /** Largest message `send()` accepts. Default 1 MiB. */
  maxMessageSize?: number
  /** Most ack-eliciting packets in flight, 1..2048 (a receiver refuses packet numbers 4096 ahead). Default 1024. */
  maxInFlightPackets?: number
  /**
   * Most payload bytes of ack-eliciting packets in flight, ≥ 1 (a packet is
   * sent while fewer are in flight, so the total can exceed it by one
   * packet). Keeps a burst within the receiver's socket buffer, which
   * overflows (and drops) long before 1024 large datagrams. Default 2 MiB.
   */
  maxInFlightBytes?: number
  /** `send()` returns false once this many bytes wait to be sent; `drain` follows. Default 1 MiB. */
  sendQueueHighWater?: number
  /** Hard cap of waiting bytes: `send()` throws `QueueFullError` beyond it. Default max(4 × high water, high water + maxMessageSize). */
  sendQueueLimit?: number
  /** How far ahead of the oldest unacknowledged reliable message a stream may send, messages. Default 32768. */
  streamWindow?: number
  /** Out-of-order reliable data the receiver buffers before refusing packets (not acked, so resent). Default 16 MiB. */
  receiveBufferLimit?: number
  /**
   * Longest an acknowledgement waits for company, ms. Default 1. The RTO
   * leaves this much room for the peer's acknowledgement too (RFC 9002's
   * PTO), so peers of one network should use the same value.
   */
  maxAckDelay?: number
  /** Acknowledge at once after this many ack-eliciting packets. Default 2. */
  ackEvery?: number
  /**
   * Hold the ACK frames of received packets until {@link Connection.settle},
   * while fewer than half the packets and bytes allowed in flight are: the
   * owner then flushes a reply before doing the bookkeeping of what the peer
   * acknowledged (the endpoint settles right after each flush). Default false
   * for a bare Connection; an Endpoint's sessions default to true.
   */
  deferAcks?: boolean
  /**
   * Send a PING after this long without sending anything. Default 1000. An
   * endpoint gives the responder side of a session 1.5× this (at most half
   * of `idleTimeoutMs`), so only the initiator probes an idle session.
   */
  keepaliveMs?: number
  /** Declare the peer dead after this long without hearing from it. Default 5000. */
  idleTimeoutMs?: number
  /** Incomplete unreliable reassemblies kept per connection. Default 64. */
  maxReassemblies?: number
  /** Age after which an incomplete unreliable reassembly is dropped, ms. Default 3000. */
  reassemblyTtlMs?: number
  /** RTT estimator options (initialRto, minRto default 5 ms, maxRto). */
  rtt?: RttOptions
}

/** Callbacks from a connection to its owner. Implemented once per endpoint, not per packet. */
export interface ConnectionHost {
  /**
   * Send one packet: `payload` is an encoded `Frames` message. The buffer is
   * the host's to keep — unless it came from {@link packetBuffer}.
   */
  output(conn: Connection, packetNumber: number, payload: Buffer): void
  /**
   * Optional: a buffer of exactly `size` bytes to build the next packet's
   * payload in, handed to `output` right after; the connection does not
   * touch it afterwards. A host that consumes the payload inside `output`
   * (the endpoint seals it: the ciphertext is a new buffer) can return the
   * same preallocated scratch every time. Without it: `Buffer.allocUnsafe`.
   */
  packetBuffer?(conn: Connection, size: number): Buffer
  /** A complete message arrived. `data` may be a view into a received datagram. */
  deliver(conn: Connection, data: Uint8Array, channel: number, delivery: Delivery): void
  /** The send queue fell below its low-water mark after `send()` returned false. */
  drain(conn: Connection): void
  /** The connection closed; `undelivered` are reliable messages never acknowledged. */
  closed(conn: Connection, reason: CloseReason, byPeer: boolean, undelivered: UndeliveredMessage[]): void
}

/** A reliable message that was still unacknowledged when its session ended. */
export interface UndeliveredMessage {
  channel: number
  delivery: Delivery
  data: Uint8Array
}

/** Per-connection counters; see {@link Connection.stats}. */
export interface ConnectionStats {
  packetsSent: number
  packetsReceived: number
  bytesSent: number
  bytesReceived: number
  messagesSent: number
  messagesReceived: number
  framesRetransmitted: number
  packetsLost: number
  /** Packets declared lost that were acknowledged later (reordering). */
  spuriousLosses: number
  rtoExpirations: number
  duplicatePackets: number
  duplicateFrames: number
  sequencedDropped: number
  reassembliesExpired: number
  packetsRefused: number
  badFrames: number
}

interface Waiter {
  resolve(): void
  reject(err: unknown): void
}

/**
 * A message sent in two or more fragments, or an awaited single-frame one:
 * reliable ones live until every fragment is acked.
 */
class OutMessage {
  remaining: number
  waiter: Waiter | null = null
  acked = false
  /** The frames' `fragmentCount` field: 0 for a message sent whole. */
  readonly fragmentCount: number
  constructor(
    readonly sequence: number,
    readonly data: Uint8Array,
    frames: number,
  ) {
    this.remaining = frames
    this.fragmentCount = frames > 1 ? frames : 0
  }
}

/**
 * One DATA frame waiting to go out or in flight. It keeps a view of the
 * message bytes and is encoded straight into each packet that carries it
 * (no per-message buffer). A message that fits one frame, unawaited, is that
 * frame alone: a reliable one is tracked in its stream's `unacked` as itself
 * (one small object per message, which matters to the scavenger while
 * thousands are queued or in flight); the fragments of a larger one, or an
 * awaited one, share an {@link OutMessage}.
 *
 * A batch is one frame carrying several small reliable messages of one
 * stream (consecutive sequences): while a lone frame waits at the tail of
 * the send queue, the next small message of its stream is appended to it
 * instead of queued on its own (the frame then copies both into `data`).
 * Acked, lost and resent as one, like a stretch of a TCP byte stream.
 */
class OutFrame {
  acked = false
  queued = true
  /** Messages in the frame: 1, or more for a batch. */
  count = 1
  /** Batch: bytes of `data` in use (encoded items); `data` has room for more while queued. */
  used = 0
  /** Message bytes in the frame (what it counts in the send queue). */
  bytes: number
  constructor(
    readonly stream: SendStream,
    readonly sequence: number,
    /** The message (or fragment) bytes; a batch's encoded items, `used` of them. */
    public data: Uint8Array,
    readonly fragmentIndex: number,
    /** The message this frame belongs to; null when the frame is the whole (unawaited) message. */
    readonly message: OutMessage | null,
  ) {
    this.bytes = data.length
  }

  /** Encoded size of the frame's entry in a packet. */
  get size(): number {
    const s = this.stream
    if (this.count > 1) return batchEntrySize(s.channel, s.delivery, this.sequence, this.used)
    return dataEntrySize(s.channel, s.delivery, this.sequence, this.data.length, this.fragmentIndex, this.message?.fragmentCount ?? 0)
  }

  /** The messages of the frame (one view each). */
  messages(): Uint8Array[] {
    return this.count > 1 ? readBatchItems(this.data.subarray(0, this.used)) : [this.data]
  }
}

/** A reliable message not yet fully acknowledged: a lone frame or an {@link OutMessage}. */
type Unacked = OutFrame | OutMessage

class SendStream {
  nextSequence = 0
  /** Reliable messages not yet fully acked, oldest first (for the stream window). */
  readonly unacked = new Ring<Unacked>()
  /** Never after the oldest unacked message's sequence (it only moves forward): a cheap first check of the window. */
  windowBase = 0
  readonly reliable: boolean
  constructor(readonly channel: number, readonly delivery: Delivery) {
    this.reliable = delivery >= Delivery.RELIABLE_UNORDERED
  }

  /** Drop acknowledged messages at the head; return the oldest unacknowledged one. */
  oldestUnacked(): Unacked | undefined {
    const q = this.unacked
    let m = q.peek()
    while (m !== undefined && m.acked) {
      q.shift()
      m = q.peek()
    }
    if (m !== undefined) this.windowBase = m.sequence
    return m
  }
}

interface SentPacket {
  readonly packetNumber: number
  readonly sentTime: number
  readonly ackEliciting: boolean
  /** Payload bytes, counted in flight while ack-eliciting and neither acked nor lost. */
  readonly size: number
  readonly frames: OutFrame[] | null
  /** Declared lost; kept a while so a late ack reveals reordering (a spurious loss). */
  lost: boolean
  /** Acked or forgotten: no longer one of the {@link SentPackets}. */
  removed: boolean
}

/**
 * Packets sent and not yet acked (or, once declared lost, not yet
 * forgotten), in packet-number order: a ring in which a removed packet
 * stays as a hole until it reaches the head. Replaces a Map, whose
 * iteration from the oldest entry walked over every entry deleted since its
 * last rehash (up to its capacity: ~1000 with a full window) on each ACK.
 * Lookup is a binary search; an ACK range is a search and a walk.
 *
 * `remove` only marks: indices stay valid while a caller walks the ring, and
 * `compact` (after the walk) drops the removed head and, when holes
 * outnumber live packets, rebuilds the ring without them.
 */
class SentPackets {
  #ring = new Ring<SentPacket>()
  #live = 0

  /** Slots in the walk, holes included: `at(0)`..`at(length - 1)`. */
  get length(): number {
    return this.#ring.length
  }

  at(i: number): SentPacket {
    return this.#ring.at(i)
  }

  /** Append a packet numbered after every packet held. */
  add(sp: SentPacket): void {
    this.#ring.push(sp)
    this.#live++
  }

  remove(sp: SentPacket): void {
    if (sp.removed) return
    sp.removed = true
    this.#live--
  }

  /** Index of the first slot whose packet number is `pn` or later (serial order); `length` if none. */
  lowerBound(pn: number): number {
    const ring = this.#ring
    let lo = 0
    let hi = ring.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (seqDiff(ring.at(mid).packetNumber, pn) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  get(pn: number): SentPacket | undefined {
    const i = this.lowerBound(pn)
    if (i === this.#ring.length) return undefined
    const sp = this.#ring.at(i)
    return sp.packetNumber === pn && !sp.removed ? sp : undefined
  }

  /** Drop removed packets from the head; rebuild when holes outnumber live packets (bounded memory). */
  compact(): void {
    const ring = this.#ring
    for (let sp = ring.peek(); sp !== undefined && sp.removed; sp = ring.peek()) ring.shift()
    if (ring.length > 2 * this.#live + 1024) {
      const next = new Ring<SentPacket>()
      for (let i = 0; i < ring.length; i++) {
        const sp = ring.at(i)
        if (!sp.removed) next.push(sp)
      }
      this.#ring = next
    }
  }

  /** Give back the slots of an empty ring that grew large (see {@link Ring.trim}). */
  trim(): void {
    this.#ring.trim()
  }

  clear(): void {
    this.#ring = new Ring<SentPacket>()
    this.#live = 0
  }
}

/**
 * A message being reassembled from fragments. Fragments are stored as they
 * come (a Map, not an array of `count` slots: the count is the peer's word).
 */
class Assembly {
  bytes = 0
  readonly chunks = new Map<number, Uint8Array>()
  constructor(readonly count: number) {}

  /** Store one fragment; false when it was a duplicate. */
  add(index: number, data: Uint8Array): boolean {
    if (this.chunks.has(index)) return false
    this.chunks.set(index, data)
    this.bytes += data.length
    return true
  }

  get complete(): boolean {
    return this.chunks.size === this.count
  }

  join(): Uint8Array {
    const out = Buffer.allocUnsafe(this.bytes)
    let o = 0
    for (let i = 0; i < this.count; i++) {
      const c = this.chunks.get(i)!
      out.set(c, o)
      o += c.length
    }
    return out
  }
}

/** Bookkeeping cost charged per buffered fragment or message, so tiny pieces cannot exhaust memory. */
const ENTRY_OVERHEAD = 256

class RecvStream {
  /** Reliable: next sequence expected (ordered) or lowest not yet delivered (unordered). */
  base = 0
  /** Reliable: sequences received ahead of `base`: assemblies or complete messages. */
  readonly pending = new Map<number, Assembly | Uint8Array>()
  /** Reliable-unordered: sequences delivered ahead of `base`. */
  readonly delivered = new Set<number>()
  /** Unreliable-sequenced: newest sequence delivered. */
  newest = 0
  hasNewest = false
}

/** Room a fragment leaves in its packet for an ACK frame (about 10 ranges); larger ACKs go alone. */
export const ACK_RESERVE = 48
/** Most ranges one ACK frame reports. */
const ACK_RANGES = 160
/** Ack-eliciting packets received in one burst before an ACK leaves at once, so no range is pushed out unreported. */
const ACK_BURST = 16
/** Largest encoding overhead of one DATA frame entry besides its data. */
export const FRAME_OVERHEAD = 32
/** Largest message that joins a batch; larger ones always travel in frames of their own. */
const BATCH_MESSAGE_MAX = 1024
/** Most messages in one batch (also at most half the stream window). */
const BATCH_COUNT_MAX = 1024
/**
 * First allocation of a batch's buffer (from node's buffer pool); a batch
 * that outgrows it moves once to a buffer of the fragment size, so a bulk
 * stream copies each message about once, and a few small messages per flush
 * hold no more than this.
 */
const BATCH_INITIAL = 2048
/** Upper bound of the adaptive packet-reordering threshold. */
const MAX_REORDER_THRESHOLD = 512
const PING_ENTRY = encodeFrameEntry({ type: FrameType.PING })

/** Smallest capacity of a {@link Ring}. */
const RING_MIN = 16
/** An empty ring holding more slots than this gives them back on `trim()`. */
const RING_KEEP = 4096

/**
 * FIFO queue with O(1) push/shift and indexed reads: a power-of-two ring that
 * doubles when full and keeps its slots while in use (no copying in steady
 * state, even when it empties between bursts); {@link trim} gives a large
 * empty ring's slots back.
 */
export class Ring<T> {
  #items: (T | undefined)[] = new Array<T | undefined>(RING_MIN)
  #mask = RING_MIN - 1
  #head = 0
  #length = 0

  get length(): number {
    return this.#length
  }

  /** Slots held (for tests). */
  get capacity(): number {
    return this.#mask + 1
  }

  push(item: T): void {
    if (this.#length > this.#mask) this.#grow()
    this.#items[(this.#head + this.#length) & this.#mask] = item
    this.#length++
  }

  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head]
  }

  /** The newest item. */
  last(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[(this.#head + this.#length - 1) & this.#mask]
  }

  /** The i-th item from the head, 0 ≤ i < length. */
  at(i: number): T {
    return this.#items[(this.#head + i) & this.#mask] as T
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined
    this.#head = (this.#head + 1) & this.#mask
    if (--this.#length === 0) this.#head = 0
    return item
  }

  /** Release the slots of an empty ring holding more than a few thousand. */
  trim(): void {
    if (this.#length === 0 && this.#mask >= RING_KEEP) this.clear()
  }

  clear(): void {
    this.#items = new Array<T | undefined>(RING_MIN)
    this.#mask = RING_MIN - 1
    this.#head = 0
    this.#length = 0
  }

  #grow(): void {
    const old = this.#items
    const cap = old.length
    const items = new Array<T | undefined>(cap * 2)
    for (let i = 0; i < cap; i++) items[i] = old[(this.#head + i) & this.#mask]
    this.#items = items
    this.#mask = cap * 2 - 1
    this.#head = 0
  }
}

export type ConnectionState = 'open' | 'closed'

export class Connection {
  /** Smoothed RTT etc. Read-only for users. */
  readonly rtt: RttEstimator
  readonly stats: ConnectionStats = {
    packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0,
    messagesSent: 0, messagesReceived: 0, framesRetransmitted: 0, packetsLost: 0, spuriousLosses: 0,
    rtoExpirations: 0, duplicatePackets: 0, duplicateFrames: 0, sequencedDropped: 0,
    reassembliesExpired: 0, packetsRefused: 0, badFrames: 0,
  }

  state: ConnectionState = 'open'
  /** Free-form slot for the owner (the endpoint's session). */
  owner: unknown = null

  readonly #host: ConnectionHost
  readonly #maxPayload: number
  readonly #fragmentSize: number
  readonly #channels: number
  readonly #maxMessageSize: number
  readonly #maxInFlight: number
  readonly #maxInFlightBytes: number
  readonly #highWater: number
  readonly #lowWater: number
  readonly #queueLimit: number
  readonly #streamWindow: number
  readonly #batchCountMax: number
  readonly #receiveBufferLimit: number
  readonly #maxAckDelay: number
  readonly #deferAcks: boolean
  /** ACK frames received and not yet processed, with their receive times (see `deferAcks`). */
  readonly #deferred: Frame[] = []
  readonly #deferredAt: number[] = []
  readonly #ackEvery: number
  readonly #keepaliveMs: number
  readonly #idleTimeoutMs: number
  readonly #maxReassemblies: number
  readonly #reassemblyTtlMs: number

  // send side
  #nextPacketNumber = 0
  readonly #sent = new SentPackets()
  #inFlight = 0
  #inFlightBytes = 0
  #largestAcked = 0
  #hasLargestAcked = false
  #lossTime = Infinity
  /** RFC 9002 packet threshold, raised when reordering makes losses spurious (as RACK does). */
  #reorderThreshold = 3
  /** Time threshold as a multiple of the RTT: 9/8, raised on spurious losses. */
  #timeFactor = 9 / 8
  #lastAckedTime = 0
  #lastSentTime: number
  readonly #sendStreams: (SendStream | undefined)[]
  readonly #retransmitQueue = new Ring<OutFrame>()
  readonly #sendQueue = new Ring<OutFrame>()
  /** Reliable frames in the packet being built (set by #fill). */
  #reliableFrames = 0
  #queuedBytes = 0
  #needDrain = false
  #pingPending = false
  #closeFrame: Uint8Array | null = null

  // receive side
  readonly #received = new ReceivedPackets(256)
  #ackPending = false
  /** The ACK #prepareAck computed for the packet being built (reused: an ACK allocates nothing). */
  readonly #ack: AckFields = { largest: 0, firstRange: 0, ranges: [] }
  #ackDelayUs = 0
  #ackElicitingSinceAck = 0
  #ackDeadline = Infinity
  #largestReceivedTime = 0
  #lastReceivedTime: number
  readonly #recvStreams: (RecvStream | undefined)[]
  #bufferedBytes = 0
  #reassembly: LRUCache<string, Assembly> | null = null
  #now: number

  constructor(host: ConnectionHost, now: number, options: ConnectionOptions = {}) {
    this.#host = host
    this.#now = now
    this.#maxPayload = int(options.maxPayload ?? 1162, 'maxPayload', 256, 65000)
    this.#fragmentSize = this.#maxPayload - ACK_RESERVE - FRAME_OVERHEAD
    this.#channels = int(options.channels ?? 16, 'channels', 1, limits.maxChannels)
    this.#maxMessageSize = int(options.maxMessageSize ?? 1 << 20, 'maxMessageSize', 0, 64 << 20)
    if (Math.ceil(this.#maxMessageSize / this.#fragmentSize) > limits.maxFragments) {
      throw new RangeError(`maxMessageSize ${this.#maxMessageSize} needs more than ${limits.maxFragments} fragments of ${this.#fragmentSize} bytes`)
    }
    this.#maxInFlight = int(options.maxInFlightPackets ?? 1024, 'maxInFlightPackets', 1, 2048)
    this.#maxInFlightBytes = int(options.maxInFlightBytes ?? 2 << 20, 'maxInFlightBytes', 1, 2 ** 31)
    this.#highWater = int(options.sendQueueHighWater ?? 1 << 20, 'sendQueueHighWater', 1, 1 << 30)
    this.#lowWater = this.#highWater >>> 1
    this.#queueLimit = int(options.sendQueueLimit ?? Math.max(4 * this.#highWater, this.#highWater + this.#maxMessageSize),
      'sendQueueLimit', this.#highWater, 2 ** 31)
    this.#streamWindow = int(options.streamWindow ?? 32768, 'streamWindow', 1, 1 << 30)
    this.#batchCountMax = Math.min(BATCH_COUNT_MAX, this.#streamWindow >>> 1)
    this.#receiveBufferLimit = int(options.receiveBufferLimit ?? 16 << 20, 'receiveBufferLimit', 1024, 2 ** 31)
    this.#maxAckDelay = num(options.maxAckDelay ?? 1, 'maxAckDelay', 0, 1000)
    this.#ackEvery = int(options.ackEvery ?? 2, 'ackEvery', 1, 1000)
    this.#deferAcks = options.deferAcks === true
    this.#keepaliveMs = num(options.keepaliveMs ?? 1000, 'keepaliveMs', 1, 3_600_000)
    this.#idleTimeoutMs = num(options.idleTimeoutMs ?? 5000, 'idleTimeoutMs', 1, 3_600_000)
    this.#maxReassemblies = int(options.maxReassemblies ?? 64, 'maxReassemblies', 1, 1 << 20)
    this.#reassemblyTtlMs = num(options.reassemblyTtlMs ?? 3000, 'reassemblyTtlMs', 1, 3_600_000)
    this.rtt = new RttEstimator(options.rtt)
    this.#sendStreams = new Array(this.#channels * 4)
    this.#recvStreams = new Array(this.#channels * 4)
    this.#lastSentTime = now
    this.#lastReceivedTime = now
  }

  /** False once closed (by either side or by timeout). */
  get isOpen(): boolean {
    return this.state === 'open'
  }

  /** Largest message size `send()` accepts, bytes. */
  get maxMessageSize(): number {
    return this.#maxMessageSize
  }

  /** Bytes queued and not yet sent. */
  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** Ack-eliciting packets sent and not yet acknowledged or declared lost. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** Payload bytes of the packets counted in {@link inFlight}. */
  get inFlightBytes(): number {
    return this.#inFlightBytes
  }

  /** Most payload bytes one packet carries. */
  get maxPayload(): number {
    return this.#maxPayload
  }

  /** Reliable data held for reordering or reassembly, bytes. */
  get bufferedBytes(): number {
    return this.#bufferedBytes
  }

  /** Incomplete unreliable reassemblies held. */
  get reassemblies(): number {
    return this.#reassembly?.size ?? 0
  }

  /** Reliable messages from the oldest not yet fully acknowledged on (acknowledged ones after it included), per stream. */
  get unackedMessages(): number {
    let n = 0
    for (const s of this.#sendStreams) {
      if (s === undefined) continue
      for (let i = 0; i < s.unacked.length; i++) {
        const u = s.unacked.at(i)
        n += u instanceof OutFrame ? u.count : 1
      }
    }
    return n
  }

  /** True when `send()` would return false (at or above the high-water mark). */
  get congested(): boolean {
    return this.#queuedBytes >= this.#highWater
  }

  /**
   * Queue a message. Returns false when the send queue is at or above its
   * high-water mark (the message is queued; wait for `drain`). Throws
   * RangeError for a bad channel/delivery/size and `QueueFullError` when the
   * hard cap would be exceeded (nothing is queued then).
   */
  send(data: Uint8Array, channel: number, delivery: Delivery, waiter: Waiter | null = null): boolean {
    if (this.state !== 'open') throw new Error('connection is closed')
    if (!(channel >= 0 && channel < this.#channels && Number.isInteger(channel))) {
      throw new RangeError(`channel must be an integer 0..${this.#channels - 1}, got ${channel}`)
    }
    if (!(delivery >= 0 && delivery <= 3 && Number.isInteger(delivery))) {
      throw new RangeError(`delivery must be one of Delivery.*, got ${delivery}`)
    }
    if (data.length > this.#maxMessageSize) {
      throw new RangeError(`message of ${data.length} bytes exceeds maxMessageSize ${this.#maxMessageSize}`)
    }
    if (this.#queuedBytes + data.length > this.#queueLimit) {
      throw new QueueFullError({
        limit: this.#queueLimit,
        message: `send queue full: ${this.#queuedBytes} bytes queued + ${data.length} exceeds the limit of ${this.#queueLimit} bytes; wait for 'drain'`,
      })
    }
    const streamIndex = channel * 4 + delivery
    const stream = this.#sendStreams[streamIndex] ?? (this.#sendStreams[streamIndex] = new SendStream(channel, delivery))
    const reliable = stream.reliable
    if (waiter !== null && !reliable) throw new RangeError('only reliable messages can be awaited')
    const sequence = stream.nextSequence
    stream.nextSequence = seqAdd(sequence, 1)
    const size = this.#fragmentSize
    if (reliable && waiter === null && data.length <= BATCH_MESSAGE_MAX) {
      const tail = this.#sendQueue.last()
      if (tail !== undefined && tail.stream === stream && this.#batch(tail, data)) return this.#queued(data.length)
    }
    if (data.length <= size && waiter === null) {
      const fr = new OutFrame(stream, sequence, data, 0, null)
      if (reliable) stream.unacked.push(fr)
      this.#sendQueue.push(fr)
    } else {
      const count = data.length <= size ? 1 : Math.ceil(data.length / size)
      const message = new OutMessage(sequence, data, count)
      if (reliable) {
        message.waiter = waiter
        stream.unacked.push(message)
      }
      for (let i = 0; i < count; i++) {
        const part = data.subarray(i * size, Math.min(data.length, (i + 1) * size))
        this.#sendQueue.push(new OutFrame(stream, sequence, part, i, message))
      }
    }
    return this.#queued(data.length)
  }

  /** Count a queued message of `length` bytes; false at or above the high-water mark. */
  #queued(length: number): boolean {
    this.#queuedBytes += length
    this.stats.messagesSent++
    if (this.#queuedBytes >= this.#highWater) {
      this.#needDrain = true
      return false
    }
    return true
  }

  /**
   * Append `data` (the stream's next message) to `fr`, the unsent frame at
   * the tail of the send queue, when both are small and it fits; false
   * otherwise. A lone frame becomes a batch here.
   */
  #batch(fr: OutFrame, data: Uint8Array): boolean {
    const add = batchItemSize(data.length)
    if (fr.count === 1) {
      if (fr.message !== null || fr.data.length > BATCH_MESSAGE_MAX || this.#batchCountMax < 2) return false
      const used = batchItemSize(fr.data.length) + add
      if (used > this.#fragmentSize) return false
      const items = Buffer.allocUnsafe(Math.min(this.#fragmentSize, Math.max(BATCH_INITIAL, used)))
      fr.used = writeBatchItem(items, 0, fr.data)
      fr.data = items
    } else {
      const used = fr.used + add
      if (used > this.#fragmentSize || fr.count >= this.#batchCountMax) return false
      if (used > fr.data.length) {
        const items = Buffer.allocUnsafe(this.#fragmentSize)
        items.set(fr.data.subarray(0, fr.used))
        fr.data = items
      }
    }
    fr.used = writeBatchItem(fr.data, fr.used, data)
    fr.count++
    fr.bytes += data.length
    return true
  }

  /** Ask for a PING in the next flush (ack-eliciting; measures RTT). */
  ping(): void {
    this.#pingPending = true
  }

  /** Process one received packet's frames. Returns false when the packet was refused (not acked). */
  receive(packetNumber: number, frames: Frame[], bytes: number, now: number): boolean {
    if (this.state === 'closed') return false
    this.#now = now
    if (this.#received.has(packetNumber)) {
      this.stats.duplicatePackets++
      return false
    }
    // No honest peer jumps half a duplicate window ahead (its in-flight window is far
    // smaller): such a number is corrupt or forged, and accepting it would make the
    // real packets behind it look old.
    const largest = this.#received.largest
    if (largest !== undefined && seqDiff(packetNumber, largest) >= this.#received.window / 2) {
      this.stats.packetsRefused++
      return false
    }
    // First pass: refuse the whole packet (unacked, so it is resent) rather
    // than accept part of it.
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]
      if (f.type === FrameType.DATA && !this.#acceptable(f)) {
        this.stats.packetsRefused++
        return false
      }
    }
    this.#received.add(packetNumber)
    this.#lastReceivedTime = now
    this.stats.packetsReceived++
    this.stats.bytesReceived += bytes
    if (this.#received.largest === packetNumber) this.#largestReceivedTime = now
    let ackEliciting = false
    let pingOnly = true
    for (let i = 0; i < frames.length && this.isOpen; i++) {
      const f = frames[i]
      switch (f.type) {
        case FrameType.DATA:
          ackEliciting = true
          pingOnly = false
          this.#handleData(f)
          break
        case FrameType.ACK:
          if (this.#deferAcks && 2 * this.#inFlight < this.#maxInFlight && 2 * this.#inFlightBytes < this.#maxInFlightBytes) {
            this.#deferred.push(f)
            this.#deferredAt.push(now)
          } else {
            this.settle()
            this.#handleAck(f, now)
          }
          break
        case FrameType.PING:
          ackEliciting = true
          break
        case FrameType.CLOSE:
          this.#finish(f.reason as CloseReason, true)
          return true
      }
    }
    if (ackEliciting) {
      this.#ackPending = true
      // A PING without data (keepalive, RTO probe, ping()) is answered at once:
      // no reply is coming to carry the ack, and waiting would cost a second
      // wake-up and give the peer an RTT sample late by up to maxAckDelay.
      if (++this.#ackElicitingSinceAck >= this.#ackEvery || pingOnly) this.#ackDeadline = now
      else if (this.#ackDeadline === Infinity) this.#ackDeadline = now + this.#maxAckDelay
      if (this.#ackElicitingSinceAck >= ACK_BURST && this.isOpen) {
        const ackSize = this.#prepareAck(now)
        this.#emit(ackSize, null, null, null, ackSize, false, now)
      }
    }
    return true
  }

  /**
   * Process the ACK frames held back by `deferAcks`, in the order they came.
   * Returns whether there were any (a flush may then have more to send:
   * window opened, losses found).
   */
  settle(): boolean {
    const frames = this.#deferred
    const n = frames.length
    if (n === 0) return false
    // Reused, not replaced: this runs after every flush. Nothing #handleAck
    // calls receives packets, so nothing is added while it runs.
    const at = this.#deferredAt
    for (let i = 0; i < n && this.state === 'open'; i++) this.#handleAck(frames[i], at[i])
    // pop(), not `length = 0`: that is a runtime call in V8 (~40 ns warm, far more cold), and n is mostly 1.
    for (let i = 0; i < n; i++) { frames.pop(); at.pop() }
    return true
  }

  /** Can this DATA frame be taken without exceeding the receive window and buffer? */
  #acceptable(f: Frame): boolean {
    if (f.channel >= this.#channels) return false
    if (f.delivery < Delivery.RELIABLE_UNORDERED) return true
    const stream = this.#recvStreams[f.channel * 4 + f.delivery]
    const base = stream?.base ?? 0
    const ahead = seqDiff(f.sequence, base)
    // A frame's (a batch's last) message must be within the window, and what may wait must fit.
    const n = f.messages.length
    const last = n === 0 ? ahead : ahead + n - 1
    if (last < 0) return true // already delivered: a duplicate, acked and dropped
    if (last >= this.#streamWindow) return false
    if (ahead <= 0) return true
    let bytes = n === 0 ? f.data.length + ENTRY_OVERHEAD : n * ENTRY_OVERHEAD
    for (let i = 0; i < n; i++) bytes += f.messages[i].length
    return this.#bufferedBytes + bytes <= this.#receiveBufferLimit
  }

  #recvStream(index: number): RecvStream {
    return this.#recvStreams[index] ?? (this.#recvStreams[index] = new RecvStream())
  }

  #handleData(f: Frame): void {
    const index = f.channel * 4 + f.delivery
    const fragmented = f.fragmentCount > 1
    switch (f.delivery) {
      case Delivery.UNRELIABLE: {
        if (!fragmented) return this.#deliver(f.data, f.channel, f.delivery)
        const data = this.#reassemble(index, f)
        if (data !== null) this.#deliver(data, f.channel, f.delivery)
        return
      }
      case Delivery.UNRELIABLE_SEQUENCED: {
        const stream = this.#recvStream(index)
        if (stream.hasNewest && !seqLess(stream.newest, f.sequence)) {
          this.stats.sequencedDropped++
          return
        }
        const data = fragmented ? this.#reassemble(index, f) : f.data
        if (data === null) return
        stream.newest = f.sequence
        stream.hasNewest = true
        return this.#deliver(data, f.channel, f.delivery)
      }
      default:
        return this.#handleReliable(this.#recvStream(index), f)
    }
  }

  #handleReliable(stream: RecvStream, f: Frame): void {
    const messages = f.messages
    if (messages.length > 0) {
      let sequence = f.sequence
      for (let i = 0; i < messages.length && this.isOpen; i++) {
        this.#takeWhole(stream, sequence, messages[i], f.channel, f.delivery)
        sequence = seqAdd(sequence, 1)
      }
      return
    }
    if (f.fragmentCount <= 1) return this.#takeWhole(stream, f.sequence, f.data, f.channel, f.delivery)
    const ahead = seqDiff(f.sequence, stream.base)
    if (this.#isDuplicate(stream, ahead, f.sequence, f.delivery)) return
    let entry = stream.pending.get(f.sequence)
    if (entry === undefined) {
      entry = new Assembly(f.fragmentCount)
      stream.pending.set(f.sequence, entry)
    } else if (!(entry instanceof Assembly)) {
      this.stats.duplicateFrames++
      return
    }
    if (entry.count !== f.fragmentCount || entry.bytes + f.data.length > this.#maxMessageSize) {
      this.stats.badFrames++
      return
    }
    if (!entry.add(f.fragmentIndex, f.data)) {
      this.stats.duplicateFrames++
      return
    }
    this.#bufferedBytes += f.data.length + ENTRY_OVERHEAD
    if (!entry.complete) return
    const complete = entry.join()
    this.#bufferedBytes -= entry.bytes + entry.chunks.size * ENTRY_OVERHEAD
    stream.pending.delete(f.sequence)
    this.#complete(stream, ahead, f.sequence, complete, f.channel, f.delivery)
  }

  /** Already delivered (ahead of base: only unordered keeps that); counted. */
  #isDuplicate(stream: RecvStream, ahead: number, sequence: number, delivery: number): boolean {
    if (ahead < 0 || (delivery === Delivery.RELIABLE_UNORDERED && stream.delivered.has(sequence))) {
      this.stats.duplicateFrames++
      return true
    }
    return false
  }

  /** A whole reliable message: a frame of its own or one of a batch. */
  #takeWhole(stream: RecvStream, sequence: number, data: Uint8Array, channel: number, delivery: number): void {
    const ahead = seqDiff(sequence, stream.base)
    if (this.#isDuplicate(stream, ahead, sequence, delivery)) return
    // In order, the common case, finds nothing pending: skip the lookup.
    const entry = stream.pending.size === 0 ? undefined : stream.pending.get(sequence)
    if (entry !== undefined) {
      // Fragments under this sequence: the peer contradicts itself.
      if (entry instanceof Assembly) this.stats.badFrames++
      else this.stats.duplicateFrames++
      return
    }
    this.#complete(stream, ahead, sequence, data, channel, delivery)
  }

  /** Deliver a complete reliable message, or hold it until the ones before it arrive (ordered). */
  #complete(stream: RecvStream, ahead: number, sequence: number, complete: Uint8Array, channel: number, delivery: number): void {
    if (delivery === Delivery.RELIABLE_UNORDERED) {
      if (ahead === 0) {
        stream.base = seqAdd(stream.base, 1)
        while (stream.delivered.delete(stream.base)) stream.base = seqAdd(stream.base, 1)
      } else {
        stream.delivered.add(sequence)
      }
      return this.#deliver(complete, channel, delivery)
    }
    // Ordered.
    const pending = stream.pending
    if (ahead !== 0) {
      pending.set(sequence, complete)
      this.#bufferedBytes += complete.length + ENTRY_OVERHEAD
      return
    }
    stream.base = seqAdd(stream.base, 1)
    this.#deliver(complete, channel, delivery)
    for (;;) {
      if (!this.isOpen || pending.size === 0) return
      const next = pending.get(stream.base)
      if (next === undefined || next instanceof Assembly) return
      pending.delete(stream.base)
      this.#bufferedBytes -= next.length + ENTRY_OVERHEAD
      stream.base = seqAdd(stream.base, 1)
      this.#deliver(next, channel, delivery)
    }
  }

  #reassemble(index: number, f: Frame): Uint8Array | null {
    const cache = this.#reassembly ?? (this.#reassembly = this.#createReassemblyCache())
    const key = `${index}:${f.sequence}`
    let a = cache.get(key)
    if (a === undefined) {
      a = new Assembly(f.fragmentCount)
      cache.set(key, a)
    } else if (a.count !== f.fragmentCount) {
      this.stats.badFrames++
      return null
    }
    if (a.bytes + f.data.length > this.#maxMessageSize) {
      this.stats.badFrames++
      cache.delete(key)
      return null
    }
    if (!a.add(f.fragmentIndex, f.data)) {
      this.stats.duplicateFrames++
      return null
    }
    if (!a.complete) return null
    cache.delete(key)
    return a.join()
  }

  #createReassemblyCache(): LRUCache<string, Assembly> {
    return new LRUCache<string, Assembly>({
      max: this.#maxReassemblies,
      maxSize: Math.max(this.#maxMessageSize, 1) * 4,
      sizeCalculation: (a) => Math.max(1, a.count),
      ttl: this.#reassemblyTtlMs,
      perf: { now: () => this.#now },
      dispose: (_a, _k, reason) => {
        if (reason === 'evict' || reason === 'expire') this.stats.reassembliesExpired++
      },
    })
  }

  #deliver(data: Uint8Array, channel: number, delivery: number): void {
    this.stats.messagesReceived++
    this.#host.deliver(this, data, channel, delivery as Delivery)
  }

  #handleAck(f: Frame, now: number): void {
    if (this.#nextPacketNumber === 0) {
      this.stats.badFrames++ // acks something never sent
      return
    }
    if (!validAckFields(f, limits.maxAckRanges)) {
      this.stats.badFrames++
      return
    }
    const largestSent = (this.#nextPacketNumber - 1) >>> 0
    // Claims a packet never sent (the peer got a corrupt packet number, or
    // lies): count it, and use only the parts of ranges that cover real packets.
    const clamp = seqDiff(f.largest, largestSent) > 0
    if (clamp) this.stats.badFrames++
    const largest = this.#sent.get(f.largest)
    if (largest !== undefined && largest.ackEliciting) {
      this.rtt.sample(now - largest.sentTime, f.ackDelayUs / 1000)
    }
    // The ranges, newest first, walked as they are decoded (no array of them).
    let high = f.largest >>> 0
    let low = (f.largest - f.firstRange) >>> 0
    let newlyAcked = this.#ackRange(low, high, largestSent, clamp)
    const rs = f.ranges
    for (let i = 0; i < rs.length; i += 2) {
      high = (low - rs[i] - 1) >>> 0
      low = (high - rs[i + 1]) >>> 0
      if (this.#ackRange(low, high, largestSent, clamp)) newlyAcked = true
    }
    const ackLargest = clamp ? largestSent : f.largest
    if (!this.#hasLargestAcked || seqLess(this.#largestAcked, ackLargest)) {
      this.#largestAcked = ackLargest
      this.#hasLargestAcked = true
    }
    if (newlyAcked) {
      this.#lastAckedTime = now
      this.#detectLosses(now)
    }
    this.#sent.compact()
  }

  /** Every packet in flight from `low` to `high` is acknowledged; whether any was newly. */
  #ackRange(low: number, high: number, largestSent: number, clamp: boolean): boolean {
    if (clamp) {
      if (seqDiff(low, largestSent) > 0) return false // nothing of it was ever sent
      if (seqDiff(high, largestSent) > 0) high = largestSent
    }
    const sent = this.#sent
    let newly = false
    // From the first packet in the range to the first one above it.
    for (let i = sent.lowerBound(low); i < sent.length; i++) {
      const sp = sent.at(i)
      if (seqDiff(sp.packetNumber, high) > 0) break
      if (sp.removed) continue
      this.#onPacketAcked(sp)
      newly = true
    }
    return newly
  }

  #onPacketAcked(sp: SentPacket): void {
    this.#sent.remove(sp)
    if (sp.lost) {
      // Declared lost, yet it arrived: reordering. Be more patient from now on.
      this.stats.spuriousLosses++
      const behind = seqDiff(this.#largestAcked, sp.packetNumber) + 1
      if (behind > this.#reorderThreshold) this.#reorderThreshold = Math.min(behind, MAX_REORDER_THRESHOLD)
      if (this.#timeFactor < 2) this.#timeFactor = Math.min(2, this.#timeFactor * 1.25)
    } else if (sp.ackEliciting) {
      this.#inFlight--
      this.#inFlightBytes -= sp.size
    }
    const frames = sp.frames
    if (frames === null) return
    for (let i = 0; i < frames.length; i++) {
      const fr = frames[i]
      if (fr.acked || !fr.stream.reliable) continue // unreliable frames ride along untracked
      fr.acked = true
      const m = fr.message
      if (m === null) this.#messageAcked(fr.stream, fr)
      else if (--m.remaining === 0) {
        m.acked = true
        this.#messageAcked(fr.stream, m)
      }
    }
  }

  /** A reliable message is fully acknowledged (`u.acked` is set). */
  #messageAcked(stream: SendStream, u: Unacked): void {
    // Only the head's ack lets the head move (releasing what is acked).
    if (stream.unacked.peek() === u) stream.oldestUnacked()
    // A lone frame is never awaited (an awaited message has an OutMessage).
    if (u instanceof OutMessage && u.waiter !== null) {
      u.waiter.resolve()
      u.waiter = null
    }
  }

  #detectLosses(now: number): void {
    this.#lossTime = Infinity
    if (!this.#hasLargestAcked) return
    const lossDelay = this.rtt.lossDelay * this.#timeFactor * (8 / 9)
    const forgetBefore = now - 4 * this.rtt.rto
    const sent = this.#sent
    for (let i = 0; i < sent.length; i++) {
      const sp = sent.at(i)
      if (sp.removed) continue
      if (sp.lost) {
        if (sp.sentTime < forgetBefore) sent.remove(sp)
        continue
      }
      const behind = seqDiff(this.#largestAcked, sp.packetNumber)
      if (behind <= 0) break
      if (behind >= this.#reorderThreshold || sp.sentTime + lossDelay <= now) {
        this.#onPacketLost(sp)
      } else {
        this.#lossTime = sp.sentTime + lossDelay
        break
      }
    }
    sent.compact()
  }

  #onPacketLost(sp: SentPacket): void {
    if (!sp.ackEliciting) {
      this.#sent.remove(sp)
      return
    }
    sp.lost = true
    this.#inFlight--
    this.#inFlightBytes -= sp.size
    this.stats.packetsLost++
    const frames = sp.frames
    if (frames === null) return
    for (let i = 0; i < frames.length; i++) {
      const fr = frames[i]
      if (fr.acked || fr.queued || !fr.stream.reliable) continue
      fr.queued = true
      this.#retransmitQueue.push(fr)
    }
  }

  /** Earliest time this connection needs `onTimer` (ms), or Infinity. */
  nextDeadline(): number {
    if (this.state === 'closed') return Infinity
    let t = this.#lastReceivedTime + this.#idleTimeoutMs
    if (this.#ackPending && this.#ackDeadline < t) t = this.#ackDeadline
    if (this.#lossTime < t) t = this.#lossTime
    if (this.#inFlight > 0) {
      const rto = this.#rtoDeadline()
      if (rto < t) t = rto
    } else {
      const ka = this.#lastSentTime + this.#keepaliveMs
      if (ka < t) t = ka
    }
    return t
  }

  /**
   * The oldest packet in flight (ack-eliciting, neither acknowledged nor
   * declared lost). One loop for the deadline and the RTO: the RTO's own copy
   * of it advanced past a first entry only in real traffic, and V8, without
   * feedback for that step, threw the optimized timer pass away when it did.
   */
  #oldestInFlight(): SentPacket | undefined {
    const sent = this.#sent
    for (let i = 0; i < sent.length; i++) {
      const sp = sent.at(i)
      if (!sp.removed && sp.ackEliciting && !sp.lost) return sp
    }
    return undefined
  }

  #rtoDeadline(): number {
    const sp = this.#oldestInFlight()
    const oldest = sp === undefined ? Infinity : sp.sentTime
    // The peer may hold its acknowledgement for up to maxAckDelay (RFC 9002's
    // PTO adds max_ack_delay): without it, a lone packet on a steady path was
    // acked exactly when its RTO fell due (srtt excludes the ack delay, and
    // rttVar decays to nothing), and one-way messages were resent spuriously.
    // Peers of one network share the option; it is not negotiated. Before the
    // first sample the initial RTO (100 ms by default) covers it.
    const ackDelay = this.rtt.hasSample ? this.#maxAckDelay : 0
    return Math.max(oldest, this.#lastAckedTime) + this.rtt.rto + ackDelay
  }

  /** Handle whatever deadlines have passed. Follow with `flush(now)`. */
  onTimer(now: number): void {
    if (this.state === 'closed') return
    this.#now = now
    this.settle()
    if (now - this.#lastReceivedTime >= this.#idleTimeoutMs) {
      this.#finish(CloseReason.TIMEOUT, false)
      return
    }
    if (this.#lossTime <= now) this.#detectLosses(now)
    if (this.#inFlight > 0 && this.#rtoDeadline() <= now) {
      // No ack for a whole RTO. Resend only the oldest packet's frames as a
      // probe (RFC 9002's PTO, not "everything is lost"): a stalled receiver
      // must not cost a whole window of retransmissions. Its ack lets the
      // packet and time thresholds find whatever else is really missing.
      this.stats.rtoExpirations++
      const sp = this.#oldestInFlight()
      if (sp !== undefined) this.#onPacketLost(sp)
      this.rtt.onTimeout()
      this.#lastAckedTime = now
      if (this.#retransmitQueue.length === 0) this.#pingPending = true
    } else {
      // Stored on every pass, not only when a keepalive is due: the first
      // keepalive comes a second after a session goes quiet, long after the
      // warm-up, and a store V8 never saw executed deoptimized this function
      // (compiled by then) in nearly every node shortly after start.
      this.#pingPending = this.#pingPending || (this.#inFlight === 0 && now - this.#lastSentTime >= this.#keepaliveMs)
    }
    // A quiet moment (timers fire at least every keepalive while idle): give
    // back the slots of queues that grew in a burst and are empty now.
    this.#sendQueue.trim()
    this.#retransmitQueue.trim()
    this.#sent.trim()
    for (const st of this.#sendStreams) st?.unacked.trim()
  }

  /** Emit as many packets as there is something to send and room in flight. */
  flush(now: number): void {
    if (this.state === 'closed') return
    this.#now = now
    let withAck = this.#ackPending && this.#ackDeadline <= now
    for (;;) {
      let size = 0
      if (this.#closeFrame !== null) {
        this.#emit(0, this.#closeFrame, null, null, this.#closeFrame.length, true, now)
        this.#closeFrame = null
        return
      }
      const canSendData = this.#inFlight < this.#maxInFlight && this.#inFlightBytes < this.#maxInFlightBytes
      const hasData = canSendData &&
        (this.#retransmitQueue.length > 0 || this.#sendQueue.length > 0 || this.#pingPending)
      // The ACK goes first, so data fills what it leaves; a large ACK leaves alone.
      let ackSize = 0
      if (this.#ackPending && (withAck || hasData)) {
        ackSize = this.#prepareAck(now)
        size += ackSize
        withAck = false
      }
      let frames: OutFrame[] | null = null
      let ping: Uint8Array | null = null
      if (hasData) {
        frames = []
        this.#reliableFrames = 0
        size = this.#fill(this.#retransmitQueue, frames, size, true)
        size = this.#fill(this.#sendQueue, frames, size, false)
        if (this.#pingPending && size + PING_ENTRY.length <= this.#maxPayload) {
          ping = PING_ENTRY
          size += PING_ENTRY.length
          this.#pingPending = false
        }
      }
      // Any DATA frame (reliable or not) or a PING asks for an ACK.
      const ackEliciting = ping !== null || (frames !== null && frames.length > 0)
      if (!ackEliciting && ackSize === 0) return
      this.#emit(ackSize, null, frames, ping, size, ackEliciting, now)
      if (!hasData) return
    }
  }

  /** Move frames from `queue` into the packet being built (`frames`: every DATA frame in order; reliable ones counted in #reliableFrames). */
  #fill(queue: Ring<OutFrame>, frames: OutFrame[], size: number, retransmit: boolean): number {
    const budget = this.#maxPayload
    for (;;) {
      const fr = queue.peek()
      if (fr === undefined) return size
      if (fr.acked) { // acked meanwhile (a spurious loss): nothing to resend
        queue.shift()
        fr.queued = false
        continue
      }
      const frSize = fr.size
      if (size + frSize > budget) return size
      const stream = fr.stream
      const reliable = stream.reliable
      // windowBase is never after the oldest unacked sequence: when even it
      // is within the window, the oldest is too.
      const last = fr.count === 1 ? fr.sequence : seqAdd(fr.sequence, fr.count - 1)
      if (!retransmit && reliable && seqDiff(last, stream.windowBase) >= this.#streamWindow) {
        const oldest = stream.oldestUnacked()
        if (oldest !== undefined && seqDiff(last, oldest.sequence) >= this.#streamWindow) return size
      }
      queue.shift()
      fr.queued = false
      if (retransmit) {
        this.stats.framesRetransmitted++
      } else {
        this.#queuedBytes -= fr.bytes
      }
      if (reliable) this.#reliableFrames++
      frames.push(fr)
      size += frSize
    }
  }

  /**
   * The ACK for everything received, in #ack and #ackDelayUs, for the next
   * packet's `#emit` to write; clears the pending ack. Returns its size in
   * bytes.
   */
  #prepareAck(now: number): number {
    this.#ackPending = false
    this.#ackElicitingSinceAck = 0
    this.#ackDeadline = Infinity
    const a = this.#received.toAck(ACK_RANGES, this.#ack)
    this.#ackDelayUs = Math.min(0xffffffff, Math.max(0, Math.round((now - this.#largestReceivedTime) * 1000)))
    return ackEntrySize(a.largest, this.#ackDelayUs, a.firstRange, a.ranges)
  }

  /**
   * Send one packet: the ACK prepared by #prepareAck when `ackSize` is not 0,
   * or `first` (a CLOSE entry), then the DATA frames, then `last` (a PING
   * entry). The packet keeps `frames` for acks and losses when any of them
   * is reliable.
   */
  #emit(ackSize: number, first: Uint8Array | null, frames: OutFrame[] | null, last: Uint8Array | null, size: number, ackEliciting: boolean, now: number): void {
    const host = this.#host
    const payload = host.packetBuffer !== undefined ? host.packetBuffer(this, size) : Buffer.allocUnsafe(size)
    let off = 0
    if (ackSize !== 0) {
      const a = this.#ack
      off = writeAckEntry(payload, 0, a.largest, this.#ackDelayUs, a.firstRange, a.ranges)
    } else if (first !== null) {
      payload.set(first, off)
      off += first.length
    }
    if (frames !== null) {
      for (let i = 0; i < frames.length; i++) {
        const e = frames[i]
        const s = e.stream
        off = e.count > 1
          ? writeBatchEntry(payload, off, s.channel, s.delivery, e.sequence, e.data, e.used)
          : writeDataEntry(payload, off, s.channel, s.delivery, e.sequence, e.data, e.fragmentIndex, e.message?.fragmentCount ?? 0)
      }
    }
    if (last !== null) payload.set(last, off)
    const pn = this.#nextPacketNumber
    this.#nextPacketNumber = seqAdd(pn, 1)
    if (ackEliciting) {
      const tracked = frames !== null && this.#reliableFrames > 0 ? frames : null
      this.#sent.add({ packetNumber: pn, sentTime: now, ackEliciting, size, frames: tracked, lost: false, removed: false })
      this.#inFlight++
      this.#inFlightBytes += size
    }
    this.#lastSentTime = now
    this.stats.packetsSent++
    this.stats.bytesSent += size
    this.#host.output(this, pn, payload)
    if (this.#needDrain && this.#queuedBytes < this.#lowWater && this.state === 'open') {
      this.#needDrain = false
      this.#host.drain(this)
    }
  }

  /**
   * Close the session: a CLOSE frame goes out in the next flush (once, best
   * effort), unacknowledged reliable messages are reported undelivered, and
   * all state is released.
   */
  close(reason: CloseReason = CloseReason.NORMAL): void {
    if (this.state !== 'open') return
    this.#closeFrame = encodeFrameEntry({ type: FrameType.CLOSE, reason })
    this.#ackPending = false
    this.flush(this.#now)
    this.#finish(reason, false)
  }

  /** Release everything; report undelivered reliable messages. */
  #finish(reason: CloseReason, byPeer: boolean): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.#deferred.length = 0
    this.#deferredAt.length = 0
    const undelivered: UndeliveredMessage[] = []
    const err = new SessionClosedError(closeReasonText(reason, byPeer))
    for (const s of this.#sendStreams) {
      if (s === undefined) continue
      for (let i = 0; i < s.unacked.length; i++) {
        const m = s.unacked.at(i)
        if (m.acked) continue
        if (m instanceof OutFrame) {
          for (const data of m.messages()) undelivered.push({ channel: s.channel, delivery: s.delivery, data })
          continue
        }
        undelivered.push({ channel: s.channel, delivery: s.delivery, data: m.data })
        if (m instanceof OutMessage && m.waiter !== null) {
          m.waiter.reject(err)
          m.waiter = null
        }
      }
    }
    this.#sendQueue.clear()
    this.#retransmitQueue.clear()
    this.#sent.clear()
    this.#inFlight = 0
    this.#inFlightBytes = 0
    this.#queuedBytes = 0
    this.#sendStreams.fill(undefined)
    this.#recvStreams.fill(undefined)
    this.#bufferedBytes = 0
    this.#reassembly?.clear()
    this.#reassembly = null
    this.#ackPending = false
    this.#host.closed(this, reason, byPeer, undelivered)
  }
}

/** The user-facing name of a close reason. */
export function closeReasonText(reason: CloseReason, byPeer: boolean): SessionCloseReason {
  switch (reason) {
    case CloseReason.TIMEOUT: return 'idle-timeout'
    case CloseReason.SUPERSEDED: return 'replaced'
    case CloseReason.PROTOCOL_ERROR: return 'protocol-violation'
    case CloseReason.BAD_KEY:
    case CloseReason.BAD_COOKIE: return 'handshake-failed'
    case CloseReason.SHUTDOWN: return byPeer ? 'peer-shutdown' : 'shutdown'
    default: return byPeer ? 'peer-closed' : 'closed'
  }
}

function int(v: number, name: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`option ${name} must be an integer ${min}..${max}, got ${v}`)
  }
  return v
}

function num(v: number, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !(v >= min && v <= max)) {
    throw new RangeError(`option ${name} must be a number ${min}..${max}, got ${v}`)
  }
  return v
}

