/**
 * TCP star, the most common incumbent: the proxy is a TCP server, every
 * downstream server is a client of it, and downstream→downstream messages
 * are relayed by the proxy. If the proxy dies every link is cut until it is
 * back and the clients have reconnected.
 *
 * Framing, batching, backpressure and reconnection: see tcp-frames.ts.
 */

import { createServer } from 'node:net'
import type { Server } from 'node:net'
import type { BenchNode, Directory, MessageHandler, NodeContext, Variant } from '../harness/variant.js'
import { PROXY_ADDRESS, siblingModule } from '../harness/variant.js'
import { FrameKind, FrameRouter, TcpClientNode, listen, portOf } from './tcp-frames.js'

/** Driver-side description. */
export const variant: Variant = {
  name: 'tcp-star',
  summary: 'proxy is the TCP server, downstreams are clients, downstream↔downstream relayed by the proxy',
  guarantees: { reliable: true, ordered: true },
  module: siblingModule(import.meta.url, 'tcp-star'),
  failureTarget: 'proxy',
  checkAvailable: async () => undefined,
}

/** The proxy: accepts downstream connections, delivers its own messages, relays the rest. */
class StarProxy implements BenchNode {
  readonly info: { port: number }
  readonly #server: Server
  readonly #router = new FrameRouter()
  #handler: MessageHandler = () => {}
  #unregistered = 0

  constructor (server: Server, port: number) {
    this.#server = server
    this.info = { port }
    server.on('connection', (socket) => {
      this.#router.accept(socket, (from, kind, to, payload, frame, source) => {
        if (kind === FrameKind.Data) {
          if (to === PROXY_ADDRESS) this.#handler(from, payload)
          else this.#router.relay(to, frame, source)
        } else if (kind === FrameKind.Broadcast) {
          this.#handler(from, payload)
          for (const a of this.#router.addresses()) if (a !== from) this.#router.relay(a, frame, source)
        }
      })
    })
  }

  async connect (_directory: Directory): Promise<void> {
    // Clients connect to us; each client's connect resolves only after our Welcome.
  }

  send (to: number, payload: Buffer): boolean {
    const w = this.#router.writer(to)
    if (w === undefined) { this.#unregistered++; return true }
    return w.queueFrame(FrameKind.Data, PROXY_ADDRESS, to, payload)
  }

  broadcast (payload: Buffer): boolean {
    let ok = true
    for (const a of this.#router.addresses()) {
      ok = this.#router.writer(a)!.queueFrame(FrameKind.Broadcast, PROXY_ADDRESS, a, payload) && ok
    }
    return ok
  }

  async writable (): Promise<void> {
    for (const a of [...this.#router.addresses()]) await this.#router.writer(a)!.whenWritable()
  }

  setHandler (handler: MessageHandler): void {
    this.#handler = handler
  }

  stats (): Record<string, number> {
    return {
      dropped: this.#router.dropped + this.#unregistered,
      unroutable: this.#router.unroutable,
      badStreams: this.#router.badStreams,
    }
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve())
      this.#router.destroyAll()
    })
  }
}

/** Node-process entry: the proxy listens, downstreams connect to it. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  if (ctx.role === 'proxy') {
    const server = createServer({ noDelay: true })
    const port = await listen(server, ctx.host, portOf(ctx.previous))
    return new StarProxy(server, port)
  }
  return new TcpClientNode(ctx.address, (dir) => {
    const proxy = dir.nodes[PROXY_ADDRESS]!
    return { host: proxy.host, port: portOf(proxy.info) }
  })
}
