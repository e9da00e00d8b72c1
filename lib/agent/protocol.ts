/**
 * The agent's client protocol: constants and the protobuf codec of
 * `agent.proto` (at the repository top level, shipped in the package next to
 * `protocol.proto`), loaded by protobufjs reflection at start-up.
 *
 * Every frame on the local stream socket is one `ClientMessage` (client →
 * agent) or `AgentMessage` (agent → client) preceded by its length as a
 * protobuf varint (see lib/agent/framing.ts). This module knows nothing of
 * sockets or sessions.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import { Delivery } from '../wire/codec.js'
import { DEFAULT_AGENT_CLIENT_BUFFER, DEFAULT_AGENT_SOCKET as DEFAULT_SOCKET_PATH } from '../config.js'
import type { PlayerInfo, ServerInfo, ServerSelector, ServerSettings } from '../services/types.js'

/** Version carried in `Hello.protocol_version` and `Welcome.protocol_version`. */
export const AGENT_PROTOCOL_VERSION = 1
/** Largest frame (message bytes, without the length prefix) either side accepts: 1 MiB + 4 KiB. */
export const AGENT_MAX_FRAME = 1024 * 1024 + 4 * 1024
/** Default path of the agent's Unix domain socket (`WARPMESH_AGENT_SOCKET`). */
export const DEFAULT_AGENT_SOCKET = DEFAULT_SOCKET_PATH
/** Default bound of the events buffered for one client, in bytes (`WARPMESH_AGENT_CLIENT_BUFFER`): 8 MiB. */
export const DEFAULT_CLIENT_BUFFER = DEFAULT_AGENT_CLIENT_BUFFER

/** `agent.proto` `ErrorCode`, by name. Values are stable (they are the wire numbers). */
export const AgentErrorCode = {
  BAD_MESSAGE: 1,
  TOO_LARGE: 2,
  NOT_HELLO: 3,
  UNAUTHORIZED: 4,
  DUPLICATE_ID: 5,
  DUPLICATE_NODE: 6,
  INVALID_ARGUMENT: 7,
  UNKNOWN_PEER: 8,
  PEER_DOWN: 9,
  TIMEOUT: 10,
  OVERLOADED: 11,
  REMOTE_ERROR: 12,
  CLOSED: 13,
  SLOW_CLIENT: 14,
  UNKNOWN_REQUEST: 15,
  START_FAILED: 16,
  INTERNAL: 17,
  SERVICES_OFF: 18,
  UNKNOWN_PLAYER: 19,
  NO_SUCH_SERVER: 20,
  SERVER_FULL: 21,
  REFUSED: 22,
  TARGET_DOWN: 23,
  TRANSFER_CONFLICT: 24,
} as const
/** A name of {@link AgentErrorCode}. */
export type AgentErrorName = keyof typeof AgentErrorCode

const ERROR_NAMES: readonly string[] = (() => {
  const names: string[] = []
  for (const [name, value] of Object.entries(AgentErrorCode)) names[value] = name
  return names
})()

/** The name of an `ErrorCode` number (`'TIMEOUT'`), or `'ERROR_CODE_<n>'` for a number this version does not know. */
export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `ERROR_CODE_${code}`
}

/** `PeerEvent.Kind` values. */
export const PeerEventKind = { UP: 1, DOWN: 2, UPDATED: 3 } as const

/** `ServiceCall.Kind` values (also the values of `Hello.handles`). */
export const ServiceCallKind = { TRANSFER_REQUEST: 1, MOVE: 2, MESSAGE: 3, KICK: 4 } as const
/** A value of {@link ServiceCallKind}. */
export type ServiceCallKindValue = (typeof ServiceCallKind)[keyof typeof ServiceCallKind]

/** `PlayerEvent.Kind` values. */
export const PlayerEventKind = { JOINED: 1, LEFT: 2, MOVED: 3 } as const

/**
 * `agent.proto` `Delivery` (0 = default, then the wire format's values + 1)
 * to MeshNode's {@link Delivery}; -1 for a value out of range.
 */
export function meshDelivery(delivery: number): Delivery | -1 {
  if (delivery === 0) return Delivery.RELIABLE_ORDERED
  return delivery >= 1 && delivery <= 4 ? ((delivery - 1) as Delivery) : -1
}

