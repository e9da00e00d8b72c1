/**
 * Stateless handshake cookies. A responder answers a HELLO with a cookie
 * instead of creating state; only a CONNECT that echoes a valid cookie, from
 * the same address and port, for the same connection id and nonce, within the
 * cookie's lifetime, creates a session. An off-path spoofer never sees the
 * cookie, so it can make no node keep state.
 *
 * Layout ({@link COOKIE_LENGTH} = 20 bytes):
 *
 * | bytes | content |
 * |---|---|
 * | 0..3 | issue time: `floor(now() / 1000)` as a wrapping uint32, big-endian |
 * | 4..19 | HMAC-SHA256(secret, input) truncated to 16 bytes |
 *
 * where `input` = version byte `1` ‖ time (4) ‖ port (uint16 BE) ‖
 * connection id (uint32 BE) ‖ nonce length (uint8) ‖ nonce ‖ address (UTF-8).
 * The address comes last so every field boundary is unambiguous.
 *
 * The secret is random per jar and rotates every `rotateIntervalMs`; the
 * previous secret is kept, so a cookie stays valid across one rotation.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto'

/** Length of every cookie, in bytes. */
export const COOKIE_LENGTH = 20
/** Length of the truncated MAC in a cookie, in bytes. */
export const COOKIE_MAC_LENGTH = 16
/** Longest nonce a cookie can bind, in bytes. */
export const MAX_COOKIE_NONCE_LENGTH = 255
/** Longest cookie lifetime accepted, in milliseconds (1 hour). */
export const MAX_COOKIE_LIFETIME_MS = 3_600_000

const TIME_LENGTH = 4
const SECRET_LENGTH = 32
const FORMAT_VERSION = 1

/** Options of {@link CookieJar}. */
export interface CookieJarOptions {
  /**
   * The initial secret, at least 32 bytes (copied). Later secrets are random.
   * Default: 32 random bytes.
   */
  secret?: Uint8Array
  /**
   * How long a cookie is accepted, in milliseconds: a whole number of seconds,
   * 1000 .. {@link MAX_COOKIE_LIFETIME_MS}. A cookie is accepted for at least
   * `lifetimeMs` and never `lifetimeMs + 1000` or more after it was issued
   * (its timestamp has 1 s resolution). Default 10000.
   */
  lifetimeMs?: number
  /**
   * How often the secret rotates, in milliseconds; at least
   * `lifetimeMs + 1000` so that a cookie outlives the rotation that follows
   * it. Rotation happens lazily, inside `issue()` and `verify()`.
   * Default `2 × lifetimeMs`.
   */
  rotateIntervalMs?: number
  /** The clock, in milliseconds (any origin; monotonic preferred). Required. */
  now: () => number
}

function isUint32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff
}

/**
 * Issues and verifies stateless cookies. Pure: no I/O, time comes from
 * `now`. One jar per endpoint.
 */
export class CookieJar {
  readonly #lifetimeSeconds: number
  readonly #rotateIntervalMs: number
  readonly #now: () => number
  #current: KeyObject
  #previous: KeyObject | undefined
  #rotatedAt: number
  /** version ‖ time ‖ port ‖ connection id ‖ nonce length: the fixed part of the MAC input. */
  readonly #fixed = Buffer.alloc(1 + TIME_LENGTH + 2 + 4 + 1)
  readonly #expected = Buffer.alloc(COOKIE_MAC_LENGTH)

  /** @param options - see {@link CookieJarOptions}. */
  constructor(options: CookieJarOptions) {
    const lifetimeMs = options.lifetimeMs ?? 10_000
    if (!Number.isInteger(lifetimeMs) || lifetimeMs < 1000 || lifetimeMs > MAX_COOKIE_LIFETIME_MS || lifetimeMs % 1000 !== 0) {
      throw new RangeError(`lifetimeMs must be a whole number of seconds in ms, 1000..${MAX_COOKIE_LIFETIME_MS}; got ${lifetimeMs}`)
    }
    const rotateIntervalMs = options.rotateIntervalMs ?? 2 * lifetimeMs
    if (!Number.isFinite(rotateIntervalMs) || rotateIntervalMs < lifetimeMs + 1000) {
      throw new RangeError(`rotateIntervalMs must be at least lifetimeMs + 1000 (${lifetimeMs + 1000}); got ${rotateIntervalMs}`)
    }
    if (typeof options.now !== 'function') throw new TypeError('now must be a function returning milliseconds')
    if (options.secret !== undefined && options.secret.length < SECRET_LENGTH) {
      throw new RangeError(`secret must be at least ${SECRET_LENGTH} bytes; got ${options.secret.length}`)
    }
    this.#lifetimeSeconds = lifetimeMs / 1000
    this.#rotateIntervalMs = rotateIntervalMs
    this.#now = options.now
    this.#current = createSecretKey(Buffer.from(options.secret ?? randomBytes(SECRET_LENGTH)))
    this.#rotatedAt = this.#now()
    this.#fixed[0] = FORMAT_VERSION
  }

