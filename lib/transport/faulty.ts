/**
 * Fault injection for a real transport: drops, duplicates and reorders
 * OUTGOING datagrams at seeded random rates, so loss can be exercised over the
 * real UDP socket where kernel tools (netem) are not available.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { createRng } from './sim.js'
import { systemClock } from './transport.js'
import type { Clock, DatagramHandler, TimerHandle, Transport } from './transport.js'

/** Options of {@link wrapFaulty}. */
export interface FaultyOptions {
  /** Seed of the PRNG ({@link createRng}); same seed and sends → same faults. Default 1. */
  seed?: number
  /** Probability in [0, 1] that an outgoing datagram is dropped. Default 0. */
  drop?: number
  /** Probability in [0, 1] that an outgoing datagram is sent twice. Default 0. */
  duplicate?: number
  /**
   * Probability in [0, 1] that an outgoing datagram is held back and sent
   * right after the next datagram that is not held (or when
   * `reorderDelayMs` passes without one). Default 0.
   */
  reorder?: number
  /** Longest time a held datagram waits for a following one, ms. Default 5. */
  reorderDelayMs?: number
  /** Most datagrams held at once; at the bound new datagrams are sent at once instead. Default 64. */
  maxHeld?: number
  /** Clock of the release timer. Default {@link systemClock} (whose timers do not keep the process alive). */
  clock?: Clock
}

/** Counters of a {@link FaultyTransport}. Live object, updated in place. */
export interface FaultyStats {
  /** Datagrams passed to `send`. */
  sent: number
  /** Datagrams dropped by the `drop` draw. */
  dropped: number
  /** Extra copies sent by the `duplicate` draw. */
  duplicated: number
  /** Datagrams held back by the `reorder` draw. */
  reordered: number
  /** Datagrams handed to the inner transport (copies included). */
  forwarded: number
  /** Datagrams currently held back. */
  held: number
}

function checkProbability(name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) {
    throw new RangeError(`wrapFaulty: option "${name}" must be a probability in [0, 1], got ${String(value)}`)
  }
}

/**
 * A {@link Transport} that forwards to another one, injecting faults on the
 * way out. Receiving is untouched. Created by {@link wrapFaulty}.
 *
 * A datagram passed straight through is not copied; a held one is copied
 * into one buffer (the caller may reuse its chunks). One timer per wrapper
 * releases held datagrams when no later datagram comes.
 */
export class FaultyTransport implements Transport {
  /** The wrapped transport. */
  readonly inner: Transport
  /** Counters; see {@link FaultyStats}. */
  readonly stats: FaultyStats = { sent: 0, dropped: 0, duplicated: 0, reordered: 0, forwarded: 0, held: 0 }

  #rng: () => number
  #drop: number
  #duplicate: number
  #reorder: number
  #reorderDelayMs: number
  #maxHeld: number
  #clock: Clock
  #heldData: Array<Buffer | undefined>
  #heldPort: Int32Array
  #heldAddress: Array<string | undefined>
  #one: Buffer[] = []
  #timer: TimerHandle | undefined
  #closing: Promise<void> | undefined

  /** @internal Use {@link wrapFaulty}. */
  constructor(inner: Transport, options: FaultyOptions = {}) {
    const {
      seed = 1, drop = 0, duplicate = 0, reorder = 0, reorderDelayMs = 5, maxHeld = 64, clock = systemClock,
    } = options
    if (inner === null || typeof inner !== 'object' || typeof inner.send !== 'function') {
      throw new TypeError('wrapFaulty: inner must be a Transport')
    }
    checkProbability('drop', drop)
    checkProbability('duplicate', duplicate)
    checkProbability('reorder', reorder)
    if (!(reorderDelayMs >= 0 && Number.isFinite(reorderDelayMs))) {
      throw new RangeError(`wrapFaulty: option "reorderDelayMs" must be a finite number of ms >= 0, got ${String(reorderDelayMs)}`)
    }
    if (!Number.isInteger(maxHeld) || maxHeld < 0 || maxHeld > 65536) {
      throw new RangeError(`wrapFaulty: option "maxHeld" must be an integer in [0, 65536], got ${String(maxHeld)}`)
    }
    this.inner = inner
    this.#rng = createRng(seed)
    this.#drop = drop
    this.#duplicate = duplicate
    this.#reorder = reorder
    this.#reorderDelayMs = reorderDelayMs
    this.#maxHeld = maxHeld
    this.#clock = clock
    this.#heldData = new Array<Buffer | undefined>(maxHeld).fill(undefined)
    this.#heldPort = new Int32Array(maxHeld)
    this.#heldAddress = new Array<string | undefined>(maxHeld).fill(undefined)
  }

