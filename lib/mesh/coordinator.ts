/**
 * The coordinator: keeps the peer table as soft state (leases renewed by
 * heartbeats) and pushes every change to every registered node as a
 * versioned delta. It never carries application data: nodes send to each
 * other directly.
 *
 * - Changes made during one event-loop turn are batched into one delta
 *   (`baseVersion` → `version`), encoded once and sent to every node: a join
 *   costs every other node one peer record, whatever the network size.
 * - A node that registers, or whose heartbeat shows another version, gets a
 *   full snapshot.
 * - A restarted coordinator starts empty and "refilling" for one lease
 *   period: its snapshots say `complete: false`, so nodes keep entries it
 *   does not know yet; when the period ends it sends an empty delta with
 *   `complete: true` and nodes drop what nobody re-confirmed.
 * - A second node claiming a live id from another address is refused (both
 *   sides log it). The same address with a new epoch is a restart (two live
 *   processes cannot share an address) and replaces the old entry.
 */
import { EventEmitter } from 'node:events'
import { Endpoint, formatAddress, type Session } from '../endpoint.js'
import { systemClock, type Clock, type TimerHandle } from '../transport/transport.js'
import { silentLogger, type Logger } from '../log.js'
import { Delivery } from '../wire/codec.js'
import {
  CONTROL_CHANNEL, copyPeer, decodeControl, encodeControl, MeshKind, meshEndpointOptions, samePeer,
  type MeshControl, type PeerInfo, type RemovedPeer,
} from './control.js'

export type { PeerInfo } from './control.js'

/** Options of {@link Coordinator.start}. Times in milliseconds. */
export interface CoordinatorOptions {
  /** Name used in logs. Default `'coordinator'`. */
  id?: string
  /** Address to bind. Default `'0.0.0.0'`. Ignored with `endpoint`. */
  address?: string
  /** UDP port to bind. Default 7400. Ignored with `endpoint`. */
  port?: number
  /** Network keys, newest first. Required unless `insecure`. Ignored with `endpoint`. */
  keys?: Uint8Array[]
  /**
   * Largest datagram sent to nodes on other hosts, bytes (576..65000); sets the
   * endpoint's `maxDatagram`. Default 1200. Ignored with `endpoint`.
   */
  maxDatagram?: number
  /**
   * Largest datagram sent to nodes at loopback addresses, bytes (576..65000);
   * sets the endpoint's `loopbackDatagram`. Default: the endpoint's (32768). Ignored with `endpoint`.
   */
  loopbackDatagram?: number
  /** Run without keys (no authentication, no encryption). Default false. */
  insecure?: boolean
  /** Heartbeat interval nodes use, ms. Default 1000. */
  heartbeatMs?: number
  /** Missed heartbeats before a lease expires. Default 3. */
  leaseMisses?: number
  /** Logger. Default silent. */
  logger?: Logger
  /**
   * Use this endpoint instead of binding one (simulated network). It must have
   * 17 channels: create it with {@link meshEndpointOptions}. The coordinator
   * does not close it.
   */
  endpoint?: Endpoint
  /**
   * Changes are collected for this long and pushed as one delta (and joining
   * nodes get their snapshot at the same moment), so a burst of joins costs
   * one message per node per batch instead of one per join. Default 5 ms.
   */
  batchMs?: number
  /** Clock. Default the system clock (with `endpoint`, pass the endpoint's clock). */
  clock?: Clock
}

/** Counters of a {@link Coordinator}. */
export interface CoordinatorStats {
  /** Application messages forwarded: always 0, the coordinator never relays data. */
  dataFramesRelayed: number
  /** Messages received on application channels (nodes never send any; counted and dropped). */
  dataMessagesReceived: number
  /** Bytes of control messages sent (encoded `MeshControl`, before endpoint framing). */
  controlBytesSent: number
  /** Bytes of control messages received. */
  controlBytesReceived: number
  /** Control messages sent / received. */
  controlMessagesSent: number
  controlMessagesReceived: number
  /** Accepted registrations (first joins, restarts and re-registrations). */
  registrations: number
  /** Registrations refused for a duplicate id. */
  refusals: number
  /** Leases that expired. */
  expirations: number
  /** Clean deregistrations. */
  deregistrations: number
  /** Deltas pushed (one per batch, counted once however many nodes get it). */
  deltas: number
  /** Snapshots sent. */
  snapshots: number
  /** Control messages dropped as malformed or unexpected. */
  dropped: number
  /** Registered nodes. */
  nodes: number
}

