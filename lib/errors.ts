/**
 * The errors warpmesh lets reach its users. Every one is a {@link WarpmeshError}
 * with a stable string `code` (switch on the code, not on the message, which
 * may be reworded) and, where another error caused it, the ES2022 `cause`.
 *
 * Bad input from the network never produces one of these: a bad datagram is
 * dropped and counted. These are for caller mistakes that only show at run
 * time, configuration, and the fate of operations the caller is waiting on.
 *
 * @module
 */

/** Every `code` a {@link WarpmeshError} can carry. Values are stable across releases. */
export const ErrorCode = {
  /** {@link WarpmeshError} constructed directly (no more specific class applies). */
  Generic: 'ERR_WARPMESH',
  /** {@link ConfigError}. */
  Config: 'ERR_WARPMESH_CONFIG',
  /** {@link SessionClosedError}. */
  SessionClosed: 'ERR_WARPMESH_SESSION_CLOSED',
  /** {@link TimeoutError}. */
  Timeout: 'ERR_WARPMESH_TIMEOUT',
  /** {@link PeerDownError}. */
  PeerDown: 'ERR_WARPMESH_PEER_DOWN',
  /** {@link UnknownPeerError}. */
  UnknownPeer: 'ERR_WARPMESH_UNKNOWN_PEER',
  /** {@link ClosedError}. */
  Closed: 'ERR_WARPMESH_CLOSED',
  /** {@link QueueFullError}. */
  QueueFull: 'ERR_WARPMESH_QUEUE_FULL',
  /** {@link DuplicateIdError}. */
  DuplicateId: 'ERR_WARPMESH_DUPLICATE_ID',
  /** {@link HandshakeError}. */
  Handshake: 'ERR_WARPMESH_HANDSHAKE',
  /** {@link NativeModuleError}. */
  NativeModule: 'ERR_WARPMESH_NATIVE_MODULE',
  /** {@link UnknownPlayerError}. */
  UnknownPlayer: 'ERR_WARPMESH_UNKNOWN_PLAYER',
  /** {@link NoSuchServerError}. */
  NoSuchServer: 'ERR_WARPMESH_NO_SUCH_SERVER',
  /** {@link ServerFullError}. */
  ServerFull: 'ERR_WARPMESH_SERVER_FULL',
  /** {@link RefusedError}. */
  Refused: 'ERR_WARPMESH_REFUSED',
  /** {@link TargetDownError}. */
  TargetDown: 'ERR_WARPMESH_TARGET_DOWN',
  /** {@link TransferConflictError}. */
  TransferConflict: 'ERR_WARPMESH_TRANSFER_CONFLICT',
} as const

/** Union of the values of {@link ErrorCode}. */
export type WarpmeshErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** Options every warpmesh error accepts. */
export interface WarpmeshErrorOptions {
  /** The lower-level error that caused this one (ES2022 error cause). Default: none. */
  cause?: unknown
}

/** Options of the errors whose message has a sensible default. */
export interface MessageOptions extends WarpmeshErrorOptions {
  /** Replaces the default message. Default: the message described on the class. */
  message?: string
}

/**
 * Base class of every error warpmesh throws or rejects with on purpose.
 * Thrown directly only when no more specific class applies (code `ERR_WARPMESH`).
 *
 * Prefer `err.code` (or {@link isWarpmeshError}) over `instanceof` when two
 * copies of warpmesh may be loaded in one process.
 */
export class WarpmeshError extends Error {
  static {
    this.prototype.name = 'WarpmeshError'
  }

  /** Stable machine-readable code, one of {@link ErrorCode}. */
  readonly code: WarpmeshErrorCode

  /**
   * @param message - human-readable description.
   * @param code - stable code. Default `ERR_WARPMESH`.
   * @param options - `cause`.
   */
  constructor(message: string, code: WarpmeshErrorCode = ErrorCode.Generic, options?: WarpmeshErrorOptions) {
    super(message, options !== undefined && 'cause' in options ? { cause: options.cause } : undefined)
    this.code = code
  }
}

/** Options of {@link ConfigError}. */
export interface ConfigErrorOptions extends WarpmeshErrorOptions {
  /**
   * What exactly is wrong, when it is more specific than "not of the expected
   * form", e.g. `port 70000 is out of range 1..65535`. Default: none.
   */
  reason?: string
}

