/**
 * The production {@link Transport}: one real UDP socket.
 *
 * dgram-as-promised is used for the socket's lifecycle only (create, bind,
 * close). Its `recv()` loses datagrams that arrive while no call is pending,
 * so datagrams are taken from the node socket's `'message'` event, and sent
 * with the node socket's `send` without a callback.
 *
 * Node's `send` resolves the destination through the socket's `lookup`
 * function, and the default one (`dns.lookup`) answers even IP literals on
 * the next tick: the chunks would be read after `send` returned, so a caller
 * reusing its scratch buffers would send garbage. The socket is created with
 * a lookup that answers IP literals synchronously, and `send` copies the
 * datagram when it cannot leave at once (a host name, or datagrams already
 * waiting in node's send queue).
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import type { RemoteInfo, Socket } from 'node:dgram'
import { lookup as dnsLookup } from 'node:dns'
import type { LookupOneOptions } from 'node:dns'
import { isIP } from 'node:net'
import DgramAsPromised from 'dgram-as-promised'
import type { SocketAsPromised } from 'dgram-as-promised'
import type { DatagramHandler, Transport } from './transport.js'

/** Default `recvBufferSize` and `sendBufferSize`: 4 MiB. */
export const DEFAULT_SOCKET_BUFFER_SIZE = 4 * 1024 * 1024

/** Largest UDP payload over IPv4, bytes (65535 − 20 IP header − 8 UDP header). */
export const MAX_UDP4_PAYLOAD = 65507
/** Largest UDP payload over IPv6 without jumbograms, bytes (65535 − 8 UDP header). */
export const MAX_UDP6_PAYLOAD = 65527

/** Options of {@link bindUdp}. */
export interface UdpOptions {
  /**
   * Local address to bind. An IPv6 literal (e.g. `'::1'`, `'::'`) makes a
   * `udp6` socket, anything else a `udp4` one. Default `'0.0.0.0'`.
   */
  address?: string
  /** Local port, 0..65535; 0 lets the OS choose. Default 0. */
  port?: number
  /**
   * Requested receive buffer (`SO_RCVBUF`), bytes. Default 4 MiB
   * ({@link DEFAULT_SOCKET_BUFFER_SIZE}); 0 keeps the OS default. The OS may
   * cap it (Linux: `net.core.rmem_max`) and Linux reports twice the value it
   * grants; if the OS refuses the value outright (macOS above
   * `kern.ipc.maxsockbuf`), its default is kept. At most 2^31 − 1. Read
   * the result from {@link UdpTransport.recvBufferSize}.
   */
  recvBufferSize?: number
  /** Requested send buffer (`SO_SNDBUF`), bytes; like `recvBufferSize` (Linux: `net.core.wmem_max`). Default 4 MiB. */
  sendBufferSize?: number
}

/** Counters of a {@link UdpTransport}. Live object, updated in place. */
export interface UdpStats {
  /**
   * Datagrams not handed to the kernel: sent after close, larger than the
   * largest UDP payload, to an IPv6 address from an IPv4 socket, or rejected
   * by node (e.g. port out of range). Errors
   * the kernel reports for a datagram it accepted are not seen: those
   * datagrams are lost like any other.
   */
  sendErrors: number
  /** `'error'` events of the socket (e.g. failed DNS lookup of a host name given to `send`). */
  socketErrors: number
  /**
   * Datagrams copied because they could not be handed to the kernel during
   * `send`: sent to a host name, or queued behind datagrams the kernel had no
   * room for. Non-zero under send-buffer pressure.
   */
  copiedSends: number
}

/** Error thrown by {@link bindUdp} when the socket cannot be bound. The OS error is `cause`. */
export class UdpBindError extends Error {
  static {
    this.prototype.name = 'UdpBindError'
  }

  /** Stable error code. */
  readonly code = 'ERR_WARPMESH_UDP_BIND'
  /** The OS error code (e.g. `'EADDRINUSE'`), when there is one. */
  readonly errno: string | undefined

  /**
   * @param message - Human-readable description.
   * @param cause - The error node reported.
   */
  constructor(message: string, cause: unknown) {
    super(message, { cause })
    const code = (cause as NodeJS.ErrnoException | undefined)?.code
    this.errno = typeof code === 'string' ? code : undefined
  }
}

