/**
 * Configuration from environment variables: pure parsers with exact error
 * messages, the two entry points {@link nodeOptionsFromEnv} and
 * {@link coordinatorOptionsFromEnv}, and the table of variables
 * ({@link ENV_VARS}) docs/configuration.md and `--help` are generated from.
 *
 * Every parser throws a {@link ConfigError} naming the variable, the value and
 * the expected form. Surrounding whitespace is ignored everywhere (a stray
 * `\r` from a CRLF `.env` file is not an error). In the `*FromEnv` functions a
 * variable that is empty or only whitespace counts as unset.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { isIPv4, isIPv6, SocketAddress } from 'node:net'
import { ConfigError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from './log.js'
import { KEY_LIST_FORM, loadKeys } from './security/keys.js'
import { DEFAULT_WARMUP, MAX_WARMUP_ROUND_TRIPS } from './warmup.js'

// ---------------------------------------------------------------- limits

/** Port a coordinator listens on by default, and the port assumed for a coordinator address given without one. */
export const DEFAULT_COORDINATOR_PORT = 7400
/** Most addresses in a host:port list such as `WARPMESH_COORDINATORS`. */
export const HOST_PORT_LIST_MAX = 16
/** Longest node id, in characters. */
export const ID_MAX_LENGTH = 64
/** Longest role, in characters. */
export const ROLE_MAX_LENGTH = 32
/** Longest metadata key, in characters. */
export const META_KEY_MAX_LENGTH = 32
/** Longest metadata value, in UTF-8 bytes. */
export const META_VALUE_MAX_BYTES = 128
/** Most metadata pairs. */
export const META_MAX_PAIRS = 32
/** Longest duration accepted: the largest delay `setTimeout` honours, in milliseconds. */
export const DURATION_MAX_MS = 2_147_483_647
/** Shortest heartbeat interval, in milliseconds. */
export const HEARTBEAT_MIN_MS = 10
/** Longest heartbeat interval, in milliseconds. */
export const HEARTBEAT_MAX_MS = 60_000
/** Most missed heartbeats before a lease expires. */
export const LEASE_MISSES_MAX = 100
/** Smallest datagram size, in bytes: every IPv4 host accepts 576. */
export const DATAGRAM_MIN_BYTES = 576
/** Largest datagram size, in bytes: under the largest IPv4 UDP payload (65507). */
export const DATAGRAM_MAX_BYTES = 65_000
/** Default `WARPMESH_MAX_DATAGRAM`, in bytes: fits every IPv6 path without IP fragmentation. */
export const DEFAULT_MAX_DATAGRAM = 1200
/** Default `WARPMESH_LOOPBACK_DATAGRAM`, in bytes. */
export const DEFAULT_LOOPBACK_DATAGRAM = 32_768

// ---------------------------------------------------------------- expected forms

/** The expected-form text of a host:port value. Shared by error messages and {@link ENV_VARS}. */
export function expectedHostPort(example = '0.0.0.0:7400', defaultPort?: number): string {
  return defaultPort === undefined
    ? `host:port, e.g. ${example}`
    : `host:port or host (port ${defaultPort}), e.g. ${example}`
}

/** The expected-form text of a host:port list. */
export function expectedHostPortList(example = '10.0.0.1:7400,10.0.0.2:7400', defaultPort?: number): string {
  const port = defaultPort === undefined ? '' : `, port ${defaultPort} if omitted`
  return `comma-separated host:port list (at most ${HOST_PORT_LIST_MAX}${port}), e.g. ${example}`
}

/** The expected-form text of `WARPMESH_META`. */
export const EXPECTED_META =
  `comma-separated key=value pairs (at most ${META_MAX_PAIRS}; keys 1-${META_KEY_MAX_LENGTH} of A-Z a-z 0-9 _ . -; ` +
  `values up to ${META_VALUE_MAX_BYTES} bytes, no commas or control characters), e.g. mode=skywars,max=16`
/** The expected-form text of a node id. */
export const EXPECTED_ID = `1-${ID_MAX_LENGTH} characters of A-Z a-z 0-9 _ . : -, e.g. lobby-1`
/** The expected-form text of a role. */
export const EXPECTED_ROLE = `1-${ROLE_MAX_LENGTH} characters of a-z 0-9 _ -, e.g. proxy or downstream`
/** The expected-form text of a log level. */
export const EXPECTED_LOG_LEVEL = `one of ${LOG_LEVELS.join(', ')}`
/** The expected-form text of a boolean. */
export const EXPECTED_BOOL = 'one of 1, 0, true, false, yes, no, on, off'

/** The expected-form text of a duration, with its bounds in milliseconds. */
export function expectedDuration(min?: number, max?: number): string {
  const range =
    min !== undefined && max !== undefined
      ? `a duration from ${min} ms to ${max} ms`
      : min !== undefined
        ? `a duration of at least ${min} ms`
        : max !== undefined
          ? `a positive duration of at most ${max} ms`
          : 'a positive duration'
  return `${range}, in milliseconds or seconds, e.g. 250, 250ms or 2s`
}

/** The expected-form text of a whole number within bounds. */
export function expectedInt(min: number, max: number): string {
  return `a whole number from ${min} to ${max}`
}

// ---------------------------------------------------------------- host:port

/** A parsed address. */
export interface HostPort {
  /** IP address (IPv6 without brackets, zone kept) or host name, as given. */
  readonly host: string
  /** Port, 0..65535 (0 only where the variable allows it: "any free port"). */
  readonly port: number
  /** 4 or 6 for an IP address, 0 for a host name (resolved when used). */
  readonly family: 4 | 6 | 0
}

/** Options of {@link parseHostPort} and {@link parseHostPortList}. */
export interface HostPortOptions {
  /** Accept port 0 ("any free port", for bind addresses). Default `false`: 1..65535. */
  allowPortZero?: boolean
  /**
   * Accept the unspecified address `0.0.0.0` / `::`. Default `true`. Set it
   * to `false` for addresses other nodes send to (advertise, coordinators).
   */
  allowUnspecified?: boolean
  /** Example shown in the expected form. Default `0.0.0.0:7400` (lists: `10.0.0.1:7400,10.0.0.2:7400`). */
  example?: string
}

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/
const DIGITS = /^[0-9]+$/

function hostProblem(host: string): string | undefined {
  if (/^[0-9.]+$/.test(host)) return `${JSON.stringify(host)} is not a valid IPv4 address`
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  if (name.length > 253) return `the host name is ${name.length} characters long, at most 253 allowed`
  for (const label of name.split('.')) {
    if (label.length > 63) return `a label of the host name is ${label.length} characters long, at most 63 allowed`
    if (!HOST_LABEL.test(label)) return `${JSON.stringify(host)} is not an IP address or host name`
  }
  return undefined
}