/** Longest stretch of the offending value quoted in a {@link ConfigError} message, in characters. */
export const CONFIG_VALUE_QUOTE_MAX = 120

function quoteValue(value: string): string {
  if (value.length <= CONFIG_VALUE_QUOTE_MAX) return JSON.stringify(value)
  return `${JSON.stringify(value.slice(0, CONFIG_VALUE_QUOTE_MAX))}… (${value.length} characters)`
}

/**
 * A configuration value (an environment variable or the equivalent option)
 * is invalid. Thrown at start-up by `nodeOptionsFromEnv()`,
 * `coordinatorOptionsFromEnv()` and the `parse*` functions of `lib/config.ts`,
 * before any socket is opened. Code `ERR_WARPMESH_CONFIG`.
 *
 * Message: `WARPMESH_BIND="abc" is invalid: expected host:port, e.g. 0.0.0.0:7400`,
 * with the `reason` before `expected` when there is one:
 * `WARPMESH_BIND="1.2.3.4:70000" is invalid: port 70000 is out of range 1..65535; expected host:port, e.g. 0.0.0.0:7400`.
 * Values longer than {@link CONFIG_VALUE_QUOTE_MAX} characters are cut in the
 * message (the `value` field keeps all of it). A required variable that is
 * unset (`value` undefined) reads `WARPMESH_ID is not set: expected …`.
 *
 * Callers validating secrets must pass a redacted `value`: it is printed.
 */
export class ConfigError extends WarpmeshError {
  static {
    this.prototype.name = 'ConfigError'
  }

  declare readonly code: typeof ErrorCode.Config
  /** Name of the environment variable (or option), e.g. `WARPMESH_BIND`. */
  readonly variable: string
  /** The value as given; `undefined` when the variable is unset. */
  readonly value: string | undefined
  /** The expected form, with an example, e.g. `host:port, e.g. 0.0.0.0:7400`. */
  readonly expected: string
  /** What exactly is wrong, if more specific than the expected form; otherwise `undefined`. */
  readonly reason: string | undefined

  /**
   * @param variable - the environment variable or option name.
   * @param value - the offending value; `undefined` when a required variable is unset.
   * @param expected - the expected form, ideally with an example.
   * @param options - `reason`, `cause`.
   */
  constructor(variable: string, value: string | undefined, expected: string, options?: ConfigErrorOptions) {
    const reason = options?.reason
    const what = value === undefined ? `${variable} is not set` : `${variable}=${quoteValue(value)} is invalid`
    super(`${what}: ${reason !== undefined ? `${reason}; ` : ''}expected ${expected}`, ErrorCode.Config, options)
    this.variable = variable
    this.value = value
    this.expected = expected
    this.reason = reason
  }
}

/**
 * Why a session ended. The listed values are the ones warpmesh produces;
 * any other string may appear in later versions.
 *
 * - `closed`: this side closed it (`close()`).
 * - `peer-closed`: the peer closed it.
 * - `idle-timeout`: nothing heard from the peer within the idle timeout.
 * - `handshake-failed`: the session never got established.
 * - `protocol-violation`: the peer broke the protocol.
 * - `replaced`: the peer restarted and a new session (new epoch) replaced this one.
 */
export type SessionCloseReason =
  | 'closed'
  | 'peer-closed'
  | 'idle-timeout'
  | 'handshake-failed'
  | 'protocol-violation'
  | 'replaced'
  | (string & {})

/**
 * A session with a peer ended while an operation needed it. Pending sends
 * and operations bound to that session reject with it. Code
 * `ERR_WARPMESH_SESSION_CLOSED`. Default message: `session closed: <reason>`.
 */
export class SessionClosedError extends WarpmeshError {
  static {
    this.prototype.name = 'SessionClosedError'
  }

  declare readonly code: typeof ErrorCode.SessionClosed
  /** Why the session ended. */
  readonly reason: SessionCloseReason

  /**
   * @param reason - why the session ended.
   * @param options - `message`, `cause`.
   */
  constructor(reason: SessionCloseReason, options?: MessageOptions) {
    super(options?.message ?? `session closed: ${reason}`, ErrorCode.SessionClosed, options)
    this.reason = reason
  }
}

/** Options of {@link TimeoutError}. */
export interface TimeoutErrorOptions extends MessageOptions {
  /** The timeout that expired, in milliseconds. Default: unknown (`undefined`). */
  timeoutMs?: number
}

