/**
 * What `bench:services` asks of one player directory under test, inside a
 * node process (bench/lib/services-node.ts): warpmesh's `Network`
 * (services-warpmesh.ts) or a RedisBungee-style Redis directory
 * (services-redis.ts). Shared by the driver and the node processes; no I/O.
 */

/** A player of the bench: a Bedrock-like name, an XUID and the UUID the Redis variant keys them by. */
export interface BenchPlayer {
  readonly name: string
  readonly xuid: string
  readonly uuid: string
}

/** How a node process starts its directory. */
export interface BackendConfig {
  /** This node's id: the warpmesh node id and server id, or the Redis variant's proxy id. */
  readonly id: string
  /** warpmesh: the coordinator to register with. */
  readonly coordinator?: { readonly host: string, readonly port: number, readonly key: string }
  /** Redis: the redis-server to use. */
  readonly redis?: { readonly host: string, readonly port: number }
  /** Heartbeat interval, ms (warpmesh: the node's; Redis: the proxy's heartbeat write). */
  readonly heartbeatMs: number
  /** warpmesh: missed heartbeats before the lease expires. */
  readonly leaseMisses?: number
  /** Redis: a proxy whose heartbeat is older than this is dead, ms. */
  readonly timeoutMs?: number
  /** Redis: resolution of the heartbeat stamps, ms (1000: RedisBungee's epoch seconds). */
  readonly stampUnitMs?: number
  /** warpmesh: start the MeshNode only; `createNetwork()` adds the services later (memory baseline). */
  readonly deferNetwork?: boolean
  /** warpmesh: list this node in the server registry (a server). Default true; false for an observer (like a proxy). */
  readonly listed?: boolean
  /** warpmesh: warm-up round trips before the node binds (`MeshNodeOptions.warmup`). Default 0. */
  readonly warmup?: number
}

/** One directory as a node process drives it. */
export interface DirectoryBackend {
  /** This node now hosts these players (warpmesh: `network.join`; Redis: the proxy logs them in, on `server`). */
  join(players: readonly BenchPlayer[], server: string): Promise<void>
  /** This node no longer hosts these players. */
  leave(players: readonly BenchPlayer[]): Promise<void>
  /** Redis: the player's proxy records a server change (HSET + PUBLISH). warpmesh moves with leave + join instead. */
  changeServer?(player: BenchPlayer, to: string): Promise<void>
  /** Where this node's own view places the player right now (no I/O), or undefined. */
  serverOf(player: BenchPlayer): string | undefined
  /** The lookup the system offers its users: warpmesh `locate` (local), Redis HGET (a round trip). */
  lookup(player: BenchPlayer): string | undefined | Promise<string | undefined>
  /** How many players this node's own view lists for `owner` (a server id; a proxy id in Redis), no I/O. */
  listedFor(owner: string): number
  /** How many of `players` a full query still lists (Redis: SUNION of the live proxies' sets; warpmesh: locate). */
  stillListed(players: readonly BenchPlayer[]): Promise<number>
  /** Players in this node's view. */
  size(): number
  /** Owners (servers or proxies) this node's view knows. */
  owners(): string[]
  /** Call `listener` whenever the view may have changed. */
  onChange(listener: () => void): void
  /** warpmesh with `deferNetwork`: create the services now. */
  createNetwork?(): void
  /**
   * warpmesh: send a 64-B probe carrying `id` to each of `to` with
   * `MeshNode.send` (reliable-ordered, as the services send their deltas),
   * back to back; resolves with the hrtime just before the first.
   */
  meshFanout?(id: number, to: readonly string[]): bigint
  /** warpmesh: call `listener` with a probe's id and its arrival stamp. */
  onMeshProbe?(listener: (id: number, atNs: bigint) => void): void
  /** Counters for the report. */
  stats(): Record<string, number>
  close(): Promise<void>
}

/** Module shape of a backend file. */
export interface BackendModule {
  createBackend(config: BackendConfig): Promise<DirectoryBackend>
}
