/**
 * Length-prefixed TCP framing shared by the TCP star and TCP hub variants,
 * written as a competent production implementation would be:
 *
 * - frames are `u32 length | u8 kind | u16 from | u16 to | payload`
 *   (little-endian; `length` counts everything after itself);
 * - the parser never concatenates per byte: a frame inside one chunk is
 *   delivered as a `subarray`; a frame spanning chunks is assembled with a
 *   single copy once all its bytes are there;
 * - the writer copies frames into an arena and writes everything queued
 *   during one callback with one `write` (flushed in a microtask, when the
 *   callback returns: the same point at which warpmesh flushes application
 *   sends), on sockets with `setNoDelay(true)`;
 * - backpressure: `queue*` returns false above a high-water mark; relays
 *   pause the source socket until the target drains;
 * - clients reconnect with exponential backoff and keep queueing (bounded)
 *   while disconnected, as the best incumbents do.
 */

import { connect } from 'node:net'
import type { Server, Socket } from 'node:net'
import type { BenchNode, Directory, MessageHandler } from '../harness/variant.js'

/** Frame kinds. */
export const FrameKind = {
  /** client → server: "I am node `from`". */
  Hello: 1,
  /** server → client: registration done. */
  Welcome: 2,
  /** a message for node `to`. */
  Data: 3,
  /** a message for every node but `from`. */
  Broadcast: 4,
} as const

/** Bytes of the length prefix. */
export const LENGTH_BYTES = 4
/** Bytes of the whole frame header (length prefix included). */
export const HEADER_BYTES = 9
/** Largest accepted frame body (after the length prefix). Bigger is a protocol error. */
export const MAX_FRAME_BYTES = 16 << 20
/** Default writer high-water mark (queued + socket-buffered bytes). */
export const DEFAULT_HIGH_WATER_MARK = 1 << 20
/** Default hard bound on queued bytes; frames beyond it are dropped and counted. */
export const DEFAULT_MAX_QUEUED_BYTES = 16 << 20
/** Arena size for outgoing frames. */
const ARENA_BYTES = 64 << 10

/**
 * Called once per complete frame. `payload` is a view of the frame body
 * after the header, `frame` the whole frame including the length prefix
 * (for relaying unchanged). Both are only valid during the call.
 */
export type FrameHandler = (kind: number, from: number, to: number, payload: Buffer, frame: Buffer) => void

/** Incremental frame parser for one byte stream. */
export class FrameParser {
  readonly #onFrame: FrameHandler
  #chunks: Buffer[] = []
  #buffered = 0
  /** Frames that declared an impossible length; the stream must be closed. */
  bad = false

  constructor (onFrame: FrameHandler) {
    this.#onFrame = onFrame
  }