/**
 * An operation did not complete in time: a `request()` got no reply within
 * its `timeoutMs`, a handshake or a graceful close ran out of time. Code
 * `ERR_WARPMESH_TIMEOUT`. Default message: `timed out` or
 * `timed out after <timeoutMs> ms`.
 */
export class TimeoutError extends WarpmeshError {
  static {
    this.prototype.name = 'TimeoutError'
  }

  declare readonly code: typeof ErrorCode.Timeout
  /** The timeout that expired, in milliseconds, when known. */
  readonly timeoutMs: number | undefined

  /** @param options - `message`, `timeoutMs`, `cause`. */
  constructor(options?: TimeoutErrorOptions) {
    const timeoutMs = options?.timeoutMs
    super(
      options?.message ?? (timeoutMs === undefined ? 'timed out' : `timed out after ${timeoutMs} ms`),
      ErrorCode.Timeout,
      options,
    )
    this.timeoutMs = timeoutMs
  }
}

/**
 * The peer an operation was addressed to went down (its lease expired or its
 * session was lost) before the operation completed: pending requests to it
 * reject with this. Code `ERR_WARPMESH_PEER_DOWN`.
 * Default message: `peer "<peerId>" is down`.
 */
export class PeerDownError extends WarpmeshError {
  static {
    this.prototype.name = 'PeerDownError'
  }

  declare readonly code: typeof ErrorCode.PeerDown
  /** Id of the peer that went down. */
  readonly peerId: string

  /**
   * @param peerId - id of the peer that went down.
   * @param options - `message`, `cause`.
   */
  constructor(peerId: string, options?: MessageOptions) {
    super(options?.message ?? `peer ${JSON.stringify(peerId)} is down`, ErrorCode.PeerDown, options)
    this.peerId = peerId
  }
}

/**
 * `send()` or `request()` named a peer id that is not in this node's peer
 * table. Code `ERR_WARPMESH_UNKNOWN_PEER`.
 * Default message: `unknown peer "<peerId>"`.
 */
export class UnknownPeerError extends WarpmeshError {
  static {
    this.prototype.name = 'UnknownPeerError'
  }

  declare readonly code: typeof ErrorCode.UnknownPeer
  /** The id that was not found. */
  readonly peerId: string

  /**
   * @param peerId - the id that was not found.
   * @param options - `message`, `cause`.
   */
  constructor(peerId: string, options?: MessageOptions) {
    super(options?.message ?? `unknown peer ${JSON.stringify(peerId)}`, ErrorCode.UnknownPeer, options)
    this.peerId = peerId
  }
}

/**
 * An operation was attempted on an endpoint or node that is closed or
 * closing, or was pending when it closed (pending requests reject with this
 * on `close()`). Code `ERR_WARPMESH_CLOSED`. Default message: `closed`.
 */
export class ClosedError extends WarpmeshError {
  static {
    this.prototype.name = 'ClosedError'
  }

  declare readonly code: typeof ErrorCode.Closed

  /** @param options - `message`, `cause`. */
  constructor(options?: MessageOptions) {
    super(options?.message ?? 'closed', ErrorCode.Closed, options)
  }
}

/** Options of {@link QueueFullError}. */
export interface QueueFullErrorOptions extends MessageOptions {
  /** The bound that was reached (messages or bytes, as the message says). Default: unknown. */
  limit?: number
}

/**
 * A bounded queue is full and the operation cannot wait: a send beyond the
 * backpressure limit, too many pending requests. Code
 * `ERR_WARPMESH_QUEUE_FULL`. Default message: `queue full` or
 * `queue full (limit <limit>)`.
 */
export class QueueFullError extends WarpmeshError {
  static {
    this.prototype.name = 'QueueFullError'
  }

  declare readonly code: typeof ErrorCode.QueueFull
  /** The bound that was reached, when known. */
  readonly limit: number | undefined

  /** @param options - `message`, `limit`, `cause`. */
  constructor(options?: QueueFullErrorOptions) {
    const limit = options?.limit
    super(
      options?.message ?? (limit === undefined ? 'queue full' : `queue full (limit ${limit})`),
      ErrorCode.QueueFull,
      options,
    )
    this.limit = limit
  }
}

