/**
 * Raw `node:dgram`, no reliability at all: every node binds one UDP socket
 * and sends one datagram per message directly to the destination. This is
 * the floor for latency; it promises nothing, so any loss (kernel loss,
 * receive-buffer overflow) makes a run fail, as it would for an application.
 *
 * Datagram: `u16 from | payload`. Receive buffer 4 MiB (what DESIGN.md
 * measured as lossless up to ~300k datagrams/s of 64 B). The socket resolves
 * destinations with warpmesh's own `lookup` (IP literals answered at once,
 * so `send` reaches the kernel before it returns, not on the next tick):
 * the floor sends exactly as warpmesh does.
 *
 * {@link DatagramNode} is shared with `sealed-dgram.ts`, the same floor with
 * every datagram sealed by warpmesh's AEAD.
 */

import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { lookupAddress } from '../../lib/transport/udp.js'
import type { BenchNode, Directory, MessageHandler, NodeContext, Variant } from '../harness/variant.js'
import { siblingModule } from '../harness/variant.js'

/** Socket buffer sizes asked for (the kernel caps them at net.core.[rw]mem_max). */
const SOCKET_BUFFER_BYTES = 4 << 20

/** Datagrams queued inside Node (socket not writable) above which `send` returns false. */
const SEND_QUEUE_HIGH_WATER = 1024

const FROM_BYTES = 2

/** Driver-side description. */
export const variant: Variant = {
  name: 'raw-dgram',
  summary: 'node:dgram, one datagram per message, directly to the destination, no reliability (the floor)',
  guarantees: { reliable: false, ordered: false },
  module: siblingModule(import.meta.url, 'raw-dgram'),
  // Not a single point of failure for downstream↔downstream traffic; killing the proxy shows exactly that.
  failureTarget: 'proxy',
  checkAvailable: async () => undefined,
}

/** How a {@link DatagramNode} turns messages into datagrams and back. */
export interface DatagramCodec {
  /** The chunks of the one datagram carrying `payload` to node `to`. */
  encode(to: number, payload: Buffer): Buffer[]
  /** The payload of a datagram from node `from` (header removed), or null to drop it as malformed. */
  decode(from: number, datagram: Buffer): Buffer | null
  /** Codec counters, reported with the node's. */
  stats?(): Record<string, number>
}

/** `u16 from | payload`, nothing else. */
class PlainCodec implements DatagramCodec {
  /** Constant for this node, so it can be shared by every send without copying. */
  readonly #header: Buffer

  constructor (address: number) {
    this.#header = Buffer.alloc(FROM_BYTES)
    this.#header.writeUInt16LE(address, 0)
  }

  encode (_to: number, payload: Buffer): Buffer[] {
    return [this.#header, payload]
  }

  decode (_from: number, datagram: Buffer): Buffer {
    return datagram.subarray(FROM_BYTES)
  }
}

/** One UDP socket, one datagram per message, no reliability. */
export class DatagramNode implements BenchNode {
  readonly info: { port: number }
  readonly #socket: Socket
  readonly #address: number
  readonly #codec: DatagramCodec
  #ports: number[] = []
  #hosts: string[] = []
  #handler: MessageHandler = () => {}
  #malformed = 0

  constructor (socket: Socket, address: number, codec: DatagramCodec) {
    this.#socket = socket
    this.#address = address
    this.#codec = codec
    this.info = { port: socket.address().port }
    socket.on('message', this.#onMessage)
  }

  readonly #onMessage = (msg: Buffer): void => {
    const from = msg.length < FROM_BYTES ? -1 : msg.readUInt16LE(0)
    const payload = from < 0 || from >= this.#ports.length || from === this.#address ? null : this.#codec.decode(from, msg)
    if (payload === null) { this.#malformed++; return }
    this.#handler(from, payload)
  }

  async connect (directory: Directory): Promise<void> {
    this.#ports = directory.nodes.map((n) => (n.info as { port: number }).port)
    this.#hosts = directory.nodes.map((n) => n.host)
  }

  #sendTo (to: number, payload: Buffer): void {
    this.#socket.send(this.#codec.encode(to, payload), this.#ports[to], this.#hosts[to])
  }

  send (to: number, payload: Buffer): boolean {
    if (to >= this.#ports.length || to === this.#address) return true
    this.#sendTo(to, payload)
    return this.#socket.getSendQueueCount() < SEND_QUEUE_HIGH_WATER
  }

  broadcast (payload: Buffer): boolean {
    for (let a = 0; a < this.#ports.length; a++) {
      if (a !== this.#address) this.#sendTo(a, payload)
    }
    return this.#socket.getSendQueueCount() < SEND_QUEUE_HIGH_WATER
  }

  async writable (): Promise<void> {
    while (this.#socket.getSendQueueCount() >= SEND_QUEUE_HIGH_WATER) {
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  setHandler (handler: MessageHandler): void {
    this.#handler = handler
  }

  stats (): Record<string, number> {
    return { malformed: this.#malformed, ...this.#codec.stats?.() }
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()))
  }
}

/** A bound socket for a {@link DatagramNode} (the previous port again after a restart). */
export async function bindNodeSocket (ctx: NodeContext): Promise<Socket> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES, lookup: lookupAddress })
  const previous = (ctx.previous as { port?: number } | undefined)?.port ?? 0
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(previous, ctx.host, () => { socket.removeListener('error', reject); resolve() })
  })
  socket.on('error', () => { /* ICMP errors for dead peers: datagrams are simply lost */ })
  return socket
}

/** Node-process entry. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  return new DatagramNode(await bindNodeSocket(ctx), ctx.address, new PlainCodec(ctx.address))
}
