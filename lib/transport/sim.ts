/**
 * An in-memory datagram network driven by a fake clock, for fast deterministic
 * tests of everything above the transport seam.
 *
 * - {@link createRng}: the seeded PRNG every simulation draws from.
 * - {@link FakeClock}: a {@link Clock} whose time moves only when told to.
 * - {@link SimNetwork}: hosts bind {@link SimTransport}s on it; datagrams are
 *   lost, duplicated, delayed, reordered, corrupted and rate-limited according
 *   to seeded random draws, and delivered on the clock.
 *
 * Given the same seed, options and sequence of calls, every run produces the
 * same deliveries at the same simulated times.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { isIP } from 'node:net'
import type { Clock, DatagramHandler, TimerHandle, Transport } from './transport.js'

// ---------------------------------------------------------------------------
// Seeded PRNG

const TWO_POW_32 = 4294967296

/**
 * Create a seeded pseudo-random number generator (xoshiro128**, its state
 * filled by splitmix32 from the seed).
 *
 * The sequence for a given seed is stable across versions: tests may rely on
 * it.
 *
 * @param seed - Any safe integer (negative and values above 2^32 are fine;
 *   both 32-bit halves are used).
 * @returns A function returning uniformly distributed numbers in [0, 1) with
 *   32 bits of randomness each.
 * @throws RangeError if `seed` is not a safe integer.
 */
export function createRng(seed: number): () => number {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`createRng: seed must be a safe integer, got ${String(seed)}`)
  }
  let s = seed | 0
  const high = Math.floor(seed / TWO_POW_32) | 0
  const splitmix32 = (): number => {
    s = (s + 0x9e3779b9) | 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return z ^ (z >>> 16)
  }
  let a = splitmix32()
  // Fold the high half into the splitmix state: distinct seeds give distinct
  // states (imul by an odd constant is a bijection), fully mixed.
  s = (s ^ Math.imul(high, 0x2545f491)) | 0
  let b = splitmix32()
  let c = splitmix32()
  let d = splitmix32()
  return (): number => {
    const x = Math.imul(b, 5)
    const result = Math.imul((x << 7) | (x >>> 25), 9)
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = (d << 11) | (d >>> 21)
    return (result >>> 0) / TWO_POW_32
  }
}

// ---------------------------------------------------------------------------
// A binary min-heap ordered by (at, seq), with O(log n) removal.

interface HeapItem {
  /** Deadline, ms. */
  at: number
  /** Insertion order; breaks ties so equal deadlines are FIFO. */
  seq: number
  /** Position in the heap, -1 when not in it. */
  index: number
}

class DeadlineHeap<T extends HeapItem> {
  #items: T[] = []

  get size(): number {
    return this.#items.length
  }

  peek(): T | undefined {
    return this.#items[0]
  }

  has(item: T): boolean {
    return item.index >= 0 && this.#items[item.index] === item
  }

  push(item: T): void {
    item.index = this.#items.length
    this.#items.push(item)
    this.#up(item.index)
  }

  pop(): T | undefined {
    const items = this.#items
    const top = items[0]
    if (top !== undefined) this.#removeAt(0)
    return top
  }

  remove(item: T): void {
    this.#removeAt(item.index)
  }

  #removeAt(i: number): void {
    const items = this.#items
    const item = items[i]!
    const last = items.pop()!
    item.index = -1
    if (i === items.length) return
    items[i] = last
    last.index = i
    this.#down(i)
    this.#up(last.index)
  }

  #less(a: T, b: T): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  #up(i: number): void {
    const items = this.#items
    const item = items[i]!
    while (i > 0) {
      const parentIndex = (i - 1) >>> 1
      const parent = items[parentIndex]!
      if (!this.#less(item, parent)) break
      items[i] = parent
      parent.index = i
      i = parentIndex
    }
    items[i] = item
    item.index = i
  }

  #down(i: number): void {
    const items = this.#items
    const n = items.length
    const item = items[i]!
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && this.#less(items[right]!, items[left]!) ? right : left
      const childItem = items[child]!
      if (!this.#less(childItem, item)) break
      items[i] = childItem
      childItem.index = i
      i = child
    }
    items[i] = item
    item.index = i
  }
}