/** Options of {@link DuplicateIdError}. */
export interface DuplicateIdErrorOptions extends MessageOptions {
  /** Address (`host:port`) of the live node that holds the id, when known. Default: unknown. */
  holder?: string
}

/**
 * The coordinator refused to register this node because another live node
 * (another address or session epoch) holds the same id. The id becomes free
 * once that node's lease expires. Code `ERR_WARPMESH_DUPLICATE_ID`.
 * Default message: `node id "<id>" is already held by a live node` (plus
 * ` at <holder>` when known).
 */
export class DuplicateIdError extends WarpmeshError {
  static {
    this.prototype.name = 'DuplicateIdError'
  }

  declare readonly code: typeof ErrorCode.DuplicateId
  /** The contested node id. */
  readonly id: string
  /** Address of the node holding the id, when known. */
  readonly holder: string | undefined

  /**
   * @param id - the contested node id.
   * @param options - `message`, `holder`, `cause`.
   */
  constructor(id: string, options?: DuplicateIdErrorOptions) {
    const holder = options?.holder
    super(
      options?.message ??
        `node id ${JSON.stringify(id)} is already held by a live node${holder === undefined ? '' : ` at ${holder}`}`,
      ErrorCode.DuplicateId,
      options,
    )
    this.id = id
    this.holder = holder
  }
}

/** Options of {@link HandshakeError}. */
export interface HandshakeErrorOptions extends WarpmeshErrorOptions {
  /** Remote address (`host:port`) the handshake was with, when known. Default: unknown. */
  address?: string
}

/**
 * A session could not be established: no key in common with the peer, a
 * version mismatch, or a handshake the peer rejected. Code
 * `ERR_WARPMESH_HANDSHAKE`. A handshake that merely gets no answer ends in a
 * {@link TimeoutError} (as `cause`, when wrapped in this).
 */
export class HandshakeError extends WarpmeshError {
  static {
    this.prototype.name = 'HandshakeError'
  }

  declare readonly code: typeof ErrorCode.Handshake
  /** Remote address of the failed handshake, when known. */
  readonly address: string | undefined

  /**
   * @param message - what failed, e.g. `no matching network key`.
   * @param options - `address`, `cause`.
   */
  constructor(message: string, options?: HandshakeErrorOptions) {
    super(message, ErrorCode.Handshake, options)
    this.address = options?.address
  }
}

/**
 * A native module warpmesh needs could not be loaded: `sodium-native`
 * (libsodium), which seals and opens every protected packet. Thrown when an
 * endpoint with network keys is created (an `insecure` endpoint does not need
 * it). Code `ERR_WARPMESH_NATIVE_MODULE`. Message:
 * `cannot load the native module sodium-native (<what failed>): protected sessions need it; …`
 * followed by how to fix it (reinstall with `npm ci` on the machine that runs
 * warpmesh, check that the platform has a prebuilt binary, do not bundle it).
 */
export class NativeModuleError extends WarpmeshError {
  static {
    this.prototype.name = 'NativeModuleError'
  }

  declare readonly code: typeof ErrorCode.NativeModule
  /** The npm package that failed to load, e.g. `sodium-native`. */
  readonly module: string

  /**
   * @param module - the npm package that failed to load.
   * @param failure - what failed, e.g. the loader's error message.
   * @param options - `cause`.
   */
  constructor(module: string, failure: string, options?: WarpmeshErrorOptions) {
    super(
      `cannot load the native module ${module} (${failure}): protected sessions need it to encrypt every packet; ` +
        `install it where warpmesh runs (\`npm ci\`, or \`npm install ${module}\`), on a platform it ships a prebuilt ` +
        `binary for (${process.platform}-${process.arch} here), and keep it out of bundlers (it loads a .node file)`,
      ErrorCode.NativeModule,
      options,
    )
    this.module = module
  }
}

/** Options of the network services' errors. */
export interface ServiceErrorOptions extends MessageOptions {
  /** The player concerned, when there is one. */
  player?: string
  /** The server concerned, when there is one. */
  server?: string
}

/**
 * Base of the network services' named failures (transfer, message, kick;
 * lib/services). `player` and `server` name what it concerns ('' when none).
 */
export abstract class ServiceError extends WarpmeshError {
  /** The player concerned, or ''. */
  readonly player: string
  /** The server concerned, or ''. */
  readonly server: string

