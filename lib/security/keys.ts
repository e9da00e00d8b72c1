/**
 * Network keys: parsing `WARPMESH_KEY` / `WARPMESH_KEY_FILE`, generating a
 * key, and the key id a handshake carries so the receiver picks the right key
 * without trial decryption.
 *
 * A network key is a shared secret of at least {@link MIN_KEY_BYTES} random
 * bytes. Several keys may be configured, comma-separated, newest first: the
 * first starts sessions, all are accepted, so a network rotates keys without
 * downtime (deploy `new,old` everywhere, then `new`).
 *
 * Keys are never printed: a {@link ConfigError} about a key shows only its
 * length and, for entries of 16 characters or more, its first 4 characters.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { createHmac, randomBytes } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { ConfigError } from '../errors.js'

/** Shortest accepted network key, in bytes (after decoding). */
export const MIN_KEY_BYTES = 32

/** Most keys accepted in one list (a list is tried key by key only on a key-id collision). */
export const MAX_KEYS = 16

/** Largest `WARPMESH_KEY_FILE` read, in bytes; a larger file is a configuration error. */
export const MAX_KEY_FILE_BYTES = 64 * 1024

/** Environment variable holding the comma-separated network keys. */
export const KEY_VARIABLE = 'WARPMESH_KEY'
/** Environment variable naming a file that holds the network keys (same format, trimmed). */
export const KEY_FILE_VARIABLE = 'WARPMESH_KEY_FILE'
/** Environment variable that allows running without a key: `1` or `true`. */
export const INSECURE_VARIABLE = 'WARPMESH_INSECURE'

/** The expected form of a key list, as printed in {@link ConfigError} messages. */
export const KEY_LIST_FORM =
  `comma-separated keys, newest first, each ${MIN_KEY_BYTES * 2}+ hex characters or base64/base64url ` +
  `of at least ${MIN_KEY_BYTES} bytes (make one with \`warpmesh keygen\`)`

const HEX = /^[0-9a-fA-F]+$/
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/
const KEY_ID_LABEL = 'warpmesh key id'

/**
 * What a {@link ConfigError} may show of a secret: its length and, when it is
 * long enough that 4 characters are a small part of it, its first 4.
 */
function describeSecret(text: string): string {
  return text.length >= 16
    ? `${text.length} characters, starting ${text.slice(0, 4)}…`
    : `${text.length} characters`
}

function redact(text: string): string {
  return `[redacted: ${describeSecret(text)}]`
}

/** Decode one trimmed key entry, or return why it is not a key. */
function decodeKey(entry: string): Buffer | string {
  if (entry.length === 0) return 'is empty'
  if (HEX.test(entry)) {
    // All-hex entries are hex even when they would also be valid base64: a
    // random base64 key of 43+ characters being all hex digits is ~2^-66 likely.
    if (entry.length % 2 !== 0) return `is ${entry.length} hex digits, an odd number`
    if (entry.length < MIN_KEY_BYTES * 2) {
      return `is ${entry.length / 2} bytes of hex, shorter than ${MIN_KEY_BYTES} bytes (${MIN_KEY_BYTES * 2} hex digits)`
    }
    return Buffer.from(entry, 'hex')
  }
  if (BASE64.test(entry)) {
    const body = entry.replace(/=+$/, '')
    const padded = body.length !== entry.length
    if (body.length % 4 === 1 || (padded && entry.length % 4 !== 0)) return 'is not valid base64 (bad length or padding)'
    const key = Buffer.from(body, 'base64')
    if (key.length < MIN_KEY_BYTES) {
      return `is ${key.length} bytes of base64, shorter than ${MIN_KEY_BYTES} bytes`
    }
    return key
  }
  for (let i = 0; i < entry.length; i++) {
    if (!/[A-Za-z0-9+/_=-]/.test(entry[i])) {
      return `has a character that is neither hex nor base64 at position ${i + 1}`
    }
  }
  return 'is not valid base64 (misplaced "=")'
}

function parseKeyList(text: string, variable: string, shownValue: string): Buffer[] {
  const fail = (reason: string): ConfigError => new ConfigError(variable, shownValue, KEY_LIST_FORM, { reason })
  const entries = text.split(',').map((entry) => entry.trim())
  if (entries.length === 1 && entries[0] === '') throw fail('contains no key')
  if (entries.length > MAX_KEYS) throw fail(`has ${entries.length} keys, more than ${MAX_KEYS}`)
  const keys: Buffer[] = []
  for (let i = 0; i < entries.length; i++) {
    const where = entries.length === 1 ? 'the key' : `key ${i + 1} of ${entries.length}`
    const key = decodeKey(entries[i])
    if (typeof key === 'string') {
      throw fail(entries[i].length === 0 ? `${where} ${key}` : `${where} (${describeSecret(entries[i])}) ${key}`)
    }
    const same = keys.findIndex((k) => k.equals(key))
    if (same >= 0) throw fail(`${where} repeats key ${same + 1}`)
    keys.push(key)
  }
  return keys
}

/**
 * Parse a comma-separated list of network keys, newest first.
 *
 * Each entry (surrounding whitespace ignored) is either hex — only hex digits,
 * an even number, at least {@link MIN_KEY_BYTES}` × 2` of them — or base64 /
 * base64url (padding optional) decoding to at least {@link MIN_KEY_BYTES}
 * bytes. An entry made only of hex digits is always read as hex. Empty
 * entries, duplicates and more than {@link MAX_KEYS} keys are errors.
 *
 * @param text - the list, e.g. the value of `WARPMESH_KEY`.
 * @param source - the variable (or option) it came from; named in errors.
 * @returns the decoded keys, in the given order (newest first). Never empty.
 * @throws {ConfigError} naming `source`, with the value redacted.
 */