  /**
   * Make a cookie for a HELLO.
   *
   * @param address - the initiator's source address, as the socket reported it.
   * @param port - the initiator's source port, 0..65535.
   * @param connectionId - the initiator's own connection id (uint32).
   * @param nonce - the initiator's nonce, at most {@link MAX_COOKIE_NONCE_LENGTH} bytes.
   * @returns a fresh {@link COOKIE_LENGTH}-byte cookie.
   * @throws {RangeError} on an invalid port, connection id or nonce length.
   */
  issue(address: string, port: number, connectionId: number, nonce: Uint8Array): Buffer {
    if (!isPort(port)) throw new RangeError(`port must be an integer 0..65535; got ${port}`)
    if (!isUint32(connectionId)) throw new RangeError(`connectionId must be a uint32; got ${connectionId}`)
    if (nonce.length > MAX_COOKIE_NONCE_LENGTH) {
      throw new RangeError(`nonce must be at most ${MAX_COOKIE_NONCE_LENGTH} bytes; got ${nonce.length}`)
    }
    const now = this.#now()
    this.#maybeRotate(now)
    const cookie = Buffer.allocUnsafe(COOKIE_LENGTH)
    const time = Math.floor(now / 1000) >>> 0
    cookie.writeUInt32BE(time, 0)
    this.#mac(this.#current, time, address, port, connectionId, nonce).copy(cookie, TIME_LENGTH, 0, COOKIE_MAC_LENGTH)
    return cookie
  }

  /**
   * Whether `cookie` was issued by this jar (under the current or the previous
   * secret) for exactly this address, port, connection id and nonce, and is
   * still within its lifetime. Never throws: any malformed argument (wrong
   * cookie length, out-of-range numbers) is simply not valid. The MAC is
   * compared in constant time.
   */
  verify(cookie: Uint8Array, address: string, port: number, connectionId: number, nonce: Uint8Array): boolean {
    if (cookie.length !== COOKIE_LENGTH || !isPort(port) || !isUint32(connectionId)) return false
    if (nonce.length > MAX_COOKIE_NONCE_LENGTH || typeof address !== 'string') return false
    const now = this.#now()
    this.#maybeRotate(now)
    const time = ((cookie[0] << 24) | (cookie[1] << 16) | (cookie[2] << 8) | cookie[3]) >>> 0
    const age = (Math.floor(now / 1000) - time) | 0
    if (age < 0 || age > this.#lifetimeSeconds) return false
    const given = cookie.subarray(TIME_LENGTH, COOKIE_LENGTH)
    if (timingSafeEqual(this.#truncatedMac(this.#current, time, address, port, connectionId, nonce), given)) return true
    const previous = this.#previous
    return previous !== undefined &&
      timingSafeEqual(this.#truncatedMac(previous, time, address, port, connectionId, nonce), given)
  }

  /**
   * Replace the secret with a fresh random one now, keeping the current one as
   * the previous secret (the one before is forgotten: cookies issued under it
   * stop verifying). Called automatically every `rotateIntervalMs`.
   */
  rotate(): void {
    this.#rotateAt(this.#now())
  }

  #maybeRotate(now: number): void {
    if (now - this.#rotatedAt >= this.#rotateIntervalMs) this.#rotateAt(now)
  }

  #rotateAt(now: number): void {
    this.#previous = this.#current
    this.#current = createSecretKey(randomBytes(SECRET_LENGTH))
    this.#rotatedAt = now
  }

  #mac(secret: KeyObject, time: number, address: string, port: number, connectionId: number, nonce: Uint8Array): Buffer {
    const fixed = this.#fixed
    fixed.writeUInt32BE(time, 1)
    fixed.writeUInt16BE(port, 5)
    fixed.writeUInt32BE(connectionId, 7)
    fixed[11] = nonce.length
    return createHmac('sha256', secret).update(fixed).update(nonce).update(address, 'utf8').digest()
  }

  #truncatedMac(secret: KeyObject, time: number, address: string, port: number, connectionId: number, nonce: Uint8Array): Buffer {
    this.#mac(secret, time, address, port, connectionId, nonce).copy(this.#expected, 0, 0, COOKIE_MAC_LENGTH)
    return this.#expected
  }
}
