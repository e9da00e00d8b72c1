/**
 * warpmesh: every node is a {@link MeshNode} with its own UDP endpoint; a
 * {@link Coordinator} (its own process) keeps the peer table and pushes it
 * to the nodes, which then send **directly** to each other. Bench messages
 * travel on application channel 0, reliable-ordered; the coordinator never
 * carries them, so killing it must not interrupt downstream↔downstream
 * traffic.
 *
 * Protected as in production: the coordinator generates one network key
 * ({@link generateKey}) and publishes it in its directory entry (which only
 * travels over the harness's IPC pipes); every node passes it as `keys`, so
 * every session is authenticated and encrypted. A restarted coordinator
 * reuses its previous key and port.
 *
 * Node ids are the harness names (`proxy`, `d1`, ...); roles are `proxy`
 * and `downstream`. `connect()` starts the MeshNode, waits until every
 * other node is in its table, then exchanges a hello / hello-ack on channel
 * 1 with each of them: it resolves only once the direct session to every
 * peer is open and has carried a message both ways (sessions are opened
 * lazily on first send, and the harness measures right after `connect`).
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { Coordinator } from '../../lib/mesh/coordinator.js'
import { MeshNode } from '../../lib/mesh/node.js'
import type { MeshMessage } from '../../lib/mesh/node.js'
import { generateKey } from '../../lib/security/keys.js'
import { Delivery } from '../../lib/wire/codec.js'
import type {
  BenchNode, Directory, MessageHandler, NodeContext, ServiceContext, ServiceInstance, Variant,
} from '../harness/variant.js'
import { PROXY_ADDRESS, nodeName, siblingModule } from '../harness/variant.js'

/**
 * Environment variable (read in each node process) with the start-up
 * warm-up round trips each node runs (`MeshNode.start({ warmup })`).
 * `npm run bench` leaves it unset: each node runs the library's default
 * warm-up (`DEFAULT_WARMUP`, as a node started by a user does), before it
 * joins. `npm run bench:warmup` sets it to compare with none.
 */
export const BENCH_WARMUP_ENV = 'WARPMESH_BENCH_WARMUP'

/** Id of the coordinator service (and the failure target). */
export const COORDINATOR = 'coordinator'

/** Application channel of bench messages. */
const DATA_CHANNEL = 0

/** Application channel of the connect-time hello exchange (never seen by the bench handler). */
const HELLO_CHANNEL = 1

const HELLO = 0
const HELLO_ACK = 1

/** How long `connect()` may take before it fails, naming the peers still missing. */
const CONNECT_TIMEOUT_MS = 25_000

/** Resend a hello not acknowledged within this long (it is reliable; this only covers a peer not yet in our table). */
const HELLO_RETRY_MS = 1000

const DATA_OPTIONS = { channel: DATA_CHANNEL, delivery: Delivery.RELIABLE_ORDERED } as const
const HELLO_OPTIONS = { channel: HELLO_CHANNEL, delivery: Delivery.RELIABLE_ORDERED } as const

/** What the coordinator publishes in the directory. */
export interface CoordinatorInfo {
  readonly port: number
  /** The network key, hex. */
  readonly key: string
}

/** Driver-side description. */
export const variant: Variant = {
  name: 'warpmesh',
  summary: 'UDP mesh: nodes send directly to each other (reliable-ordered, encrypted); a coordinator process keeps the peer table',
  guarantees: { reliable: true, ordered: true },
  module: siblingModule(import.meta.url, 'warpmesh'),
  services: [{ id: COORDINATOR, launch: 'node-process' }],
  failureTarget: COORDINATOR,
  reportsRtt: true,
  checkAvailable: async () => undefined,
}

/** Node address from a node id (`proxy` → 0, `d7` → 7), or -1. */
function addressOf (id: string): number {
  if (id === 'proxy') return PROXY_ADDRESS
  if (id.length < 2 || id[0] !== 'd') return -1
  const n = Number(id.slice(1))
  return Number.isInteger(n) && n > 0 ? n : -1
}

