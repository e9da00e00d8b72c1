/**
 * Mesh control messages: the `MeshControl` envelope of `protocol.proto`
 * (loaded through the wire codec's `schema`), its validation, and the
 * constants the coordinator and the node share. Knows nothing of sockets,
 * sessions or time.
 */
import { Buffer } from 'node:buffer'
import type protobuf from 'protobufjs'
import { schema } from '../wire/codec.js'
import {
  ID_MAX_LENGTH, META_KEY_MAX_LENGTH, META_MAX_PAIRS, META_VALUE_MAX_BYTES, ROLE_MAX_LENGTH,
} from '../config.js'
import type { EndpointOptions } from '../endpoint.js'

/** Endpoint channel reserved for mesh control; channels 0..15 belong to the application. */
export const CONTROL_CHANNEL = 16
/** Channels every mesh endpoint must be configured with (application channels + the control channel). */
export const MESH_CHANNELS = 17
/** Application channels: 0 .. APP_CHANNELS-1. */
export const APP_CHANNELS = 16

/** Most topics one node may subscribe to. */
export const MAX_TOPICS = 64
/** Longest topic name, characters. */
export const TOPIC_MAX_LENGTH = 64
/** Longest address string in a peer record. */
const ADDRESS_MAX_LENGTH = 64
/** Longest reason / holder text. */
const TEXT_MAX_LENGTH = 256

/** Kinds of control message (protocol.proto `MeshKind`). */
export const MeshKind = {
  REGISTER: 1,
  HEARTBEAT: 2,
  DEREGISTER: 3,
  REFUSED: 4,
  DELTA: 5,
  SNAPSHOT: 6,
  SNAPSHOT_REQUEST: 7,
  HEARTBEAT_ACK: 8,
  UNKNOWN: 9,
  HELLO: 10,
  REQUEST: 11,
  REPLY: 12,
  PUBLISH: 13,
} as const
export type MeshKind = (typeof MeshKind)[keyof typeof MeshKind]

/** A node's entry in the peer table. */
export interface PeerInfo {
  /** Unique node id. */
  id: string
  /** Role, e.g. `proxy` or `downstream`. */
  role: string
  /** Address other nodes send to (advertised, or as the coordinator saw it). */
  address: string
  /** Port other nodes send to. */
  port: number
  /** The node's endpoint epoch: a restarted node has a new one. */
  epoch: number
  /** Small key/value metadata (at most 32 pairs, keys ≤ 32 chars, values ≤ 128 bytes). */
  meta: Record<string, string>
  /** Topics the node subscribes to. */
  topics: string[]
}

/** A removal in a delta. */
export interface RemovedPeer {
  id: string
  epoch: number
  reason: string
}

/** A decoded `MeshControl` (unset fields read as 0 / empty). */
export interface MeshControl {
  kind: number
  id: string
  epoch: number
  version: number
  baseVersion: number
  peers: PeerInfo[]
  removed: RemovedPeer[]
  complete: boolean
  reason: string
  holder: string
  correlation: number
  data: Uint8Array
  topic: string
  channel: number
  failed: boolean
}

const ControlMsg = schema.lookupType('warpmesh.MeshControl')

/** Encode a control message. */
export function encodeControl(msg: Partial<MeshControl>): Uint8Array {
  return ControlMsg.encode(msg as unknown as protobuf.Message).finish()
}

/**
 * Decode and validate a control message. Returns null for anything malformed
 * (bad protobuf, unknown kind, oversized fields); never throws.
 */
export function decodeControl(data: Uint8Array): MeshControl | null {
  let m: MeshControl
  try {
    m = ControlMsg.decode(data) as unknown as MeshControl
  } catch {
    return null
  }
  if (m.kind < MeshKind.REGISTER || m.kind > MeshKind.PUBLISH) return null
  if (m.id.length > ID_MAX_LENGTH || m.reason.length > TEXT_MAX_LENGTH || m.holder.length > TEXT_MAX_LENGTH ||
    m.topic.length > TOPIC_MAX_LENGTH || m.channel >= APP_CHANNELS) return null
  for (let i = 0; i < m.peers.length; i++) {
    if (!validPeer(m.peers[i])) return null
  }
  for (let i = 0; i < m.removed.length; i++) {
    const r = m.removed[i]
    if (r.id.length === 0 || r.id.length > ID_MAX_LENGTH || r.reason.length > TEXT_MAX_LENGTH) return null
  }
  // A plain object of decodeEnvelope's shape (same fields, same order), not
  // protobufjs's message: code that reads both (the node's inbound dispatch)
  // meets one object layout, where a second one — the first HELLO of a real
  // link after the warm-up — threw its optimized code away ("wrong map").
  return {
    kind: m.kind, id: m.id, epoch: m.epoch, version: m.version, baseVersion: m.baseVersion, peers: m.peers, removed: m.removed,
    complete: m.complete, reason: m.reason, holder: m.holder, correlation: m.correlation, data: m.data, topic: m.topic,
    channel: m.channel, failed: m.failed,
  }
}