/** MeshNode's {@link Delivery} to `agent.proto` `Delivery`. */
export function protoDelivery(delivery: Delivery): number {
  return delivery + 1
}

function findFile(name: string): string {
  for (const rel of [`../../${name}`, `../../../${name}`]) {
    const path = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(path)) return path
  }
  /* c8 ignore next */
  throw new Error(`warpmesh: ${name} not found next to the package`)
}

/** The warpmesh package version (Welcome.agent_version). */
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(findFile('package.json'), 'utf8')) as { version: string }).version

/** The parsed `agent.proto`. */
export const agentSchema = protobuf.loadSync(findFile('agent.proto'))
/** `warpmesh.agent.ClientMessage` (client → agent). */
export const ClientMessage = agentSchema.lookupType('warpmesh.agent.ClientMessage')
/** `warpmesh.agent.AgentMessage` (agent → client). */
export const AgentMessage = agentSchema.lookupType('warpmesh.agent.AgentMessage')

/**
 * A uint64 as protobufjs decodes it: a number, or a `Long` when the `long`
 * package is present (it is: protobufjs depends on it).
 */
export type Uint64 = number | { low: number; high: number; unsigned?: boolean; toString(): string }

/**
 * A map key for a uint64 id: the number itself up to 2^53, its decimal text
 * above. 0 for 0.
 */
export function idKey(id: Uint64 | null | undefined): number | string {
  if (id === null || id === undefined) return 0
  if (typeof id === 'number') return id
  const high = id.high >>> 0
  if (high < 0x200000) return high * 0x100000000 + (id.low >>> 0)
  return id.toString()
}

interface OneofField { readonly id: number; readonly tag: number; readonly type: protobuf.Type; readonly name: string }

/** The `body` fields of a message: by name, and by field number. */
function oneofFields(type: protobuf.Type): { byName: Map<string, OneofField>; byId: (OneofField | undefined)[] } {
  const byName = new Map<string, OneofField>()
  const byId: (OneofField | undefined)[] = []
  for (const f of type.oneofsArray[0]!.fieldsArray) {
    const field = { id: f.id, tag: ((f.id << 3) | 2) >>> 0, type: f.resolve().resolvedType as protobuf.Type, name: f.name }
    byName.set(f.name, field)
    byId[f.id] = field
  }
  return { byName, byId }
}

const AGENT_FIELDS = oneofFields(AgentMessage)
const CLIENT_FIELDS = oneofFields(ClientMessage)

/** The name of an `AgentMessage` body field (`'message'`, `'response'`, `'peerEvent'`, ...). */
export type AgentBody =
  | 'welcome' | 'message' | 'incomingRequest' | 'response' | 'result' | 'error' | 'peerEvent' | 'coordinatorEvent'
  | 'undelivered' | 'peers' | 'stats' | 'goodbye'
  | 'playerResult' | 'playerList' | 'serverList' | 'transferDone' | 'serviceCall' | 'playerEvent' | 'serverEvent'
/** The name of a `ClientMessage` body field (`'send'`, `'request'`, ...). */
export type ClientBody =
  | 'hello' | 'send' | 'request' | 'reply' | 'broadcast' | 'publish' | 'subscribe' | 'unsubscribe' | 'setMeta'
  | 'getPeers' | 'getStats' | 'goodbye'
  | 'playerJoin' | 'playerLeave' | 'setServer' | 'locate' | 'listPlayers' | 'getServers' | 'transfer' | 'messagePlayer'
  | 'kickPlayer' | 'serviceAnswer'

function writeFrame(fields: Map<string, OneofField>, w: protobuf.Writer, body: string, value: object): void {
  const f = fields.get(body)
  /* c8 ignore next */
  if (f === undefined) throw new TypeError(`no message body ${JSON.stringify(body)}`)
  w.fork().uint32(f.tag).fork()
  f.type.encode(value as protobuf.Message, w)
  w.ldelim().ldelim()
}

/**
 * Append one agent → client frame (length prefix, then an `AgentMessage`
 * whose `body` is `body` = `value`) to `w`. Several frames may share one
 * writer: that is how a tick's frames become one socket write.
 */
export function writeAgentMessage(w: protobuf.Writer, body: AgentBody, value: object): void {
  writeFrame(AGENT_FIELDS.byName, w, body, value)
}

