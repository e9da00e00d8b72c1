/**
 * warpmesh's player directory as `bench:services` drives it: a
 * {@link MeshNode} (protected by the coordinator's key) with a
 * {@link Network} on it, listed as a server unless `listed` is false.
 * Every read is local (`locate`, `count`); joins and leaves replicate as
 * deltas to every participant.
 */

import { MeshNode } from '../../lib/mesh/node.js'
import type { MeshMessage } from '../../lib/mesh/node.js'
import { Network } from '../../lib/services/network.js'
import { Delivery } from '../../lib/wire/codec.js'
import type { BackendConfig, BenchPlayer, DirectoryBackend } from './services-backend.js'

/** Players announced per event-loop turn (one delta each), so a big join is sent in bounded messages. */
const JOIN_CHUNK = 500

/** Application channel of the mesh fan-out probes (the services use 15). */
const PROBE_CHANNEL = 3
const PROBE_SEND = { channel: PROBE_CHANNEL, delivery: Delivery.RELIABLE_ORDERED } as const

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

class WarpmeshDirectory implements DirectoryBackend {
  readonly #node: MeshNode
  readonly #listed: boolean
  #network: Network | undefined
  #listeners: Array<() => void> = []

  constructor(node: MeshNode, listed: boolean) {
    this.#node = node
    this.#listed = listed
  }

  get #net(): Network {
    if (this.#network === undefined) throw new Error(`${this.#node.id}: the network services are not created yet (create-network)`)
    return this.#network
  }

  createNetwork(): void {
    if (this.#network !== undefined) throw new Error(`${this.#node.id}: the network services already exist`)
    const net = Network.create(this.#node, this.#listed ? { server: { state: 'lobby', mode: 'bench' } } : {})
    const changed = (): void => { for (const l of this.#listeners) l() }
    for (const e of ['player-joined', 'player-left', 'player-moved', 'server-updated', 'server-removed']) net.on(e, changed)
    this.#network = net
  }

  async join(players: readonly BenchPlayer[]): Promise<void> {
    const net = this.#net
    for (let i = 0; i < players.length; i += JOIN_CHUNK) {
      if (i > 0) await turn()
      for (const p of players.slice(i, i + JOIN_CHUNK)) net.join({ name: p.name, xuid: p.xuid })
    }
  }

  async leave(players: readonly BenchPlayer[]): Promise<void> {
    const net = this.#net
    for (let i = 0; i < players.length; i += JOIN_CHUNK) {
      if (i > 0) await turn()
      for (const p of players.slice(i, i + JOIN_CHUNK)) {
        if (!net.leave(p.name)) throw new Error(`${this.#node.id} does not host ${p.name}`)
      }
    }
  }

  serverOf(player: BenchPlayer): string | undefined {
    return this.#network?.locate(player.name)?.server
  }

  lookup(player: BenchPlayer): string | undefined {
    return this.#net.locate(player.name)?.server
  }

  listedFor(owner: string): number {
    return this.#network?.count({ server: owner }) ?? 0
  }

  async stillListed(players: readonly BenchPlayer[]): Promise<number> {
    const net = this.#net
    return players.filter((p) => net.isOnline(p.name) || net.isOnline(p.xuid)).length
  }

  size(): number {
    return this.#network?.count() ?? 0
  }

  owners(): string[] {
    return this.#network?.servers().map((s) => s.id) ?? []
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  meshFanout(id: number, to: readonly string[]): bigint {
    const probe = Buffer.alloc(64)
    probe.writeUInt32LE(id, 0)
    const atNs = process.hrtime.bigint()
    for (const peer of to) this.#node.send(peer, probe, PROBE_SEND)
    return atNs
  }

  onMeshProbe(listener: (id: number, atNs: bigint) => void): void {
    this.#node.on('message', (m: MeshMessage) => {
      if (m.channel !== PROBE_CHANNEL || m.data.length < 4) return
      const atNs = process.hrtime.bigint()
      listener(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).readUInt32LE(0), atNs)
    })
  }

  stats(): Record<string, number> {
    return this.#network === undefined ? {} : { ...this.#network.stats() }
  }

  async close(): Promise<void> {
    this.#listeners = []
    await this.#network?.close()
    await this.#node.close()
  }
}

/** Backend entry (services-node.ts). */
export async function createBackend(config: BackendConfig): Promise<DirectoryBackend> {
  const c = config.coordinator
  if (c === undefined) throw new TypeError(`warpmesh backend ${config.id}: config.coordinator (host, port, key) is required`)
  const node = await MeshNode.start({
    id: config.id,
    role: 'server',
    address: '127.0.0.1',
    port: 0,
    coordinators: [{ host: c.host, port: c.port }],
    keys: [Buffer.from(c.key, 'hex')],
    heartbeatMs: config.heartbeatMs,
    leaseMisses: config.leaseMisses,
    warmup: config.warmup ?? 0,
  })
  node.on('error', () => { /* reported through the measurements' checks */ })
  const d = new WarpmeshDirectory(node, config.listed ?? true)
  if (config.deferNetwork !== true) d.createNetwork()
  return d
}
