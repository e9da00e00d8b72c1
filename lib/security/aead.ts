/**
 * Per-packet protection of DATA packets with an AEAD from `node:crypto`.
 *
 * - The packet header (every byte of the encoded `Packet` before the tag of
 *   field 15, `payload`, which ends the datagram) is the associated data:
 *   authenticated, not encrypted. The payload's tag and length are outside it
 *   so that the next packet's associated data is known before its size
 *   ({@link PacketProtector.prepare} feeds it ahead); they are authenticated
 *   all the same, since any other value moves the ciphertext and tag.
 * - The payload is encrypted; `seal` returns ciphertext ‖ 16-byte tag, which
 *   becomes the `payload` field.
 * - Nonce (12 bytes) = per-direction IV XOR (8 zero bytes ‖ packet number as
 *   uint32 BE). A nonce must never repeat under one key, so `seal` refuses a
 *   packet number that does not advance and stops at the key's limits
 *   ({@link PACKETS_PER_KEY}, {@link AEAD_LIMITS}): the session must be
 *   re-established (new handshake, new keys) before that — watch
 *   {@link PacketProtector.keyUsage}.
 *
 * Each traffic key from the handshake is expanded with HKDF-SHA256
 * (empty salt) into the AEAD key (info `"warpmesh v1 aead key"`, 32 bytes) and
 * the IV (info `"warpmesh v1 aead iv"`, 12 bytes).
 *
 * Per packet, `seal` allocates the cipher object node:crypto requires
 * (`createCipheriv` cannot be reused), its output, the tag and the returned
 * buffer; `open` the decipher and the plaintext. The nonce buffer, the keys
 * (as `KeyObject`s) and the cipher options are allocated once per session.
 *
 * Creating the cipher object is the largest part of the cost (OpenSSL 3
 * looks the algorithm up and expands the key on every init), and on an idle
 * machine it runs cold: 8–14 µs for the first seal after a 1 ms pause,
 * against ~2 µs in a tight loop (measured on the project VM). {@link
 * PacketProtector.prepare} creates the cipher for the next packet number to
 * seal and the decipher for the next one expected *after* a packet has gone
 * out, so a request–response exchange finds them ready: the cost leaves the
 * round trip's critical path (it is the same work, done while the datagram
 * is in flight).
 *
 * @module
 */
import {
  type CipherGCM, type CipherGCMTypes, createCipheriv, createDecipheriv, createSecretKey, type DecipherGCM, hkdfSync, type KeyObject,
} from 'node:crypto'

/** The AEADs warpmesh can use. */
export type AeadAlgorithm = 'aes-256-gcm' | 'chacha20-poly1305'

/** Every {@link AeadAlgorithm}. */
export const AEAD_ALGORITHMS: readonly AeadAlgorithm[] = ['aes-256-gcm', 'chacha20-poly1305']

/**
 * The default AEAD: AES-256-GCM, the faster of the two on the project VM
 * (Node 20.20, OpenSSL 3, AMD EPYC with AES-NI/VAES), measured with
 * `bench/crypto.ts` as CPU time per packet for seal + open: 7.3 µs vs 7.5 µs
 * at 64 B and 9.6 µs vs 10.6 µs at 1200 B (median per-slice speed ratio 1.04×
 * and 1.10×; GCM won every slice of seal+open). Most of the cost is fixed:
 * `createCipheriv` + `setAAD` + `final` + `getAuthTag` take ~2.7 µs
 * (GCM) / ~2.9 µs (ChaCha) on an empty payload, and node:crypto has no way to
 * reuse a cipher context. ChaCha20-Poly1305 stays selectable (usually faster on CPUs
 * without AES instructions, and without GCM's block budget).
 */
export const DEFAULT_AEAD: AeadAlgorithm = 'aes-256-gcm'

/** Length of the authentication tag appended by `seal`, in bytes. */
export const TAG_LENGTH = 16
/** Length of the AEAD nonce, in bytes. */
export const AEAD_NONCE_LENGTH = 12

/**
 * Most packets one traffic key may seal: the packet-number space, 2^32. The
 * nonce is derived from the 32-bit packet number, so the 2^32-th packet
 * after the first would repeat a nonce; a session must be re-established
 * (new handshake, new keys) or closed before then. `seal` enforces it.
 */
