/**
 * A tiny structured logger: one JSON object per line, to stderr by default.
 *
 * ```
 * {"t":1718000000000,"level":"warn","name":"endpoint","msg":"handshake failed","address":"10.0.0.7:7400"}
 * ```
 *
 * Hot paths call {@link Logger.isEnabled} before building anything to log.
 * A logger never throws: unserializable fields are replaced, and a failing
 * stream is ignored.
 *
 * @module
 */

/** Log levels, most severe first. `silent` logs nothing. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** The levels a record can be written at (every level except `silent`). */
export type RecordLevel = Exclude<LogLevel, 'silent'>

/** Extra fields of a record. Keys `t`, `level`, `name`, `msg` are written as `_t`, `_level`, `_name`, `_msg`. */
export type LogFields = Readonly<Record<string, unknown>>

/** Where lines go: anything with a string `write` (a `Writable`, `process.stderr`, a test buffer). */
export interface LogStream {
  write(line: string): unknown
}

/** The methods that write records. */
export interface LogMethods {
  /** Something failed and was not handled: a lost peer, a refused registration. */
  error(msg: string, fields?: LogFields): void
  /** Something is wrong but handled: a failed handshake, a dropped datagram burst. */
  warn(msg: string, fields?: LogFields): void
  /** Lifecycle: started, listening on, peer up/down, closed. */
  info(msg: string, fields?: LogFields): void
  /** Per-session detail for troubleshooting. */
  debug(msg: string, fields?: LogFields): void
  /** Per-packet detail. Check {@link Logger.isEnabled} first. */
  trace(msg: string, fields?: LogFields): void
}

/** A structured logger. */
export interface Logger extends LogMethods {
  /** The threshold: records less severe than this are dropped. */
  readonly level: LogLevel
  /** The `name` written on every record. */
  readonly name: string
  /** Whether a record at `level` would be written. Cheap; call it before building costly fields. */
  isEnabled(level: RecordLevel): boolean
  /**
   * Methods that write at most one record per `intervalMs` for `key`. Records
   * within the interval are suppressed and counted; the next record written
   * for the key carries `"suppressed": <count>`. The count of suppressed
   * records that no later record reports is lost. Records below the level
   * threshold are neither written nor counted.
   *
   * State is kept for at most `maxRateLimitKeys` keys (see
   * {@link LoggerOptions}); the least recently written key is forgotten first.
   *
   * @param key - what counts as "the same warning", e.g. `handshake-failed:10.0.0.7`.
   * @param intervalMs - minimum milliseconds between two records for `key`.
   */
  rateLimited(key: string, intervalMs: number): LogMethods
  /**
   * A logger writing to the same stream, with the same level and rate-limit
   * state, that adds `fields` to every record (record fields win).
   */
  child(fields: LogFields): Logger
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Threshold. Default `info`. */
  level?: LogLevel
  /** Written as `name` on every record, e.g. `coordinator`. Default `warpmesh`. */
  name?: string
  /** Destination. Default `process.stderr`. */
  stream?: LogStream
  /** Wall clock in milliseconds since the epoch, written as `t` and used by rate limiting. Default `Date.now`. */
  now?: () => number
  /** Most keys {@link Logger.rateLimited} keeps state for. Default 1000. */
  maxRateLimitKeys?: number
}

const SEVERITY: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4, silent: -1 }
const RESERVED = new Set(['t', 'level', 'name', 'msg'])
const ERROR_DEPTH_MAX = 4

interface RateState {
  last: number
  suppressed: number
}

/** Everything a logger and its children share. */
class Core {
  readonly threshold: number
  readonly rate = new Map<string, RateState>()

  constructor(
    readonly level: LogLevel,
    readonly stream: LogStream,
    readonly now: () => number,
    readonly maxKeys: number,
  ) {
    this.threshold = SEVERITY[level]
  }
}