function asBuffer (data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

class WarpmeshBenchNode implements BenchNode {
  readonly info: { id: string }
  readonly #ctx: NodeContext
  #node: MeshNode | undefined
  /** Peer id by address (`undefined` for our own address). */
  #ids: Array<string | undefined> = []
  /** Address by peer id: the inverse of #ids (a lookup per message, not a parse). */
  #addresses = new Map<string, number>()
  #others: string[] = []
  #handler: MessageHandler = () => {}
  /** Peers whose queue was above its high-water mark on the last send. */
  readonly #blocked = new Set<string>()
  /** Peers that sent us a hello we could not answer yet (not in our table). */
  readonly #owedAcks = new Set<string>()
  readonly #acked = new Set<string>()
  #dropped = 0
  #unknownSender = 0
  #helloSendFailures = 0

  constructor (ctx: NodeContext) {
    this.#ctx = ctx
    this.info = { id: ctx.name }
  }

  async connect (directory: Directory): Promise<void> {
    const coord = directory.services[COORDINATOR]
    if (coord === undefined) throw new Error('warpmesh: no coordinator in the directory')
    const { port, key } = coord.info as CoordinatorInfo
    this.#ids = directory.nodes.map((n) => (n.address === this.#ctx.address ? undefined : nodeName(n.address)))
    this.#others = this.#ids.filter((id): id is string => id !== undefined)
    for (const id of this.#others) this.#addresses.set(id, addressOf(id))
    const node = await MeshNode.start({
      id: this.#ctx.name,
      role: this.#ctx.role,
      address: this.#ctx.host,
      port: 0,
      coordinators: [{ host: coord.host, port }],
      keys: [Buffer.from(key, 'hex')],
      ...(process.env[BENCH_WARMUP_ENV] === undefined ? {} : { warmup: Number(process.env[BENCH_WARMUP_ENV]) }),
    })
    this.#node = node
    node.on('message', this.#onMessage)
    node.on('peer-up', this.#flushAcks)
    node.on('error', () => { /* duplicate id after a restart: the run's checks report the consequences */ })

    const deadline = performance.now() + CONNECT_TIMEOUT_MS
    const helloSentAt = new Map<string, number>()
    const hello = Buffer.from([HELLO])
    while (this.#acked.size < this.#others.length) {
      if (performance.now() > deadline) {
        const known = new Set(node.peers().map((p) => p.id))
        const missing = this.#others.filter((id) => !this.#acked.has(id))
        throw new Error(`warpmesh ${this.#ctx.name}: no hello-ack within ${CONNECT_TIMEOUT_MS} ms from ${missing.map((id) => `${id}${known.has(id) ? '' : ' (not in the peer table)'}`).join(', ')}`)
      }
      const known = new Set(node.peers().map((p) => p.id))
      const now = performance.now()
      for (const id of this.#others) {
        if (this.#acked.has(id) || !known.has(id)) continue
        const last = helloSentAt.get(id)
        if (last !== undefined && now - last < HELLO_RETRY_MS) continue
        helloSentAt.set(id, now)
        try { node.send(id, hello, HELLO_OPTIONS) } catch { this.#helloSendFailures++ }
      }
      this.#flushAcks()
      await sleep(5)
    }
  }

  /** Answer hellos from peers that have since appeared in our table. */
  readonly #flushAcks = (): void => {
    const node = this.#node
    if (node === undefined || this.#owedAcks.size === 0) return
    const known = new Set(node.peers().map((p) => p.id))
    for (const id of [...this.#owedAcks]) {
      if (!known.has(id)) continue
      try {
        node.send(id, Buffer.from([HELLO_ACK]), HELLO_OPTIONS)
        this.#owedAcks.delete(id)
      } catch { this.#helloSendFailures++ }
    }
  }

  readonly #onMessage = (m: MeshMessage): void => {
    if (m.channel === HELLO_CHANNEL) {
      if (m.data[0] === HELLO) { this.#owedAcks.add(m.from); this.#flushAcks() } else this.#acked.add(m.from)
      return
    }
    const from = this.#addresses.get(m.from) ?? -1
    if (from < 0 || m.channel !== DATA_CHANNEL) { this.#unknownSender++; return }
    this.#handler(from, asBuffer(m.data))
  }

  send (to: number, payload: Buffer): boolean {
    const id = this.#ids[to]
    if (id === undefined || this.#node === undefined) { this.#dropped++; return true }
    try {
      if (this.#node.send(id, payload, DATA_OPTIONS)) return true
      this.#blocked.add(id)
      return false
    } catch {
      // Unknown peer, hard queue limit or closed: dropped; the run's checks report it.
      this.#dropped++
      return true
    }
  }

  broadcast (payload: Buffer): boolean {
    if (this.#node === undefined) { this.#dropped += this.#others.length; return true }
    let n = 0
    try { n = this.#node.broadcast({}, payload, DATA_OPTIONS) } catch { /* closed */ }
    // broadcast() skips a peer whose queue is full: that message is lost.
    if (n < this.#others.length) this.#dropped += this.#others.length - n
    return true
  }

  async writable (): Promise<void> {
    const node = this.#node
    if (node === undefined) return
    while (this.#blocked.size > 0) {
      const id = this.#blocked.values().next().value as string
      this.#blocked.delete(id)
      await node.waitDrain(id)
    }
  }

  setHandler (handler: MessageHandler): void {
    this.#handler = handler
  }

  stats (): Record<string, number> {
    const out: Record<string, number> = {
      dropped: this.#dropped, unknownSender: this.#unknownSender, helloSendFailures: this.#helloSendFailures,
    }
    if (this.#node === undefined) return out
    const { peers, totals } = this.#node.stats()
    for (const [k, v] of Object.entries(totals)) out[k] = v
    for (const s of Object.values(peers)) {
      for (const k of ['packetsSent', 'packetsReceived', 'framesRetransmitted', 'packetsLost', 'rtoExpirations', 'duplicatePackets'] as const) {
        out[`sessions.${k}`] = (out[`sessions.${k}`] ?? 0) + s[k]
      }
    }
    return out
  }

  /** The peer's `roundTripTime` from `MeshNode.stats()`, as the demo and metrics show it; NaN before a sample. */
  roundTripTime (to: number): number {
    const id = this.#ids[to]
    const rtt = id === undefined ? undefined : this.#node?.stats().peers[id]?.roundTripTime
    return rtt !== undefined && rtt > 0 ? rtt : NaN
  }

  async close (): Promise<void> {
    await this.#node?.close()
  }
}

/** Node-process entry. The MeshNode itself starts in `connect()`, once the coordinator's address and key are known. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  return new WarpmeshBenchNode(ctx)
}

/** Service-process entry: the coordinator, on its previous port and key when restarted. */
export async function createService (ctx: ServiceContext): Promise<ServiceInstance> {
  const previous = ctx.previous as CoordinatorInfo | undefined
  const key = previous?.key ?? generateKey()
  const coordinator = await Coordinator.start({
    id: ctx.id,
    address: ctx.host,
    port: previous?.port ?? 0,
    keys: [Buffer.from(key, 'hex')],
  })
  const info: CoordinatorInfo = { port: coordinator.port, key }
  return {
    info,
    stats: () => ({ ...coordinator.stats() }),
    close: () => coordinator.close(),
  }
}