function dropDatagram(): void {}

let lastLiteral = ''
let lastFamily = 0

/** 4 or 6 for an IP literal, 0 for a host name. One-entry cache: a sender mostly repeats its last destination. */
function literalFamily(address: string): number {
  if (address === lastLiteral) return lastFamily
  const family = isIP(address)
  if (family !== 0) {
    lastLiteral = address
    lastFamily = family
  }
  return family
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void

/**
 * dgram `lookup` answering IP literals synchronously, so `socket.send` hands
 * the datagram to the kernel before returning. Node passes the socket's
 * family (4 or 6) as `options`. An IPv4 literal on a udp6 socket becomes its
 * IPv4-mapped form, which a dual-stack socket (bound to `'::'`) can send to.
 * Exported for the benchmark's raw-dgram floors, which send as warpmesh does.
 */
export function lookupAddress(hostname: string, options: LookupOneOptions | number, callback: LookupCallback): void {
  const family = literalFamily(hostname)
  if (family === 4 && options === 6) callback(null, `::ffff:${hostname}`, 6)
  else if (family !== 0) callback(null, hostname, family)
  else dnsLookup(hostname, options as number, callback)
}

/** setsockopt takes an int. */
const MAX_BUFFER_SIZE = 2 ** 31 - 1

function checkBufferSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_BUFFER_SIZE) {
    throw new RangeError(`bindUdp: option "${name}" must be an integer number of bytes in [0, 2^31 - 1], got ${String(value)}`)
  }
}

/**
 * A bound UDP socket implementing {@link Transport}. Create it with
 * {@link bindUdp}.
 *
 * Sending never throws; socket `'error'` events are counted, never fatal.
 * The receive handler runs synchronously in the socket's `'message'` event; an
 * exception it throws is not caught here.
 */
export class UdpTransport implements Transport {
  /** The node dgram socket, for advanced use (e.g. `ref()`/`unref()`, multicast). */
  readonly socket: Socket
  /** Address family of the bound socket. */
  readonly family: 'IPv4' | 'IPv6'
  /** Local address as bound. */
  readonly address: string
  /** Local port as bound (the OS-chosen one when 0 was asked for). */
  readonly port: number
  /** Receive buffer size the OS reported after bind, bytes (Linux: twice the granted value). */
  readonly recvBufferSize: number
  /** Send buffer size the OS reported after bind, bytes (Linux: twice the granted value). */
  readonly sendBufferSize: number

  #socket: SocketAsPromised
  #handler: DatagramHandler = dropDatagram
  #stats: UdpStats = { sendErrors: 0, socketErrors: 0, copiedSends: 0 }
  #lastError: Error | undefined
  #maxPayload: number
  #ipv4: boolean
  #closed = false
  #closing: Promise<void> | undefined