/** As {@link writeAgentMessage}, for client → agent frames. */
export function writeClientMessage(w: protobuf.Writer, body: ClientBody, value: object): void {
  writeFrame(CLIENT_FIELDS.byName, w, body, value)
}

/** A new protobufjs writer (for {@link writeAgentMessage} / {@link writeClientMessage}). */
export function createWriter(): protobuf.Writer {
  return protobuf.Writer.create()
}

/** Encode one agent → client message with its varint length prefix. */
export function encodeAgentFrame(message: Record<string, unknown>): Uint8Array {
  return AgentMessage.encodeDelimited(message as unknown as protobuf.Message).finish()
}

/** Encode one client → agent message with its varint length prefix. */
export function encodeClientFrame(message: Record<string, unknown>): Uint8Array {
  return ClientMessage.encodeDelimited(message as unknown as protobuf.Message).finish()
}

/** A decoded message: `body` names the field that is set, `value` is it. */
export interface Decoded {
  /** Name of the set `body` field (`'hello'`, `'send'`, ...), or undefined when none is. */
  readonly body: string | undefined
  /** The decoded body message (an empty object when no body is set). */
  readonly value: DecodedMessage
}

/** Fields of a decoded message, by their camelCase names. */
export interface DecodedMessage {
  readonly [field: string]: unknown
}

const EMPTY: DecodedMessage = Object.freeze({})

/**
 * Decode the outer message by hand: protobufjs's reflection decoder of a
 * oneof deletes the other members of the oneof from the object at every
 * field (12 here), which costs more than the rest of the decode. The body
 * is decoded by protobufjs. As in protobuf, the last body field wins and
 * unknown fields are skipped.
 */
function decodeFrame(byId: (OneofField | undefined)[], frame: Uint8Array): Decoded | string {
  const end = frame.length
  let pos = 0
  let body: OneofField | undefined
  let start = 0
  let length = 0
  while (pos < end) {
    let tag = 0
    let shift = 0
    for (;;) {
      if (pos >= end) return 'truncated field tag'
      if (shift > 28) return 'field tag too long'
      const b = frame[pos++] as number
      tag += (b & 0x7f) * 2 ** shift
      shift += 7
      if (b < 0x80) break
    }
    const wire = tag & 7
    if (wire === 2) {
      let len = 0
      shift = 0
      for (;;) {
        if (pos >= end) return 'truncated field length'
        if (shift > 28) return 'field length too long'
        const b = frame[pos++] as number
        len += (b & 0x7f) * 2 ** shift
        shift += 7
        if (b < 0x80) break
      }
      if (len > end - pos) return `field ${Math.floor(tag / 8)} declares ${len} bytes, ${end - pos} left`
      const f = byId[Math.floor(tag / 8)]
      if (f !== undefined) {
        body = f
        start = pos
        length = len
      }
      pos += len
    } else if (wire === 0) {
      while (pos < end && (frame[pos] as number) >= 0x80) pos++
      pos++
    } else if (wire === 1) pos += 8
    else if (wire === 5) pos += 4
    else return `invalid wire type ${wire} at byte ${pos - 1}`
    if (pos > end) return 'truncated field'
  }
  if (body === undefined) return { body: undefined, value: EMPTY }
  try {
    return { body: body.name, value: body.type.decode(frame.subarray(start, start + length)) as unknown as DecodedMessage }
  } catch (err) {
    return `${body.name}: ${(err as Error).message}`
  }
}

/**
 * Decode one client → agent frame (without its prefix). Returns the reason
 * as a string when it is not a valid message.
 */
export function decodeClientMessage(frame: Uint8Array): Decoded | string {
  return decodeFrame(CLIENT_FIELDS.byId, frame)
}

/** As {@link decodeClientMessage}, for agent → client frames. */
export function decodeAgentMessage(frame: Uint8Array): Decoded | string {
  return decodeFrame(AGENT_FIELDS.byId, frame)
}

// ------------------------------------------------------------ network services ⇄ agent.proto

/** Longest chain of `Selector.fallback` selectors accepted (the selector itself counts as 1). */
export const MAX_SELECTOR_DEPTH = 8

