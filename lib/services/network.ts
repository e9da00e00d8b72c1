/**
 * Network services above the mesh: a replicated player directory, a server
 * registry with states, transfers and player messaging. Built only on
 * {@link MeshNode}'s public API.
 *
 * Facts have owners. Each participant (a node subscribed to
 * {@link SERVICES_TOPIC}) owns the players it hosts and its own registry
 * entry, numbers its changes (a version per endpoint epoch) and sends each
 * batch of changes to every participant as a delta on {@link SERVICES_CHANNEL}
 * (reliable ordered, direct). A receiver applies deltas in version order;
 * a gap, or a periodic DIGEST naming a version it does not hold, makes it
 * fetch a snapshot from the owner. Nothing is ever merged from two sources,
 * so nothing drifts: when the owner leaves the peer table (its lease
 * expired) or closes its services, every node drops its facts.
 *
 * Transfers: the initiator asks the target (state, capacity counting
 * reservations, then the application's hook; an accepted player holds a
 * reservation until they join or it expires), then asks the player's proxy
 * to move them. The proxy runs one move per player at a time: a second
 * transfer racing the first is refused with `TransferConflictError`.
 */
import { Buffer } from 'node:buffer'
import { EventEmitter } from 'node:events'
import type protobuf from 'protobufjs'
import type { MeshMessage, MeshNode } from '../mesh/node.js'
import type { PeerInfo } from '../mesh/control.js'
import { Delivery, schema } from '../wire/codec.js'
import { systemClock, type Clock, type TimerHandle } from '../transport/transport.js'
import { silentLogger, type Logger } from '../log.js'
import {
  ClosedError, ErrorCode, NoSuchServerError, PeerDownError, RefusedError, ServerFullError, TargetDownError,
  TimeoutError, TransferConflictError, UnknownPeerError, UnknownPlayerError, isWarpmeshError,
} from '../errors.js'
import {
  CLOSED_STATES, SERVICES_CHANNEL, SERVICES_TOPIC, ServerState,
  type DeliveryResult, type KickHandler, type MoveHandler, type NetworkOptions, type NetworkStats, type PlayerAnnouncement,
  type PlayerFilter, type PlayerInfo, type PlayerMessageHandler, type ServerFilter, type ServerInfo, type ServerSelector,
  type ServerSettings, type TransferHook, type TransferResult,
} from './types.js'

const ServiceMsg: protobuf.Type = schema.lookupType('warpmesh.ServiceMessage')

/** protocol.proto `ServiceKind`. */
const Kind = { DELTA: 1, DIGEST: 2, SNAPSHOT_REQUEST: 3, SNAPSHOT: 4, GONE: 5, CALL: 6, ANSWER: 7 } as const
/** protocol.proto `ServiceCallKind`. */
const Call = { ACCEPT: 1, MOVE: 2, RELEASE: 3, MESSAGE: 4, KICK: 5 } as const

/** Players per SNAPSHOT part. */
const SNAPSHOT_PART = 400
const NAME_MAX = 64
const XUID_PATTERN = /^[0-9]{0,20}$/
const WORD_PATTERN = /^[a-z0-9_-]{1,32}$/
const FIELDS_MAX = 8
const FIELD_KEY_MAX = 32
const FIELD_VALUE_MAX_BYTES = 128
const TAGS_MAX = 16
const MAX_CAPACITY = 1_000_000
const TEXT_MAX_BYTES = 1024
/** Most outstanding calls this node makes (transfers, messages, kicks), and most it serves at once. */
const MAX_CALLS = 10_000
/** Most transfers a server holds a place for at once (a bound when its `max` is 0, unlimited). */
const MAX_RESERVATIONS = 10_000
/** Most players one owner's snapshot may carry (the directory of a whole network fits many times). */
const MAX_SNAPSHOT_PLAYERS = 1_000_000
const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>
const SEND = { channel: SERVICES_CHANNEL, delivery: Delivery.RELIABLE_ORDERED } as const

/** Wire shapes (decoded `ServiceMessage`; unset fields read as 0 / empty). */
interface WirePlayer { name: string; xuid: string; proxy: string; fields: Record<string, string> }
interface WireServer { state: string; mode: string; tags: string[]; max: number; fields: Record<string, string> }
interface WireMessage {
  kind: number
  epoch: number
  version: number
  joined: WirePlayer[]
  left: string[]
  server: WireServer | null
  part: number
  parts: number
  callId: number
  call: number
  player: WirePlayer | null
  source: string
  target: string
  text: string
  code: string
  unlisted: boolean
}

/** One owner's claim of a player. Claims of one name by several owners (mid-move) chain through `next`, newest first. */
interface Entry {
  name: string
  xuid: string
  server: string
  proxy: string
  fields: Record<string, string>
  next: Entry | null
}

interface ServerRecord { state: string; mode: string; tags: string[]; max: number; fields: Record<string, string> }

interface Owner {
  readonly id: string
  epoch: number
  version: number
  server: ServerRecord | null
  /** Players this owner hosts. */
  count: number
  /** When a snapshot was requested (clock ms), or -1. */
  awaiting: number
  /** A snapshot being assembled. */
  snap: { version: number; parts: number; players: WirePlayer[]; server: WireServer | null } | null
}

interface PendingCall {
  to: string
  resolve(m: WireMessage): void
  reject(err: unknown): void
  timer: TimerHandle
}