  /**
   * @internal Use {@link bindUdp}. Wraps a bound socket; installs the
   * `'message'`, `'error'` and `'close'` listeners.
   */
  constructor(socket: SocketAsPromised) {
    this.#socket = socket
    this.socket = socket.socket
    const info = this.socket.address()
    this.address = info.address
    this.port = info.port
    this.family = info.family === 'IPv6' ? 'IPv6' : 'IPv4'
    this.#ipv4 = this.family === 'IPv4'
    this.#maxPayload = this.#ipv4 ? MAX_UDP4_PAYLOAD : MAX_UDP6_PAYLOAD
    this.recvBufferSize = this.socket.getRecvBufferSize()
    this.sendBufferSize = this.socket.getSendBufferSize()
    this.socket.on('message', this.#onMessage)
    this.socket.on('error', this.#onError)
    this.socket.on('close', this.#onClose)
  }

  /** Counters; see {@link UdpStats}. */
  get stats(): Readonly<UdpStats> {
    return this.#stats
  }

  /** The last `'error'` event's error, if any. */
  get lastError(): Error | undefined {
    return this.#lastError
  }

  /** Whether the socket is closed or closing. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Send one datagram made of `chunks`. To an IP literal with nothing queued,
   * the kernel gets the chunks before this returns (no copy in JavaScript);
   * otherwise they are copied first (`stats.copiedSends`). Either way the
   * caller may reuse the chunks once this returns — except in the rare case
   * where the kernel has no send-buffer room and node's queue was empty: node
   * then queues this datagram with the chunks themselves (a large
   * `sendBufferSize` makes this unlikely).
   *
   * Never throws: a datagram that cannot be sent is counted in
   * `stats.sendErrors` and lost.
   */
  send(chunks: readonly Uint8Array[], port: number, address: string): void {
    const stats = this.#stats
    if (this.#closed) {
      stats.sendErrors++
      return
    }
    let length = 0
    for (let i = 0; i < chunks.length; i++) length += chunks[i]!.byteLength
    if (length > this.#maxPayload) {
      stats.sendErrors++
      return
    }
    const family = literalFamily(address)
    if (family === 6 && this.#ipv4) {
      // Node would reject it with EINVAL and drop it silently.
      stats.sendErrors++
      return
    }
    try {
      const socket = this.socket
      if (family !== 0 && socket.getSendQueueCount() === 0) {
        // One chunk goes as itself: node wraps every chunk of a list in a new Buffer first.
        socket.send(chunks.length === 1 ? chunks[0]! : chunks, port, address)
      } else {
        stats.copiedSends++
        socket.send(Buffer.concat(chunks, length), port, address)
      }
    } catch {
      stats.sendErrors++
    }
  }

  /** Install the receive handler (replaces any previous one; the default drops datagrams). */
  setHandler(handler: DatagramHandler): void {
    if (typeof handler !== 'function') throw new TypeError('UdpTransport.setHandler: handler must be a function')
    this.#handler = handler
  }

  /** Close the socket. Idempotent: every call returns the same promise. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      if (this.#closed) {
        // Closed directly through `socket`.
        this.#closing = Promise.resolve()
      } else {
        this.#closed = true
        this.#closing = this.#socket.close().catch ((err: NodeJS.ErrnoException) => {
          // Closed through `socket` in this same tick: the 'close' event has not fired yet.
          if (err.code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw err
        })
      }
    }
    return this.#closing
  }

  #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    this.#handler(data, rinfo.port, rinfo.address)
  }

  #onError = (err: Error): void => {
    this.#stats.socketErrors++
    this.#lastError = err
  }

  #onClose = (): void => {
    this.#closed = true
  }
}

/**
 * Bind a UDP socket.
 *
 * @param options - See {@link UdpOptions}.
 * @returns The bound transport.
 * @throws TypeError/RangeError for bad options; {@link UdpBindError} (OS error
 *   as `cause`) when binding fails.
 */
export async function bindUdp(options: UdpOptions = {}): Promise<UdpTransport> {
  const {
    address = '0.0.0.0',
    port = 0,
    recvBufferSize = DEFAULT_SOCKET_BUFFER_SIZE,
    sendBufferSize = DEFAULT_SOCKET_BUFFER_SIZE,
  } = options
  if (typeof address !== 'string' || address === '') throw new TypeError('bindUdp: option "address" must be a non-empty string')
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`bindUdp: option "port" must be an integer in [0, 65535], got ${String(port)}`)
  }
  checkBufferSize('recvBufferSize', recvBufferSize)
  checkBufferSize('sendBufferSize', sendBufferSize)

  const socket = DgramAsPromised.createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4', lookup: lookupAddress })
  try {
    await socket.bind(port, address)
  } catch (err) {
    // Node keeps the handle of a socket that failed to bind: release it.
    socket.socket.close()
    throw new UdpBindError(`bindUdp: cannot bind ${address}:${port}: ${(err as Error).message}`, err)
  }
  // Through the node socket: dgram-as-promised's getSendBufferSize recurses forever.
  setBufferSize(socket.socket, 'recv', recvBufferSize)
  setBufferSize(socket.socket, 'send', sendBufferSize)
  return new UdpTransport(socket)
}

function setBufferSize(socket: Socket, which: 'recv' | 'send', size: number): void {
  if (size === 0) return
  try {
    if (which === 'recv') socket.setRecvBufferSize(size)
    else socket.setSendBufferSize(size)
  /* c8 ignore start - Linux caps silently; macOS refuses sizes above kern.ipc.maxsockbuf */
  } catch {
    // Keep the OS default; `recvBufferSize`/`sendBufferSize` report what we got.
  }
  /* c8 ignore stop */
}
