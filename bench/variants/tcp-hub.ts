/**
 * TCP hub: a separate backend application is the TCP server; the proxy and
 * every downstream are clients of it, and every message, proxy ones
 * included, is relayed by the hub. If the hub dies every link is cut until
 * it is back and the clients have reconnected.
 *
 * Framing, batching, backpressure and reconnection: see tcp-frames.ts.
 */

import { createServer } from 'node:net'
import type { Server } from 'node:net'
import type { BenchNode, NodeContext, ServiceContext, ServiceInstance, Variant } from '../harness/variant.js'
import { siblingModule } from '../harness/variant.js'
import { FrameKind, FrameRouter, TcpClientNode, listen, portOf } from './tcp-frames.js'

/** Id of the hub service. */
export const HUB = 'hub'

/** Driver-side description. */
export const variant: Variant = {
  name: 'tcp-hub',
  summary: 'a hub process is the TCP server, proxy and downstreams are clients, everything relayed by the hub',
  guarantees: { reliable: true, ordered: true },
  module: siblingModule(import.meta.url, 'tcp-hub'),
  services: [{ id: HUB, launch: 'node-process' }],
  failureTarget: HUB,
  checkAvailable: async () => undefined,
}

/** The hub: relays Data to its destination and Broadcast to everyone but the sender. */
class Hub implements ServiceInstance {
  readonly info: { port: number }
  readonly #server: Server
  readonly #router = new FrameRouter()

  constructor (server: Server, port: number) {
    this.#server = server
    this.info = { port }
    server.on('connection', (socket) => {
      this.#router.accept(socket, (from, kind, to, _payload, frame, source) => {
        if (kind === FrameKind.Data) {
          this.#router.relay(to, frame, source)
        } else if (kind === FrameKind.Broadcast) {
          for (const a of this.#router.addresses()) if (a !== from) this.#router.relay(a, frame, source)
        }
      })
    })
  }

  stats (): Record<string, number> {
    return { dropped: this.#router.dropped, unroutable: this.#router.unroutable, badStreams: this.#router.badStreams }
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve())
      this.#router.destroyAll()
    })
  }
}

/** Service-process entry: the hub. */
export async function createService (ctx: ServiceContext): Promise<ServiceInstance> {
  const server = createServer({ noDelay: true })
  const port = await listen(server, ctx.host, portOf(ctx.previous))
  return new Hub(server, port)
}

/** Node-process entry: every node, the proxy included, is a client of the hub. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  return new TcpClientNode(ctx.address, (dir) => {
    const hub = dir.services[HUB]
    if (hub === undefined) throw new Error('directory has no hub')
    return { host: hub.host, port: portOf(hub.info) }
  })
}
