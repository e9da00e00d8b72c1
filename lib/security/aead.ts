/**
 * Per-packet protection of DATA packets: ChaCha20-Poly1305 (IETF variant,
 * RFC 8439: 256-bit key, 96-bit nonce, 128-bit tag) from libsodium through
 * `sodium-native` ({@link loadSodium}). The only cipher suite; it replaced
 * node:crypto's AES-256-GCM in protocol version 4.
 *
 * - The packet header (every byte of the encoded `Packet` before the tag of
 *   field 15, `payload`, which ends the datagram) is the associated data:
 *   authenticated, not encrypted. The payload's tag and length are outside
 *   it (they are implied by the datagram's end) and authenticated all the
 *   same, since any other value moves the ciphertext and tag.
 * - The payload is encrypted; `seal` produces ciphertext ‖ 16-byte tag
 *   (libsodium's combined form), which becomes the `payload` field.
 * - Nonce (12 bytes) = per-direction IV XOR (8 zero bytes ‖ packet number as
 *   uint32 BE).
 *
 * **Why a nonce never repeats under one key.** Each traffic key belongs to
 * one session and one direction: the handshake derives it with HKDF from the
 * network key, both sides' fresh random nonces and both connection ids, with
 * a different label per direction (`lib/security/handshake.ts`), and it is
 * expanded here into the AEAD key and IV. Within one key the nonce is a
 * bijection of the 32-bit packet number, and `seal` accepts only packet
 * numbers that advance (serial order) and at most {@link PACKETS_PER_KEY} of
 * them: no packet number, hence no nonce, is sealed twice. The IV adds
 * nothing to uniqueness; it makes nonces unpredictable across sessions (as
 * TLS 1.3 and QUIC do), so an attacker gains nothing by precomputing for
 * many keys at once.
 *
 * **Why not XChaCha20-Poly1305.** Its 192-bit nonce exists so that random
 * nonces cannot collide; warpmesh's nonces are counters under a key used by
 * one sender, which cannot collide with 96 bits, and XChaCha would add an
 * HChaCha20 block per packet.
 *
 * **Allocation.** libsodium's calls are one-shot (no cipher object per
 * packet, as node:crypto needed): the keys and the two nonce buffers are
 * allocated once per protector, and with caller-provided outputs `seal` and
 * `open` allocate nothing (`open` can decrypt in place). Keys are kept in
 * plain `Buffer`s (each in its own ArrayBuffer, not Node's shared pool), not
 * in `sodium_malloc` memory: that maps guard pages (≥ 16 KiB of address
 * space and an mlock per allocation) and needs an explicit free per session,
 * too dear at thousands of sessions for what it protects against (swap and
 * core dumps); the network key itself lives in ordinary memory anyway.
 *
 * Each traffic key from the handshake is expanded with HKDF-SHA256 (empty
 * salt) into the AEAD key (info `"warpmesh chacha20-poly1305 key"`, 32
 * bytes) and the IV (info `"warpmesh chacha20-poly1305 iv"`, 12 bytes) —
 * once per session, with node:crypto.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { hkdfSync } from 'node:crypto'
import { loadSodium, type Sodium } from './sodium.js'

/** Length of the authentication tag `seal` appends, in bytes. */
export const TAG_LENGTH = 16
/** Length of the AEAD nonce, in bytes. */
export const AEAD_NONCE_LENGTH = 12
/** Length of the AEAD key, in bytes. */
export const AEAD_KEY_LENGTH = 32

/**
 * Most packets one traffic key may seal: the packet-number space, 2^32. The
 * nonce is derived from the 32-bit packet number, so the 2^32-th packet
 * after the first would repeat a nonce; a session must be re-established
 * (new handshake, new keys) or closed before then. `seal` enforces it.
 */
export const PACKETS_PER_KEY = 2 ** 32

/** Usage limits of one traffic key (RFC 9001 §6.6 for AEAD_CHACHA20_POLY1305). */
export interface AeadLimits {
  /**
   * Most packets sealed, counted as packet-number advance + 1:
   * {@link PACKETS_PER_KEY}. ChaCha20-Poly1305's confidentiality limit is
   * beyond 2^62 packets (RFC 9001 §6.6), so the 32-bit packet-number space
   * is the binding limit. `seal` enforces it.
   */
  maxPackets: number
  /**
   * Integrity limit: failed `open`s after which the receiving key is retired,
   * 2^36 for ChaCha20-Poly1305 (RFC 9001 §6.6: beyond it a forgery has a
   * non-negligible chance). `open` enforces it: past the limit it rejects
   * every packet, so the session dies by idle timeout and a new handshake
   * brings new keys.
   */
  maxOpenFailures: number
}