/** The network services on one node. See the module comment, and docs/services.md. */
export class Network extends EventEmitter {
  /** The node underneath (not closed by {@link close}). */
  readonly node: MeshNode
  readonly #id: string
  readonly #clock: Clock
  readonly #log: Logger
  readonly #syncMs: number
  readonly #timeoutMs: number
  readonly #moveWindowMs: number
  /** Located claim per lower-cased name (head of the claim chain). */
  readonly #byName = new Map<string, Entry>()
  readonly #byXuid = new Map<string, Entry>()
  readonly #owners = new Map<string, Owner>()
  /** The players this node hosts, by lower-cased name. */
  readonly #hosted = new Map<string, Entry>()
  /** Participants (peers subscribed to the services topic): id → table epoch. */
  #participants = new Map<string, number>()
  /** Peers whose session went down while they stay in the table: checked each tick until they leave it or come back. */
  readonly #suspects = new Set<string>()
  readonly #pendingLeaves = new Map<string, { info: PlayerInfo; timer: TimerHandle }>()
  /** Accepted incoming transfers: lower-cased name → expiry (clock ms). */
  readonly #reservations = new Map<string, number>()
  /** Players whose move this node (as their proxy) is running. */
  readonly #moving = new Set<string>()
  /** Players this node is transferring. */
  readonly #transferring = new Set<string>()
  readonly #calls = new Map<number, PendingCall>()
  /** Calls of peers being served here (their handlers running). */
  #serving = 0
  #nextCall = 1
  #self: Owner
  #version = 0
  #out: { joined: Map<string, WirePlayer>; left: Set<string>; server: boolean } | null = null
  #timer: TimerHandle | null = null
  #closed = false
  #transferHook: TransferHook | null = null
  #moveHandler: MoveHandler | null = null
  #messageHandler: PlayerMessageHandler | null = null
  #kickHandler: KickHandler | null = null
  readonly #interned = new Map<string, string>()
  readonly #stats = {
    deltasSent: 0, deltasApplied: 0, deltasIgnored: 0, snapshotsRequested: 0, snapshotsSent: 0, snapshotsApplied: 0,
    transfers: 0, transfersFailed: 0, dropped: 0, listenerErrors: 0,
  }

  private constructor(node: MeshNode, o: NetworkOptions) {
    super()
    this.node = node
    this.#id = node.id
    this.#clock = o.clock ?? systemClock
    this.#log = (o.logger ?? silentLogger).child({ services: node.id })
    this.#syncMs = o.syncMs ?? 1000
    this.#timeoutMs = o.timeoutMs ?? 5000
    this.#moveWindowMs = o.moveWindowMs ?? 1000
    this.#self = { id: node.id, epoch: node.epoch, version: 0, server: null, count: 0, awaiting: -1, snap: null }
    this.#owners.set(node.id, this.#self)
    if (o.server !== undefined) {
      this.#self.server = mergeServer(null, o.server)
      this.#pending().server = true
    }
  }

  /**
   * Start the services on a started node: subscribes it to
   * {@link SERVICES_TOPIC} and fetches every participant's facts. Throws
   * `RangeError` for bad options, `ClosedError` when the node is closed.
   */
  static create(node: MeshNode, o: NetworkOptions = {}): Network {
    checkPositive('syncMs', o.syncMs)
    checkPositive('timeoutMs', o.timeoutMs)
    if (o.moveWindowMs !== undefined && !(Number.isFinite(o.moveWindowMs) && o.moveWindowMs >= 0)) {
      throw new RangeError(`moveWindowMs must be a number ≥ 0, got ${String(o.moveWindowMs)}`)
    }
    if (o.server !== undefined) checkServer(o.server)
    const n = new Network(node, o)
    node.subscribe(SERVICES_TOPIC)
    node.on('message', n.#onMessage)
    node.on('peer-up', n.#onPeerChange)
    node.on('peer-updated', n.#onPeerChange)
    node.on('peer-down', n.#onPeerDown)
    node.on('peer-removed', n.#onPeerChange)
    node.on('close', n.#onNodeClose)
    n.#reconcile()
    n.#arm()
    return n
  }

  // ------------------------------------------------------------ directory

  /**
   * This node now hosts the player: every node's directory lists them here.
   * Replaces this node's own entry of that name. Returns the entry. Throws
   * `RangeError` for a bad name, XUID or fields.
   */
  join(p: PlayerAnnouncement): PlayerInfo {
    this.#checkOpen()
    checkPlayer(p)
    const wire: WirePlayer = { name: p.name, xuid: p.xuid ?? '', proxy: p.proxy ?? '', fields: p.fields === undefined || Object.keys(p.fields).length === 0 ? EMPTY : { ...p.fields } }
    const lc = p.name.toLowerCase()
    this.#reservations.delete(lc)
    this.#claim(this.#self, wire)
    this.#pending().joined.set(lc, wire)
    return infoOf(this.#hosted.get(lc)!)
  }

  /** This node no longer hosts the player (name in any case, or XUID). False when it did not. */
  leave(nameOrXuid: string): boolean {
    this.#checkOpen()
    const e = this.#hostedEntry(nameOrXuid)
    if (e === undefined) return false
    const lc = e.name.toLowerCase()
    this.#unclaim(this.#self, lc, true)
    const out = this.#pending()
    out.joined.delete(lc)
    out.left.add(lc)
    return true
  }

  /** The players this node announced. */
  hosted(): PlayerInfo[] {
    return [...this.#hosted.values()].map(infoOf)
  }

  /** Where the player is (name in any case, or XUID), from the local copy of the directory. */
  locate(nameOrXuid: string): PlayerInfo | undefined {
    const e = this.#find(nameOrXuid)
    return e === undefined ? undefined : infoOf(e)
  }

  /** Whether any server lists the player. */
  isOnline(nameOrXuid: string): boolean {
    return this.#find(nameOrXuid) !== undefined
  }

  /** Players in the directory, optionally only those on servers of `mode` or on `server`. */
  count(filter: PlayerFilter = {}): number {
    if (filter.mode === undefined && filter.server === undefined) return this.#byName.size
    if (filter.mode === undefined) {
      let n = 0
      for (const e of this.#byName.values()) if (e.server === filter.server) n++
      return n
    }
    let n = 0
    for (const e of this.#byName.values()) if (this.#matches(e, filter)) n++
    return n
  }

  /** Players in the directory (at most `limit`, 0 or unset = all), optionally filtered like {@link count}. */
  list(filter: PlayerFilter & { limit?: number } = {}): PlayerInfo[] {
    const limit = filter.limit !== undefined && filter.limit > 0 ? filter.limit : Infinity
    const out: PlayerInfo[] = []
    for (const e of this.#byName.values()) {
      if (out.length >= limit) break
      if (this.#matches(e, filter)) out.push(infoOf(e))
    }
    return out
  }

  // ------------------------------------------------------------ registry

  /** Update this node's registry entry (listing it when it was not). Unset fields keep their value. */
  setServer(s: ServerSettings): void {
    this.#checkOpen()
    checkServer(s)
    this.#self.server = mergeServer(this.#self.server, s)
    this.#pending().server = true
    this.#emit('server-updated', this.#serverInfo(this.#self)!)
  }

  /** A server's registry entry. */
  server(id: string): ServerInfo | undefined {
    const o = this.#owners.get(id)
    return o === undefined ? undefined : this.#serverInfo(o)
  }

  /** Listed servers matching the filter, by id. */
  servers(filter: ServerFilter = {}): ServerInfo[] {
    const out: ServerInfo[] = []
    for (const o of this.#owners.values()) {
      const s = this.#serverInfo(o)
      if (s !== undefined && serverMatches(s, filter)) out.push(s)
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** The server a transfer with this selector would ask first, or undefined when none has room. */
  pick(selector: ServerSelector): ServerInfo | undefined {
    checkSelector(selector)
    return this.#candidates(selector, '')[0]
  }

  // ------------------------------------------------------------ transfers and messaging

  /**
   * Move a player to `target` (a server id, or a selector). Resolves with
   * where they went; rejects with `UnknownPlayerError`, `NoSuchServerError`,
   * `ServerFullError`, `RefusedError`, `TargetDownError`,
   * `TransferConflictError`, `TimeoutError` (`timeoutMs`, default the
   * options' `timeoutMs`, over the whole transfer), `PeerDownError` (the
   * player's proxy went down) or `ClosedError`.
   */
  async transfer(player: string, target: string | ServerSelector, o: { timeoutMs?: number } = {}): Promise<TransferResult> {
    this.#checkOpen()
    const timeoutMs = o.timeoutMs ?? this.#timeoutMs
    checkPositive('timeoutMs', timeoutMs)
    if (typeof target !== 'string') checkSelector(target)
    const e = this.#find(player)
    if (e === undefined) throw new UnknownPlayerError(player)
    const lc = e.name.toLowerCase()
    if (this.#transferring.has(lc)) throw new TransferConflictError(e.name, { message: `player ${JSON.stringify(e.name)} is already being transferred by this node` })
    this.#transferring.add(lc)
    this.#stats.transfers++
    try {
      return await this.#transfer(infoOf(e), target, this.#clock.now() + timeoutMs, timeoutMs)
    } catch (err) {
      this.#stats.transfersFailed++
      throw err
    } finally {
      this.#transferring.delete(lc)
    }
  }

  /** Show `text` to the player, wherever they are (through their proxy, or their server). */
  async message(player: string, text: string, o: { timeoutMs?: number } = {}): Promise<DeliveryResult> {
    return this.#deliver(Call.MESSAGE, player, text, o.timeoutMs)
  }

  /** Disconnect the player, wherever they are, with `reason`. */
  async kick(player: string, reason: string, o: { timeoutMs?: number } = {}): Promise<DeliveryResult> {
    return this.#deliver(Call.KICK, player, reason, o.timeoutMs)
  }

  /** Set (or clear, with null) the hook asked before this server accepts a transfer. */
  onTransferRequest(hook: TransferHook | null): void {
    this.#transferHook = checkHandler('onTransferRequest', hook)
  }

  /** Set (or clear) the handler that moves a player whose proxy (or server) this node is. */
  onMove(handler: MoveHandler | null): void {
    this.#moveHandler = checkHandler('onMove', handler)
  }

  /** Set (or clear) the handler that shows a message to a player of this node. */
  onMessage(handler: PlayerMessageHandler | null): void {
    this.#messageHandler = checkHandler('onMessage', handler)
  }

  /** Set (or clear) the handler that kicks a player of this node. */
  onKick(handler: KickHandler | null): void {
    this.#kickHandler = checkHandler('onKick', handler)
  }

  /** Counters. */
  stats(): NetworkStats {
    let servers = 0
    for (const o of this.#owners.values()) if (o.server !== null) servers++
    return { ...this.#stats, players: this.#byName.size, servers, owners: this.#owners.size }
  }

  /**
   * Stop the services on this node (the node stays): every participant drops
   * this node's facts at once, pending operations reject with `ClosedError`.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#flush()
    this.#closed = true
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    this.#timer = null
    for (const p of this.#pendingLeaves.values()) this.#clock.clearTimer(p.timer)
    this.#pendingLeaves.clear()
    for (const [id, c] of [...this.#calls]) {
      this.#calls.delete(id)
      this.#clock.clearTimer(c.timer)
      c.reject(new ClosedError({ message: 'the network services closed before the answer arrived' }))
    }
    this.node.off('message', this.#onMessage)
    this.node.off('peer-up', this.#onPeerChange)
    this.node.off('peer-updated', this.#onPeerChange)
    this.node.off('peer-down', this.#onPeerDown)
    this.node.off('peer-removed', this.#onPeerChange)
    this.node.off('close', this.#onNodeClose)
    const gone = encode({ kind: Kind.GONE, epoch: this.#self.epoch, version: this.#version })
    for (const id of this.#participants.keys()) this.#send(id, gone)
    try { this.node.unsubscribe(SERVICES_TOPIC) } catch { /* the node is closing */ }
  }

  // ------------------------------------------------------------ replication: sending

  /** The changes of this turn, sent as one delta when the turn ends. */
  #pending(): { joined: Map<string, WirePlayer>; left: Set<string>; server: boolean } {
    if (this.#out === null) {
      this.#out = { joined: new Map(), left: new Set(), server: false }
      queueMicrotask(() => this.#flush())
    }
    return this.#out
  }

  #flush(): void {
    const out = this.#out
    if (out === null || this.#closed) return
    this.#out = null
    this.#version++
    this.#self.version = this.#version
    const bytes = encode({
      kind: Kind.DELTA, epoch: this.#self.epoch, version: this.#version,
      joined: [...out.joined.values()], left: [...out.left],
      server: out.server && this.#self.server !== null ? this.#self.server : undefined,
      unlisted: out.server && this.#self.server === null,
    })
    for (const id of this.#participants.keys()) this.#send(id, bytes)
    this.#stats.deltasSent++
  }

  #send(to: string, bytes: Uint8Array): boolean {
    try {
      this.node.send(to, bytes, SEND)
      return true
    } catch (err) {
      this.#stats.dropped++
      this.#log.debug('services message not sent', { to, error: (err as Error).message })
      return false
    }
  }

  #sendSnapshot(to: string): void {
    this.#flush()
    const players = [...this.#hosted.values()]
    const parts = Math.max(1, Math.ceil(players.length / SNAPSHOT_PART))
    for (let part = 0; part < parts; part++) {
      const ok = this.#send(to, encode({
        kind: Kind.SNAPSHOT, epoch: this.#self.epoch, version: this.#version, part, parts,
        server: part === 0 && this.#self.server !== null ? this.#self.server : undefined,
        joined: players.slice(part * SNAPSHOT_PART, (part + 1) * SNAPSHOT_PART).map(wireOf),
      }))
      if (!ok) return
    }
    this.#stats.snapshotsSent++
  }

  #arm(): void {
    const every = Math.min(this.#syncMs, 250)
    let sinceDigest = 0
    const tick = (): void => {
      if (this.#closed) return
      sinceDigest += every
      if (sinceDigest >= this.#syncMs) {
        sinceDigest = 0
        this.#flush()
        const digest = encode({ kind: Kind.DIGEST, epoch: this.#self.epoch, version: this.#version })
        for (const id of this.#participants.keys()) this.#send(id, digest)
        const now = this.#clock.now()
        for (const [lc, until] of this.#reservations) if (until <= now) this.#reservations.delete(lc)
      }
      if (this.#suspects.size > 0) this.#reconcile()
      this.#timer = this.#clock.setTimer(tick, every)
    }
    this.#timer = this.#clock.setTimer(tick, every)
  }

  // ------------------------------------------------------------ replication: receiving

  readonly #onMessage = (m: MeshMessage): void => {
    if (m.channel !== SERVICES_CHANNEL || m.topic !== undefined || this.#closed) return
    let msg: WireMessage
    try {
      msg = ServiceMsg.decode(m.data) as unknown as WireMessage
    } catch {
      this.#stats.dropped++
      return
    }
    try {
      this.#handle(m.from, msg)
    } catch (err) {
      this.#stats.dropped++
      this.#log.debug('malformed services message dropped', { from: m.from, error: (err as Error).message })
    }
  }

  #handle(from: string, msg: WireMessage): void {
    switch (msg.kind) {
      case Kind.DELTA: return this.#onDelta(from, msg)
      case Kind.DIGEST: return this.#onDigest(from, msg)
      case Kind.SNAPSHOT_REQUEST: return this.#sendSnapshot(from)
      case Kind.SNAPSHOT: return this.#onSnapshot(from, msg)
      case Kind.GONE: {
        const o = this.#owners.get(from)
        if (o !== undefined && o.epoch === msg.epoch) this.#dropOwner(o)
        return
      }
      case Kind.CALL:
        this.#onCall(from, msg).catch((err: unknown) => {
          this.#stats.dropped++
          this.#log.debug('malformed services call dropped', { from, error: (err as Error).message })
        })
        return
      case Kind.ANSWER: {
        const c = this.#calls.get(msg.callId)
        if (c === undefined || c.to !== from) return
        this.#calls.delete(msg.callId)
        this.#clock.clearTimer(c.timer)
        c.resolve(msg)
        return
      }
      default:
        this.#stats.dropped++
    }
  }

  /**
   * The owner state for `from` at `epoch` (a new epoch drops what the old
   * incarnation said). Null for this node itself, or for a message of an
   * incarnation older than the table's.
   */
  #owner(from: string, epoch: number): Owner | null {
    if (from === this.#id) return null
    let o = this.#owners.get(from)
    if (o !== undefined && o.epoch !== epoch) {
      this.#dropOwner(o)
      o = undefined
    }
    if (o === undefined) {
      const tableEpoch = this.#participants.get(from)
      if (tableEpoch !== undefined && tableEpoch !== epoch) return null // an older incarnation's message
      o = { id: from, epoch, version: 0, server: null, count: 0, awaiting: -1, snap: null }
      this.#owners.set(from, o)
    }
    return o
  }

  #onDelta(from: string, msg: WireMessage): void {
    const o = this.#owner(from, msg.epoch)
    if (o === null) return void this.#stats.dropped++
    if (msg.version <= o.version) return void this.#stats.deltasIgnored++
    if (msg.version !== o.version + 1) {
      this.#stats.deltasIgnored++
      this.#requestSnapshot(o)
      return
    }
    for (const p of msg.joined) checkWirePlayer(p)
    o.version = msg.version
    for (const lc of msg.left) this.#unclaim(o, lc, true)
    for (const p of msg.joined) this.#claim(o, p)
    if (msg.server !== null && msg.server !== undefined) this.#setRecord(o, msg.server)
    else if (msg.unlisted) this.#setRecord(o, null)
    this.#stats.deltasApplied++
  }

  #onDigest(from: string, msg: WireMessage): void {
    if (!this.#participants.has(from)) return
    const o = this.#owner(from, msg.epoch)
    if (o === null) return
    if (msg.version > o.version) this.#requestSnapshot(o)
  }

  #requestSnapshot(o: Owner): void {
    const now = this.#clock.now()
    if (o.awaiting >= 0 && now - o.awaiting < 2 * this.#syncMs) return
    if (!this.#send(o.id, encode({ kind: Kind.SNAPSHOT_REQUEST }))) return
    o.awaiting = now
    this.#stats.snapshotsRequested++
  }

  #onSnapshot(from: string, msg: WireMessage): void {
    const o = this.#owner(from, msg.epoch)
    if (o === null) return void this.#stats.dropped++
    if (msg.part === 0) o.snap = { version: msg.version, parts: Math.max(1, msg.parts), players: [], server: msg.server ?? null }
    const s = o.snap
    if (s === null || s.version !== msg.version) return void this.#stats.dropped++
    if (s.players.length + msg.joined.length > MAX_SNAPSHOT_PLAYERS) {
      o.snap = null
      this.#log.warn('services snapshot too large: dropped', { from, limit: MAX_SNAPSHOT_PLAYERS })
      return void this.#stats.dropped++
    }
    for (const p of msg.joined) {
      checkWirePlayer(p)
      s.players.push(p)
    }
    if (msg.part + 1 < s.parts) return
    o.snap = null
    o.awaiting = -1
    if (s.version < o.version) return // deltas overtook it (applied in order): it is stale
    const keep = new Set<string>()
    for (const p of s.players) keep.add(p.name.toLowerCase())
    for (const lc of this.#namesOf(o)) if (!keep.has(lc)) this.#unclaim(o, lc, true)
    for (const p of s.players) this.#claim(o, p)
    this.#setRecord(o, s.server)
    o.version = s.version
    this.#stats.snapshotsApplied++
  }

  // ------------------------------------------------------------ the directory's data

  /** `o` now hosts `p` (replacing its own claim of that name). Emits joined/moved. */
  #claim(o: Owner, p: WirePlayer): void {
    const lc = p.name.toLowerCase()
    const before = this.#byName.get(lc)
    let mine: Entry | null = null
    for (let e: Entry | undefined | null = before; e != null; e = e.next) if (e.server === o.id) { mine = e; break }
    if (mine !== null && before === mine && mine.name === p.name && mine.xuid === p.xuid && mine.proxy === p.proxy && sameFields(mine.fields, p.fields)) return
    const e: Entry = {
      name: p.name, xuid: p.xuid, server: o.id, proxy: this.#intern(p.proxy),
      fields: Object.keys(p.fields).length === 0 ? EMPTY : { ...p.fields }, next: null,
    }
    let rest: Entry | null = before ?? null
    if (mine !== null) rest = without(rest, mine)
    else o.count++
    e.next = rest
    this.#byName.set(lc, e)
    if (before !== undefined && before.xuid !== '' && this.#byXuid.get(before.xuid) === before) this.#byXuid.delete(before.xuid)
    if (e.xuid !== '') this.#byXuid.set(e.xuid, e)
    if (o === this.#self) this.#hosted.set(lc, e)
    if (before === undefined) {
      const pending = this.#pendingLeaves.get(lc)
      if (pending !== undefined) {
        this.#pendingLeaves.delete(lc)
        this.#clock.clearTimer(pending.timer)
        if (pending.info.server !== e.server) this.#emit('player-moved', infoOf(e), pending.info.server)
        else this.#emit('player-joined', infoOf(e))
      } else {
        this.#emit('player-joined', infoOf(e))
      }
    } else if (before.server !== e.server) {
      this.#emit('player-moved', infoOf(e), before.server)
    }
  }

  /** `o` no longer hosts `lc`. With `window`, a player who vanishes is reported as left only after the move window. */
  #unclaim(o: Owner, lc: string, window: boolean): void {
    const head = this.#byName.get(lc)
    let mine: Entry | null = null
    for (let e: Entry | undefined | null = head; e != null; e = e.next) if (e.server === o.id) { mine = e; break }
    if (head === undefined || mine === null) return
    o.count--
    if (o === this.#self) this.#hosted.delete(lc)
    const rest = without(head, mine)
    if (mine.xuid !== '' && this.#byXuid.get(mine.xuid) === mine) this.#byXuid.delete(mine.xuid)
    if (rest === null) {
      this.#byName.delete(lc)
      const info = infoOf(mine)
      if (window && this.#moveWindowMs > 0) {
        const timer = this.#clock.setTimer(() => {
          this.#pendingLeaves.delete(lc)
          this.#emit('player-left', info)
        }, this.#moveWindowMs)
        const old = this.#pendingLeaves.get(lc)
        if (old !== undefined) this.#clock.clearTimer(old.timer)
        this.#pendingLeaves.set(lc, { info, timer })
      } else {
        this.#emit('player-left', info)
      }
      return
    }
    this.#byName.set(lc, rest)
    if (head === mine) {
      if (rest.xuid !== '') this.#byXuid.set(rest.xuid, rest)
      this.#emit('player-moved', infoOf(rest), mine.server)
    }
  }

  #setRecord(o: Owner, s: WireServer | null): void {
    const was = o.server !== null
    o.server = s === null ? null : {
      state: s.state, mode: s.mode, tags: [...s.tags], max: s.max, fields: Object.keys(s.fields).length === 0 ? EMPTY : { ...s.fields },
    }
    if (o.server !== null) this.#emit('server-updated', this.#serverInfo(o)!)
    else if (was) this.#emit('server-removed', o.id)
  }

  /** Lower-cased names `o` holds a claim on (a scan of the directory: snapshots and departures only). */
  #namesOf(o: Owner): string[] {
    const out: string[] = []
    if (o.count === 0) return out
    for (const [lc, head] of this.#byName) {
      for (let e: Entry | null = head; e !== null; e = e.next) {
        if (e.server === o.id) {
          out.push(lc)
          break
        }
      }
    }
    return out
  }

  /** Forget everything `o` said (it left the table, restarted or closed its services): its players leave at once. */
  #dropOwner(o: Owner): void {
    if (o === this.#self) return
    this.#owners.delete(o.id)
    for (const lc of this.#namesOf(o)) this.#unclaim(o, lc, false)
    if (o.server !== null) {
      o.server = null
      this.#emit('server-removed', o.id)
    }
    for (const [id, c] of [...this.#calls]) {
      if (c.to !== o.id) continue
      this.#calls.delete(id)
      this.#clock.clearTimer(c.timer)
      c.reject(new PeerDownError(o.id))
    }
  }

  #find(nameOrXuid: string): Entry | undefined {
    if (typeof nameOrXuid !== 'string' || nameOrXuid.length === 0) return undefined
    return this.#byName.get(nameOrXuid.toLowerCase()) ?? this.#byXuid.get(nameOrXuid)
  }

  #hostedEntry(nameOrXuid: string): Entry | undefined {
    if (typeof nameOrXuid !== 'string' || nameOrXuid.length === 0) return undefined
    const e = this.#hosted.get(nameOrXuid.toLowerCase())
    if (e !== undefined) return e
    for (const h of this.#hosted.values()) if (h.xuid === nameOrXuid) return h
    return undefined
  }

  #matches(e: Entry, f: PlayerFilter): boolean {
    if (f.server !== undefined && e.server !== f.server) return false
    if (f.mode !== undefined) {
      const s = this.#owners.get(e.server)?.server
      if (s == null || s.mode !== f.mode) return false
    }
    return true
  }

  #serverInfo(o: Owner): ServerInfo | undefined {
    const s = o.server
    if (s === null) return undefined
    const role = o === this.#self ? this.node.role : (this.#roles.get(o.id) ?? '')
    return { id: o.id, role, state: s.state, mode: s.mode, tags: [...s.tags], players: o.count, max: s.max, fields: { ...s.fields } }
  }

  #intern(s: string): string {
    if (s === '') return ''
    const known = this.#interned.get(s)
    if (known !== undefined) return known
    if (this.#interned.size < 4096) this.#interned.set(s, s)
    return s
  }

  // ------------------------------------------------------------ the peer table

  readonly #roles = new Map<string, string>()

  readonly #onPeerChange = (p: PeerInfo): void => {
    this.#suspects.delete(p.id)
    this.#reconcile()
  }

  /** The node shut down under the services: stop (its peers drop this node's facts with its registration). */
  readonly #onNodeClose = (): void => {
    void this.close()
  }

  readonly #onPeerDown = (p: PeerInfo): void => {
    this.#suspects.add(p.id)
    this.#reconcile()
  }

  /** Bring participants and owners in line with the peer table. */
  #reconcile(): void {
    if (this.#closed) return
    const next = new Map<string, number>()
    const inTable = new Map<string, number>()
    for (const p of this.node.peers()) {
      inTable.set(p.id, p.epoch)
      this.#roles.set(p.id, p.role)
      if (p.topics.includes(SERVICES_TOPIC)) next.set(p.id, p.epoch)
    }
    const before = this.#participants
    this.#participants = next
    for (const o of [...this.#owners.values()]) {
      if (o === this.#self) continue
      const epoch = next.get(o.id)
      if (epoch === undefined || epoch !== o.epoch) this.#dropOwner(o)
    }
    for (const id of this.#roles.keys()) if (!inTable.has(id)) this.#roles.delete(id)
    for (const [id, epoch] of next) {
      if (before.get(id) === epoch) continue
      // A participant appeared (or restarted): fetch its facts.
      const o = this.#owner(id, epoch)
      if (o !== null) this.#requestSnapshot(o)
    }
    // Suspects still in the table stay suspects (checked each tick) until they leave it or come back up.
    for (const id of [...this.#suspects]) if (!inTable.has(id)) this.#suspects.delete(id)
  }

  // ------------------------------------------------------------ calls

  #call(to: string, fields: Partial<WireMessage>, timeoutMs: number): Promise<WireMessage> {
    if (this.#closed) return Promise.reject(new ClosedError())
    if (to === this.#id) {
      // This node is the callee too (it moves its own players, or takes a player itself).
      const msg = ServiceMsg.decode(encode({ ...fields, kind: Kind.CALL })) as unknown as WireMessage
      return this.#serve(to, msg).then(([code, text]) => ({ ...msg, kind: Kind.ANSWER, code, text }))
    }
    if (this.#calls.size >= MAX_CALLS) return Promise.reject(new RangeError(`too many outstanding services calls (limit ${MAX_CALLS})`))
    let id = this.#nextCall
    while (this.#calls.has(id) || id === 0) id = (id + 1) >>> 0
    this.#nextCall = (id + 1) >>> 0
    return new Promise<WireMessage>((resolve, reject) => {
      const timer = this.#clock.setTimer(() => {
        if (this.#calls.delete(id)) reject(new TimeoutError({ timeoutMs, message: `"${to}" did not answer within ${timeoutMs} ms` }))
      }, Math.max(1, timeoutMs))
      this.#calls.set(id, { to, resolve, reject, timer })
      try {
        this.node.send(to, encode({ ...fields, kind: Kind.CALL, callId: id }), SEND)
      } catch (err) {
        this.#calls.delete(id)
        this.#clock.clearTimer(timer)
        reject(err)
      }
    })
  }

  #answer(to: string, callId: number, code: string, text: string): void {
    this.#send(to, encode({ kind: Kind.ANSWER, callId, code, text }))
  }

  async #onCall(from: string, msg: WireMessage): Promise<void> {
    if (msg.call === Call.RELEASE) {
      if (msg.player != null) this.#reservations.delete(msg.player.name.toLowerCase())
      return
    }
    if (msg.player == null) return void this.#stats.dropped++
    checkWirePlayer(msg.player)
    if (this.#serving >= MAX_CALLS) {
      this.#answer(from, msg.callId, ErrorCode.Refused, `"${this.#id}" is serving ${MAX_CALLS} calls already: try again`)
      return
    }
    this.#serving++
    let answer: [string, string]
    try {
      answer = await this.#serve(from, msg)
    } finally {
      this.#serving--
    }
    if (!this.#closed) this.#answer(from, msg.callId, answer[0], answer[1])
  }

  /** Run a call here: [error code or '', text]. */
  async #serve(from: string, msg: WireMessage): Promise<[string, string]> {
    const p = msg.player!
    const info: PlayerInfo = { name: p.name, xuid: p.xuid, server: msg.source, proxy: p.proxy, fields: { ...p.fields } }
    let code = ''
    let text = ''
    try {
      switch (msg.call) {
        case Call.ACCEPT: [code, text] = await this.#accept(info); break
        case Call.MOVE: [code, text] = await this.#move(info, msg.target); break
        case Call.MESSAGE: case Call.KICK: {
          const h = msg.call === Call.MESSAGE ? this.#messageHandler : this.#kickHandler
          if (h === null) [code, text] = [ErrorCode.Refused, `no ${msg.call === Call.MESSAGE ? 'message' : 'kick'} handler on "${this.#id}"`]
          else await h(info, msg.text)
          break
        }
        default:
          this.#stats.dropped++
          return [ErrorCode.Refused, `unknown call ${msg.call}`]
      }
    } catch (err) {
      code = ErrorCode.Refused
      text = err instanceof Error ? err.message : String(err)
    }
    return [code, text]
  }

  /** At the target: may the player come here? Reserves a place when yes. */
  async #accept(p: PlayerInfo): Promise<[string, string]> {
    const s = this.#self.server
    if (s === null) return [ErrorCode.NoSuchServer, `"${this.#id}" is not listed as a server`]
    const lc = p.name.toLowerCase()
    if (this.#hosted.has(lc)) return [ErrorCode.Refused, `${p.name} is already on "${this.#id}"`]
    if (s.state === ServerState.FULL) return [ErrorCode.ServerFull, `"${this.#id}" is full (state full)`]
    if (CLOSED_STATES.includes(s.state)) return [ErrorCode.Refused, `"${this.#id}" is ${s.state}`]
    const reserved = this.#reservations.size - (this.#reservations.has(lc) ? 1 : 0)
    if ((s.max > 0 && this.#self.count + reserved >= s.max) || reserved >= MAX_RESERVATIONS) {
      return [ErrorCode.ServerFull, `"${this.#id}" is full (${this.#self.count} players + ${reserved} arriving, max ${s.max})`]
    }
    // Reserve before asking the hook, so concurrent requests see each other.
    this.#reservations.set(lc, this.#clock.now() + 2 * this.#timeoutMs)
    const hook = this.#transferHook
    if (hook === null) return ['', '']
    let verdict: boolean | string
    try {
      verdict = await hook({ player: p, from: p.server, players: this.#self.count, arriving: reserved })
    } catch (err) {
      verdict = err instanceof Error ? err.message : String(err)
    }
    if (verdict === true) return ['', '']
    this.#reservations.delete(lc)
    return [ErrorCode.Refused, typeof verdict === 'string' && verdict !== '' ? verdict : `"${this.#id}" refused ${p.name}`]
  }

  /** At the player's proxy: run the move, one per player at a time. */
  async #move(p: PlayerInfo, target: string): Promise<[string, string]> {
    const lc = p.name.toLowerCase()
    if (this.#moving.has(lc)) return [ErrorCode.TransferConflict, `${p.name} is already being moved by "${this.#id}"`]
    const h = this.#moveHandler
    if (h === null) return [ErrorCode.Refused, `no move handler on "${this.#id}"`]
    this.#moving.add(lc)
    try {
      await h(p, target)
      return ['', '']
    } finally {
      this.#moving.delete(lc)
    }
  }

  async #transfer(p: PlayerInfo, target: string | ServerSelector, deadline: number, timeoutMs: number): Promise<TransferResult> {
    let chosen: string | null = null
    let lastErr: unknown = null
    const tried = new Set<string>()
    if (typeof target === 'string') {
      if (target === p.server) throw new RefusedError(`${p.name} is already on "${target}"`, { player: p.name, server: target })
      if (this.#owners.get(target)?.server == null) throw new NoSuchServerError(target, { player: p.name })
    }
    // Selector: try its candidates best first, then its fallback's, and so on.
    for (let sel: string | ServerSelector | undefined = target; sel !== undefined && chosen === null;) {
      const list = typeof sel === 'string' ? [sel] : this.#candidates(sel, p.server).map((s) => s.id)
      for (const id of list) {
        if (tried.has(id) || id === p.server) continue
        tried.add(id)
        if (this.#owners.get(id)?.server == null) {
          // A fallback naming a server that is not listed (a direct target was checked above).
          lastErr = new NoSuchServerError(id, { player: p.name })
          continue
        }
        const left = deadline - this.#clock.now()
        if (left <= 0) throw new TimeoutError({ timeoutMs, message: `transfer of ${p.name} timed out after ${timeoutMs} ms` })
        try {
          const a = await this.#call(id, { call: Call.ACCEPT, player: wireOfInfo(p), source: p.server }, left)
          if (a.code === '') { chosen = id; break }
          lastErr = answerError(a, p.name, id)
        } catch (err) {
          if (err instanceof TimeoutError) throw new TimeoutError({ timeoutMs, message: `transfer of ${p.name} timed out after ${timeoutMs} ms: ${err.message}`, cause: err })
          if (isWarpmeshError(err, ErrorCode.PeerDown) || err instanceof UnknownPeerError) lastErr = new TargetDownError(id, { player: p.name, cause: err })
          else throw err
        }
        if (typeof target === 'string') throw lastErr
      }
      sel = typeof sel === 'string' ? undefined : sel.fallback
    }
    if (chosen === null) {
      if (lastErr !== null) throw lastErr
      if (typeof target !== 'string' && this.#anyMatch(target)) {
        throw new ServerFullError(describe(target), { player: p.name, message: `every server matching ${describe(target)} is full or closed` })
      }
      throw new NoSuchServerError(describe(target), { player: p.name, message: `no server matches ${describe(target)}` })
    }
    const via = p.proxy !== '' ? p.proxy : p.server
    const left = deadline - this.#clock.now()
    try {
      if (left <= 0) throw new TimeoutError({ timeoutMs, message: `transfer of ${p.name} timed out after ${timeoutMs} ms` })
      const a = await this.#call(via, { call: Call.MOVE, player: wireOfInfo(p), source: p.server, target: chosen }, left)
      if (a.code !== '') throw answerError(a, p.name, chosen, via)
    } catch (err) {
      if (chosen === this.#id) this.#reservations.delete(p.name.toLowerCase())
      else this.#send(chosen, encode({ kind: Kind.CALL, call: Call.RELEASE, player: wireOfInfo(p) }))
      if (err instanceof TimeoutError) throw new TimeoutError({ timeoutMs, message: `transfer of ${p.name} timed out after ${timeoutMs} ms: ${err.message}`, cause: err })
      if (err instanceof UnknownPeerError) throw new PeerDownError(via, { message: `the proxy of ${p.name} ("${via}") is not in the peer table`, cause: err })
      throw err
    }
    return { player: p.name, server: chosen, from: p.server, via }
  }

  /** Whether any listed server matches the selector or one of its fallbacks, room or not. */
  #anyMatch(sel: ServerSelector | string | undefined): boolean {
    for (; sel !== undefined; sel = typeof sel === 'string' ? undefined : sel.fallback) {
      if (typeof sel === 'string') return this.#owners.get(sel)?.server != null
      for (const o of this.#owners.values()) {
        const s = this.#serverInfo(o)
        if (s !== undefined && serverMatches(s, sel)) return true
      }
    }
    return false
  }

  /** Listed servers matching the selector with room, least full first (none of `exclude`, not `current`). */
  #candidates(sel: ServerSelector, current: string): ServerInfo[] {
    const out: ServerInfo[] = []
    for (const o of this.#owners.values()) {
      if (o.id === current || sel.exclude?.includes(o.id) === true) continue
      const s = this.#serverInfo(o)
      if (s === undefined || !serverMatches(s, sel)) continue
      if (CLOSED_STATES.includes(s.state)) continue
      if (s.max > 0 && s.players >= s.max) continue
      out.push(s)
    }
    return out.sort((a, b) => fill(a) - fill(b) || a.players - b.players || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async #deliver(kind: number, player: string, text: string, timeoutMs = this.#timeoutMs): Promise<DeliveryResult> {
    this.#checkOpen()
    checkPositive('timeoutMs', timeoutMs)
    if (typeof text !== 'string' || Buffer.byteLength(text) > TEXT_MAX_BYTES) throw new RangeError(`text must be a string of at most ${TEXT_MAX_BYTES} bytes`)
    const e = this.#find(player)
    if (e === undefined) throw new UnknownPlayerError(player)
    const p = infoOf(e)
    const via = p.proxy !== '' ? p.proxy : p.server
    let a: WireMessage
    try {
      a = await this.#call(via, { call: kind, player: wireOfInfo(p), source: p.server, text }, timeoutMs)
    } catch (err) {
      if (err instanceof UnknownPeerError) throw new PeerDownError(via, { message: `the proxy of ${p.name} ("${via}") is not in the peer table`, cause: err })
      throw err
    }
    if (a.code !== '') throw answerError(a, p.name, '', via)
    return { player: p.name, via }
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError({ message: 'the network services are closed' })
  }

  /**
   * Emit to the application. A listener that throws is logged and counted,
   * never let through: it would stop a delta half-applied, and the directory
   * would drift from its owner until the next snapshot.
   */
  #emit(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args)
    } catch (err) {
      this.#stats.listenerErrors++
      this.#log.warn('a services event listener threw', { event, error: err instanceof Error ? err.message : String(err) })
    }
  }
}

// ------------------------------------------------------------ helpers

function encode(fields: Partial<WireMessage>): Uint8Array {
  return ServiceMsg.encode(ServiceMsg.fromObject(fields)).finish()
}

function infoOf(e: Entry): PlayerInfo {
  return { name: e.name, xuid: e.xuid, server: e.server, proxy: e.proxy, fields: { ...e.fields } }
}

function wireOf(e: Entry): WirePlayer {
  return { name: e.name, xuid: e.xuid, proxy: e.proxy, fields: e.fields }
}

function wireOfInfo(p: PlayerInfo): WirePlayer {
  return { name: p.name, xuid: p.xuid, proxy: p.proxy, fields: p.fields }
}

function without(chain: Entry | null, e: Entry): Entry | null {
  if (chain === e) return e.next
  for (let c = chain; c !== null; c = c.next) {
    if (c.next === e) {
      c.next = e.next
      break
    }
  }
  return chain
}

function sameFields(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (a[k] !== b[k]) return false
  return true
}

function fill(s: ServerInfo): number {
  return s.max > 0 ? s.players / s.max : 0
}

function serverMatches(s: ServerInfo, f: ServerFilter): boolean {
  if (f.mode !== undefined && s.mode !== f.mode) return false
  if (f.tag !== undefined && !s.tags.includes(f.tag)) return false
  if (f.state !== undefined && !(typeof f.state === 'string' ? s.state === f.state : f.state.includes(s.state))) return false
  return true
}

function describe(t: string | ServerSelector): string {
  return typeof t === 'string' ? JSON.stringify(t) : JSON.stringify({ ...t, fallback: undefined })
}

/** The named error of a failed answer. */
function answerError(a: WireMessage, player: string, server: string, via?: string): Error {
  switch (a.code) {
    case ErrorCode.NoSuchServer: return new NoSuchServerError(server, { player, message: a.text })
    case ErrorCode.ServerFull: return new ServerFullError(server, { player, message: a.text })
    case ErrorCode.TransferConflict: return new TransferConflictError(player, { server, message: a.text })
    case ErrorCode.UnknownPlayer: return new UnknownPlayerError(player, { server, message: a.text })
    default: return new RefusedError(a.text, { player, server: via ?? server })
  }
}

function mergeServer(old: ServerRecord | null, s: ServerSettings): ServerRecord {
  return {
    state: s.state ?? old?.state ?? ServerState.LOBBY,
    mode: s.mode ?? old?.mode ?? '',
    tags: s.tags !== undefined ? [...s.tags] : old?.tags ?? [],
    max: s.max ?? old?.max ?? 0,
    fields: s.fields !== undefined ? { ...s.fields } : old?.fields ?? EMPTY,
  }
}

function checkPositive(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be a positive number of milliseconds, got ${String(v)}`)
}

function checkHandler<T>(name: string, h: T | null): T | null {
  if (h !== null && typeof h !== 'function') throw new TypeError(`${name}(handler): handler must be a function or null`)
  return h
}

function fieldsProblem(f: unknown): string | undefined {
  if (f === undefined) return undefined
  if (f === null || typeof f !== 'object') return 'fields must be an object of strings'
  const keys = Object.keys(f)
  if (keys.length > FIELDS_MAX) return `at most ${FIELDS_MAX} fields, got ${keys.length}`
  for (const k of keys) {
    const v = (f as Record<string, unknown>)[k]
    if (k.length === 0 || k.length > FIELD_KEY_MAX) return `field key ${JSON.stringify(k)} must be 1..${FIELD_KEY_MAX} characters`
    if (typeof v !== 'string' || Buffer.byteLength(v) > FIELD_VALUE_MAX_BYTES) return `field ${JSON.stringify(k)} must be a string of at most ${FIELD_VALUE_MAX_BYTES} bytes`
  }
  return undefined
}

function nameProblem(name: unknown): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.length === 0 || name.length > NAME_MAX || /[\u0000-\u001f]/.test(name)) {
    return `player name must be 1..${NAME_MAX} characters without control characters, got ${JSON.stringify(name)}`
  }
  return undefined
}

function checkPlayer(p: PlayerAnnouncement): void {
  if (p === null || typeof p !== 'object') throw new TypeError('join(player): player must be an object { name, xuid?, proxy?, fields? }')
  const problem = nameProblem(p.name) ??
    (p.xuid !== undefined && (typeof p.xuid !== 'string' || !XUID_PATTERN.test(p.xuid)) ? `xuid must be up to 20 digits, got ${JSON.stringify(p.xuid)}` : undefined) ??
    (p.proxy !== undefined && (typeof p.proxy !== 'string' || p.proxy.length > NAME_MAX) ? `proxy must be a node id, got ${JSON.stringify(p.proxy)}` : undefined) ??
    fieldsProblem(p.fields)
  if (problem !== undefined) throw new RangeError(`join(): ${problem}`)
}

/** A received player must be as valid as a local `join()` would allow (else the message is dropped and counted). */
function checkWirePlayer(p: WirePlayer): void {
  const problem = nameProblem(p.name) ?? (XUID_PATTERN.test(p.xuid) ? undefined : 'bad xuid') ?? fieldsProblem(p.fields)
  if (problem !== undefined) throw new RangeError(problem)
}

function checkWord(what: string, v: unknown, allowEmpty: boolean): void {
  if (typeof v !== 'string' || !(WORD_PATTERN.test(v) || (allowEmpty && v === ''))) {
    throw new RangeError(`${what} must be 1..32 characters of a-z 0-9 _ -${allowEmpty ? ' (or empty)' : ''}, got ${JSON.stringify(v)}`)
  }
}

function checkServer(s: ServerSettings): void {
  if (s === null || typeof s !== 'object') throw new TypeError('server settings must be an object { state?, mode?, tags?, max?, fields? }')
  if (s.state !== undefined) checkWord('state', s.state, false)
  if (s.mode !== undefined) checkWord('mode', s.mode, true)
  if (s.tags !== undefined) {
    if (!Array.isArray(s.tags) || s.tags.length > TAGS_MAX) throw new RangeError(`tags must be an array of at most ${TAGS_MAX} tags`)
    for (const t of s.tags) checkWord('tag', t, false)
  }
  if (s.max !== undefined && !(Number.isInteger(s.max) && s.max >= 0 && s.max <= MAX_CAPACITY)) {
    throw new RangeError(`max must be an integer 0..${MAX_CAPACITY} (0 = unlimited), got ${String(s.max)}`)
  }
  const problem = fieldsProblem(s.fields)
  if (problem !== undefined) throw new RangeError(`server: ${problem}`)
}

function checkSelector(sel: ServerSelector, depth = 0): void {
  if (sel === null || typeof sel !== 'object') throw new TypeError('a selector must be an object { mode?, state?, tag?, exclude?, fallback? }')
  if (depth > 8) throw new RangeError('selector fallbacks nest at most 8 deep')
  if (sel.mode !== undefined) checkWord('selector mode', sel.mode, true)
  if (sel.state !== undefined) for (const s of typeof sel.state === 'string' ? [sel.state] : sel.state) checkWord('selector state', s, false)
  if (sel.tag !== undefined) checkWord('selector tag', sel.tag, false)
  if (sel.exclude !== undefined && !Array.isArray(sel.exclude)) throw new TypeError('selector exclude must be an array of server ids')
  if (sel.fallback !== undefined && typeof sel.fallback !== 'string') checkSelector(sel.fallback, depth + 1)
}