  constructor(message: string, code: WarpmeshErrorCode, options?: ServiceErrorOptions) {
    super(options?.message ?? message, code, options)
    this.player = options?.player ?? ''
    this.server = options?.server ?? ''
  }
}

/** No server lists this player. Code `ERR_WARPMESH_UNKNOWN_PLAYER`. */
export class UnknownPlayerError extends ServiceError {
  static {
    this.prototype.name = 'UnknownPlayerError'
  }

  declare readonly code: typeof ErrorCode.UnknownPlayer

  constructor(player: string, options?: Omit<ServiceErrorOptions, 'player'>) {
    super(`unknown player ${JSON.stringify(player)}: no server lists them`, ErrorCode.UnknownPlayer, { ...options, player })
  }
}

/**
 * The named server is not in the registry, or no listed server matches a
 * selector. Code `ERR_WARPMESH_NO_SUCH_SERVER`.
 */
export class NoSuchServerError extends ServiceError {
  static {
    this.prototype.name = 'NoSuchServerError'
  }

  declare readonly code: typeof ErrorCode.NoSuchServer

  constructor(server: string, options?: Omit<ServiceErrorOptions, 'server'>) {
    super(`no such server ${JSON.stringify(server)} in the registry`, ErrorCode.NoSuchServer, { ...options, server })
  }
}

/**
 * The target (or every server a selector found) has no room (its players
 * plus those arriving reached its max), or its state is `full`. A server that
 * is `starting` or `stopping` refuses with {@link RefusedError} instead. Code
 * `ERR_WARPMESH_SERVER_FULL`.
 */
export class ServerFullError extends ServiceError {
  static {
    this.prototype.name = 'ServerFullError'
  }

  declare readonly code: typeof ErrorCode.ServerFull

  constructor(server: string, options?: Omit<ServiceErrorOptions, 'server'>) {
    super(`server ${JSON.stringify(server)} is full`, ErrorCode.ServerFull, { ...options, server })
  }
}

/**
 * The target's transfer hook or its state (`starting`, `stopping`), or the
 * handler at the player's proxy, said no (or there is none); `reason` is its
 * text. Code `ERR_WARPMESH_REFUSED`.
 */
export class RefusedError extends ServiceError {
  static {
    this.prototype.name = 'RefusedError'
  }

  declare readonly code: typeof ErrorCode.Refused
  /** Why, as the refusing side put it. */
  readonly reason: string

  constructor(reason: string, options?: ServiceErrorOptions) {
    super(`refused${options?.server ? ` by ${JSON.stringify(options.server)}` : ''}: ${reason}`, ErrorCode.Refused, options)
    this.reason = reason
  }
}

/** The target server went down (or left the table) before it answered. Code `ERR_WARPMESH_TARGET_DOWN`. */
export class TargetDownError extends ServiceError {
  static {
    this.prototype.name = 'TargetDownError'
  }

  declare readonly code: typeof ErrorCode.TargetDown

  constructor(server: string, options?: Omit<ServiceErrorOptions, 'server'>) {
    super(`server ${JSON.stringify(server)} went down during the operation`, ErrorCode.TargetDown, { ...options, server })
  }
}

/**
 * Another transfer of the same player is in progress (the one that reached
 * the player's proxy first wins). Code `ERR_WARPMESH_TRANSFER_CONFLICT`.
 */
export class TransferConflictError extends ServiceError {
  static {
    this.prototype.name = 'TransferConflictError'
  }

  declare readonly code: typeof ErrorCode.TransferConflict

  constructor(player: string, options?: Omit<ServiceErrorOptions, 'player'>) {
    super(`player ${JSON.stringify(player)} is already being transferred`, ErrorCode.TransferConflict, { ...options, player })
  }
}

const CODE_PREFIX = 'ERR_WARPMESH'

/**
 * Whether `err` is a warpmesh error, optionally with the given code. Works
 * across two loaded copies of warpmesh (it checks the `code`, not the class).
 *
 * @param err - anything caught.
 * @param code - the code to match. Default: any warpmesh code.
 */
export function isWarpmeshError(err: unknown, code?: WarpmeshErrorCode): err is WarpmeshError {
  if (!(err instanceof Error)) return false
  const actual = (err as { code?: unknown }).code
  if (typeof actual !== 'string') return false
  if (code !== undefined) return actual === code
  return actual === CODE_PREFIX || actual.startsWith(`${CODE_PREFIX}_`)
}