/** A directory {@link PlayerInfo} as an `agent.proto` `Player`. */
export function playerOut(p: PlayerInfo): Record<string, unknown> {
  return { name: p.name, xuid: p.xuid, server: p.server, proxy: p.proxy, fields: p.fields }
}

/** A decoded `Player` as a {@link PlayerInfo} (copies). */
export function playerIn(m: DecodedMessage | null | undefined): PlayerInfo {
  if (m === null || m === undefined) return { name: '', xuid: '', server: '', proxy: '', fields: {} }
  return {
    name: m.name as string, xuid: m.xuid as string, server: m.server as string, proxy: m.proxy as string,
    fields: { ...(m.fields as Record<string, string>) },
  }
}

/** A registry {@link ServerInfo} as an `agent.proto` `ServerInfo`. */
export function serverInfoOut(s: ServerInfo): Record<string, unknown> {
  return { id: s.id, role: s.role, state: s.state, mode: s.mode, tags: s.tags, players: s.players, max: s.max, fields: s.fields }
}

/** A decoded `ServerInfo` as a {@link ServerInfo} (copies). */
export function serverInfoIn(m: DecodedMessage): ServerInfo {
  return {
    id: m.id as string, role: m.role as string, state: m.state as string, mode: m.mode as string, tags: [...(m.tags as string[])],
    players: m.players as number, max: m.max as number, fields: { ...(m.fields as Record<string, string>) },
  }
}

/**
 * A decoded `ServerSettings` as {@link ServerSettings}: an empty state or
 * mode, no tags, max 0 and no fields are left unset (they keep their value)
 * unless the matching `set_*` flag says to replace them.
 */
export function serverSettingsIn(m: DecodedMessage): ServerSettings {
  const out: ServerSettings = {}
  if (m.state !== '') out.state = m.state as string
  if (m.mode !== '') out.mode = m.mode as string
  const tags = m.tags as string[]
  if (tags.length > 0 || m.setTags === true) out.tags = [...tags]
  if (m.max !== 0 || m.setMax === true) out.max = m.max as number
  const fields = m.fields as Record<string, string>
  if (Object.keys(fields).length > 0 || m.setFields === true) out.fields = { ...fields }
  return out
}

/** {@link ServerSettings} as an `agent.proto` `ServerSettings`: every field given is sent with its `set_*` flag. */
export function serverSettingsOut(s: ServerSettings): Record<string, unknown> {
  return {
    state: s.state ?? '', mode: s.mode ?? '',
    tags: s.tags ?? [], setTags: s.tags !== undefined,
    max: s.max ?? 0, setMax: s.max !== undefined,
    fields: s.fields ?? {}, setFields: s.fields !== undefined,
  }
}

/**
 * A decoded `Selector` as a {@link ServerSelector} (empty fields match any).
 * Throws `RangeError` when its fallback chain is longer than {@link MAX_SELECTOR_DEPTH}.
 */
export function selectorIn(m: DecodedMessage, depth = 1): ServerSelector {
  if (depth > MAX_SELECTOR_DEPTH) throw new RangeError(`Selector: fallback selectors nested deeper than ${MAX_SELECTOR_DEPTH}`)
  const out: ServerSelector = {}
  if (m.mode !== '') out.mode = m.mode as string
  const states = m.states as string[]
  if (states.length === 1) out.state = states[0]!
  else if (states.length > 1) out.state = [...states]
  if (m.tag !== '') out.tag = m.tag as string
  const exclude = m.exclude as string[]
  if (exclude.length > 0) out.exclude = [...exclude]
  if (m.fallbackServer !== '') out.fallback = m.fallbackServer as string
  else if (m.fallback !== null && m.fallback !== undefined) out.fallback = selectorIn(m.fallback as DecodedMessage, depth + 1)
  return out
}

/** A {@link ServerSelector} as an `agent.proto` `Selector`. */
export function selectorOut(s: ServerSelector): Record<string, unknown> {
  const states = s.state === undefined ? [] : typeof s.state === 'string' ? [s.state] : s.state
  const f = s.fallback
  return {
    mode: s.mode ?? '', states, tag: s.tag ?? '', exclude: s.exclude ?? [],
    fallbackServer: typeof f === 'string' ? f : '',
    ...(f !== undefined && typeof f !== 'string' ? { fallback: selectorOut(f) } : {}),
  }
}