  /** Feed the next chunk read from the stream. Returns false once the stream is bad. */
  push (chunk: Buffer): boolean {
    if (this.bad) return false
    if (this.#buffered === 0) return this.#parse(chunk)
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    if (this.#buffered < LENGTH_BYTES) return true
    const first = this.#chunks[0]!
    const len = first.length >= LENGTH_BYTES ? first.readUInt32LE(0) : Buffer.concat(this.#chunks, LENGTH_BYTES).readUInt32LE(0)
    if (len < HEADER_BYTES - LENGTH_BYTES || len > MAX_FRAME_BYTES) { this.bad = true; return false }
    if (this.#buffered < LENGTH_BYTES + len) return true
    const all = Buffer.concat(this.#chunks, this.#buffered)
    this.#chunks = []
    this.#buffered = 0
    return this.#parse(all)
  }

  #parse (buf: Buffer): boolean {
    let off = 0
    const end = buf.length
    while (end - off >= HEADER_BYTES) {
      const len = buf.readUInt32LE(off)
      if (len < HEADER_BYTES - LENGTH_BYTES || len > MAX_FRAME_BYTES) { this.bad = true; return false }
      const frameEnd = off + LENGTH_BYTES + len
      if (frameEnd > end) break
      this.#onFrame(buf[off + 4]!, buf.readUInt16LE(off + 5), buf.readUInt16LE(off + 7), buf.subarray(off + HEADER_BYTES, frameEnd), buf.subarray(off, frameEnd))
      off = frameEnd
    }
    if (off < end) {
      this.#chunks.push(buf.subarray(off))
      this.#buffered = end - off
    }
    return true
  }
}

/** Options of {@link FrameWriter}. */
export interface FrameWriterOptions {
  /** Queued plus socket-buffered bytes above which `queue*` returns false. Default 1 MiB. */
  readonly highWaterMark?: number
  /** Queued bytes above which frames are dropped (counted in `dropped`). Default 16 MiB. */
  readonly maxQueuedBytes?: number
}

/**
 * Outgoing frames for one peer. Survives reconnection: frames queued while
 * detached are written when a socket is attached again.
 */
export class FrameWriter {
  readonly #highWaterMark: number
  readonly #maxQueued: number
  #socket: Socket | undefined
  #arena = Buffer.allocUnsafe(ARENA_BYTES)
  /** Start of the not-yet-flushed region of the arena. */
  #start = 0
  #used = 0
  /** Full arena regions waiting for the next flush. */
  #full: Buffer[] = []
  #queued = 0
  #flushScheduled = false
  #waiters: Array<() => void> = []
  /** Frames dropped at the hard bound. */
  dropped = 0

  constructor (options: FrameWriterOptions = {}) {
    this.#highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
    this.#maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
  }

  /** Bytes queued here plus bytes the socket has not written yet. */
  get pendingBytes (): number {
    return this.#queued + (this.#socket?.writableLength ?? 0)
  }

  /** Whether more frames should be queued now. */
  get writable (): boolean {
    return this.pendingBytes < this.#highWaterMark
  }

  /** The attached socket, if any. */
  get socket (): Socket | undefined {
    return this.#socket
  }

  /** Write to `socket` from now on (and flush what is queued), after `first` if given. */
  attach (socket: Socket, first?: Buffer): void {
    this.#socket = socket
    socket.on('drain', this.#onDrain)
    if (first !== undefined) socket.write(first)
    this.#scheduleFlush()
  }

  /** Stop writing to the current socket; keep queueing. */
  detach (): void {
    this.#socket?.removeListener('drain', this.#onDrain)
    this.#socket = undefined
  }

  /** Queue a frame built from its fields. Returns `writable` afterwards (false also when dropped). */
  queueFrame (kind: number, from: number, to: number, payload: Uint8Array): boolean {
    const size = HEADER_BYTES + payload.length
    const b = this.#reserve(size)
    if (b === undefined) return false
    const off = this.#used
    b.writeUInt32LE(size - LENGTH_BYTES, off)
    b[off + 4] = kind
    b.writeUInt16LE(from, off + 5)
    b.writeUInt16LE(to, off + 7)
    b.set(payload, off + HEADER_BYTES)
    this.#used += size
    return this.writable
  }

  /** Queue an already-encoded frame unchanged (relaying). */
  queueRaw (frame: Buffer): boolean {
    const b = this.#reserve(frame.length)
    if (b === undefined) return false
    frame.copy(b, this.#used)
    this.#used += frame.length
    return this.writable
  }

  /** Resolves when `writable` is true (immediately if it is). */
  whenWritable (): Promise<void> {
    if (this.writable) return Promise.resolve()
    return new Promise((resolve) => { this.#waiters.push(resolve) })
  }

  /** Call `fn` once when `writable` becomes true (at once if it is). */
  onceWritable (fn: () => void): void {
    if (this.writable) fn()
    else this.#waiters.push(fn)
  }

  /** Forget everything queued (used when the peer is gone for good). */
  discard (): void {
    this.#full = []
    this.#start = this.#used
    this.#queued = 0
  }

  #reserve (size: number): Buffer | undefined {
    if (this.#queued + size > this.#maxQueued) { this.dropped++; return undefined }
    if (this.#used + size > this.#arena.length) {
      if (this.#used > this.#start) this.#full.push(this.#arena.subarray(this.#start, this.#used))
      // The flushed part of the old arena may still be referenced by pending socket writes: never reuse it.
      this.#arena = Buffer.allocUnsafe(Math.max(ARENA_BYTES, size))
      this.#start = 0
      this.#used = 0
    }
    this.#queued += size
    this.#scheduleFlush()
    return this.#arena
  }

  #scheduleFlush (): void {
    if (this.#flushScheduled || this.#socket === undefined) return
    this.#flushScheduled = true
    queueMicrotask(this.#flush)
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    const socket = this.#socket
    if (socket === undefined || socket.destroyed) return
    if (this.#used > this.#start) {
      this.#full.push(this.#arena.subarray(this.#start, this.#used))
      this.#start = this.#used
    }
    const chunks = this.#full
    if (chunks.length === 0) return
    this.#full = []
    this.#queued = 0
    if (chunks.length === 1) {
      socket.write(chunks[0]!)
    } else {
      socket.cork()
      for (const c of chunks) socket.write(c)
      socket.uncork()
    }
    this.#notify()
  }

  readonly #onDrain = (): void => { this.#notify() }

  #notify (): void {
    if (this.#waiters.length === 0 || !this.writable) return
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

/** Options of {@link ReconnectingClient}. */
export interface ClientOptions {
  readonly host: string
  readonly port: number
  /** This node's address, announced in the Hello frame. */
  readonly address: number
  /** Called for every frame from the server. */
  readonly onFrame: FrameHandler
  /** First reconnect delay in ms, doubled per failed attempt. Default 50. */
  readonly initialBackoffMs?: number
  /** Largest reconnect delay in ms. Default 1000. */
  readonly maxBackoffMs?: number
  /** Writer options (the hard bound also caps what is queued while disconnected). */
  readonly writer?: FrameWriterOptions
}

function encodeHello (address: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES)
  b.writeUInt32LE(HEADER_BYTES - LENGTH_BYTES, 0)
  b[4] = FrameKind.Hello
  b.writeUInt16LE(address, 5)
  b.writeUInt16LE(0, 7)
  return b
}

/** Frame body for a Welcome, sent by servers. */
export function encodeWelcome (to: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES)
  b.writeUInt32LE(HEADER_BYTES - LENGTH_BYTES, 0)
  b[4] = FrameKind.Welcome
  b.writeUInt16LE(0, 5)
  b.writeUInt16LE(to, 7)
  return b
}

/**
 * A TCP client that announces itself, waits for the server's Welcome, and
 * reconnects with exponential backoff whenever the connection drops.
 */
export class ReconnectingClient {
  readonly writer: FrameWriter
  readonly #opts: ClientOptions
  readonly #hello: Buffer
  #socket: Socket | undefined
  #backoffMs: number
  #timer: ReturnType<typeof setTimeout> | undefined
  #closed = false
  #welcomed: (() => void) | undefined
  /** Connections lost. */
  disconnects = 0
  /** Successful reconnections (after the first connection). */
  reconnects = 0
  /** Streams closed because of an invalid frame. */
  badStreams = 0
  #everConnected = false

  constructor (options: ClientOptions) {
    this.#opts = options
    this.writer = new FrameWriter(options.writer)
    this.#hello = encodeHello(options.address)
    this.#backoffMs = options.initialBackoffMs ?? 50
  }

  /** Connect the first time; resolves on the server's Welcome. */
  start (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#welcomed = resolve
      const socket = this.#dial()
      socket.once('error', (err) => { if (!this.#everConnected) reject(err) })
    })
  }

  #dial (): Socket {
    const socket = connect({ host: this.#opts.host, port: this.#opts.port, noDelay: true })
    this.#socket = socket
    const parser = new FrameParser((kind, from, to, payload, frame) => {
      if (kind === FrameKind.Welcome) {
        this.#backoffMs = this.#opts.initialBackoffMs ?? 50
        if (this.#everConnected) this.reconnects++
        this.#everConnected = true
        const w = this.#welcomed
        this.#welcomed = undefined
        w?.()
        return
      }
      this.#opts.onFrame(kind, from, to, payload, frame)
    })
    socket.on('connect', () => {
      socket.setNoDelay(true)
      this.writer.attach(socket, this.#hello)
    })
    socket.on('data', (chunk: Buffer) => {
      if (!parser.push(chunk)) { this.badStreams++; socket.destroy() }
    })
    socket.on('error', () => { /* 'close' follows */ })
    socket.on('close', () => {
      if (this.#socket !== socket) return
      this.writer.detach()
      this.#socket = undefined
      if (this.#closed) return
      if (this.#everConnected) this.disconnects++
      this.#timer = setTimeout(() => { this.#timer = undefined; if (!this.#closed) this.#dial() }, this.#backoffMs)
      this.#backoffMs = Math.min(this.#opts.maxBackoffMs ?? 1000, this.#backoffMs * 2)
    })
    return socket
  }

  /** Stop for good. */
  close (): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#socket?.destroy()
  }
}

/**
 * Server side of one node's connections: which socket and writer belong to
 * which node address, with relays that pause a source socket while the
 * target is over its high-water mark.
 */
export class FrameRouter {
  readonly #writers = new Map<number, FrameWriter>()
  readonly #sockets = new Set<Socket>()
  readonly #writerOptions: FrameWriterOptions | undefined
  /** Frames for an address that never registered (dropped). */
  unroutable = 0
  /** Streams closed because of an invalid frame. */
  badStreams = 0

  constructor (writerOptions?: FrameWriterOptions) {
    this.#writerOptions = writerOptions
  }

  /** The writer of a registered `address` (it outlives reconnections of that node). */
  writer (address: number): FrameWriter | undefined {
    return this.#writers.get(address)
  }

  /** Every registered address. */
  addresses (): IterableIterator<number> {
    return this.#writers.keys()
  }

  /** Frames dropped at writers' hard bounds. */
  get dropped (): number {
    let n = 0
    for (const w of this.#writers.values()) n += w.dropped
    return n
  }

  /**
   * Serve one accepted socket: on its Hello, bind it to the announced
   * address (replacing an older connection of the same node) and answer
   * Welcome; pass every later frame to `onFrame` with the sender's address
   * taken from the Hello, never from the frame.
   */
  accept (socket: Socket, onFrame: (from: number, kind: number, to: number, payload: Buffer, frame: Buffer, source: Socket) => void): void {
    socket.setNoDelay(true)
    this.#sockets.add(socket)
    let from = -1
    const parser = new FrameParser((kind, claimed, to, payload, frame) => {
      if (from < 0) {
        if (kind !== FrameKind.Hello) { parser.bad = true; return }
        from = claimed
        let w = this.#writers.get(from)
        if (w === undefined) { w = new FrameWriter(this.#writerOptions); this.#writers.set(from, w) }
        w.detach()
        w.attach(socket, encodeWelcome(from))
        return
      }
      onFrame(from, kind, to, payload, frame, socket)
    })
    socket.on('data', (chunk: Buffer) => {
      if (!parser.push(chunk) || parser.bad) { this.badStreams++; socket.destroy() }
    })
    socket.on('error', () => { /* 'close' follows */ })
    socket.on('close', () => {
      this.#sockets.delete(socket)
      const w = from >= 0 ? this.#writers.get(from) : undefined
      if (w !== undefined && w.socket === socket) w.detach()
    })
  }

  /** Destroy every accepted connection. */
  destroyAll (): void {
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
  }

  /** Relay `frame` unchanged to `to`, pausing `source` while `to` is backed up. */
  relay (to: number, frame: Buffer, source: Socket | undefined): void {
    const w = this.#writers.get(to)
    if (w === undefined) { this.unroutable++; return }
    if (!w.queueRaw(frame) && source !== undefined && !source.isPaused()) {
      source.pause()
      w.onceWritable(() => source.resume())
    }
  }
}

/** Broadcast destination in frame headers. */
export const TO_EVERYONE = 0xffff

/**
 * A messaging node that is a {@link ReconnectingClient} of a TCP server
 * (star downstreams, every hub node). Everything it sends goes to the
 * server, which relays it.
 */
export class TcpClientNode implements BenchNode {
  readonly info = null
  readonly #address: number
  readonly #locate: (directory: Directory) => { host: string, port: number }
  #client: ReconnectingClient | undefined
  #handler: MessageHandler = () => {}

  /** `locate` picks the server out of the directory. */
  constructor (address: number, locate: (directory: Directory) => { host: string, port: number }) {
    this.#address = address
    this.#locate = locate
  }

  async connect (directory: Directory): Promise<void> {
    const { host, port } = this.#locate(directory)
    this.#client = new ReconnectingClient({
      host,
      port,
      address: this.#address,
      onFrame: (kind, from, _to, payload) => {
        if (kind === FrameKind.Data || kind === FrameKind.Broadcast) this.#handler(from, payload)
      },
    })
    await this.#client.start()
  }

  #writer (): FrameWriter {
    if (this.#client === undefined) throw new Error('send before connect')
    return this.#client.writer
  }

  send (to: number, payload: Buffer): boolean {
    return this.#writer().queueFrame(FrameKind.Data, this.#address, to, payload)
  }

  broadcast (payload: Buffer): boolean {
    return this.#writer().queueFrame(FrameKind.Broadcast, this.#address, TO_EVERYONE, payload)
  }

  writable (): Promise<void> {
    return this.#writer().whenWritable()
  }

  setHandler (handler: MessageHandler): void {
    this.#handler = handler
  }

  stats (): Record<string, number> {
    const c = this.#client
    return {
      dropped: c?.writer.dropped ?? 0,
      disconnects: c?.disconnects ?? 0,
      reconnects: c?.reconnects ?? 0,
      badStreams: c?.badStreams ?? 0,
    }
  }

  async close (): Promise<void> {
    this.#client?.close()
  }
}

/** Listen on `host`, on `port` if given (restart on the same port), else on any free port. */
export function listen (server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port, backlog: 511 }, () => {
      server.removeListener('error', reject)
      const addr = server.address()
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port)
    })
  })
}

/** The `port` field of a published `{ port }` info, or 0 when there is none. */
export function portOf (info: unknown): number {
  const port = (info as { port?: unknown } | null | undefined)?.port
  return typeof port === 'number' ? port : 0
}