export const PACKETS_PER_KEY = 2 ** 32

/** Usage limits of one traffic key; `seal` enforces the first two. */
export interface AeadLimits {
  /** Most packets sealed, counted as packet-number advance + 1: {@link PACKETS_PER_KEY}. */
  maxPackets: number
  /**
   * Confidentiality budget in AES blocks: the sum over sealed packets of
   * `ceil(plaintext bytes / 16) + 1`. AES-GCM's privacy bound is
   * (σ + q + 1)² / 2^129 (Iwata–Ohashi–Minematsu 2012, 96-bit nonces), so
   * 2^35 blocks keep an attacker's advantage below 2^-59 — about 4.5 × 10^8
   * packets of 1200 bytes, or the 2^32 packet numbers for packets under
   * 112 bytes. Unlimited (`Infinity`) for ChaCha20-Poly1305, whose limit is
   * beyond 2^62 packets (RFC 9001 §6.6).
   */
  maxBlocks: number
  /**
   * Failed `open`s after which the receiving key should be retired (RFC 9001
   * §6.6 integrity limits): 2^52 for AES-256-GCM, 2^36 for
   * ChaCha20-Poly1305. Not enforced; compare with
   * {@link PacketProtector.openFailures}.
   */
  maxOpenFailures: number
}

/** Limits per algorithm; see {@link AeadLimits}. */
export const AEAD_LIMITS: Readonly<Record<AeadAlgorithm, Readonly<AeadLimits>>> = {
  'aes-256-gcm': { maxPackets: PACKETS_PER_KEY, maxBlocks: 2 ** 35, maxOpenFailures: 2 ** 52 },
  'chacha20-poly1305': { maxPackets: PACKETS_PER_KEY, maxBlocks: Infinity, maxOpenFailures: 2 ** 36 },
}

const KEY_INFO = Buffer.from('warpmesh v1 aead key', 'latin1')
const IV_INFO = Buffer.from('warpmesh v1 aead iv', 'latin1')
const EMPTY = Buffer.alloc(0)
const CIPHER_OPTIONS = { authTagLength: TAG_LENGTH } as const

/** Options of {@link PacketProtector}. */
export interface PacketProtectorOptions {
  /**
   * Lower the sending key's packet limit (never above {@link PACKETS_PER_KEY}):
   * a re-handshake policy stricter than the cryptographic limit.
   * Default: {@link AEAD_LIMITS}`[algorithm].maxPackets`.
   */
  maxPackets?: number
  /**
   * Lower the sending key's block budget (never above the algorithm's), in
   * 16-byte blocks as counted by {@link AeadLimits.maxBlocks}.
   * Default: {@link AEAD_LIMITS}`[algorithm].maxBlocks`.
   */
  maxBlocks?: number
}

