/**
 * Raw `node:dgram`, no reliability at all: every node binds one UDP socket
 * and sends one datagram per message directly to the destination. This is
 * the floor for latency; it promises nothing, so any loss (kernel loss,
 * receive-buffer overflow) makes a run fail, as it would for an application.
 *
 * Datagram: `u16 from | payload`. Receive buffer 4 MiB (what DESIGN.md
 * measured as lossless up to ~300k datagrams/s of 64 B).
 */

import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
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

class RawNode implements BenchNode {
  readonly info: { port: number }
  readonly #socket: Socket
  readonly #address: number
  /** Constant for this node, so it can be shared by every send without copying. */
  readonly #header: Buffer
  #ports: number[] = []
  #hosts: string[] = []
  #handler: MessageHandler = () => {}
  #malformed = 0

  constructor (socket: Socket, address: number) {
    this.#socket = socket
    this.#address = address
    this.info = { port: socket.address().port }
    this.#header = Buffer.alloc(FROM_BYTES)
    this.#header.writeUInt16LE(address, 0)
    socket.on('message', this.#onMessage)
  }

  readonly #onMessage = (msg: Buffer): void => {
    if (msg.length < FROM_BYTES) { this.#malformed++; return }
    this.#handler(msg.readUInt16LE(0), msg.subarray(FROM_BYTES))
  }

  async connect (directory: Directory): Promise<void> {
    this.#ports = directory.nodes.map((n) => (n.info as { port: number }).port)
    this.#hosts = directory.nodes.map((n) => n.host)
  }

  send (to: number, payload: Buffer): boolean {
    const port = this.#ports[to]
    if (port === undefined) return true
    this.#socket.send([this.#header, payload], port, this.#hosts[to])
    return this.#socket.getSendQueueCount() < SEND_QUEUE_HIGH_WATER
  }

  broadcast (payload: Buffer): boolean {
    for (let a = 0; a < this.#ports.length; a++) {
      if (a !== this.#address) this.#socket.send([this.#header, payload], this.#ports[a], this.#hosts[a])
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
    return { malformed: this.#malformed }
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()))
  }
}

/** Node-process entry. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES })
  const previous = (ctx.previous as { port?: number } | undefined)?.port ?? 0
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(previous, ctx.host, () => { socket.removeListener('error', reject); resolve() })
  })
  socket.on('error', () => { /* ICMP errors for dead peers: datagrams are simply lost */ })
  return new RawNode(socket, ctx.address)
}
