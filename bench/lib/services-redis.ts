/**
 * The Redis player directory `bench:services` compares warpmesh's with,
 * built the way RedisBungee does it (ProxioDev/ValioBungee at tag 0.11.4,
 * the last release with this layout; file references in bench/SERVICES.md):
 *
 * - a hash per player, `player:<uuid>`, with `server`, `proxy`, `name`,
 *   `online` fields (RedisBungeeBungeeListener.onServerChange does
 *   `HSET player:<uuid> server <name>`);
 * - a set of online players per proxy, `proxy:<id>:usersOnline`;
 * - the `redisbungee-data` pub/sub channel carrying JOIN / LEAVE /
 *   SERVER_CHANGE messages (PayloadUtils); every proxy keeps a server cache
 *   updated in place by SERVER_CHANGE (AbstractDataManager:
 *   `serverCache.put(target, server)`), and falls back to `HGET` otherwise;
 * - heartbeats: every proxy writes `HSET heartbeats <id> <redis TIME>` each
 *   second (HeartbeatTask, INTERVAL 1 s) and re-reads the hash to know the
 *   live proxies: a proxy is live while `time <= stamp + 30` (seconds,
 *   RedisUtil.PROXY_TIMEOUT = 30, RedisBungeePlugin.getCurrentProxiesIds).
 *   The network's player list is the union of the live proxies' sets
 *   (getPlayers: SUNION), so a crashed proxy's players stay listed until its
 *   heartbeat is 30 s old.
 *
 * Each node is one proxy with two ioredis connections (a subscribed one
 * cannot issue commands); commands use auto-pipelining.
 */

import { Redis } from 'ioredis'
import type { BackendConfig, BenchPlayer, DirectoryBackend } from './services-backend.js'

/** RedisBungee's data channel. */
export const DATA_CHANNEL = 'redisbungee-data'
/** RedisBungee's heartbeat hash. */
export const HEARTBEATS = 'heartbeats'
/** RedisBungee's proxy timeout, ms (RedisUtil.PROXY_TIMEOUT = 30 s). */
export const PROXY_TIMEOUT_MS = 30_000
/** RedisBungee's heartbeat interval, ms (HeartbeatTask.INTERVAL = 1 s). */
export const HEARTBEAT_MS = 1000

const playerKey = (uuid: string): string => `player:${uuid}`
const usersOnlineKey = (proxy: string): string => `proxy:${proxy}:usersOnline`

/** A message on the data channel (RedisBungee's DataManagerMessage). */
interface DataMessage {
  target: string
  source: string
  action: 'JOIN' | 'LEAVE' | 'SERVER_CHANGE'
  payload: { server?: string, oldServer?: string }
}

class RedisDirectory implements DirectoryBackend {
  readonly #id: string
  readonly #cmd: Redis
  readonly #sub: Redis
  readonly #heartbeatMs: number
  readonly #timeoutUnits: number
  readonly #unitMs: number
  /** The server cache: uuid → server. */
  readonly #servers = new Map<string, string>()
  /** Players of each proxy as the JOIN / LEAVE messages told. */
  readonly #members = new Map<string, Set<string>>()
  /** Live proxy ids as of the last heartbeat pass. */
  #live = new Set<string>()
  #timer: ReturnType<typeof setInterval> | undefined
  #beating = false
  #listeners: Array<() => void> = []
  #counts = { messages: 0, malformed: 0, heartbeats: 0, heartbeatErrors: 0, connectionErrors: 0 }