interface Entry {
  info: PeerInfo
  session: Session | null
  leaseUntil: number
  needsSnapshot: boolean
}

/**
 * A coordinator. Events: `'registered'` (PeerInfo), `'refused'` (id, address,
 * holder), `'expired'` (PeerInfo), `'deregistered'` (PeerInfo).
 */
export class Coordinator extends EventEmitter {
  /** Name used in logs. */
  readonly id: string
  /** Current table version (incremented once per delta batch). */
  version = 0
  readonly #endpoint: Endpoint
  readonly #ownsEndpoint: boolean
  readonly #clock: Clock
  readonly #log: Logger
  readonly #heartbeatMs: number
  readonly #leaseMs: number
  readonly #batchMs: number
  readonly #entries = new Map<string, Entry>()
  #upserts = new Map<string, PeerInfo>()
  #removed = new Map<string, RemovedPeer>()
  #flushScheduled = false
  #complete = false
  #timer: TimerHandle | null = null
  #completeTimer: TimerHandle | null = null
  #closed = false
  readonly #stats: CoordinatorStats = {
    dataFramesRelayed: 0, dataMessagesReceived: 0, controlBytesSent: 0, controlBytesReceived: 0,
    controlMessagesSent: 0, controlMessagesReceived: 0, registrations: 0, refusals: 0, expirations: 0,
    deregistrations: 0, deltas: 0, snapshots: 0, dropped: 0, nodes: 0,
  }

  private constructor(endpoint: Endpoint, owns: boolean, o: CoordinatorOptions) {
    super()
    this.id = o.id ?? 'coordinator'
    this.#endpoint = endpoint
    this.#ownsEndpoint = owns
    this.#clock = o.clock ?? systemClock
    this.#log = (o.logger ?? silentLogger).child({ coordinator: this.id })
    this.#heartbeatMs = o.heartbeatMs ?? 1000
    this.#leaseMs = this.#heartbeatMs * (o.leaseMisses ?? 3)
    this.#batchMs = o.batchMs ?? 5
    endpoint.on('message', this.#onMessage)
    endpoint.on('session-down', this.#onSessionDown)
    this.#timer = this.#clock.setTimer(this.#checkLeases, this.#heartbeatMs)
    // Refilling: nodes re-register within two heartbeats; a lease period covers it with margin.
    this.#completeTimer = this.#clock.setTimer(this.#markComplete, this.#leaseMs)
  }

  /** Bind (or adopt `endpoint`) and start serving. */
  static async start(o: CoordinatorOptions = {}): Promise<Coordinator> {
    const heartbeatMs = o.heartbeatMs ?? 1000
    const leaseMisses = o.leaseMisses ?? 3
    if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0) throw new RangeError(`heartbeatMs must be a positive number of milliseconds, got ${heartbeatMs}`)
    if (!Number.isInteger(leaseMisses) || leaseMisses < 1) throw new RangeError(`leaseMisses must be an integer >= 1, got ${leaseMisses}`)
    if (o.endpoint !== undefined) return new Coordinator(o.endpoint, false, o)
    const endpoint = await Endpoint.create({
      ...meshEndpointOptions({ heartbeatMs, leaseMisses }),
      address: o.address ?? '0.0.0.0',
      port: o.port ?? 7400,
      keys: o.keys,
      maxDatagram: o.maxDatagram,
      loopbackDatagram: o.loopbackDatagram,
      insecure: o.insecure,
      logger: o.logger,
      clock: o.clock,
    })
    const c = new Coordinator(endpoint, true, o)
    c.#log.info('coordinator listening', { address: endpoint.address, port: endpoint.port, secure: endpoint.secure })
    return c
  }

  /** UDP port the coordinator listens on. */
  get port(): number {
    return this.#endpoint.port
  }

  /** The endpoint underneath. */
  get endpoint(): Endpoint {
    return this.#endpoint
  }

  /** False while refilling after a start (one lease period). */
  get complete(): boolean {
    return this.#complete
  }

  /** A copy of the peer table. */
  table(): PeerInfo[] {
    return [...this.#entries.values()].map((e) => copyPeer(e.info))
  }

  /** A snapshot of the counters. */
  stats(): CoordinatorStats {
    return { ...this.#stats, nodes: this.#entries.size }
  }

  /** Stop: close the endpoint if we created it (nodes keep their tables and keep talking). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer)
    if (this.#completeTimer !== null) this.#clock.clearTimer(this.#completeTimer)
    this.#endpoint.off('message', this.#onMessage)
    this.#endpoint.off('session-down', this.#onSessionDown)
    if (this.#ownsEndpoint) await this.#endpoint.close()
  }

  readonly #onMessage = (data: Uint8Array, s: Session, channel: number): void => {
    if (this.#closed) return
    if (channel !== CONTROL_CHANNEL) {
      this.#stats.dataMessagesReceived++
      return
    }
    this.#stats.controlBytesReceived += data.length
    this.#stats.controlMessagesReceived++
    const m = decodeControl(data)
    if (m === null) {
      this.#stats.dropped++
      return
    }
    switch (m.kind) {
      case MeshKind.REGISTER: return this.#onRegister(m, s)
      case MeshKind.HEARTBEAT: return this.#onHeartbeat(m, s)
      case MeshKind.DEREGISTER: return this.#onDeregister(m, s)
      case MeshKind.SNAPSHOT_REQUEST: return this.#sendSnapshot(s)
      default:
        this.#stats.dropped++
    }
  }

  readonly #onSessionDown = (s: Session): void => {
    // The lease decides; only forget the session so no push is attempted on it.
    const e = s.data as Entry | null
    if (e !== null && typeof e === 'object' && e.session === s) e.session = null
  }

  #onRegister(m: MeshControl, s: Session): void {
    const claim = m.peers[0]
    if (claim === undefined || claim.id === '') {
      this.#stats.dropped++
      return
    }
    const info = copyPeer(claim)
    info.epoch = s.remoteEpoch >>> 0 // the endpoint vouches for the epoch, not the message
    if (info.address === '' || info.port === 0) {
      info.address = s.remoteAddress
      info.port = s.remotePort
    }
    const now = this.#clock.now()
    const old = this.#entries.get(info.id)
    if (old !== undefined && old.leaseUntil > now && old.info.epoch !== info.epoch &&
      !(old.info.address === info.address && old.info.port === info.port) &&
      !(old.session !== null && old.session.remote === s.remote)) {
      this.#stats.refusals++
      const holder = formatAddress(old.info.address, old.info.port)
      this.#log.warn('registration refused: duplicate node id', { id: info.id, claimant: s.remote, holder, holderEpoch: old.info.epoch })
      this.#send(s, encodeControl({
        kind: MeshKind.REFUSED, id: info.id, holder,
        reason: `node id "${info.id}" is held by a live node at ${holder}; it is free once that node's lease expires (${this.#leaseMs} ms without heartbeat)`,
      }))
      this.emit('refused', info.id, s.remote, holder)
      return
    }
    this.#stats.registrations++
    const entry: Entry = old ?? { info, session: s, leaseUntil: 0, needsSnapshot: true }
    if (old !== undefined && old.session !== s && old.session !== null && old.info.epoch !== info.epoch) {
      // The same address with a new epoch: the node restarted.
      this.#removed.set(info.id, { id: info.id, epoch: old.info.epoch, reason: 'replaced' })
    }
    const changed = old === undefined || !samePeer(old.info, info)
    // A new session (join, restart, reconnect) needs the table; an update on the same session does not.
    const needsSnapshot = old === undefined || old.session !== s || old.info.epoch !== info.epoch
    entry.info = info
    entry.session = s
    entry.leaseUntil = now + this.#leaseMs
    if (needsSnapshot) entry.needsSnapshot = true
    s.data = entry
    this.#entries.set(info.id, entry)
    if (changed) {
      this.#upserts.set(info.id, info)
      if (old === undefined) this.#log.info('node registered', { id: info.id, role: info.role, address: formatAddress(info.address, info.port) })
      this.emit('registered', copyPeer(info))
    }
    this.#scheduleFlush()
  }

  #onHeartbeat(m: MeshControl, s: Session): void {
    const e = this.#entries.get(m.id)
    if (e === undefined || e.info.epoch !== (s.remoteEpoch >>> 0)) {
      this.#send(s, encodeControl({ kind: MeshKind.UNKNOWN, id: m.id }))
      return
    }
    e.leaseUntil = this.#clock.now() + this.#leaseMs
    if (e.session !== s) {
      e.session = s
      s.data = e
    }
    // Sent before any pending delta on the same ordered channel, so a node
    // compares it with the version it holds after applying everything sent so far.
    this.#send(s, encodeControl({ kind: MeshKind.HEARTBEAT_ACK, version: this.version }))
  }

  #onDeregister(m: MeshControl, s: Session): void {
    const e = this.#entries.get(m.id)
    if (e === undefined || e.info.epoch !== (s.remoteEpoch >>> 0)) return
    this.#stats.deregistrations++
    this.#remove(e, 'left')
    this.emit('deregistered', copyPeer(e.info))
    this.#log.info('node deregistered', { id: e.info.id })
  }

  #remove(e: Entry, reason: string): void {
    this.#entries.delete(e.info.id)
    this.#upserts.delete(e.info.id)
    this.#removed.set(e.info.id, { id: e.info.id, epoch: e.info.epoch, reason })
    if (e.session !== null && e.session.data === e) e.session.data = null
    this.#scheduleFlush()
  }

  readonly #checkLeases = (): void => {
    this.#timer = null
    if (this.#closed) return
    const now = this.#clock.now()
    for (const e of [...this.#entries.values()]) {
      if (e.leaseUntil <= now) {
        this.#stats.expirations++
        this.#log.info('lease expired', { id: e.info.id, address: formatAddress(e.info.address, e.info.port) })
        this.#remove(e, 'expired')
        this.emit('expired', copyPeer(e.info))
      }
    }
    this.#timer = this.#clock.setTimer(this.#checkLeases, this.#heartbeatMs)
  }

  readonly #markComplete = (): void => {
    this.#completeTimer = null
    if (this.#closed) return
    this.#complete = true
    this.#scheduleFlush(true)
  }

  #forceDelta = false

  #scheduleFlush(force = false): void {
    if (force) this.#forceDelta = true
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    if (this.#batchMs > 0) this.#clock.setTimer(this.#flush, this.#batchMs)
    else this.#clock.defer(this.#flush)
  }

  /** One batch: the delta to every node that has a snapshot, then snapshots to the rest. */
  readonly #flush = (): void => {
    this.#flushScheduled = false
    if (this.#closed) return
    if (this.#upserts.size > 0 || this.#removed.size > 0 || this.#forceDelta) {
      const base = this.version
      this.version = (this.version + 1) >>> 0
      const bytes = encodeControl({
        kind: MeshKind.DELTA, baseVersion: base, version: this.version,
        peers: [...this.#upserts.values()], removed: [...this.#removed.values()], complete: this.#complete,
      })
      this.#upserts = new Map()
      this.#removed = new Map()
      this.#forceDelta = false
      this.#stats.deltas++
      for (const e of this.#entries.values()) {
        if (!e.needsSnapshot && e.session !== null) this.#send(e.session, bytes)
      }
    }
    let snapshot: Uint8Array | null = null
    for (const e of this.#entries.values()) {
      if (!e.needsSnapshot || e.session === null) continue
      e.needsSnapshot = false
      snapshot ??= this.#encodeSnapshot()
      this.#send(e.session, snapshot)
      this.#stats.snapshots++
    }
  }

  #encodeSnapshot(): Uint8Array {
    return encodeControl({
      kind: MeshKind.SNAPSHOT, version: this.version, complete: this.#complete,
      peers: [...this.#entries.values()].map((e) => e.info),
    })
  }

  #sendSnapshot(s: Session): void {
    this.#stats.snapshots++
    this.#send(s, this.#encodeSnapshot())
  }

  #send(s: Session, bytes: Uint8Array): void {
    if (!s.isOpen) return
    try {
      s.send(bytes, { channel: CONTROL_CHANNEL, delivery: Delivery.RELIABLE_ORDERED })
      this.#stats.controlBytesSent += bytes.length
      this.#stats.controlMessagesSent++
    } catch (err) {
      // Queue full: this node misses a delta; its next heartbeat shows the gap and gets a snapshot.
      this.#log.rateLimited(`send-failed:${s.remote}`, 5000).warn('control message not queued', { peer: s.remote, error: (err as Error).message })
    }
  }
}