/** True when a peer record respects every cap. */
export function validPeer(p: PeerInfo): boolean {
  if (p.id.length === 0 || p.id.length > ID_MAX_LENGTH || p.role.length > ROLE_MAX_LENGTH ||
    p.address.length > ADDRESS_MAX_LENGTH || p.port > 65535 || p.topics.length > MAX_TOPICS) return false
  for (const t of p.topics) if (t.length === 0 || t.length > TOPIC_MAX_LENGTH) return false
  return metaProblem(p.meta) === undefined
}

/** Why `meta` breaks a cap, or undefined when it is fine. */
export function metaProblem(meta: Record<string, string>): string | undefined {
  const keys = Object.keys(meta)
  if (keys.length > META_MAX_PAIRS) return `${keys.length} pairs, at most ${META_MAX_PAIRS}`
  for (const k of keys) {
    if (k.length === 0 || k.length > META_KEY_MAX_LENGTH) return `key ${JSON.stringify(k)} must be 1..${META_KEY_MAX_LENGTH} characters`
    const v = meta[k]
    if (typeof v !== 'string') return `value of ${JSON.stringify(k)} must be a string`
    if (Buffer.byteLength(v, 'utf8') > META_VALUE_MAX_BYTES) return `value of ${JSON.stringify(k)} exceeds ${META_VALUE_MAX_BYTES} bytes`
  }
  return undefined
}

/** A copy of a peer record (decoded objects are never handed out). */
export function copyPeer(p: PeerInfo): PeerInfo {
  return { id: p.id, role: p.role, address: p.address, port: p.port, epoch: p.epoch >>> 0, meta: { ...p.meta }, topics: [...p.topics] }
}

/** True when two records of the same id differ in anything. */
export function samePeer(a: PeerInfo, b: PeerInfo): boolean {
  if (a.id !== b.id || a.role !== b.role || a.address !== b.address || a.port !== b.port || a.epoch !== b.epoch) return false
  if (a.topics.length !== b.topics.length || a.topics.some((t, i) => b.topics[i] !== t)) return false
  const ka = Object.keys(a.meta)
  if (ka.length !== Object.keys(b.meta).length) return false
  return ka.every((k) => a.meta[k] === b.meta[k])
}

/** Options to give an endpoint that carries a mesh, for the timing of a given heartbeat. */
export interface MeshEndpointTiming {
  /** Heartbeat interval, ms. Default 1000. */
  heartbeatMs?: number
  /** Declare a direct peer dead after this long without hearing from it, ms. Default heartbeatMs × leaseMisses. */
  peerTimeoutMs?: number
  /** Missed heartbeats before a lease expires. Default 3. */
  leaseMisses?: number
}

/**
 * The endpoint options a mesh needs: 17 channels (16 = control), the idle
 * timeout from `peerTimeoutMs`, a keepalive well inside it, and handshake
 * retry/timeout scaled to the heartbeat so a restarted coordinator is found
 * again within two heartbeats. `MeshNode.start()` and `Coordinator.start()`
 * apply them when they create the endpoint; pass them yourself when you hand
 * in an `endpoint`.
 */
export function meshEndpointOptions(o: MeshEndpointTiming = {}): EndpointOptions {
  const heartbeatMs = o.heartbeatMs ?? 1000
  const peerTimeoutMs = o.peerTimeoutMs ?? heartbeatMs * (o.leaseMisses ?? 3)
  return {
    channels: MESH_CHANNELS,
    idleTimeoutMs: peerTimeoutMs,
    keepaliveMs: Math.max(1, Math.min(1000, Math.floor(peerTimeoutMs / 3))),
    handshakeRetryMs: Math.max(10, Math.min(200, Math.floor(heartbeatMs / 4))),
    handshakeTimeoutMs: Math.max(500, Math.min(5000, heartbeatMs * 2)),
  }
}
