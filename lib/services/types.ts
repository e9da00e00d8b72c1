/**
 * Network services: the public types of {@link Network} (lib/services/network.ts).
 * Knows nothing of sockets or the wire.
 */

/** Topic every services participant subscribes to (how participants find each other in the peer table). */
export const SERVICES_TOPIC = 'warpmesh.services'
/**
 * Application channel the services use for their traffic. A node with a
 * `Network` leaves this channel to it: its messages also reach the node's
 * `'message'` listeners and `messages()` iterators, which should ignore them.
 */
export const SERVICES_CHANNEL = 15

/** The documented server states; any other 1..32 characters of `a-z 0-9 _ -` is a custom state. */
export const ServerState = {
  STARTING: 'starting',
  LOBBY: 'lobby',
  IN_GAME: 'in-game',
  FULL: 'full',
  STOPPING: 'stopping',
} as const

/** States in which a server refuses transfers whatever its capacity (`full` too: its owner said so). */
export const CLOSED_STATES: readonly string[] = [ServerState.STARTING, ServerState.FULL, ServerState.STOPPING]

/** A player as the directory holds it. */
export interface PlayerInfo {
  /** Name as announced (Bedrock names are compared case-insensitively). */
  name: string
  /** XUID (digits), or '' when unknown. */
  xuid: string
  /** Id of the node that announced the player: the server they are on. */
  server: string
  /** Id of the proxy they are connected through, or '' (then the server itself moves, messages and kicks them). */
  proxy: string
  /** Free fields (≤ 8 pairs, keys ≤ 32 characters, values ≤ 128 bytes). */
  fields: Record<string, string>
}

/** What a server says of a player it now hosts ({@link Network.join}). */
export interface PlayerAnnouncement {
  name: string
  xuid?: string
  proxy?: string
  fields?: Record<string, string>
}

/** A server in the registry. */
export interface ServerInfo {
  /** Node id. */
  id: string
  /** The node's mesh role. */
  role: string
  /** One of {@link ServerState} or a custom state. */
  state: string
  /** Game mode, e.g. `skywars`; '' for none. */
  mode: string
  tags: string[]
  /** Players the directory lists on this server. */
  players: number
  /** Capacity; 0 = unlimited. */
  max: number
  fields: Record<string, string>
}

/** What a server says of itself ({@link Network.setServer}); unset fields keep their value. */
export interface ServerSettings {
  state?: string
  mode?: string
  tags?: string[]
  max?: number
  fields?: Record<string, string>
}

/**
 * Picks a server: among listed servers matching every given field, with room
 * (`players + reserved < max`, or `max` 0) and a state not in {@link CLOSED_STATES},
 * the least full (lowest players/max, then fewest players, then id). When
 * none accepts, `fallback` is tried.
 */
export interface ServerSelector {
  mode?: string
  /** One state or any of several. */
  state?: string | string[]
  tag?: string
  /** Server ids to leave out (the player's current server is always left out). */
  exclude?: string[]
  fallback?: string | ServerSelector
}

/** Filter of {@link Network.count} and {@link Network.list}. */
export interface PlayerFilter {
  /** Only players on servers of this mode. */
  mode?: string
  /** Only players on this server. */
  server?: string
}

/** Filter of {@link Network.servers}. */
export interface ServerFilter {
  mode?: string
  state?: string | string[]
  tag?: string
}

/** Resolution of {@link Network.transfer}. */
export interface TransferResult {
  /** The player's name. */
  player: string
  /** Server they were moved to. */
  server: string
  /** Server they were on. */
  from: string
  /** Node that moved them (their proxy, or their server when they have none). */
  via: string
}

/** Resolution of {@link Network.message} and {@link Network.kick}. */
export interface DeliveryResult {
  player: string
  /** Node that delivered it (the player's proxy, or their server). */
  via: string
}

/**
 * The target's hook, asked before it accepts a transfer (after the state and
 * capacity checks passed): true accepts; false or a string refuses (the string
 * is the reason the caller sees). A throw refuses with its message. A hook
 * that limits arrivals counts `players + arriving`: requests run concurrently.
 */
export type TransferHook = (request: {
  player: PlayerInfo
  /** The server they are on. */
  from: string
  /** Players this server hosts now. */
  players: number
  /** Players accepted before and not arrived yet (each holds a reserved place until it joins or the reservation expires). */
  arriving: number
}) => boolean | string | Promise<boolean | string>
/** At the player's proxy (or server): move them to `server`. Resolve when done; throw to fail (the caller gets `RefusedError`). */
export type MoveHandler = (player: PlayerInfo, server: string) => void | Promise<void>
/** At the player's proxy (or server): show `text` to the player. Throw to fail. */
export type PlayerMessageHandler = (player: PlayerInfo, text: string) => void | Promise<void>
/** At the player's proxy (or server): disconnect the player with `reason`. Throw to fail. */
export type KickHandler = (player: PlayerInfo, reason: string) => void | Promise<void>

/** Options of {@link Network.create}. Times in milliseconds. */
export interface NetworkOptions {
  /** List this node in the server registry with these settings. Default: not listed (e.g. a proxy). */
  server?: ServerSettings
  /**
   * How often this node tells every participant its version (repairs lost
   * deltas: a node behind fetches a snapshot). Default 1000.
   */
  syncMs?: number
  /** Default timeout of transfer, message and kick, ms. Default 5000. */
  timeoutMs?: number
  /**
   * A player who leaves one server and appears on another within this window
   * is reported as `'player-moved'`, not `'player-left'` + `'player-joined'`.
   * Default 1000.
   */
  moveWindowMs?: number
  /** Clock (pass the node's clock on a simulated network). Default the system clock. */
  clock?: import('../transport/transport.js').Clock
  /** Logger. Default silent. */
  logger?: import('../log.js').Logger
}

/** Counters of {@link Network.stats}. */
export interface NetworkStats {
  /** Players in the directory. */
  players: number
  /** Servers in the registry. */
  servers: number
  /** Participants whose facts this node holds (itself included). */
  owners: number
  deltasSent: number
  deltasApplied: number
  /** Deltas ignored (old, duplicate, or out of order while a snapshot was awaited). */
  deltasIgnored: number
  snapshotsRequested: number
  snapshotsSent: number
  snapshotsApplied: number
  transfers: number
  transfersFailed: number
  /** Malformed or unexpected services messages dropped. */
  dropped: number
  /** Exceptions thrown by event listeners (logged and swallowed: the directory stays whole). */
  listenerErrors: number
}