  constructor(config: BackendConfig, redis: { host: string, port: number }) {
    this.#id = config.id
    this.#heartbeatMs = config.heartbeatMs
    this.#unitMs = config.stampUnitMs ?? 1000
    this.#timeoutUnits = Math.round((config.timeoutMs ?? PROXY_TIMEOUT_MS) / this.#unitMs)
    const options = { host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: null }
    this.#cmd = new Redis({ ...options, enableAutoPipelining: true })
    this.#sub = new Redis(options)
    for (const c of [this.#cmd, this.#sub]) c.on('error', () => { this.#counts.connectionErrors++ })
  }

  async start(): Promise<void> {
    await Promise.all([this.#cmd.connect(), this.#sub.connect()])
    this.#sub.on('message', this.#onMessage)
    await this.#sub.subscribe(DATA_CHANNEL)
    // A starting proxy clears its own set (as RedisBungee does) and beats once before it counts as up.
    await this.#cmd.del(usersOnlineKey(this.#id))
    await this.#heartbeat()
    // Warm the cache with what is already online.
    for (const proxy of this.#live) {
      const uuids = await this.#cmd.smembers(usersOnlineKey(proxy))
      this.#members.set(proxy, new Set(uuids))
      for (const uuid of uuids) {
        const server = await this.#cmd.hget(playerKey(uuid), 'server')
        if (server !== null) this.#servers.set(uuid, server)
      }
    }
    this.#timer = setInterval(() => { void this.#heartbeat() }, this.#heartbeatMs)
  }

  /** `TIME` in stamp units. */
  async #now(): Promise<number> {
    const [s, us] = await this.#cmd.time()
    return Math.floor((Number(s) * 1000 + Number(us) / 1000) / this.#unitMs)
  }

  /** HeartbeatTask: write our stamp, then re-read who is live (getCurrentProxiesIds). */
  async #heartbeat(): Promise<void> {
    if (this.#beating) return
    this.#beating = true
    try {
      await this.#cmd.hset(HEARTBEATS, this.#id, String(await this.#now()))
      const time = await this.#now()
      const beats = await this.#cmd.hgetall(HEARTBEATS)
      const live = new Set<string>()
      for (const [id, v] of Object.entries(beats)) {
        const stamp = Number(v)
        if (time <= stamp + this.#timeoutUnits) live.add(id)
        else await this.#cmd.hdel(HEARTBEATS, id)
      }
      this.#live = live
      this.#counts.heartbeats++
      this.#changed()
    } catch {
      this.#counts.heartbeatErrors++
    } finally {
      this.#beating = false
    }
  }

  readonly #onMessage = (channel: string, text: string): void => {
    if (channel !== DATA_CHANNEL) return
    let m: DataMessage
    try {
      m = JSON.parse(text) as DataMessage
      if (typeof m.target !== 'string' || typeof m.source !== 'string') throw new TypeError('no target or source')
    } catch {
      this.#counts.malformed++
      return
    }
    this.#counts.messages++
    this.#apply(m)
    this.#changed()
  }

  #apply(m: DataMessage): void {
    switch (m.action) {
      case 'JOIN':
        this.#membersOf(m.source).add(m.target)
        if (m.payload.server !== undefined) this.#servers.set(m.target, m.payload.server)
        break
      case 'LEAVE':
        this.#membersOf(m.source).delete(m.target)
        this.#servers.delete(m.target)
        break
      case 'SERVER_CHANGE':
        if (m.payload.server !== undefined) this.#servers.set(m.target, m.payload.server)
        break
      default:
        this.#counts.malformed++
    }
  }

  #membersOf(proxy: string): Set<string> {
    let s = this.#members.get(proxy)
    if (s === undefined) this.#members.set(proxy, s = new Set())
    return s
  }

  #changed(): void {
    for (const l of this.#listeners) l()
  }

  #publish(m: DataMessage): Promise<number> {
    this.#apply(m)
    return this.#cmd.publish(DATA_CHANNEL, JSON.stringify(m))
  }

  async join(players: readonly BenchPlayer[], server: string): Promise<void> {
    const pending: Array<Promise<unknown>> = []
    for (const p of players) {
      pending.push(
        this.#cmd.hset(playerKey(p.uuid), { server, proxy: this.#id, name: p.name, ip: '127.0.0.1', online: '0' }),
        this.#cmd.sadd(usersOnlineKey(this.#id), p.uuid),
        this.#publish({ target: p.uuid, source: this.#id, action: 'JOIN', payload: { server } }),
      )
    }
    await Promise.all(pending)
    this.#changed()
  }

  async leave(players: readonly BenchPlayer[]): Promise<void> {
    const pending: Array<Promise<unknown>> = []
    for (const p of players) {
      pending.push(
        this.#cmd.hdel(playerKey(p.uuid), 'server', 'proxy', 'ip'),
        this.#cmd.hset(playerKey(p.uuid), 'online', String(Date.now())),
        this.#cmd.srem(usersOnlineKey(this.#id), p.uuid),
        this.#publish({ target: p.uuid, source: this.#id, action: 'LEAVE', payload: {} }),
      )
    }
    await Promise.all(pending)
    this.#changed()
  }

  /** onServerChange: HSET, then PUBLISH; issued together (one pipelined write, applied in order by redis-server). */
  async changeServer(player: BenchPlayer, to: string): Promise<void> {
    const oldServer = this.#servers.get(player.uuid)
    const hset = this.#cmd.hset(playerKey(player.uuid), 'server', to)
    const pub = this.#publish({ target: player.uuid, source: this.#id, action: 'SERVER_CHANGE', payload: { server: to, oldServer } })
    this.#changed()
    await Promise.all([hset, pub])
  }

  serverOf(player: BenchPlayer): string | undefined {
    return this.#servers.get(player.uuid)
  }

  /** getServer on a cache miss: one HGET round trip. */
  async lookup(player: BenchPlayer): Promise<string | undefined> {
    return (await this.#cmd.hget(playerKey(player.uuid), 'server')) ?? undefined
  }

  listedFor(owner: string): number {
    return this.#live.has(owner) ? (this.#members.get(owner)?.size ?? 0) : 0
  }

  /** getPlayers: SUNION of the live proxies' sets, then count `players` in it. */
  async stillListed(players: readonly BenchPlayer[]): Promise<number> {
    const keys = [...this.#live].map(usersOnlineKey)
    if (keys.length === 0) return 0
    const online = new Set(await this.#cmd.sunion(...keys))
    return players.filter((p) => online.has(p.uuid)).length
  }

  size(): number {
    let n = 0
    for (const id of this.#live) n += this.#members.get(id)?.size ?? 0
    return n
  }

  owners(): string[] {
    return [...this.#live]
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  stats(): Record<string, number> {
    return { ...this.#counts, cached: this.#servers.size, live: this.#live.size }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    this.#listeners = []
    this.#cmd.disconnect()
    this.#sub.disconnect()
  }
}

/** Backend entry (services-node.ts). */
export async function createBackend(config: BackendConfig): Promise<DirectoryBackend> {
  if (config.redis === undefined) throw new TypeError(`redis backend ${config.id}: config.redis (host, port) is required`)
  const d = new RedisDirectory(config, config.redis)
  try {
    await d.start()
  } catch (err) {
    await d.close()
    throw err
  }
  return d
}
