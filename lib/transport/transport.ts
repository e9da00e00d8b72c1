/**
 * The seam under the endpoint. Production runs over real UDP
 * ({@link ./udp.ts}); tests run the very same endpoint code over an in-memory
 * network with a fake clock ({@link ./sim.ts}).
 */

import { performance } from 'node:perf_hooks'

/** Called once per received datagram. `data` is only valid during the call. */
export type DatagramHandler = (data: Buffer, port: number, address: string) => void

/** A bound datagram socket. */
export interface Transport {
  /** Address family of the bound socket. */
  readonly family: 'IPv4' | 'IPv6'
  /** Local address as bound. */
  readonly address: string
  /** Local port as bound (the real one when 0 was asked for). */
  readonly port: number
  /**
   * The socket's receive buffer as the OS reports it (Linux: twice what it
   * granted), bytes, if known. The endpoint keeps a session's bytes in
   * flight within half of it by default.
   */
  readonly recvBufferSize?: number
  /**
   * Send one datagram made of the concatenation of `chunks`. Never throws for
   * network conditions: a datagram that cannot be sent is simply lost, like
   * any other datagram.
   */
  send(chunks: readonly Uint8Array[], port: number, address: string): void
  /** Install the one receive handler (replaces any previous one). */
  setHandler(handler: DatagramHandler): void
  /** Close the socket. Idempotent. */
  close(): Promise<void>
}

/** Opaque timer handle. */
export type TimerHandle = unknown

/**
 * Time and scheduling. The endpoint reads `now()` once per turn and owns
 * exactly one timer, re-armed to its earliest deadline.
 */
export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number
  /** Run `fn` once after `delayMs`. */
  setTimer(fn: () => void, delayMs: number): TimerHandle
  /** Cancel a timer returned by `setTimer`. Cancelling twice is harmless. */
  clearTimer(handle: TimerHandle): void
  /**
   * Run `fn` after the current batch of I/O callbacks, before the event loop
   * idles (`setImmediate` in production). Used to coalesce everything queued
   * during one turn into as few datagrams as possible.
   */
  defer(fn: () => void): void
  /**
   * Run `fn` as soon as the current callback returns (a microtask in
   * production): sooner than {@link defer}, still after everything the
   * callback queued. The endpoint flushes application sends this way, so a
   * reply leaves in the same turn as the request that caused it. Optional:
   * without it, `defer` is used.
   */
  soon?(fn: () => void): void
}

/** Settled once; `then` on it queues a microtask. */
const RESOLVED = Promise.resolve()

/** Rethrown outside the promise chain, as `queueMicrotask` would report it: an uncaught exception. */
function rethrow(err: unknown): void {
  process.nextTick(() => { throw err })
}

/**
 * The real clock: `performance.now()`, `setTimeout`, `setImmediate`, and a
 * microtask for `soon` — queued with `then` on a settled promise rather
 * than `queueMicrotask`, which wraps every call in an `AsyncResource`
 * (allocations and async-hook bookkeeping on each application send).
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  // Whole milliseconds, rounded up: node keeps timers in whole-ms lists on
  // libuv's ms clock, and a fractional delay fired early (4.73 ms asked,
  // ~4.2 ms measured), so a deadline still stood when the timer came and
  // it had to be armed again for the rest: two wake-ups instead of one.
  // Whole numbers also keep node's Timeout fields small integers (a double
  // there deoptimized node's own timer code).
  setTimer: (fn, delayMs) => {
    const t = setTimeout(fn, delayMs > 0 ? Math.ceil(delayMs) : 0)
    t.unref?.()
    return t
  },
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  defer: (fn) => { setImmediate(fn) },
  soon: (fn) => { RESOLVED.then(fn).catch(rethrow) },
}