/** The limits of the one cipher suite; see {@link AeadLimits}. */
export const AEAD_LIMITS: Readonly<AeadLimits> = Object.freeze({ maxPackets: PACKETS_PER_KEY, maxOpenFailures: 2 ** 36 })

const KEY_INFO = Buffer.from('warpmesh chacha20-poly1305 key', 'latin1')
const IV_INFO = Buffer.from('warpmesh chacha20-poly1305 iv', 'latin1')
const EMPTY = Buffer.alloc(0)

/** Options of {@link PacketProtector}. */
export interface PacketProtectorOptions {
  /**
   * Lower the sending key's packet limit (never above {@link PACKETS_PER_KEY}):
   * a re-handshake policy stricter than the cryptographic limit.
   * Default: {@link AEAD_LIMITS}`.maxPackets`.
   */
  maxPackets?: number
  /**
   * Lower the receiving key's integrity limit (never above the suite's): failed
   * `open`s after which every packet is rejected. Default: {@link AEAD_LIMITS}`.maxOpenFailures`.
   */
  maxOpenFailures?: number
}

function lowerLimit(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer 1..${max}; got ${value}`)
  }
  return value
}

interface Direction {
  readonly key: Buffer
  /** IV bytes 0..7 preset; bytes 8..11 rewritten per packet. */
  readonly nonce: Buffer
  /**
   * IV bytes 8..9 and 10..11 as two uint16s, XORed with the packet number's
   * halves. Not one uint32: V8 keeps a number of 2^30 or more as a heap
   * number, and a field holding a small integer in one session and a heap
   * number in the next changed the object's layout at random, throwing away
   * the optimized seal and open ("wrong map") when a real session's IV drew
   * the other kind than the warm-up's.
   */
  readonly ivHigh: number
  readonly ivLow: number
}

function expand(trafficKey: Uint8Array): Direction {
  const key = Buffer.from(hkdfSync('sha256', trafficKey, EMPTY, KEY_INFO, AEAD_KEY_LENGTH))
  const nonce = Buffer.from(hkdfSync('sha256', trafficKey, EMPTY, IV_INFO, AEAD_NONCE_LENGTH))
  return { key, nonce, ivHigh: nonce.readUInt16BE(8), ivLow: nonce.readUInt16BE(10) }
}

/** Write the nonce of `packetNumber` into `d.nonce` (bytes 8..11; no allocation). */
function setNonce(d: Direction, packetNumber: number): Buffer {
  const n = d.nonce
  const high = d.ivHigh ^ (packetNumber >>> 16)
  const low = d.ivLow ^ (packetNumber & 0xffff)
  n[8] = high >>> 8
  n[9] = high
  n[10] = low >>> 8
  n[11] = low
  return n
}

function isUint32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff
}

/**
 * Seals outgoing and opens incoming DATA payloads of one session. Pure: no
 * I/O, no clock. Use with a {@link ReplayWindow}: `check` the packet number,
 * `open`, and `commit` only when `open` succeeded.
 *
 * ```ts
 * // initiator
 * const p = new PacketProtector(keys.initiatorToResponder, keys.responderToInitiator)
 * // responder
 * const p = new PacketProtector(keys.responderToInitiator, keys.initiatorToResponder)
 * ```
 */
export class PacketProtector {
  readonly #sodium: Sodium
  readonly #send: Direction
  readonly #recv: Direction
  readonly #maxPackets: number
  readonly #maxOpenFailures: number
  #lastSealed = -1
  /** How far the sealed packet number has advanced since the first seal (unbounded integer); -1 before. */
  #sealOffset = -1
  #openFailures = 0

  /**
   * @param sendKey - traffic key for packets this side sends (≥ 16 bytes; 32 from the handshake).
   * @param recvKey - traffic key for packets this side receives.
   * @param options - stricter key limits; see {@link PacketProtectorOptions}.
   * @throws {RangeError} on a short key or a limit out of range;
   *   {@link NativeModuleError} when `sodium-native` cannot be loaded.
   */
  constructor(sendKey: Uint8Array, recvKey: Uint8Array, options: PacketProtectorOptions = {}) {
    if (sendKey.length < 16 || recvKey.length < 16) {
      throw new RangeError(`traffic keys must be at least 16 bytes; got ${sendKey.length} and ${recvKey.length}`)
    }
    this.#sodium = loadSodium()
    this.#send = expand(sendKey)
    this.#recv = expand(recvKey)
    this.#maxPackets = lowerLimit('maxPackets', options.maxPackets, AEAD_LIMITS.maxPackets)
    this.#maxOpenFailures = lowerLimit('maxOpenFailures', options.maxOpenFailures, AEAD_LIMITS.maxOpenFailures)
  }

  /**
   * Fraction of the sending key's packet limit used, 0 .. 1: (packet-number
   * advance + 1) ÷ `maxPackets`. Re-establish the session well before it
   * reaches 1 (e.g. at 0.5); at 1 `seal` throws.
   */
  get keyUsage(): number {
    return (this.#sealOffset + 1) / this.#maxPackets
  }

  /** Packets that failed authentication (or were refused past the integrity limit) in `open` so far. */
  get openFailures(): number {
    return this.#openFailures
  }

  /**
   * Encrypt and authenticate one payload.
   *
   * @param header - the packet's header bytes (associated data).
   * @param packetNumber - uint32; must be after (serial order) the previous
   *   sealed one, so that no nonce is ever reused.
   * @param plaintext - the encoded `Frames`.
   * @param out - where ciphertext ‖ tag goes: exactly `plaintext.length + `
   *   {@link TAG_LENGTH} bytes. It may start at `plaintext`'s first byte
   *   (in-place), and must not overlap it otherwise. Default: a new Buffer.
   *   With `out` given, nothing is allocated.
   * @returns `out`, holding ciphertext ‖ tag.
   * @throws {RangeError} if `out` has the wrong length, the packet number is
   *   not a uint32 or does not advance, or the key's packet limit would be
   *   exceeded (the session must be re-established). Nothing is sealed then.
   */
  seal(header: Uint8Array, packetNumber: number, plaintext: Uint8Array): Buffer
  seal<T extends Uint8Array>(header: Uint8Array, packetNumber: number, plaintext: Uint8Array, out: T): T
  seal(header: Uint8Array, packetNumber: number, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    if (out !== undefined && out.length !== plaintext.length + TAG_LENGTH) {
      throw new RangeError(`out must be plaintext.length + ${TAG_LENGTH} = ${plaintext.length + TAG_LENGTH} bytes; got ${out.length}`)
    }
    if (!isUint32(packetNumber)) throw new RangeError(`packetNumber must be a uint32; got ${packetNumber}`)
    let offset = 0
    if (this.#sealOffset >= 0) {
      const advance = (packetNumber - this.#lastSealed) | 0
      if (advance <= 0) {
        throw new RangeError(`packetNumber ${packetNumber} does not advance past ${this.#lastSealed}: nonce reuse refused`)
      }
      offset = this.#sealOffset + advance
      if (offset >= this.#maxPackets) {
        throw new RangeError(`traffic key exhausted: ${this.#maxPackets} packet numbers used; re-establish the session`)
      }
    }
    const sealed = out ?? Buffer.allocUnsafe(plaintext.length + TAG_LENGTH)
    const d = this.#send
    this.#sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, plaintext, header, null, setNonce(d, packetNumber), d.key)
    this.#sealOffset = offset
    this.#lastSealed = packetNumber
    return sealed
  }

  /**
   * Authenticate and decrypt one payload. Never throws for bad input.
   *
   * @param header - the received packet's header bytes (associated data).
   * @param packetNumber - the packet number from the header.
   * @param sealed - ciphertext ‖ tag (the `payload` field).
   * @param out - where the plaintext goes: exactly `sealed.length - `
   *   {@link TAG_LENGTH} bytes. `sealed.subarray(0, sealed.length - TAG_LENGTH)`
   *   decrypts in place; otherwise it must not overlap `sealed`. When
   *   authentication fails, libsodium zeroes it (in place: the ciphertext part
   *   of `sealed`). Default: a new Buffer. With `out` given,
   *   nothing is allocated.
   * @returns `out` holding the plaintext, or `null` if anything fails to
   *   authenticate (wrong key, header, packet number, tampered or truncated
   *   payload), or the key's integrity limit was reached.
   * @throws {RangeError} only for a caller mistake: `out` of the wrong length
   *   (for a `sealed` at least {@link TAG_LENGTH} bytes long).
   */
  open(header: Uint8Array, packetNumber: number, sealed: Uint8Array): Buffer | null
  open<T extends Uint8Array>(header: Uint8Array, packetNumber: number, sealed: Uint8Array, out: T): T | null
  open(header: Uint8Array, packetNumber: number, sealed: Uint8Array, out?: Uint8Array): Uint8Array | null {
    const length = sealed.length - TAG_LENGTH
    if (length < 0 || !isUint32(packetNumber) || this.#openFailures >= this.#maxOpenFailures) {
      this.#openFailures++
      return null
    }
    if (out !== undefined && out.length !== length) {
      throw new RangeError(`out must be sealed.length - ${TAG_LENGTH} = ${length} bytes; got ${out.length}`)
    }
    const plaintext = out ?? Buffer.allocUnsafe(length)
    const d = this.#recv
    try {
      this.#sodium.crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, null, sealed, header, setNonce(d, packetNumber), d.key)
      return plaintext
    } catch {
      this.#openFailures++
      return null
    }
  }
}