function isUnspecified(host: string, family: 4 | 6 | 0): boolean {
  if (family === 4) return host === '0.0.0.0'
  if (family === 6) return /^[0:]+$/.test(host.split('%')[0] as string)
  return false
}

/** Parse one host:port; a string is the reason it is invalid. */
function readHostPort(text: string, defaultPort: number | undefined, options: HostPortOptions): HostPort | string {
  if (text === '') return 'the value is empty'
  let host: string
  let portText: string | undefined
  let family: 4 | 6 | 0
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) return 'missing "]" after the IPv6 address'
    host = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) return `unexpected ${JSON.stringify(rest)} after "]"`
      portText = rest.slice(1)
    }
    if (!isIPv6(host)) return `${JSON.stringify(host)} is not an IPv6 address`
    family = 6
  } else {
    const first = text.indexOf(':')
    if (first >= 0 && text.indexOf(':', first + 1) >= 0) {
      if (!isIPv6(text)) return 'too many ":"; write IPv6 addresses in brackets, e.g. [::1]:7400'
      if (defaultPort === undefined) return 'the port is missing; write IPv6 addresses in brackets, e.g. [::1]:7400'
      host = text
      family = 6
    } else {
      host = first >= 0 ? text.slice(0, first) : text
      if (first >= 0) portText = text.slice(first + 1)
      if (host === '') return 'the host is missing'
      if (isIPv4(host)) family = 4
      else {
        const problem = hostProblem(host)
        if (problem !== undefined) return problem
        family = 0
      }
    }
  }
  let port: number
  if (portText === undefined) {
    if (defaultPort === undefined) return 'the port is missing'
    port = defaultPort
  } else {
    if (portText === '') return 'the port is missing'
    if (!DIGITS.test(portText)) return `port ${JSON.stringify(portText)} is not a number`
    port = Number(portText)
    const min = options.allowPortZero === true ? 0 : 1
    if (port < min || port > 65535) return `port ${portText} is out of range ${min}..65535`
  }
  if (options.allowUnspecified === false && isUnspecified(host, family)) {
    return `${host} is the unspecified address; give an address other nodes can reach`
  }
  return { host, port, family }
}

/**
 * Parse `host:port`, `[ipv6]:port`, or (when `defaultPort` is given) a bare
 * `host`, IPv4 or IPv6 address. Hosts are IPv4 addresses, IPv6 addresses
 * (with an optional `%zone`) or host names (labels of A-Z a-z 0-9 _ -). Ports
 * are 1..65535, or 0..65535 with `allowPortZero`.
 *
 * @param variable - the variable named in errors, e.g. `WARPMESH_BIND`.
 * @param value - the text to parse.
 * @param defaultPort - port used when `value` has none. Default: none, the port is required.
 * @param options - see {@link HostPortOptions}.
 * @throws ConfigError naming `variable`, `value` and the expected form.
 */
export function parseHostPort(
  variable: string,
  value: string,
  defaultPort?: number,
  options: HostPortOptions = {},
): HostPort {
  const result = readHostPort(value.trim(), defaultPort, options)
  if (typeof result === 'string') {
    throw new ConfigError(variable, value, expectedHostPort(options.example, defaultPort), { reason: result })
  }
  return result
}

/** Options of {@link parseHostPortList}. */
export interface HostPortListOptions extends HostPortOptions {
  /** Most addresses accepted. Default {@link HOST_PORT_LIST_MAX} (16). */
  maxItems?: number
}

/** A key under which two spellings of the same address compare equal. */
function addressKey(hp: HostPort): string {
  if (hp.family !== 6) return `${hp.host.toLowerCase()}:${hp.port}`
  const [address, zone] = hp.host.split('%') as [string, string | undefined]
  const canonical = new SocketAddress({ address, family: 'ipv6' }).address
  return `[${canonical}${zone === undefined ? '' : `%${zone}`}]:${hp.port}`
}

/**
 * Parse a comma-separated list of addresses, each as in {@link parseHostPort}.
 * Whitespace around items is ignored. Empty items, duplicates (after
 * normalising case and IPv6 spelling) and more than `maxItems` items are errors.
 *
 * @param variable - the variable named in errors, e.g. `WARPMESH_COORDINATORS`.
 * @param value - the text to parse.
 * @param defaultPort - port used for items without one. Default: none, every item needs a port.
 * @param options - see {@link HostPortListOptions}.
 * @throws ConfigError naming `variable`, `value`, the offending item and the expected form.
 */
export function parseHostPortList(
  variable: string,
  value: string,
  defaultPort?: number,
  options: HostPortListOptions = {},
): HostPort[] {
  const fail = (reason: string): never => {
    throw new ConfigError(variable, value, expectedHostPortList(options.example, defaultPort), { reason })
  }
  const text = value.trim()
  if (text === '') return fail('the value is empty')
  const items = text.split(',')
  const max = options.maxItems ?? HOST_PORT_LIST_MAX
  if (items.length > max) fail(`${items.length} addresses given, at most ${max} allowed`)
  const out: HostPort[] = []
  const seen = new Map<string, number>()
  for (let i = 0; i < items.length; i++) {
    const item = (items[i] as string).trim()
    if (item === '') fail(`item ${i + 1} is empty`)
    const result = readHostPort(item, defaultPort, options)
    if (typeof result === 'string') return fail(`item ${i + 1} (${JSON.stringify(item)}): ${result}`)
    const key = addressKey(result)
    const earlier = seen.get(key)
    if (earlier !== undefined) fail(`item ${i + 1} (${JSON.stringify(item)}) repeats item ${earlier}`)
    seen.set(key, i + 1)
    out.push(result)
  }
  return out
}