export function parseKeys(text: string, source: string): Buffer[] {
  return parseKeyList(text, source, redact(text))
}

/** What {@link loadKeys} found in the environment. */
export interface LoadedKeys {
  /** The network keys, newest first; empty only when `insecure` is true. */
  keys: Buffer[]
  /**
   * True when no key is configured and `WARPMESH_INSECURE` allows running
   * without protection (the node should warn at start-up). Always false when
   * keys are configured: a key always wins.
   */
  insecure: boolean
}

function readKeyFile(path: string): string {
  const expected = `a readable file of ${KEY_LIST_FORM}`
  const buf = Buffer.allocUnsafe(MAX_KEY_FILE_BYTES + 1)
  let length = 0
  try {
    const fd = openSync(path, 'r')
    try {
      let n: number
      while (length < buf.length && (n = readSync(fd, buf, length, buf.length - length, null)) > 0) length += n
    } finally {
      closeSync(fd)
    }
  } catch (err) {
    // fs messages name the code, the syscall and the path, never file contents
    throw new ConfigError(KEY_FILE_VARIABLE, path, expected, {
      reason: `the file cannot be read (${(err as Error).message})`,
      cause: err,
    })
  }
  if (length > MAX_KEY_FILE_BYTES) {
    throw new ConfigError(KEY_FILE_VARIABLE, path, expected, { reason: `the file is larger than ${MAX_KEY_FILE_BYTES} bytes` })
  }
  return buf.toString('utf8', 0, length)
}

/**
 * Read the network keys from the environment.
 *
 * - `WARPMESH_KEY`: the key list (see {@link parseKeys}).
 * - `WARPMESH_KEY_FILE`: path of a file holding the key list; its contents
 *   are trimmed. Setting both this and `WARPMESH_KEY` is an error.
 * - `WARPMESH_INSECURE`: `1` or `true` allows running with no key; any other
 *   non-empty value is an error.
 *
 * Empty variables count as unset. Reads the key file synchronously (once, at
 * start-up).
 *
 * @param env - the environment, usually `process.env`.
 * @throws {ConfigError} naming the offending variable, never printing a key;
 *   also when there is no key and `WARPMESH_INSECURE` is not set, explaining
 *   how to make one (`warpmesh keygen`).
 */
export function loadKeys(env: NodeJS.ProcessEnv): LoadedKeys {
  const insecureText = env[INSECURE_VARIABLE] ?? ''
  if (insecureText !== '' && insecureText !== '1' && insecureText !== 'true') {
    throw new ConfigError(INSECURE_VARIABLE, insecureText, '1 or true (or unset)', {
      reason: 'is not a recognised value',
    })
  }
  const insecureAllowed = insecureText !== ''
  const keyText = env[KEY_VARIABLE] ?? ''
  const keyFile = env[KEY_FILE_VARIABLE] ?? ''

  if (keyText !== '' && keyFile !== '') {
    throw new ConfigError(KEY_FILE_VARIABLE, keyFile, `either ${KEY_VARIABLE} or ${KEY_FILE_VARIABLE}, not both`, {
      reason: `${KEY_VARIABLE} is set too`,
    })
  }
  if (keyText !== '') return { keys: parseKeys(keyText, KEY_VARIABLE), insecure: false }
  if (keyFile !== '') {
    const contents = readKeyFile(keyFile).trim()
    return { keys: parseKeyList(contents, KEY_FILE_VARIABLE, keyFile), insecure: false }
  }
  if (insecureAllowed) return { keys: [], insecure: true }
  throw new ConfigError(
    KEY_VARIABLE,
    undefined,
    `a network key: run \`warpmesh keygen\` and set its output as ${KEY_VARIABLE} on every node ` +
      `(or put it in a file and set ${KEY_FILE_VARIABLE} to its path); ` +
      `${INSECURE_VARIABLE}=1 runs without authentication or encryption (never in production)`,
    { reason: `neither is ${KEY_FILE_VARIABLE}, and ${INSECURE_VARIABLE} is not set` },
  )
}

/** A fresh network key: {@link MIN_KEY_BYTES} random bytes as 64 hex characters. */
export function generateKey(): string {
  return randomBytes(MIN_KEY_BYTES).toString('hex')
}

const keyIds = new WeakMap<Uint8Array, number>()

/**
 * The id of a network key: the first 4 bytes of
 * HMAC-SHA256(key, "warpmesh key id") as a big-endian uint32. Sent in the
 * handshake (`Handshake.key_id`) so the receiver picks the right key without
 * trial; it reveals nothing usable about the key. Cached per key object.
 *
 * @param key - a network key.
 * @returns a uint32.
 */
export function keyId(key: Uint8Array): number {
  let id = keyIds.get(key)
  if (id === undefined) {
    id = createHmac('sha256', key).update(KEY_ID_LABEL).digest().readUInt32BE(0)
    keyIds.set(key, id)
  }
  return id
}

/**
 * The keys of `keys` whose {@link keyId} is `id`, in list order (usually
 * none or one; more only on a 32-bit id collision).
 *
 * @param keys - the network keys, newest first.
 * @param id - a key id received from a peer; `undefined` selects every key.
 */
export function keysWithId(keys: readonly Buffer[], id: number | undefined): Buffer[] {
  return id === undefined ? keys.slice() : keys.filter((key) => keyId(key) === id)
}