function lowerLimit(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer 1..${max}; got ${value}`)
  }
  return value
}

/** A cipher (or decipher) created ahead for one packet number. */
interface Prepared<C> {
  readonly packetNumber: number
  readonly cipher: C
  /** The associated data already fed to `cipher` (`setAAD`), or null. */
  readonly aad: Uint8Array | null
}

/**
 * Associated data of the packet with this number, as {@link PacketProtector.prepare}
 * predicts it: `sending` for the next packet this side seals, otherwise for
 * the next one it expects to open.
 */
export type AadPredictor = (packetNumber: number, sending: boolean) => Uint8Array

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length
  if (n !== b.length) return false
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

interface Direction {
  key: KeyObject
  /** IV bytes 0..7 preset; bytes 8..11 rewritten per packet. */
  nonce: Buffer
  /** IV bytes 8..11 as a uint32, XORed with the packet number. */
  ivLow: number
}

function expand(trafficKey: Uint8Array): Direction {
  const key = createSecretKey(Buffer.from(hkdfSync('sha256', trafficKey, EMPTY, KEY_INFO, 32)))
  const nonce = Buffer.from(hkdfSync('sha256', trafficKey, EMPTY, IV_INFO, AEAD_NONCE_LENGTH))
  return { key, nonce, ivLow: nonce.readUInt32BE(8) }
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
  /** The AEAD in use. */
  readonly algorithm: AeadAlgorithm
  readonly #send: Direction
  readonly #recv: Direction
  readonly #maxPackets: number
  readonly #maxBlocks: number
  #lastSealed = -1
  /** How far the sealed packet number has advanced since the first seal (unbounded integer); -1 before. */
  #sealOffset = -1
  #blocks = 0
  #openFailures = 0
  /** Last packet number opened successfully; -1 before. */
  #lastOpened = -1
  #nextSeal: Prepared<CipherGCM> | null = null
  #nextOpen: Prepared<DecipherGCM> | null = null
  #prepareHits = 0

  /**
   * @param sendKey - traffic key for packets this side sends (≥ 16 bytes; 32 from the handshake).
   * @param recvKey - traffic key for packets this side receives.
   * @param algorithm - the AEAD. Default {@link DEFAULT_AEAD}.
   * @param options - stricter key limits; see {@link PacketProtectorOptions}.
   * @throws {TypeError} on an unknown algorithm; {@link RangeError} on a short
   *   key or a limit out of range.
   */
  constructor(sendKey: Uint8Array, recvKey: Uint8Array, algorithm: AeadAlgorithm = DEFAULT_AEAD, options: PacketProtectorOptions = {}) {
    if (!AEAD_ALGORITHMS.includes(algorithm)) {
      throw new TypeError(`algorithm must be one of ${AEAD_ALGORITHMS.join(', ')}; got ${String(algorithm)}`)
    }
    if (sendKey.length < 16 || recvKey.length < 16) {
      throw new RangeError(`traffic keys must be at least 16 bytes; got ${sendKey.length} and ${recvKey.length}`)
    }
    this.algorithm = algorithm
    this.#send = expand(sendKey)
    this.#recv = expand(recvKey)
    const limits = AEAD_LIMITS[algorithm]
    this.#maxPackets = lowerLimit('maxPackets', options.maxPackets, limits.maxPackets)
    this.#maxBlocks = lowerLimit('maxBlocks', options.maxBlocks, limits.maxBlocks)
  }

  /**
   * Fraction of the sending key's limits used, 0 .. 1: the larger of
   * (packet-number advance + 1) ÷ `maxPackets` and blocks sealed ÷
   * `maxBlocks`. Re-establish the session well before it reaches 1 (e.g. at
   * 0.5); at 1 `seal` throws.
   */
  get keyUsage(): number {
    return Math.max((this.#sealOffset + 1) / this.#maxPackets, this.#blocks / this.#maxBlocks)
  }

  /** Packets that failed authentication in `open` so far. */
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
   * @returns ciphertext ‖ tag, `plaintext.length + ` {@link TAG_LENGTH} bytes.
   * @throws {RangeError} if the packet number is not a uint32 or does not
   *   advance, or the key's limits ({@link AEAD_LIMITS}) would be exceeded:
   *   the session must be re-established. Nothing is sealed then.
   */
  seal(header: Uint8Array, packetNumber: number, plaintext: Uint8Array): Buffer {
    const [ciphertext, tag] = this.sealParts(header, packetNumber, plaintext)
    return Buffer.concat([ciphertext, tag], ciphertext.length + tag.length)
  }

  /**
   * {@link seal} without joining the result: `[ciphertext, tag]`, ready to go
   * out as separate chunks of one datagram (no copy). Same rules and errors.
   */
  sealParts(header: Uint8Array, packetNumber: number, plaintext: Uint8Array): [Buffer, Buffer] {
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
    const blocks = this.#blocks + ((plaintext.length + 15) >>> 4) + 1
    if (blocks > this.#maxBlocks) {
      throw new RangeError(`traffic key exhausted: budget of ${this.#maxBlocks} blocks used; re-establish the session`)
    }
    const ready = this.#take(this.#nextSeal, packetNumber, header)
    this.#nextSeal = null
    const cipher = ready?.cipher ?? this.#cipherFor(packetNumber)
    if (ready === null || ready.aad === null) cipher.setAAD(header)
    const ciphertext = cipher.update(plaintext)
    cipher.final()
    const tag = cipher.getAuthTag()
    this.#sealOffset = offset
    this.#lastSealed = packetNumber
    this.#blocks = blocks
    return [ciphertext, tag]
  }

  /**
   * Authenticate and decrypt one payload. Never throws.
   *
   * @param header - the received packet's header bytes (associated data).
   * @param packetNumber - the packet number from the header.
   * @param sealed - ciphertext ‖ tag (the `payload` field).
   * @returns the plaintext, or `null` if anything fails to authenticate
   *   (wrong key, header, packet number, tampered or truncated payload).
   */
  open(header: Uint8Array, packetNumber: number, sealed: Uint8Array): Buffer | null {
    if (sealed.length < TAG_LENGTH || !isUint32(packetNumber)) {
      this.#openFailures++
      return null
    }
    const end = sealed.length - TAG_LENGTH
    const ready = this.#take(this.#nextOpen, packetNumber, header)
    this.#nextOpen = null
    try {
      const decipher = ready?.cipher ?? this.#decipherFor(packetNumber)
      if (ready === null || ready.aad === null) decipher.setAAD(header)
      decipher.setAuthTag(sealed.subarray(end))
      const plaintext = decipher.update(sealed.subarray(0, end))
      decipher.final()
      this.#lastOpened = packetNumber
      return plaintext
    } catch {
      this.#openFailures++
      return null
    }
  }

  /**
   * Create, ahead of time, the cipher for the packet number after the last
   * one sealed and the decipher for the one after the last one opened (when
   * not ready yet). `seal`/`open` use them when the packet number matches
   * and create their own otherwise, so calling this is never wrong, only
   * sometimes wasted. Call it when the caller has nothing urgent left to do
   * (the endpoint: after its flush has sent everything).
   *
   * @param aadFor - when the caller can predict those packets' associated
   *   data (the endpoint: the header is fixed per session but for the packet
   *   number), it is fed to the prepared ciphers now, taking one more
   *   node:crypto call off the critical path. `seal`/`open` compare it
   *   byte for byte with the real associated data and fall back to a new
   *   cipher when it differs, so a wrong prediction costs time, never
   *   correctness.
   */
  prepare(aadFor?: AadPredictor): void {
    if (this.#nextSeal === null && this.#sealOffset >= 0 && this.#sealOffset + 1 < this.#maxPackets) {
      const pn = (this.#lastSealed + 1) >>> 0
      const cipher = this.#cipherFor(pn)
      const aad = aadFor === undefined ? null : aadFor(pn, true)
      if (aad !== null) cipher.setAAD(aad)
      this.#nextSeal = { packetNumber: pn, cipher, aad }
    }
    if (this.#nextOpen === null && this.#lastOpened >= 0) {
      const pn = (this.#lastOpened + 1) >>> 0
      const cipher = this.#decipherFor(pn)
      const aad = aadFor === undefined ? null : aadFor(pn, false)
      if (aad !== null) cipher.setAAD(aad)
      this.#nextOpen = { packetNumber: pn, cipher, aad }
    }
  }

  /**
   * The prepared cipher if it is for this packet number and was fed no
   * associated data or exactly this (setAAD cannot be undone); counts a hit.
   */
  #take<C>(ready: Prepared<C> | null, packetNumber: number, aad: Uint8Array): Prepared<C> | null {
    if (ready === null || ready.packetNumber !== packetNumber || (ready.aad !== null && !sameBytes(ready.aad, aad))) return null
    this.#prepareHits++
    return ready
  }

  /** How many seals and opens found their cipher {@link prepare}d. */
  get preparedHits(): number {
    return this.#prepareHits
  }

  #cipherFor(packetNumber: number): CipherGCM {
    const d = this.#send
    d.nonce.writeUInt32BE((d.ivLow ^ packetNumber) >>> 0, 8)
    // Typed as GCM only to pick @types/node's overload: chacha20-poly1305 has the
    // same setAAD/setAuthTag/getAuthTag API and needs no plaintextLength.
    return createCipheriv(this.algorithm as CipherGCMTypes, d.key, d.nonce, CIPHER_OPTIONS)
  }

  #decipherFor(packetNumber: number): DecipherGCM {
    const d = this.#recv
    d.nonce.writeUInt32BE((d.ivLow ^ packetNumber) >>> 0, 8)
    return createDecipheriv(this.algorithm as CipherGCMTypes, d.key, d.nonce, CIPHER_OPTIONS)
  }
}