  /** Address family of the inner transport. */
  get family(): 'IPv4' | 'IPv6' {
    return this.inner.family
  }

  /** Local address of the inner transport. */
  get address(): string {
    return this.inner.address
  }

  /** Local port of the inner transport. */
  get port(): number {
    return this.inner.port
  }

  /** Receive buffer of the inner transport, if it reports one. */
  get recvBufferSize(): number | undefined {
    return this.inner.recvBufferSize
  }

  /**
   * Send through the faults. After close, datagrams go straight to the inner
   * transport (which drops them if it is closed).
   */
  send(chunks: readonly Uint8Array[], port: number, address: string): void {
    if (this.#closing !== undefined) {
      this.inner.send(chunks, port, address)
      return
    }
    const stats = this.stats
    const rng = this.#rng
    stats.sent++
    if (this.#drop > 0 && rng() < this.#drop) {
      stats.dropped++
      return
    }
    const copies = this.#duplicate > 0 && rng() < this.#duplicate ? 2 : 1
    if (copies === 2) stats.duplicated++
    if (this.#reorder > 0 && rng() < this.#reorder && stats.held < this.#maxHeld) {
      this.#hold(chunks, port, address)
      stats.reordered++
      if (copies === 2) this.#forward(chunks, port, address)
      return
    }
    this.#forward(chunks, port, address)
    if (copies === 2) this.#forward(chunks, port, address)
    if (stats.held > 0) this.#release()
  }

  /** Install the receive handler on the inner transport. */
  setHandler(handler: DatagramHandler): void {
    this.inner.setHandler(handler)
  }

  /** Send every held datagram, then close the inner transport. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#release()
      this.#closing = this.inner.close()
    }
    return this.#closing
  }

  #forward(chunks: readonly Uint8Array[], port: number, address: string): void {
    this.stats.forwarded++
    this.inner.send(chunks, port, address)
  }

  #hold(chunks: readonly Uint8Array[], port: number, address: string): void {
    const data = Buffer.concat(chunks)
    const i = this.stats.held++
    this.#heldData[i] = data
    this.#heldPort[i] = port
    this.#heldAddress[i] = address
    if (this.#timer === undefined) this.#timer = this.#clock.setTimer(this.#onTimer, this.#reorderDelayMs)
  }

  /** Send every held datagram, oldest first. */
  #release(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimer(this.#timer)
      this.#timer = undefined
    }
    const n = this.stats.held
    this.stats.held = 0
    const one = this.#one
    for (let i = 0; i < n; i++) {
      one[0] = this.#heldData[i]!
      const address = this.#heldAddress[i]!
      this.#heldData[i] = undefined
      this.#heldAddress[i] = undefined
      this.#forward(one, this.#heldPort[i]!, address)
    }
    one.length = 0
  }

  #onTimer = (): void => {
    this.#timer = undefined
    this.#release()
  }
}

/**
 * Wrap a transport (normally the real UDP one) so its outgoing datagrams are
 * dropped, duplicated and reordered at the given rates.
 *
 * @param inner - The transport to send through; the wrapper owns it from now
 *   on (closing the wrapper closes it).
 * @param options - Rates and seed; see {@link FaultyOptions}.
 * @throws RangeError naming the option when a value is out of range.
 */
export function wrapFaulty(inner: Transport, options: FaultyOptions = {}): FaultyTransport {
  return new FaultyTransport(inner, options)
}