/** Format an address for logs and for `parseHostPort`: `host:port`, `[ipv6]:port`. */
export function formatHostPort(address: { readonly host: string; readonly port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

// ---------------------------------------------------------------- tokens

/** The reason `text` is not 1..max characters of `allowed`, or undefined. */
function tokenProblem(text: string, allowed: RegExp, max: number, hint = ''): string | undefined {
  if (text === '') return 'the value is empty'
  let position = 0
  for (const ch of text) {
    position++
    if (!allowed.test(ch)) return `the character ${JSON.stringify(ch)} at position ${position} is not allowed${hint}`
  }
  if (position > max) return `${position} characters long, at most ${max} allowed`
  return undefined
}

const ID_CHAR = /^[A-Za-z0-9_.:-]$/
const ROLE_CHAR = /^[a-z0-9_-]$/
const META_KEY_CHAR = /^[A-Za-z0-9_.-]$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * Parse a node id: 1..64 characters of `A-Z a-z 0-9 _ . : -`.
 *
 * @throws ConfigError naming `variable`, `value`, the first bad character and the expected form.
 */
export function parseId(variable: string, value: string): string {
  const text = value.trim()
  const reason = tokenProblem(text, ID_CHAR, ID_MAX_LENGTH)
  if (reason !== undefined) throw new ConfigError(variable, value, EXPECTED_ID, { reason })
  return text
}

/**
 * Parse a role: 1..32 characters of `a-z 0-9 _ -` (lowercase). `proxy` and
 * `downstream` are the usual ones; any other short string is allowed.
 *
 * @throws ConfigError naming `variable`, `value` and the expected form.
 */
export function parseRole(variable: string, value: string): string {
  const text = value.trim()
  const hint = /[A-Z]/.test(text) ? ' (roles are lowercase)' : ''
  const reason = tokenProblem(text, ROLE_CHAR, ROLE_MAX_LENGTH, hint)
  if (reason !== undefined) throw new ConfigError(variable, value, EXPECTED_ROLE, { reason })
  return text
}

/**
 * Parse `key=value,key=value`: at most 32 pairs, keys 1..32 characters of
 * `A-Z a-z 0-9 _ . -`, values up to 128 UTF-8 bytes without commas or control
 * characters (a value may be empty and may contain `=`). Whitespace around
 * items, keys and values is ignored. An empty string is no metadata.
 *
 * @returns a fresh object with one own property per key (a key such as `__proto__` is an ordinary property).
 * @throws ConfigError naming `variable`, `value`, the offending pair and the expected form.
 */
export function parseMeta(variable: string, value: string): Record<string, string> {
  const fail = (reason: string): never => {
    throw new ConfigError(variable, value, EXPECTED_META, { reason })
  }
  const text = value.trim()
  const pairs = new Map<string, string>()
  if (text === '') return {}
  const items = text.split(',')
  if (items.length > META_MAX_PAIRS) fail(`${items.length} pairs given, at most ${META_MAX_PAIRS} allowed`)
  for (let i = 0; i < items.length; i++) {
    const item = (items[i] as string).trim()
    if (item === '') fail(`item ${i + 1} is empty`)
    const eq = item.indexOf('=')
    if (eq < 0) fail(`item ${i + 1} (${JSON.stringify(item)}) has no "="`)
    const key = item.slice(0, eq).trim()
    const val = item.slice(eq + 1).trim()
    if (key === '') fail(`item ${i + 1} (${JSON.stringify(item)}) has an empty key`)
    const keyProblem = tokenProblem(key, META_KEY_CHAR, META_KEY_MAX_LENGTH)
    if (keyProblem !== undefined) fail(`key ${JSON.stringify(key)} of item ${i + 1}: ${keyProblem}`)
    if (pairs.has(key)) fail(`key ${JSON.stringify(key)} appears twice`)
    const bytes = Buffer.byteLength(val, 'utf8')
    if (bytes > META_VALUE_MAX_BYTES) {
      fail(`the value of ${JSON.stringify(key)} is ${bytes} bytes, at most ${META_VALUE_MAX_BYTES} allowed`)
    }
    if (CONTROL.test(val)) fail(`the value of ${JSON.stringify(key)} contains a control character`)
    pairs.set(key, val)
  }
  return Object.fromEntries(pairs)
}

// ---------------------------------------------------------------- scalars

/**
 * Parse a log level, case-insensitively: `error`, `warn`, `info`, `debug`, `trace` or `silent`.
 *
 * @throws ConfigError naming `variable`, `value` and the accepted levels.
 */
export function parseLogLevel(variable: string, value: string): LogLevel {
  const text = value.trim().toLowerCase()
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new ConfigError(variable, value, EXPECTED_LOG_LEVEL)
  return text as LogLevel
}

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off'])

/**
 * Parse a boolean, case-insensitively: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`.
 *
 * @throws ConfigError naming `variable`, `value` and the accepted words.
 */
export function parseBool(variable: string, value: string): boolean {
  const text = value.trim().toLowerCase()
  if (TRUE.has(text)) return true
  if (FALSE.has(text)) return false
  throw new ConfigError(variable, value, EXPECTED_BOOL)
}

/** Bounds of {@link parseDurationMs} and {@link parsePositiveInt}. */
export interface RangeOptions {
  /** Smallest accepted value. Default: durations any positive value (ms), integers 1. */
  min?: number
  /** Largest accepted value. Default: durations {@link DURATION_MAX_MS} (ms), integers `Number.MAX_SAFE_INTEGER`. */
  max?: number
}

const DURATION = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s)?$/i

/**
 * Parse a duration: a number of milliseconds (`250`, `250ms`) or seconds
 * (`2s`, `0.5s`). It must be positive and within `[min, max]`. Fractions of a
 * millisecond are kept to the microsecond.
 *
 * @returns milliseconds.
 * @throws ConfigError naming `variable`, `value`, the bound broken and the expected form.
 */
export function parseDurationMs(variable: string, value: string, options: RangeOptions = {}): number {
  const { min, max } = options
  const fail = (reason?: string): never => {
    throw new ConfigError(variable, value, expectedDuration(min, max), reason === undefined ? undefined : { reason })
  }
  const text = value.trim()
  const match = DURATION.exec(text)
  if (match === null) {
    const unit = /^[0-9]+(?:\.[0-9]+)?\s*([a-z]+)$/i.exec(text)
    return fail(unit === null ? undefined : `unknown unit ${JSON.stringify(unit[1])}`)
  }
  const amount = Number(match[1])
  const ms = Math.round(amount * ((match[2] ?? 'ms').toLowerCase() === 's' ? 1e6 : 1e3)) / 1e3
  if (ms <= 0) fail('the duration must be positive')
  if (min !== undefined && ms < min) fail(`${text} is less than the minimum of ${min} ms`)
  const upper = max ?? DURATION_MAX_MS
  if (ms > upper) fail(`${text} is more than the maximum of ${upper} ms`)
  return ms
}

/**
 * Parse a whole number (digits only) within `[min, max]`.
 *
 * @throws ConfigError naming `variable`, `value` and the accepted range.
 */
export function parsePositiveInt(variable: string, value: string, options: RangeOptions = {}): number {
  const min = options.min ?? 1
  const max = options.max ?? Number.MAX_SAFE_INTEGER
  const text = value.trim()
  if (!DIGITS.test(text)) throw new ConfigError(variable, value, expectedInt(min, max))
  const n = Number(text)
  if (n < min || n > max) {
    throw new ConfigError(variable, value, expectedInt(min, max), { reason: `${text} is out of range` })
  }
  return n
}

// ---------------------------------------------------------------- agent

/** Default `WARPMESH_AGENT_SOCKET` (re-exported by lib/agent/protocol.ts). */
export const DEFAULT_AGENT_SOCKET = '/tmp/warpmesh-agent.sock'
/** Default `WARPMESH_AGENT_CLIENT_BUFFER`, bytes: 8 MiB. */
export const DEFAULT_AGENT_CLIENT_BUFFER = 8 * 1024 * 1024
/** Smallest `WARPMESH_AGENT_CLIENT_BUFFER`, bytes: 64 KiB. */
export const AGENT_CLIENT_BUFFER_MIN = 64 * 1024
/** Largest `WARPMESH_AGENT_CLIENT_BUFFER`, bytes: 1 GiB. */
export const AGENT_CLIENT_BUFFER_MAX = 1024 * 1024 * 1024
/** Longest Unix socket path, bytes (`sun_path` holds 108 with the final NUL). */
export const SOCKET_PATH_MAX_BYTES = 107
/** Longest `WARPMESH_AGENT_TOKEN`, characters. */
export const AGENT_TOKEN_MAX_LENGTH = 256

/** The expected-form text of `WARPMESH_AGENT_SOCKET`. */
export const EXPECTED_AGENT_SOCKET = `a file path of at most ${SOCKET_PATH_MAX_BYTES} bytes, e.g. /run/warpmesh/agent.sock`
/** The expected-form text of `WARPMESH_AGENT_LISTEN`. */
export const EXPECTED_AGENT_LISTEN = 'a loopback host:port (127.0.0.0/8 or [::1]), e.g. 127.0.0.1:7500'
/** The expected-form text of `WARPMESH_AGENT_TOKEN`. */
export const EXPECTED_AGENT_TOKEN = `1-${AGENT_TOKEN_MAX_LENGTH} printable ASCII characters without spaces, e.g. the output of warpmesh keygen`
/** The expected-form text of a byte size. */
export const EXPECTED_BYTES =
  `a size from ${AGENT_CLIENT_BUFFER_MIN / 1024}KiB to ${AGENT_CLIENT_BUFFER_MAX / 1024 / 1024 / 1024}GiB, in bytes or with a unit (KiB, MiB, GiB), e.g. 8MiB or 1048576`

const BYTES = /^([0-9]+)\s*(B|KiB|MiB|GiB|K|M|G)?$/i
const BYTE_UNITS: Record<string, number> = { b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 }

/**
 * Parse a byte size: `1048576`, `512KiB`, `8MiB`, `1GiB` (K/M/G are binary
 * too), within `[min, max]` (default the agent client buffer's bounds).
 *
 * @throws ConfigError naming `variable`, `value` and the expected form.
 */
export function parseBytes(variable: string, value: string, options: RangeOptions = {}): number {
  const min = options.min ?? AGENT_CLIENT_BUFFER_MIN
  const max = options.max ?? AGENT_CLIENT_BUFFER_MAX
  const text = value.trim()
  const m = BYTES.exec(text)
  if (m === null) throw new ConfigError(variable, value, EXPECTED_BYTES)
  const n = Number(m[1]) * (BYTE_UNITS[(m[2] ?? 'b').toLowerCase()] as number)
  if (n < min || n > max) throw new ConfigError(variable, value, EXPECTED_BYTES, { reason: `${n} bytes is out of range` })
  return n
}

/**
 * Parse a Unix socket path: non-empty, at most 107 bytes, no NUL.
 *
 * @throws ConfigError naming `variable`, `value` and the expected form.
 */
export function parseSocketPath(variable: string, value: string): string {
  const text = value.trim()
  const bytes = Buffer.byteLength(text, 'utf8')
  let reason: string | undefined
  if (text === '') reason = 'the value is empty'
  else if (text.includes('\0')) reason = 'the path contains a NUL character'
  else if (bytes > SOCKET_PATH_MAX_BYTES) reason = `the path is ${bytes} bytes long, at most ${SOCKET_PATH_MAX_BYTES} allowed`
  if (reason !== undefined) throw new ConfigError(variable, value, EXPECTED_AGENT_SOCKET, { reason })
  return text
}

/** True for 127.0.0.0/8, ::1 (any spelling) and ::ffff:127.x.y.z. */
export function isLoopbackHost(host: string): boolean {
  if (isIPv4(host)) return host.startsWith('127.')
  if (!isIPv6(host)) return false
  const canonical = new SocketAddress({ address: host.split('%')[0] as string, family: 'ipv6' }).address.toLowerCase()
  if (canonical === '::1') return true
  return canonical.startsWith('::ffff:') && isIPv4(canonical.slice(7)) && canonical.slice(7).startsWith('127.')
}

/**
 * Parse the agent's TCP address: host:port with a loopback host (the
 * listener serves this host only). Port 0 picks a free port.
 *
 * @throws ConfigError naming `variable` and `value`; a non-loopback address says so.
 */
export function parseLoopbackHostPort(variable: string, value: string): HostPort {
  const hp = readHostPort(value.trim(), undefined, { allowPortZero: true })
  if (typeof hp === 'string') throw new ConfigError(variable, value, EXPECTED_AGENT_LISTEN, { reason: hp })
  if (!isLoopbackHost(hp.host)) {
    throw new ConfigError(variable, value, EXPECTED_AGENT_LISTEN, {
      reason: `${hp.host} is not a loopback address; the agent's TCP listener serves this host only`,
    })
  }
  return hp
}

const TOKEN_CHAR = /^[\x21-\x7e]$/

/**
 * Check a token: 1..256 printable ASCII characters, no spaces. The value is
 * never printed (errors show `<redacted>`).
 *
 * @throws ConfigError naming `variable` and the expected form.
 */
export function parseToken(variable: string, value: string): string {
  const text = value.trim()
  let reason: string | undefined
  if (text === '') reason = 'the value is empty'
  else if (text.length > AGENT_TOKEN_MAX_LENGTH) reason = `${text.length} characters long, at most ${AGENT_TOKEN_MAX_LENGTH} allowed`
  else {
    let i = 0
    for (const ch of text) {
      i++
      if (!TOKEN_CHAR.test(ch)) {
        reason = `the character at position ${i} is not printable ASCII`
        break
      }
    }
  }
  if (reason !== undefined) throw new ConfigError(variable, '<redacted>', EXPECTED_AGENT_TOKEN, { reason })
  return text
}

// ---------------------------------------------------------------- the variables

/** How a program uses a variable. */
export interface EnvVarUse {
  /** Default when unset, as written in docs (e.g. `0.0.0.0:0`). Absent: required, or optional with no default (shown as `optional`). */
  readonly default?: string
  /** Start-up fails when the variable is unset. */
  readonly required?: boolean
}

/** One row of {@link ENV_VARS}. */
export interface EnvVarSpec {
  /** Variable name, e.g. `WARPMESH_BIND`. */
  readonly name: string
  /** Expected form, exactly as error messages print it. */
  readonly expected: string
  /** One sentence for humans. */
  readonly description: string
  /** How a node reads it; absent if a node ignores it. */
  readonly node?: EnvVarUse
  /** How a coordinator reads it; absent if a coordinator ignores it. */
  readonly coordinator?: EnvVarUse
  /** How `warpmesh agent` reads it; absent if the agent ignores it. */
  readonly agent?: EnvVarUse
}

// lib/security/keys.ts parses the key variables; the table prints its expected form.
const EXPECTED_KEY_LIST = KEY_LIST_FORM

const HEARTBEAT_RANGE = { min: HEARTBEAT_MIN_MS, max: HEARTBEAT_MAX_MS } as const
const LEASE_RANGE = { min: 1, max: LEASE_MISSES_MAX } as const
const WARMUP_RANGE = { min: 0, max: MAX_WARMUP_ROUND_TRIPS } as const
const DATAGRAM_RANGE = { min: DATAGRAM_MIN_BYTES, max: DATAGRAM_MAX_BYTES } as const
const NO_UNSPECIFIED = { allowUnspecified: false } as const
const METRICS_EXAMPLE = '127.0.0.1:9464'
const ADVERTISE_EXAMPLE = '203.0.113.10:7401'
const COORDINATORS_EXAMPLE = '10.0.0.1:7400,10.0.0.2'
const EXPECTED_COORDINATORS = expectedHostPortList(COORDINATORS_EXAMPLE, DEFAULT_COORDINATOR_PORT)

/**
 * Every environment variable warpmesh reads, in the order they are checked.
 * The table of docs/configuration.md and `--help` are generated from it ({@link formatEnvTable},
 * {@link formatEnvHelp}). `WARPMESH_KEY`, `WARPMESH_KEY_FILE` and
 * `WARPMESH_INSECURE` are listed here but parsed by `loadKeys()` in
 * `lib/security/keys.ts`.
 */
export const ENV_VARS: readonly EnvVarSpec[] = Object.freeze([
  {
    name: 'WARPMESH_ID',
    expected: EXPECTED_ID,
    description: 'Unique id of this node in the mesh. Another live node with the same id is refused.',
    node: { required: true },
    coordinator: { default: 'coordinator' },
  },
  {
    name: 'WARPMESH_ROLE',
    expected: EXPECTED_ROLE,
    description: 'Role of this node, used by broadcast filters (e.g. proxy, downstream, lobby).',
    node: { default: 'downstream' },
  },
  {
    name: 'WARPMESH_BIND',
    expected: expectedHostPort(),
    description: 'Local UDP address to listen on. Port 0 picks a free port. An IPv6 address binds IPv6.',
    node: { default: '0.0.0.0:0' },
    coordinator: { default: `0.0.0.0:${DEFAULT_COORDINATOR_PORT}` },
    agent: { default: '0.0.0.0:0' },
  },
  {
    name: 'WARPMESH_ADVERTISE',
    expected: expectedHostPort(ADVERTISE_EXAMPLE),
    description: 'Address other nodes send to, when it differs from the bound one (NAT, containers).',
    node: {},
  },
  {
    name: 'WARPMESH_COORDINATORS',
    expected: EXPECTED_COORDINATORS,
    description: 'Coordinators to register with; the node registers with all of them.',
    node: { required: true },
    agent: { required: true },
  },
  {
    name: 'WARPMESH_META',
    expected: EXPECTED_META,
    description: 'Initial metadata of this node, published in the peer table (game mode, capacity, tags). Unset: none.',
    node: {},
  },
  {
    name: 'WARPMESH_LOG',
    expected: EXPECTED_LOG_LEVEL,
    description: 'Log level. Logs are JSON lines on stderr.',
    node: { default: 'info' },
    coordinator: { default: 'info' },
    agent: { default: 'info' },
  },
  {
    name: 'WARPMESH_METRICS',
    expected: expectedHostPort(METRICS_EXAMPLE),
    description: 'Serve Prometheus metrics at http://host:port/metrics. Unset: no metrics endpoint.',
    node: {},
    coordinator: {},
    agent: {},
  },
  {
    name: 'WARPMESH_HEARTBEAT_MS',
    expected: expectedDuration(HEARTBEAT_RANGE.min, HEARTBEAT_RANGE.max),
    description: 'Interval between lease renewals sent to the coordinators.',
    node: { default: '1000' },
    coordinator: { default: '1000' },
    agent: { default: '1000' },
  },
  {
    name: 'WARPMESH_LEASE_MISSES',
    expected: expectedInt(LEASE_RANGE.min, LEASE_RANGE.max),
    description: 'Heartbeats missed in a row before a node is declared down.',
    node: { default: '3' },
    coordinator: { default: '3' },
    agent: { default: '3' },
  },
  {
    name: 'WARPMESH_WARMUP',
    expected: expectedInt(WARMUP_RANGE.min, WARMUP_RANGE.max),
    description:
      'Round trips over private loopback sessions, then as many through two private nodes and a coordinator, before the node starts, so its first real messages run optimized code (~0.3 ms per round trip in all, ~0.9 s at the default; see docs/benchmarks.md, Warm-up). Once per process (an agent warms up for its first client). 0: none. The short-lived CLI tools (send, listen) skip it.',
    node: { default: String(DEFAULT_WARMUP) },
    agent: { default: String(DEFAULT_WARMUP) },
  },
  {
    name: 'WARPMESH_MAX_DATAGRAM',
    expected: expectedInt(DATAGRAM_RANGE.min, DATAGRAM_RANGE.max),
    description:
      'Largest datagram sent to peers on other hosts, in bytes. 1200 fits every IPv6 path without IP fragmentation; raise it only where the path MTU is known, e.g. 8972 on a jumbo-frame LAN.',
    node: { default: String(DEFAULT_MAX_DATAGRAM) },
    coordinator: { default: String(DEFAULT_MAX_DATAGRAM) },
    agent: { default: String(DEFAULT_MAX_DATAGRAM) },
  },
  {
    name: 'WARPMESH_LOOPBACK_DATAGRAM',
    expected: expectedInt(DATAGRAM_RANGE.min, DATAGRAM_RANGE.max),
    description:
      'Largest datagram sent to peers at loopback addresses (127.0.0.0/8, ::1), in bytes: on one host there is no link MTU. Set it to WARPMESH_MAX_DATAGRAM for small datagrams everywhere.',
    node: { default: String(DEFAULT_LOOPBACK_DATAGRAM) },
    coordinator: { default: String(DEFAULT_LOOPBACK_DATAGRAM) },
    agent: { default: String(DEFAULT_LOOPBACK_DATAGRAM) },
  },
  {
    name: 'WARPMESH_KEY',
    expected: EXPECTED_KEY_LIST,
    description:
      'Network key(s). The first starts sessions, all are accepted, so keys rotate without downtime. Required unless WARPMESH_KEY_FILE or WARPMESH_INSECURE is set.',
    node: {},
    coordinator: {},
    agent: {},
  },
  {
    name: 'WARPMESH_KEY_FILE',
    expected: `a readable file of ${EXPECTED_KEY_LIST}`,
    description: 'Path of a file holding the network key(s), instead of WARPMESH_KEY (not both).',
    node: {},
    coordinator: {},
    agent: {},
  },
  {
    name: 'WARPMESH_INSECURE',
    expected: '1 or true (or unset)',
    description: 'Run without a network key: no authentication, no encryption. Warns at start-up; never in production.',
    node: {},
    coordinator: {},
    agent: {},
  },
  {
    name: 'WARPMESH_AGENT_SOCKET',
    expected: EXPECTED_AGENT_SOCKET,
    description: 'Unix domain socket `warpmesh agent` listens on (mode 0600). A stale file left by a crashed agent is replaced; a live agent\'s is not.',
    agent: { default: DEFAULT_AGENT_SOCKET },
  },
  {
    name: 'WARPMESH_AGENT_LISTEN',
    expected: EXPECTED_AGENT_LISTEN,
    description: 'Also listen on TCP at this loopback address (for hosts without Unix sockets); requires WARPMESH_AGENT_TOKEN. Unset: Unix socket only.',
    agent: {},
  },
  {
    name: 'WARPMESH_AGENT_TOKEN',
    expected: EXPECTED_AGENT_TOKEN,
    description: 'Secret every client on the TCP listener sends in Hello.token. Required with WARPMESH_AGENT_LISTEN.',
    agent: {},
  },
  {
    name: 'WARPMESH_AGENT_CLIENT_BUFFER',
    expected: EXPECTED_BYTES,
    description: 'Events buffered for one client that does not read them; past it the client gets Error SLOW_CLIENT and is disconnected (like Redis\'s output-buffer limit).',
    agent: { default: '8MiB' },
  },
  {
    name: 'WARPMESH_REQUEST_TIMEOUT_MS',
    expected: expectedDuration(1, DURATION_MAX_MS),
    description: 'Timeout of a client\'s request that names none (Request.timeout_ms = 0).',
    agent: { default: '5000' },
  },
] satisfies EnvVarSpec[])

/** Environment to read: `process.env` or any plain map of strings. */
export type Env = Readonly<Record<string, string | undefined>>

/** The value of `name`, or undefined when unset or only whitespace. */
function readEnv(env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value
}

function requireEnv(env: Env, name: string, expected: string): string {
  const value = readEnv(env, name)
  if (value === undefined) throw new ConfigError(name, undefined, expected)
  return value
}

/** What {@link nodeOptionsFromEnv} returns. */
export interface NodeEnvConfig extends MeshEnvConfig {
  /** `WARPMESH_ID`: unique node id. Required. */
  id: string
  /** `WARPMESH_ROLE`. Default `downstream`. */
  role: string
  /** `WARPMESH_BIND`: local UDP address. Default `0.0.0.0:0` (any free port). */
  bind: HostPort
  /** `WARPMESH_ADVERTISE`: address others send to. Default: unset (the address the coordinator sees). */
  advertise?: HostPort
  /** `WARPMESH_META`: initial metadata. Default `{}`. */
  meta: Record<string, string>
}

/** The settings a mesh node and the agent's client nodes share (see {@link readMeshEnv}). */
export interface MeshEnvConfig {
  /** `WARPMESH_COORDINATORS`: at least one; port 7400 where omitted. Required. */
  coordinators: HostPort[]
  /** `WARPMESH_LOG`. Default `info`. */
  logLevel: LogLevel
  /** `WARPMESH_METRICS`: Prometheus endpoint address. Default: unset (no endpoint). */
  metrics?: HostPort
  /** `WARPMESH_HEARTBEAT_MS`: lease renewal interval, milliseconds. Default 1000. */
  heartbeatMs: number
  /** `WARPMESH_LEASE_MISSES`: missed heartbeats before a lease expires. Default 3. */
  leaseMisses: number
  /** `WARPMESH_WARMUP`: warm-up round trips before a node starts (0..100000). Default {@link DEFAULT_WARMUP}. */
  warmup: number
  /** `WARPMESH_MAX_DATAGRAM`: largest datagram sent to peers on other hosts, bytes (576..65000). Default 1200. */
  maxDatagram: number
  /** `WARPMESH_LOOPBACK_DATAGRAM`: largest datagram sent to peers at loopback addresses, bytes (576..65000). Default 32768. */
  loopbackDatagram: number
  /**
   * `WARPMESH_KEY` or `WARPMESH_KEY_FILE`: network keys, newest first (read by
   * `loadKeys()`). Empty only when {@link MeshEnvConfig.insecure} is true.
   */
  keys: Buffer[]
  /** `WARPMESH_INSECURE`: no key is configured and running unprotected was allowed explicitly. Warn at start-up. */
  insecure: boolean
}

/** What {@link coordinatorOptionsFromEnv} returns. */
export interface CoordinatorEnvConfig {
  /** `WARPMESH_ID`. Default `coordinator`. */
  id: string
  /** `WARPMESH_BIND`: UDP address to listen on. Default `0.0.0.0:7400`. */
  bind: HostPort
  /** `WARPMESH_LOG`. Default `info`. */
  logLevel: LogLevel
  /** `WARPMESH_METRICS`: Prometheus endpoint address. Default: unset (no endpoint). */
  metrics?: HostPort
  /** `WARPMESH_HEARTBEAT_MS`: the heartbeat interval nodes use, milliseconds. Default 1000. */
  heartbeatMs: number
  /** `WARPMESH_LEASE_MISSES`: missed heartbeats before a node's lease expires. Default 3. */
  leaseMisses: number
  /** `WARPMESH_MAX_DATAGRAM`; see {@link NodeEnvConfig.maxDatagram}. Default 1200. */
  maxDatagram: number
  /** `WARPMESH_LOOPBACK_DATAGRAM`; see {@link NodeEnvConfig.loopbackDatagram}. Default 32768. */
  loopbackDatagram: number
  /** Network keys, newest first; see {@link NodeEnvConfig.keys}. */
  keys: Buffer[]
  /** No key and `WARPMESH_INSECURE` set; see {@link NodeEnvConfig.insecure}. */
  insecure: boolean
}

const BIND_OPTIONS = { allowPortZero: true } as const

/**
 * The keys from `loadKeys()`, fed the key variables the way every other
 * variable is read: whitespace-only counts as unset, surrounding whitespace
 * (a CRLF `.env`) is ignored.
 */
function readKeys(env: Env): { keys: Buffer[]; insecure: boolean } {
  const pick = (name: string): string | undefined => readEnv(env, name)?.trim()
  return loadKeys({
    WARPMESH_KEY: pick('WARPMESH_KEY'),
    WARPMESH_KEY_FILE: pick('WARPMESH_KEY_FILE'),
    WARPMESH_INSECURE: pick('WARPMESH_INSECURE'),
  })
}

function optionalHostPort(env: Env, name: string, example: string): HostPort | undefined {
  const value = readEnv(env, name)
  return value === undefined ? undefined : parseHostPort(name, value, undefined, { ...NO_UNSPECIFIED, example })
}

function readTiming(env: Env): { heartbeatMs: number; leaseMisses: number } {
  const heartbeat = readEnv(env, 'WARPMESH_HEARTBEAT_MS')
  const misses = readEnv(env, 'WARPMESH_LEASE_MISSES')
  return {
    heartbeatMs: heartbeat === undefined ? 1000 : parseDurationMs('WARPMESH_HEARTBEAT_MS', heartbeat, HEARTBEAT_RANGE),
    leaseMisses: misses === undefined ? 3 : parsePositiveInt('WARPMESH_LEASE_MISSES', misses, LEASE_RANGE),
  }
}

function readDatagrams(env: Env): { maxDatagram: number; loopbackDatagram: number } {
  const max = readEnv(env, 'WARPMESH_MAX_DATAGRAM')
  const loopback = readEnv(env, 'WARPMESH_LOOPBACK_DATAGRAM')
  return {
    maxDatagram: max === undefined ? DEFAULT_MAX_DATAGRAM : parsePositiveInt('WARPMESH_MAX_DATAGRAM', max, DATAGRAM_RANGE),
    loopbackDatagram:
      loopback === undefined
        ? DEFAULT_LOOPBACK_DATAGRAM
        : parsePositiveInt('WARPMESH_LOOPBACK_DATAGRAM', loopback, DATAGRAM_RANGE),
  }
}

/**
 * Read a node's configuration from the environment, checking variables in
 * {@link ENV_VARS} order and stopping at the first bad one. Empty variables
 * count as unset. The key variables come last, through `loadKeys()`.
 *
 * @param env - the environment. Default `process.env`.
 * @throws ConfigError for the first missing required or invalid variable;
 *   also when no key is set and `WARPMESH_INSECURE` is not (the message says
 *   how to make a key).
 */
export function nodeOptionsFromEnv(env: Env = process.env): NodeEnvConfig {
  const id = parseId('WARPMESH_ID', requireEnv(env, 'WARPMESH_ID', EXPECTED_ID))
  const role = readEnv(env, 'WARPMESH_ROLE')
  const bind = readEnv(env, 'WARPMESH_BIND')
  const advertise = optionalHostPort(env, 'WARPMESH_ADVERTISE', ADVERTISE_EXAMPLE)
  const config: NodeEnvConfig = {
    id,
    role: role === undefined ? 'downstream' : parseRole('WARPMESH_ROLE', role),
    bind: bind === undefined ? { host: '0.0.0.0', port: 0, family: 4 } : parseHostPort('WARPMESH_BIND', bind, undefined, BIND_OPTIONS),
    ...(advertise === undefined ? {} : { advertise }),
    meta: {},
    ...readMeshEnv(env),
  }
  const meta = readEnv(env, 'WARPMESH_META')
  if (meta !== undefined) config.meta = parseMeta('WARPMESH_META', meta)
  return Object.assign(config, readKeys(env))
}

/**
 * Read the settings every mesh node takes from the environment (the node's and
 * the agent's client nodes'), in the order their errors are reported; the keys
 * are left for last (see {@link readKeys}): the caller reads them after its own.
 */
function readMeshEnv(env: Env): MeshEnvConfig {
  const config: MeshEnvConfig = {
    coordinators: parseHostPortList(
      'WARPMESH_COORDINATORS',
      requireEnv(env, 'WARPMESH_COORDINATORS', EXPECTED_COORDINATORS),
      DEFAULT_COORDINATOR_PORT,
      { ...NO_UNSPECIFIED, example: COORDINATORS_EXAMPLE },
    ),
    logLevel: 'info',
    heartbeatMs: 1000,
    leaseMisses: 3,
    warmup: DEFAULT_WARMUP,
    maxDatagram: DEFAULT_MAX_DATAGRAM,
    loopbackDatagram: DEFAULT_LOOPBACK_DATAGRAM,
    keys: [],
    insecure: false,
  }
  const log = readEnv(env, 'WARPMESH_LOG')
  if (log !== undefined) config.logLevel = parseLogLevel('WARPMESH_LOG', log)
  const metrics = optionalHostPort(env, 'WARPMESH_METRICS', METRICS_EXAMPLE)
  if (metrics !== undefined) config.metrics = metrics
  Object.assign(config, readTiming(env))
  const warmup = readEnv(env, 'WARPMESH_WARMUP')
  if (warmup !== undefined) config.warmup = parsePositiveInt('WARPMESH_WARMUP', warmup, WARMUP_RANGE)
  Object.assign(config, readDatagrams(env))
  return config
}

/**
 * Read a coordinator's configuration from the environment, stopping at the
 * first bad variable. Empty variables count as unset. The key variables come
 * last, through `loadKeys()`: a coordinator needs a key too.
 *
 * @param env - the environment. Default `process.env`.
 * @throws ConfigError for the first invalid variable, or a missing key as in
 *   {@link nodeOptionsFromEnv}.
 */
export function coordinatorOptionsFromEnv(env: Env = process.env): CoordinatorEnvConfig {
  const id = readEnv(env, 'WARPMESH_ID')
  const bind = readEnv(env, 'WARPMESH_BIND')
  const log = readEnv(env, 'WARPMESH_LOG')
  const config: CoordinatorEnvConfig = {
    id: id === undefined ? 'coordinator' : parseId('WARPMESH_ID', id),
    bind:
      bind === undefined
        ? { host: '0.0.0.0', port: DEFAULT_COORDINATOR_PORT, family: 4 }
        : parseHostPort('WARPMESH_BIND', bind, undefined, BIND_OPTIONS),
    logLevel: log === undefined ? 'info' : parseLogLevel('WARPMESH_LOG', log),
    heartbeatMs: 1000,
    leaseMisses: 3,
    maxDatagram: DEFAULT_MAX_DATAGRAM,
    loopbackDatagram: DEFAULT_LOOPBACK_DATAGRAM,
    keys: [],
    insecure: false,
  }
  const metrics = optionalHostPort(env, 'WARPMESH_METRICS', METRICS_EXAMPLE)
  if (metrics !== undefined) config.metrics = metrics
  Object.assign(config, readTiming(env), readDatagrams(env), readKeys(env))
  return config
}

/** What {@link agentOptionsFromEnv} returns. */
export interface AgentEnvConfig extends MeshEnvConfig {
  /** `WARPMESH_AGENT_SOCKET`. Default `/tmp/warpmesh-agent.sock`. */
  socket: string
  /** `WARPMESH_AGENT_LISTEN`: loopback TCP address. Default: unset (Unix socket only). */
  listen?: HostPort
  /** `WARPMESH_AGENT_TOKEN`: required with `listen`. */
  token?: string
  /** `WARPMESH_AGENT_CLIENT_BUFFER`, bytes. Default 8 MiB. */
  clientBuffer: number
  /** `WARPMESH_REQUEST_TIMEOUT_MS`: default request timeout of the client nodes, ms. Default 5000. */
  requestTimeoutMs: number
  /** `WARPMESH_BIND`: the address every client node binds, port 0 (each node gets its own). Default `0.0.0.0:0`. */
  bind: HostPort
}

/**
 * Read `warpmesh agent`'s configuration from the environment, stopping at
 * the first bad variable: the agent's own variables, then the ones every
 * client node shares (coordinators, keys, timing, datagram sizes).
 * `WARPMESH_ID`, `WARPMESH_ROLE` and `WARPMESH_META` are not read: each
 * client's Hello carries them.
 *
 * @param env - the environment. Default `process.env`.
 * @throws ConfigError for the first missing required or invalid variable:
 *   a non-loopback `WARPMESH_AGENT_LISTEN`, a listener without a token, a
 *   `WARPMESH_BIND` with a port other than 0.
 */
export function agentOptionsFromEnv(env: Env = process.env): AgentEnvConfig {
  // The agent's own variables first, then what every node reads, the keys last.
  const socket = readEnv(env, 'WARPMESH_AGENT_SOCKET')
  const listen = readEnv(env, 'WARPMESH_AGENT_LISTEN')
  const token = readEnv(env, 'WARPMESH_AGENT_TOKEN')
  const buffer = readEnv(env, 'WARPMESH_AGENT_CLIENT_BUFFER')
  const timeout = readEnv(env, 'WARPMESH_REQUEST_TIMEOUT_MS')
  const own: Omit<AgentEnvConfig, keyof MeshEnvConfig> = {
    socket: socket === undefined ? DEFAULT_AGENT_SOCKET : parseSocketPath('WARPMESH_AGENT_SOCKET', socket),
    clientBuffer: buffer === undefined ? DEFAULT_AGENT_CLIENT_BUFFER : parseBytes('WARPMESH_AGENT_CLIENT_BUFFER', buffer),
    requestTimeoutMs: timeout === undefined ? 5000 : parseDurationMs('WARPMESH_REQUEST_TIMEOUT_MS', timeout, { min: 1, max: DURATION_MAX_MS }),
    bind: { host: '0.0.0.0', port: 0, family: 4 },
  }
  if (listen !== undefined) {
    own.listen = parseLoopbackHostPort('WARPMESH_AGENT_LISTEN', listen)
    if (token === undefined) throw new ConfigError('WARPMESH_AGENT_TOKEN', undefined, `${EXPECTED_AGENT_TOKEN} (required with WARPMESH_AGENT_LISTEN)`)
  }
  if (token !== undefined) own.token = parseToken('WARPMESH_AGENT_TOKEN', token)
  const bind = readEnv(env, 'WARPMESH_BIND')
  if (bind !== undefined) {
    own.bind = parseHostPort('WARPMESH_BIND', bind, undefined, BIND_OPTIONS)
    if (own.bind.port !== 0) {
      throw new ConfigError('WARPMESH_BIND', bind, expectedHostPort('0.0.0.0:0'), {
        reason: 'the agent binds one UDP port per client: give port 0',
      })
    }
  }
  return { ...own, ...readMeshEnv(env), ...readKeys(env) }
}

// ---------------------------------------------------------------- docs

/** Options of {@link formatEnvTable} and {@link formatEnvHelp}. */
export interface FormatEnvOptions {
  /** Only the variables this program reads, with its defaults. Default: both, defaults side by side. */
  scope?: 'node' | 'coordinator' | 'agent'
  /** Rows to render. Default {@link ENV_VARS}. */
  vars?: readonly EnvVarSpec[]
}

function useText(use: EnvVarUse | undefined): string | undefined {
  if (use === undefined) return undefined
  if (use.required === true) return 'required'
  return use.default ?? 'optional'
}

function defaultText(spec: EnvVarSpec, scope: FormatEnvOptions['scope']): string {
  if (scope !== undefined) return useText(spec[scope]) as string
  const node = useText(spec.node)
  const coordinator = useText(spec.coordinator)
  if (node === undefined && coordinator === undefined) return `${useText(spec.agent) as string} (agent only)`
  if (node === coordinator || coordinator === undefined) return node as string
  if (node === undefined) return `${coordinator} (coordinator only)`
  return `node: ${node}; coordinator: ${coordinator}`
}

function selectVars({ scope, vars = ENV_VARS }: FormatEnvOptions): EnvVarSpec[] {
  return vars.filter((spec) => scope === undefined || spec[scope] !== undefined)
}

function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|')
}

/**
 * Render {@link ENV_VARS} as a Markdown table (Variable, Default, Expected,
 * Description), ending with a newline. Pipes in cells are escaped.
 */
export function formatEnvTable(options: FormatEnvOptions = {}): string {
  const rows = selectVars(options).map(
    (spec) =>
      `| \`${spec.name}\` | ${cell(defaultText(spec, options.scope))} | ${cell(spec.expected)} | ${cell(spec.description)} |`,
  )
  return ['| Variable | Default | Expected | Description |', '|---|---|---|---|', ...rows, ''].join('\n')
}

/** Render {@link ENV_VARS} as plain text for `--help`, ending with a newline. */
export function formatEnvHelp(options: FormatEnvOptions = {}): string {
  const lines = ['Environment variables:']
  for (const spec of selectVars(options)) {
    const text = defaultText(spec, options.scope)
    lines.push(`  ${spec.name} (${text === 'required' || text === 'optional' ? text : `default: ${text}`})`)
    lines.push(`      ${spec.description}`)
    lines.push(`      Expected: ${spec.expected}`)
  }
  lines.push('')
  return lines.join('\n')
}