// ---------------------------------------------------------------------------
// FakeClock

class FakeTimer implements HeapItem {
  index = -1
  constructor(public at: number, public seq: number, public fn: (() => void) | undefined) {}
}

/**
 * A {@link Clock} whose time only moves when {@link FakeClock.advance},
 * {@link FakeClock.runFor} or {@link FakeClock.runUntil} is called.
 *
 * Ordering rules (all single-threaded and deterministic):
 * - Deferred callbacks ({@link FakeClock.defer}) run first, FIFO, before any
 *   timer and before time moves — including those deferred by a deferred
 *   callback or a timer. Each timer callback is its own "turn": what it defers
 *   runs before the next timer, even one with the same deadline.
 * - Timers fire in deadline order; equal deadlines fire in the order they were
 *   set. During a timer callback `now()` equals that timer's deadline.
 *
 * A callback that throws propagates out of the running method; the clock stays
 * consistent (the callback is consumed) and can be run again.
 */
export class FakeClock implements Clock {
  #now: number
  #seq = 0
  #timers = new DeadlineHeap<FakeTimer>()
  #deferred: Array<(() => void) | undefined> = []
  #deferHead = 0
  #running = false

  /**
   * @param startMs - Initial value of `now()`, ms. Default 0.
   * @throws RangeError if `startMs` is not finite.
   */
  constructor(startMs = 0) {
    if (!Number.isFinite(startMs)) {
      throw new RangeError(`FakeClock: startMs must be a finite number, got ${String(startMs)}`)
    }
    this.#now = startMs
  }

  /** Current simulated time, ms. */
  now(): number {
    return this.#now
  }

