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

/** Encode one agent → client message with its varint length prefix. */
export function encodeAgentFrame(message: Record<string, unknown>): Uint8Array {
  return AgentMessage.encodeDelimited(message as unknown as protobuf.Message).finish()
}

/** Encode one client → agent message with its varint length prefix. */
export function encodeClientFrame(message: Record<string, unknown>): Uint8Array {
  return ClientMessage.encodeDelimited(message as unknown as protobuf.Message).finish()
}

/** A decoded message: the oneof `body` names the field that is set. */
export interface DecodedMessage {
  /** Name of the set `body` field (`'hello'`, `'send'`, ...), or undefined when none is. */
  readonly body?: string
  readonly [field: string]: unknown
}

/**
 * Decode one frame (without its prefix). Returns the reason as a string when
 * it is not a valid message (protobufjs's own text, e.g. `index out of range`).
 */
export function decodeClientMessage(frame: Uint8Array): DecodedMessage | string {
  try {
    return ClientMessage.decode(frame) as unknown as DecodedMessage
  } catch (err) {
    return (err as Error).message
  }
}

/** As {@link decodeClientMessage}, for agent → client frames. */
export function decodeAgentMessage(frame: Uint8Array): DecodedMessage | string {
  try {
    return AgentMessage.decode(frame) as unknown as DecodedMessage
  } catch (err) {
    return (err as Error).message
  }
}