function serializeError(err: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message }
  // Own fields such as `code`, `variable`, `peerId`.
  for (const key of Object.keys(err)) {
    if (key !== 'cause' && key !== 'stack') out[key] = (err as unknown as Record<string, unknown>)[key]
  }
  if (err.stack !== undefined) out.stack = err.stack
  if (err.cause !== undefined) {
    out.cause = err.cause instanceof Error && depth < ERROR_DEPTH_MAX ? serializeError(err.cause, depth + 1) : String(err.cause)
  }
  return out
}

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Error) return serializeError(value, 0)
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`
  // Buffer#toJSON runs before the replacer sees the Buffer.
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer') {
    const data = (value as { data?: unknown }).data
    if (Array.isArray(data)) return `<${data.length} bytes>`
  }
  return value
}

function stringify(value: unknown): string {
  try {
    return JSON.stringify(value, replacer) ?? 'null'
  } catch {
    return '"[unserializable]"'
  }
}

class JsonLogger implements Logger {
  readonly #core: Core
  readonly #bindings: LogFields | undefined
  readonly name: string

  constructor(core: Core, name: string, bindings: LogFields | undefined) {
    this.#core = core
    this.name = name
    this.#bindings = bindings
  }

  get level(): LogLevel {
    return this.#core.level
  }

  isEnabled(level: RecordLevel): boolean {
    return SEVERITY[level] <= this.#core.threshold
  }

  error(msg: string, fields?: LogFields): void {
    if (this.#core.threshold >= 0) this.write('error', msg, fields, 0)
  }

  warn(msg: string, fields?: LogFields): void {
    if (this.#core.threshold >= 1) this.write('warn', msg, fields, 0)
  }

  info(msg: string, fields?: LogFields): void {
    if (this.#core.threshold >= 2) this.write('info', msg, fields, 0)
  }

  debug(msg: string, fields?: LogFields): void {
    if (this.#core.threshold >= 3) this.write('debug', msg, fields, 0)
  }

  trace(msg: string, fields?: LogFields): void {
    if (this.#core.threshold >= 4) this.write('trace', msg, fields, 0)
  }

  rateLimited(key: string, intervalMs: number): LogMethods {
    const emit = (level: RecordLevel, msg: string, fields?: LogFields): void => {
      if (!this.isEnabled(level)) return
      const core = this.#core
      const now = core.now()
      const state = core.rate.get(key)
      if (state !== undefined && now - state.last < intervalMs) {
        state.suppressed++
        return
      }
      const suppressed = state?.suppressed ?? 0
      // Re-insert so the Map's order is least recently written first.
      if (state !== undefined) core.rate.delete(key)
      else if (core.rate.size >= core.maxKeys) core.rate.delete(core.rate.keys().next().value as string)
      core.rate.set(key, { last: now, suppressed: 0 })
      this.write(level, msg, fields, suppressed)
    }
    return {
      error: (msg, fields) => emit('error', msg, fields),
      warn: (msg, fields) => emit('warn', msg, fields),
      info: (msg, fields) => emit('info', msg, fields),
      debug: (msg, fields) => emit('debug', msg, fields),
      trace: (msg, fields) => emit('trace', msg, fields),
    }
  }

  child(fields: LogFields): Logger {
    return new JsonLogger(this.#core, this.name, { ...this.#bindings, ...fields })
  }

  /** Assumes the level check was done. */
  write(level: RecordLevel, msg: string, fields: LogFields | undefined, suppressed: number): void {
    const core = this.#core
    let line = `{"t":${stringify(core.now())},"level":"${level}","name":${stringify(this.name)},"msg":${stringify(msg)}`
    const bindings = this.#bindings
    if (bindings !== undefined) line += fieldsJson(fields === undefined ? bindings : { ...bindings, ...fields })
    else if (fields !== undefined) line += fieldsJson(fields)
    if (suppressed > 0) line += `,"suppressed":${suppressed}`
    line += '}\n'
    try {
      core.stream.write(line)
    } catch {
      // Logging must never take the process down (EPIPE on a closed stderr, …).
    }
  }
}

/** `,"k":v` for every field, reserved keys prefixed with `_`, unserializable values replaced. */
function fieldsJson(fields: LogFields): string {
  let out = ''
  for (const key of Object.keys(fields)) {
    const value = fields[key]
    if (value === undefined) continue
    out += `,${JSON.stringify(RESERVED.has(key) ? `_${key}` : key)}:${stringify(value)}`
  }
  return out
}

/**
 * Create a logger writing one JSON line per record:
 * `{"t":<ms since epoch>,"level":"info","name":<name>,"msg":<msg>, ...fields}`.
 *
 * Field values go through `JSON.stringify` with these exceptions: `Error`s
 * become `{name, message, ...own fields such as code, stack, cause?}`, `bigint`s become strings,
 * byte arrays become `"<N bytes>"`, values that cannot be serialized (cycles)
 * become `"[unserializable]"`, and `undefined` fields are left out.
 *
 * @throws RangeError if `level` is not one of {@link LOG_LEVELS} or `maxRateLimitKeys` is not a positive integer.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info'
  if (!Object.hasOwn(SEVERITY, level)) {
    throw new RangeError(`options.level must be one of ${LOG_LEVELS.join(', ')}; got ${stringify(level)}`)
  }
  const maxKeys = options.maxRateLimitKeys ?? 1000
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new RangeError(`options.maxRateLimitKeys must be a positive integer; got ${stringify(maxKeys)}`)
  }
  const core = new Core(level, options.stream ?? process.stderr, options.now ?? Date.now, maxKeys)
  return new JsonLogger(core, options.name ?? 'warpmesh', undefined)
}

const noop = (): void => {}
const silentMethods: LogMethods = { error: noop, warn: noop, info: noop, debug: noop, trace: noop }

/** A logger that writes nothing and reports every level disabled. The default where a logger is optional. */
export const silentLogger: Logger = Object.freeze({
  ...silentMethods,
  level: 'silent' as const,
  name: 'silent',
  isEnabled: () => false,
  rateLimited: () => silentMethods,
  child: () => silentLogger,
})