  /**
   * Schedule `fn` at `now() + delayMs`. A negative or NaN delay counts as 0;
   * `Infinity` never fires.
   */
  setTimer(fn: () => void, delayMs: number): TimerHandle {
    if (typeof fn !== 'function') throw new TypeError('FakeClock.setTimer: fn must be a function')
    const timer = new FakeTimer(this.#now + (delayMs > 0 ? delayMs : 0), this.#seq++, fn)
    this.#timers.push(timer)
    return timer
  }

  /** Cancel a timer. Unknown, fired or already cancelled handles are ignored. */
  clearTimer(handle: TimerHandle): void {
    if (handle instanceof FakeTimer && this.#timers.has(handle)) {
      this.#timers.remove(handle)
      handle.fn = undefined
    }
  }

  /** Run `fn` before any timer and before time advances (FIFO). */
  defer(fn: () => void): void {
    if (typeof fn !== 'function') throw new TypeError('FakeClock.defer: fn must be a function')
    this.#deferred.push(fn)
  }

  /** Number of scheduled timers plus deferred callbacks not yet run. */
  pending(): number {
    return this.#timers.size + this.#deferred.length - this.#deferHead
  }

  /** Deadline of the earliest scheduled timer, ms, or `undefined` if none. */
  nextTimerAt(): number | undefined {
    return this.#timers.peek()?.at
  }

  /**
   * Run deferred callbacks (and what they defer) without moving time or
   * firing timers.
   *
   * @returns Number of callbacks run.
   */
  runDeferred(): number {
    return this.#run(this.#now, undefined, true).count
  }

  /**
   * Move time forward by `ms`, running every deferred callback and every timer
   * due up to the new time, in order. Ends with `now()` = old `now()` + `ms`.
   *
   * @param ms - Milliseconds, finite and ≥ 0.
   * @returns Number of callbacks run.
   * @throws RangeError for a negative or non-finite `ms`; Error when called
   *   from inside one of this clock's callbacks.
   */
  advance(ms: number): number {
    checkDuration('advance', ms)
    return this.#run(this.#now + ms, undefined, false).count
  }

  /** Same as {@link FakeClock.advance}: run for `ms` simulated milliseconds. */
  runFor(ms: number): number {
    checkDuration('runFor', ms)
    return this.#run(this.#now + ms, undefined, false).count
  }

  /**
   * Run callbacks in order until `predicate()` returns true or `maxMs` of
   * simulated time have passed. The predicate is checked before starting and
   * after every callback; when it becomes true, time stays at the moment it did.
   * If nothing is left to run, time moves to the limit.
   *
   * @param predicate - Condition to wait for.
   * @param maxMs - Bound on simulated time, ms, finite and ≥ 0.
   * @returns Whether the predicate became true.
   */
  runUntil(predicate: () => boolean, maxMs: number): boolean {
    if (typeof predicate !== 'function') throw new TypeError('FakeClock.runUntil: predicate must be a function')
    checkDuration('runUntil', maxMs)
    return this.#run(this.#now + maxMs, predicate, false).done
  }

  #run(target: number, predicate: (() => boolean) | undefined, deferredOnly: boolean): { count: number, done: boolean } {
    if (this.#running) {
      throw new Error('FakeClock: advance/runFor/runUntil/runDeferred called from inside a clock callback')
    }
    this.#running = true
    let count = 0
    try {
      for (;;) {
        if (predicate !== undefined && predicate()) return { count, done: true }
        const deferred = this.#deferred
        if (this.#deferHead < deferred.length) {
          const fn = deferred[this.#deferHead]!
          deferred[this.#deferHead++] = undefined
          if (this.#deferHead === deferred.length) {
            deferred.length = 0
            this.#deferHead = 0
          }
          count++
          fn()
          continue
        }
        if (deferredOnly) break
        const timer = this.#timers.peek()
        if (timer === undefined || timer.at > target) break
        this.#timers.pop()
        if (timer.at > this.#now) this.#now = timer.at
        const fn = timer.fn!
        timer.fn = undefined
        count++
        fn()
      }
      if (target > this.#now) this.#now = target
      return { count, done: predicate !== undefined && predicate() }
    } finally {
      this.#running = false
    }
  }
}

function checkDuration(method: string, ms: number): void {
  if (!(ms >= 0) || !Number.isFinite(ms)) {
    throw new RangeError(`FakeClock.${method}: ms must be a finite number >= 0, got ${String(ms)}`)
  }
}

// ---------------------------------------------------------------------------
// SimNetwork

/** Conditions of a simulated path, applied to each datagram independently. */
export interface LinkConditions {
  /** Probability in [0, 1] that a datagram is lost. Default 0. */
  loss: number
  /** Probability in [0, 1] that a datagram is delivered twice (the copy gets its own delay). Default 0. */
  duplicate: number
  /** Probability in [0, 1] that a datagram gets `reorderDelayMs` of extra delay, so later ones overtake it. Default 0. */
  reorder: number
  /** Extra delay of a reordered datagram, ms. Default 10. */
  reorderDelayMs: number
  /** Base one-way delay, ms. Default 0 (delivery still happens on a later clock turn, never inside `send`). */
  delayMs: number
  /** Extra random delay, uniform in [0, `jitterMs`), ms; may reorder datagrams by itself. Default 0. */
  jitterMs: number
  /** Probability in [0, 1] that one random bit of a (non-empty) datagram is flipped. Default 0. */
  corrupt: number
  /** Largest datagram carried, bytes; larger ones are dropped. Default 65507. */
  mtu: number
  /**
   * Capacity of the path, bytes per second; each direction between two
   * sockets is its own pipe, datagrams queue behind each other. Default
   * `Infinity` (no serialization delay).
   */
  bandwidth: number
  /** Most bytes that may wait in a bandwidth-limited pipe; beyond it datagrams are tail-dropped. Default 1 MiB. */
  queueBytes: number
}

/** Options of a {@link SimNetwork}: the default {@link LinkConditions} plus the seed and clock. */
export interface SimNetworkOptions<C extends Clock = FakeClock> extends Partial<LinkConditions> {
  /** Seed of the network's PRNG ({@link createRng}). Default 1. */
  seed?: number
  /** Clock that schedules deliveries. Default a new {@link FakeClock} at time 0. */
  clock?: C
}

/** Where a link condition or partition applies: a host address (every port) or one socket. */
export type SimEndpoint = string | { readonly address: string, readonly port?: number }

/** Datagrams dropped by the network, by reason. */
export interface SimDropStats {
  /** Lost by the `loss` draw. */
  loss: number
  /** Larger than the path's `mtu`. */
  mtu: number
  /** Between partitioned endpoints. */
  partition: number
  /** Nobody bound at the destination, at send or at arrival. */
  unreachable: number
  /** Tail-dropped from a full bandwidth-limited pipe (`queueBytes`). */
  queue: number
  /** Sent from a closed transport. */
  closed: number
}

/** Counters of a {@link SimNetwork}. Live object, updated in place. */
export interface SimNetworkStats {
  /** Datagrams passed to `send` (dropped ones included). */
  sent: number
  /** Datagrams handed to a receiver (copies included). */
  delivered: number
  /** Extra copies made by the `duplicate` draw. */
  duplicated: number
  /** Copies with one bit flipped. */
  corrupted: number
  /** Copies that got the `reorderDelayMs` extra delay. */
  reordered: number
  /** Bytes passed to `send` (dropped ones included). */
  bytesSent: number
  /** Bytes handed to receivers. */
  bytesDelivered: number
  /** Dropped datagrams by reason. */
  dropped: SimDropStats
}

/** Error thrown by {@link SimNetwork.bind} when the address/port is taken or no port is free. */
export class SimBindError extends Error {
  static {
    this.prototype.name = 'SimBindError'
  }

  /** Stable error code. */
  readonly code = 'ERR_WARPMESH_SIM_BIND'
}

/** Default conditions of a {@link SimNetwork}. */
export const DEFAULT_LINK_CONDITIONS: Readonly<LinkConditions> = Object.freeze({
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMs: 10,
  delayMs: 0,
  jitterMs: 0,
  corrupt: 0,
  mtu: 65507,
  bandwidth: Infinity,
  queueBytes: 1024 * 1024,
})

const PROBABILITIES = ['loss', 'duplicate', 'reorder', 'corrupt'] as const
const DURATIONS = ['reorderDelayMs', 'delayMs', 'jitterMs'] as const
const FIRST_EPHEMERAL_PORT = 49152

function mergeConditions(base: Readonly<LinkConditions>, patch: Partial<LinkConditions>, where: string): LinkConditions {
  if (patch === null || typeof patch !== 'object') throw new TypeError(`${where}: conditions must be an object`)
  for (const key of PROBABILITIES) {
    const v = patch[key]
    if (v !== undefined && !(v >= 0 && v <= 1)) {
      throw new RangeError(`${where}: option "${key}" must be a probability in [0, 1], got ${String(v)}`)
    }
  }
  for (const key of DURATIONS) {
    const v = patch[key]
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) {
      throw new RangeError(`${where}: option "${key}" must be a finite number of ms >= 0, got ${String(v)}`)
    }
  }
  if (patch.mtu !== undefined && !(Number.isInteger(patch.mtu) && patch.mtu >= 0)) {
    throw new RangeError(`${where}: option "mtu" must be an integer number of bytes >= 0, got ${String(patch.mtu)}`)
  }
  if (patch.bandwidth !== undefined && !(patch.bandwidth > 0)) {
    throw new RangeError(`${where}: option "bandwidth" must be bytes/s > 0 (Infinity for unlimited), got ${String(patch.bandwidth)}`)
  }
  if (patch.queueBytes !== undefined && !(patch.queueBytes >= 0)) {
    throw new RangeError(`${where}: option "queueBytes" must be a number of bytes >= 0, got ${String(patch.queueBytes)}`)
  }
  const merged = { ...base }
  for (const key of Object.keys(DEFAULT_LINK_CONDITIONS) as Array<keyof LinkConditions>) {
    const v = patch[key]
    if (v !== undefined) merged[key] = v
  }
  return merged
}

/** `address:port`, bracketing IPv6 literals. */
function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

function endpointKey(endpoint: SimEndpoint, where: string): string {
  if (typeof endpoint === 'string') {
    if (endpoint === '') throw new TypeError(`${where}: endpoint address must be a non-empty string`)
    return endpoint
  }
  if (endpoint === null || typeof endpoint !== 'object' || typeof endpoint.address !== 'string' || endpoint.address === '') {
    throw new TypeError(`${where}: endpoint must be an address string or { address, port? }`)
  }
  return endpoint.port === undefined ? endpoint.address : formatEndpoint(endpoint.address, endpoint.port)
}

function toList(endpoints: SimEndpoint | readonly SimEndpoint[], where: string): string[] {
  const list = Array.isArray(endpoints) ? endpoints as readonly SimEndpoint[] : [endpoints as SimEndpoint]
  return list.map((e) => endpointKey(e, where))
}

function dropDatagram(): void {}

// Cross-class internals: set in static blocks so neither class exposes them.
let deliverTo!: (transport: SimTransport, data: Buffer, port: number, address: string) => void
let isClosed!: (transport: SimTransport) => boolean
let transmit!: (network: SimNetwork<Clock>, from: SimTransport, chunks: readonly Uint8Array[], port: number, address: string) => void
let unbind!: (network: SimNetwork<Clock>, transport: SimTransport) => void

/**
 * A socket bound on a {@link SimNetwork}; create it with
 * {@link SimNetwork.bind}. Sending never throws and never delivers
 * synchronously.
 */
export class SimTransport implements Transport {
  /** `'IPv6'` when the address is an IPv6 literal, else `'IPv4'`. */
  readonly family: 'IPv4' | 'IPv6'
  /** Address as bound. */
  readonly address: string
  /** Port as bound (the allocated one when 0 was asked for). */
  readonly port: number
  /** `address:port` (IPv6 in brackets), e.g. for logs. */
  readonly endpoint: string
  #network: SimNetwork<Clock>
  #handler: DatagramHandler = dropDatagram
  #closed = false

  /** @internal Use {@link SimNetwork.bind}. */
  constructor(network: SimNetwork<Clock>, address: string, port: number) {
    this.#network = network
    this.address = address
    this.port = port
    this.family = isIP(address) === 6 ? 'IPv6' : 'IPv4'
    this.endpoint = formatEndpoint(address, port)
  }

  static {
    deliverTo = (transport, data, port, address) => { transport.#handler(data, port, address) }
    isClosed = (transport) => transport.#closed
  }

  /** Whether {@link SimTransport.close} was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** Send one datagram (the concatenation of `chunks`, copied now). */
  send(chunks: readonly Uint8Array[], port: number, address: string): void {
    transmit(this.#network, this, chunks, port, address)
  }

  /** Install the receive handler (replaces any previous one). */
  setHandler(handler: DatagramHandler): void {
    if (typeof handler !== 'function') throw new TypeError('SimTransport.setHandler: handler must be a function')
    this.#handler = handler
  }

  /** Unbind. Datagrams still in flight to this socket are dropped on arrival. Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      unbind(this.#network, this)
    }
    return Promise.resolve()
  }
}

class InFlight implements HeapItem {
  index = -1
  constructor(
    public at: number,
    public seq: number,
    public data: Buffer,
    public fromAddress: string,
    public fromPort: number,
    public toAddress: string,
    public toPort: number,
  ) {}
}

interface LinkOverride {
  patch: Partial<LinkConditions>
  resolved: LinkConditions
}

/**
 * An in-memory datagram network. Bind sockets with {@link SimNetwork.bind},
 * drive time with the clock.
 *
 * Per datagram, in order: sender closed → `closed`; nobody bound at the
 * destination → `unreachable`; larger than `mtu` → `mtu`; partitioned →
 * `partition`; bandwidth queue full → `queue`; `loss` draw → `loss`. Then an
 * optional duplicate; each copy independently gets delay + jitter, maybe the
 * reorder delay, maybe one flipped bit. Copies due at the same time are
 * delivered back to back in one clock callback (like one socket poll), so
 * deferred work runs after the whole batch.
 *
 * Conditions come from the most specific {@link SimNetwork.setLink} override
 * (socket→socket, socket→host, host→socket, host→host), else the defaults.
 *
 * @typeParam C - Type of the clock (a {@link FakeClock} unless one is given).
 */
export class SimNetwork<C extends Clock = FakeClock> {
  /** The clock deliveries are scheduled on. */
  readonly clock: C
  /** Counters, updated in place. */
  readonly stats: SimNetworkStats = {
    sent: 0,
    delivered: 0,
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
    bytesSent: 0,
    bytesDelivered: 0,
    dropped: { loss: 0, mtu: 0, partition: 0, unreachable: 0, queue: 0, closed: 0 },
  }

  #rng: () => number
  #defaults: LinkConditions
  #hosts = new Map<string, Map<number, SimTransport>>()
  #nextPort = new Map<string, number>()
  #links = new Map<string, Map<string, LinkOverride>>()
  #blocked = new Map<string, Set<string>>()
  /** Per sender socket: per receiver socket, when its pipe is free again (ms). */
  #busyUntil = new Map<SimTransport, Map<SimTransport, number>>()
  #inFlight = new DeadlineHeap<InFlight>()
  #seq = 0
  #timer: TimerHandle | undefined
  #armedAt = Infinity

  /**
   * @param options - Default link conditions, seed and clock; see
   *   {@link SimNetworkOptions}.
   * @throws RangeError naming the option when a value is out of range.
   */
  constructor(options: SimNetworkOptions<C> = {}) {
    const { seed = 1, clock, ...conditions } = options
    this.#rng = createRng(seed)
    this.#defaults = mergeConditions(DEFAULT_LINK_CONDITIONS, conditions, 'SimNetwork')
    this.clock = clock ?? (new FakeClock() as unknown as C)
  }

  static {
    transmit = (network, from, chunks, port, address) => { network.#transmit(from, chunks, port, address) }
    unbind = (network, transport) => { network.#unbind(transport) }
  }

  /** The current default conditions (a copy). */
  get conditions(): LinkConditions {
    return { ...this.#defaults }
  }

  /** Number of datagrams in flight. */
  get inFlight(): number {
    return this.#inFlight.size
  }

  /**
   * Change default conditions from now on (datagrams in flight keep theirs).
   * Link overrides keep their own values and inherit the rest.
   */
  configure(conditions: Partial<LinkConditions>): void {
    this.#defaults = mergeConditions(this.#defaults, conditions, 'SimNetwork.configure')
    for (const inner of this.#links.values()) {
      for (const link of inner.values()) link.resolved = mergeConditions(this.#defaults, link.patch, 'SimNetwork.configure')
    }
  }

  /**
   * Bind a socket.
   *
   * @param address - Any non-empty string; an IPv6 literal gives family `'IPv6'`.
   *   Addresses match exactly (no wildcard addresses).
   * @param port - 1..65535, or 0 (default) to allocate the next free port from 49152 up.
   * @throws SimBindError if the port is taken or none is free; TypeError/RangeError for bad arguments.
   */
  bind(address: string, port = 0): SimTransport {
    if (typeof address !== 'string' || address === '') throw new TypeError('SimNetwork.bind: address must be a non-empty string')
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`SimNetwork.bind: port must be an integer in [0, 65535], got ${String(port)}`)
    }
    let ports = this.#hosts.get(address)
    if (ports === undefined) {
      ports = new Map()
      this.#hosts.set(address, ports)
    }
    if (port === 0) {
      port = this.#allocatePort(address, ports)
    } else if (ports.has(port)) {
      throw new SimBindError(`SimNetwork.bind: ${formatEndpoint(address, port)} is already bound`)
    }
    const transport = new SimTransport(this as unknown as SimNetwork<Clock>, address, port)
    ports.set(port, transport)
    return transport
  }

  /**
   * Override conditions for datagrams going `from` → `to` (one direction).
   * Unspecified fields follow the defaults. Replaces an earlier override of
   * the same pair.
   */
  setLink(from: SimEndpoint, to: SimEndpoint, conditions: Partial<LinkConditions>): void {
    const fromKey = endpointKey(from, 'SimNetwork.setLink')
    const toKey = endpointKey(to, 'SimNetwork.setLink')
    const resolved = mergeConditions(this.#defaults, conditions, 'SimNetwork.setLink')
    let inner = this.#links.get(fromKey)
    if (inner === undefined) {
      inner = new Map()
      this.#links.set(fromKey, inner)
    }
    inner.set(toKey, { patch: { ...conditions }, resolved })
  }

  /** Remove the override of `from` → `to` set by {@link SimNetwork.setLink}. */
  clearLink(from: SimEndpoint, to: SimEndpoint): void {
    const fromKey = endpointKey(from, 'SimNetwork.clearLink')
    const inner = this.#links.get(fromKey)
    if (inner === undefined) return
    inner.delete(endpointKey(to, 'SimNetwork.clearLink'))
    if (inner.size === 0) this.#links.delete(fromKey)
  }

  /** Conditions that apply to datagrams from one socket to another right now. */
  conditionsFor(from: { readonly address: string, readonly port: number }, to: { readonly address: string, readonly port: number }): LinkConditions {
    return { ...this.#lookupConditions(from.address, formatEndpoint(from.address, from.port), to.address, formatEndpoint(to.address, to.port)) }
  }

  /**
   * Cut every pair (one of `a`, one of `b`) in both directions until
   * {@link SimNetwork.heal}. Datagrams already in flight still arrive.
   */
  partition(a: SimEndpoint | readonly SimEndpoint[], b: SimEndpoint | readonly SimEndpoint[]): void {
    const left = toList(a, 'SimNetwork.partition')
    const right = toList(b, 'SimNetwork.partition')
    for (const x of left) {
      for (const y of right) {
        this.#block(x, y)
        this.#block(y, x)
      }
    }
  }

  /**
   * Undo {@link SimNetwork.partition} for the given pairs, or every
   * partition when called without arguments.
   */
  heal(a?: SimEndpoint | readonly SimEndpoint[], b?: SimEndpoint | readonly SimEndpoint[]): void {
    if (a === undefined || b === undefined) {
      if (a !== undefined || b !== undefined) throw new TypeError('SimNetwork.heal: pass both sides or neither')
      this.#blocked.clear()
      return
    }
    const left = toList(a, 'SimNetwork.heal')
    const right = toList(b, 'SimNetwork.heal')
    for (const x of left) {
      for (const y of right) {
        this.#unblock(x, y)
        this.#unblock(y, x)
      }
    }
  }

  #block(from: string, to: string): void {
    let set = this.#blocked.get(from)
    if (set === undefined) {
      set = new Set()
      this.#blocked.set(from, set)
    }
    set.add(to)
  }

  #unblock(from: string, to: string): void {
    const set = this.#blocked.get(from)
    if (set === undefined) return
    set.delete(to)
    if (set.size === 0) this.#blocked.delete(from)
  }

  #isBlocked(fromHost: string, fromSocket: string, toHost: string, toSocket: string): boolean {
    if (this.#blocked.size === 0) return false
    const bySocket = this.#blocked.get(fromSocket)
    if (bySocket !== undefined && (bySocket.has(toSocket) || bySocket.has(toHost))) return true
    const byHost = this.#blocked.get(fromHost)
    return byHost !== undefined && (byHost.has(toSocket) || byHost.has(toHost))
  }

  #lookupConditions(fromHost: string, fromSocket: string, toHost: string, toSocket: string): LinkConditions {
    if (this.#links.size === 0) return this.#defaults
    const bySocket = this.#links.get(fromSocket)
    const byHost = this.#links.get(fromHost)
    return (bySocket?.get(toSocket) ?? bySocket?.get(toHost) ?? byHost?.get(toSocket) ?? byHost?.get(toHost))?.resolved ??
      this.#defaults
  }

  #allocatePort(address: string, ports: Map<number, SimTransport>): number {
    let port = this.#nextPort.get(address) ?? FIRST_EPHEMERAL_PORT
    for (let tries = 65536 - FIRST_EPHEMERAL_PORT; tries > 0; tries--) {
      const candidate = port
      port = port === 65535 ? FIRST_EPHEMERAL_PORT : port + 1
      if (!ports.has(candidate)) {
        this.#nextPort.set(address, port)
        return candidate
      }
    }
    throw new SimBindError(`SimNetwork.bind: no free port on ${address}`)
  }

  #unbind(transport: SimTransport): void {
    const ports = this.#hosts.get(transport.address)!
    ports.delete(transport.port)
    if (ports.size === 0) this.#hosts.delete(transport.address)
    this.#busyUntil.delete(transport)
    for (const pipes of this.#busyUntil.values()) pipes.delete(transport)
  }

  #transmit(from: SimTransport, chunks: readonly Uint8Array[], port: number, address: string): void {
    const stats = this.stats
    stats.sent++
    let length = 0
    for (let i = 0; i < chunks.length; i++) length += chunks[i]!.byteLength
    stats.bytesSent += length
    if (isClosed(from)) {
      stats.dropped.closed++
      return
    }
    const to = this.#hosts.get(address)?.get(port)
    if (to === undefined) {
      stats.dropped.unreachable++
      return
    }
    const conditions = this.#lookupConditions(from.address, from.endpoint, to.address, to.endpoint)
    if (length > conditions.mtu) {
      stats.dropped.mtu++
      return
    }
    if (this.#isBlocked(from.address, from.endpoint, to.address, to.endpoint)) {
      stats.dropped.partition++
      return
    }
    const now = this.clock.now()
    let departAt = now
    if (conditions.bandwidth !== Infinity) {
      let pipes = this.#busyUntil.get(from)
      if (pipes === undefined) {
        pipes = new Map()
        this.#busyUntil.set(from, pipes)
      }
      const busyUntil = pipes.get(to) ?? now
      const start = busyUntil > now ? busyUntil : now
      const queued = (start - now) * conditions.bandwidth / 1000
      if (queued + length > conditions.queueBytes) {
        stats.dropped.queue++
        return
      }
      departAt = start + length * 1000 / conditions.bandwidth
      pipes.set(to, departAt)
    }
    const rng = this.#rng
    if (conditions.loss > 0 && rng() < conditions.loss) {
      stats.dropped.loss++
      return
    }
    const data = Buffer.concat(chunks, length)
    const copy = conditions.duplicate > 0 && rng() < conditions.duplicate ? Buffer.from(data) : undefined
    this.#schedule(data, departAt, now, conditions, from, address, port)
    if (copy !== undefined) {
      stats.duplicated++
      this.#schedule(copy, departAt, now, conditions, from, address, port)
    }
  }

  #schedule(
    data: Buffer, departAt: number, now: number, conditions: LinkConditions,
    from: SimTransport, toAddress: string, toPort: number,
  ): void {
    const rng = this.#rng
    let at = departAt + conditions.delayMs
    if (conditions.jitterMs > 0) at += rng() * conditions.jitterMs
    if (conditions.reorder > 0 && rng() < conditions.reorder) {
      at += conditions.reorderDelayMs
      this.stats.reordered++
    }
    if (conditions.corrupt > 0 && data.length > 0 && rng() < conditions.corrupt) {
      const bit = Math.floor(rng() * data.length * 8)
      data[bit >>> 3] ^= 1 << (bit & 7)
      this.stats.corrupted++
    }
    this.#inFlight.push(new InFlight(at, this.#seq++, data, from.address, from.port, toAddress, toPort))
    if (at < this.#armedAt) this.#arm(at, now)
  }

  #arm(at: number, now: number): void {
    if (this.#timer !== undefined) this.clock.clearTimer(this.#timer)
    this.#armedAt = at
    this.#timer = this.clock.setTimer(this.#onTimer, at - now)
  }

  #onTimer = (): void => {
    this.#timer = undefined
    this.#armedAt = Infinity
    const now = this.clock.now()
    // Only what was in flight before this batch: a datagram sent by a handler
    // during the batch arrives on a later turn, even with zero delay.
    const seqLimit = this.#seq
    const heap = this.#inFlight
    const stats = this.stats
    try {
      for (let item = heap.peek(); item !== undefined && item.at <= now && item.seq < seqLimit; item = heap.peek()) {
        heap.pop()
        const to = this.#hosts.get(item.toAddress)?.get(item.toPort)
        if (to === undefined) {
          stats.dropped.unreachable++
          continue
        }
        stats.delivered++
        stats.bytesDelivered += item.data.length
        deliverTo(to, item.data, item.fromPort, item.fromAddress)
      }
    } finally {
      const next = heap.peek()
      if (next !== undefined && next.at < this.#armedAt) this.#arm(next.at, now)
    }
  }
}
