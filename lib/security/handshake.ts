/**
 * Key proofs and session keys for the handshake. Neither side ever sends the
 * network key: each proves it holds the key with an HMAC over the handshake
 * transcript, and both derive per-direction session keys with HKDF from the
 * key and both nonces.
 *
 * ## The handshake these functions serve
 *
 * ```
 * initiator                                         responder
 * HELLO     {connId_i, epoch_i, nonce_i, key_id}  ──►   (no state)
 *           ◄──  CHALLENGE {epoch_r, cookie, key_id}
 * CONNECT   {connId_i, epoch_i, nonce_i, cookie, key_id,
 *            proof_i = proveInitiator(key, t)}     ──►   verify cookie, then
 *                                                        verifyInitiator; state created,
 *                                                        fresh connId_r, nonce_r
 *           ◄──  ACCEPT {connId_r, epoch_r, nonce_r, key_id,
 *                        proof_r = proveResponder(key, t)}
 * verifyResponder; both: deriveSessionKeys(key, nonce_i, nonce_r, connId_i, connId_r)
 * ```
 *
 * The responder keeps no state before CONNECT, so it cannot choose its nonce
 * and connection id any earlier: they are picked fresh when CONNECT creates
 * the session and first travel in ACCEPT. Hence the initiator's proof covers
 * the {@link InitiatorTranscript} (everything known when CONNECT is sent) and
 * the responder's proof covers the whole {@link Transcript}. A replayed
 * CONNECT is bounded by the cookie's lifetime and address binding, and yields
 * no usable session: the session keys depend on the responder's fresh nonce,
 * and the responder only trusts the initiator as live once a DATA packet
 * authenticates under them.
 *
 * Key choice: the initiator proves with its newest key (`keys[0]`) and sends
 * its {@link keyId}; the responder looks up the keys with that id. To let
 * nodes on `[new, old]` reach nodes on `[old]`, a responder without the
 * hinted key can put its own newest key id in CHALLENGE and the initiator use
 * that key if it has it (see {@link keysWithId}).
 *
 * ## Transcript encoding (what the proofs MAC)
 *
 * All integers big-endian. Initiator proof = HMAC-SHA256(key, m_i) truncated
 * to {@link PROOF_LENGTH} bytes, responder proof likewise over m_r:
 *
 * - m_i = `"warpmesh v1 initiator proof"` ‖ 0x00 ‖ nonce_i (32) ‖
 *   connId_i (4) ‖ epoch_i (4) ‖ epoch_r (4) ‖ len(cookie) (1) ‖ cookie ‖
 *   maxDatagram_i (4)
 * - m_r = `"warpmesh v1 responder proof"` ‖ 0x00 ‖ nonce_i (32) ‖
 *   connId_i (4) ‖ epoch_i (4) ‖ epoch_r (4) ‖ len(cookie) (1) ‖ cookie ‖
 *   maxDatagram_i (4) ‖ nonce_r (32) ‖ connId_r (4) ‖ maxDatagram_r (4)
 *
 * The datagram sizes are the `max_datagram` each side advertises (CONNECT,
 * ACCEPT): the session uses the smaller, so an on-path attacker must not be
 * able to change them unnoticed.
 *
 * The labels differ, so a proof reflected back in the other direction never
 * verifies.
 *
 * @module
 */
import { Buffer } from 'node:buffer'
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { keysWithId } from './keys.js'

/** Length of a handshake nonce, in bytes. */
export const NONCE_LENGTH = 32
/** Length of a key proof, in bytes (HMAC-SHA256 truncated). */
export const PROOF_LENGTH = 16
/** Length of each session (traffic) key, in bytes. */
export const SESSION_KEY_LENGTH = 32
/** Longest cookie a transcript can hold, in bytes. */
export const MAX_TRANSCRIPT_COOKIE_LENGTH = 255

const INITIATOR_PROOF_LABEL = Buffer.from('warpmesh v1 initiator proof\0', 'latin1')
const RESPONDER_PROOF_LABEL = Buffer.from('warpmesh v1 responder proof\0', 'latin1')
const I2R_INFO = 'warpmesh v1 initiator to responder'
const R2I_INFO = 'warpmesh v1 responder to initiator'
// Both labels have the same length, so the fields start at the same offset.
const FIELDS_OFFSET = INITIATOR_PROOF_LABEL.length
const INITIATOR_FIELDS = NONCE_LENGTH + 4 + 4 + 4 + 1 + 4
const RESPONDER_FIELDS = NONCE_LENGTH + 4 + 4

/** What the initiator's proof covers: everything known when CONNECT is sent. */
export interface InitiatorTranscript {
  /** The initiator's fresh nonce ({@link NONCE_LENGTH} bytes), from HELLO/CONNECT. */
  initiatorNonce: Uint8Array
  /** The initiator's own connection id (uint32). */
  initiatorConnId: number
  /** The initiator's endpoint epoch (uint32). */
  initiatorEpoch: number
  /** The responder's endpoint epoch (uint32), from CHALLENGE. */
  responderEpoch: number
  /** The cookie from CHALLENGE, echoed in CONNECT (at most 255 bytes). */
  cookie: Uint8Array
  /** The initiator's advertised largest datagram (uint32), from CONNECT. */
  initiatorMaxDatagram: number
}

/** The whole handshake transcript; what the responder's proof covers. */
export interface Transcript extends InitiatorTranscript {
  /** The responder's fresh nonce ({@link NONCE_LENGTH} bytes), from ACCEPT. */
  responderNonce: Uint8Array
  /** The responder's own connection id (uint32), from ACCEPT. */
  responderConnId: number
  /** The responder's advertised largest datagram (uint32), from ACCEPT. */
  responderMaxDatagram: number
}

/** The two traffic keys of a session, one per direction. */
export interface SessionKeys {
  /** Protects packets the initiator sends. */
  initiatorToResponder: Buffer
  /** Protects packets the responder sends. */
  responderToInitiator: Buffer
}

function isUint32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff
}

/** Why the transcript is malformed, or undefined when it is well-formed. */
function checkTranscript(t: InitiatorTranscript, full: boolean): string | undefined {
  if (t.initiatorNonce?.length !== NONCE_LENGTH) return `initiatorNonce must be ${NONCE_LENGTH} bytes`
  if (!isUint32(t.initiatorConnId)) return 'initiatorConnId must be a uint32'
  if (!isUint32(t.initiatorEpoch)) return 'initiatorEpoch must be a uint32'
  if (!isUint32(t.responderEpoch)) return 'responderEpoch must be a uint32'
  if (t.cookie === undefined || t.cookie.length > MAX_TRANSCRIPT_COOKIE_LENGTH) {
    return `cookie must be at most ${MAX_TRANSCRIPT_COOKIE_LENGTH} bytes`
  }
  if (!isUint32(t.initiatorMaxDatagram)) return 'initiatorMaxDatagram must be a uint32'
  if (full) {
    const f = t as Transcript
    if (f.responderNonce?.length !== NONCE_LENGTH) return `responderNonce must be ${NONCE_LENGTH} bytes`
    if (!isUint32(f.responderConnId)) return 'responderConnId must be a uint32'
    if (!isUint32(f.responderMaxDatagram)) return 'responderMaxDatagram must be a uint32'
  }
  return undefined
}

function encodeTranscript(label: Buffer, t: InitiatorTranscript, full: boolean): Buffer {
  const m = Buffer.allocUnsafe(FIELDS_OFFSET + INITIATOR_FIELDS + t.cookie.length + (full ? RESPONDER_FIELDS : 0))
  label.copy(m, 0)
  let o = FIELDS_OFFSET
  m.set(t.initiatorNonce, o)
  o += NONCE_LENGTH
  o = m.writeUInt32BE(t.initiatorConnId, o)
  o = m.writeUInt32BE(t.initiatorEpoch, o)
  o = m.writeUInt32BE(t.responderEpoch, o)
  o = m.writeUInt8(t.cookie.length, o)
  m.set(t.cookie, o)
  o += t.cookie.length
  o = m.writeUInt32BE(t.initiatorMaxDatagram, o)
  if (full) {
    const f = t as Transcript
    m.set(f.responderNonce, o)
    o += NONCE_LENGTH
    o = m.writeUInt32BE(f.responderConnId, o)
    m.writeUInt32BE(f.responderMaxDatagram, o)
  }
  return m
}

function prove(key: Uint8Array, label: Buffer, t: InitiatorTranscript, full: boolean): Buffer {
  const problem = checkTranscript(t, full)
  if (problem !== undefined) throw new RangeError(`invalid transcript: ${problem}`)
  return createHmac('sha256', key).update(encodeTranscript(label, t, full)).digest().subarray(0, PROOF_LENGTH)
}

function verify(
  keys: readonly Buffer[], id: number | undefined, label: Buffer, t: InitiatorTranscript, full: boolean, proof: Uint8Array,
): Buffer | null {
  if (proof.length !== PROOF_LENGTH || checkTranscript(t, full) !== undefined) return null
  const m = encodeTranscript(label, t, full)
  for (const key of keysWithId(keys, id)) {
    const expected = createHmac('sha256', key).update(m).digest().subarray(0, PROOF_LENGTH)
    if (timingSafeEqual(expected, proof)) return key
  }
  return null
}

/** A fresh random handshake nonce of {@link NONCE_LENGTH} bytes. */
export function createNonce(): Buffer {
  return randomBytes(NONCE_LENGTH)
}

/**
 * The initiator's key proof, sent in CONNECT.
 *
 * @param key - the network key the initiator uses (normally `keys[0]`).
 * @param transcript - the handshake so far (a full {@link Transcript} may be
 *   passed; only the {@link InitiatorTranscript} fields are covered).
 * @returns {@link PROOF_LENGTH} bytes.
 * @throws {RangeError} if a transcript field has the wrong length or range.
 */
export function proveInitiator(key: Uint8Array, transcript: InitiatorTranscript): Buffer {
  return prove(key, INITIATOR_PROOF_LABEL, transcript, false)
}

/**
 * The responder's key proof, sent in ACCEPT.
 *
 * @param key - the network key that verified the initiator's proof.
 * @param transcript - the whole handshake.
 * @returns {@link PROOF_LENGTH} bytes.
 * @throws {RangeError} if a transcript field has the wrong length or range.
 */
export function proveResponder(key: Uint8Array, transcript: Transcript): Buffer {
  return prove(key, RESPONDER_PROOF_LABEL, transcript, true)
}

/**
 * Check an initiator's proof (responder side, on CONNECT, after the cookie
 * verified). Tries the keys whose {@link keyId} equals `keyIdHint` — all
 * keys when the hint is `undefined` — and compares in constant time.
 * Never throws: malformed input is just not a valid proof.
 *
 * @param keys - this node's network keys.
 * @param keyIdHint - `Handshake.key_id` from CONNECT, or `undefined` to try every key.
 * @param transcript - the handshake as the responder sees it.
 * @param proof - `Handshake.proof` from CONNECT.
 * @returns the key that verified (use it for {@link proveResponder} and
 *   {@link deriveSessionKeys}), or `null`: no matching key — log it.
 */
export function verifyInitiator(
  keys: readonly Buffer[], keyIdHint: number | undefined, transcript: InitiatorTranscript, proof: Uint8Array,
): Buffer | null {
  return verify(keys, keyIdHint, INITIATOR_PROOF_LABEL, transcript, false, proof)
}

/**
 * Check a responder's proof (initiator side, on ACCEPT). Same rules as
 * {@link verifyInitiator}; pass `[theKeyUsedInConnect]` to accept only the
 * key the initiator proved with.
 *
 * @returns the key that verified, or `null`.
 */
export function verifyResponder(
  keys: readonly Buffer[], keyIdHint: number | undefined, transcript: Transcript, proof: Uint8Array,
): Buffer | null {
  return verify(keys, keyIdHint, RESPONDER_PROOF_LABEL, transcript, true, proof)
}

/**
 * Derive the session's two traffic keys:
 * `HKDF-SHA256(ikm = key, salt = nonce_i ‖ nonce_r,
 * info = label ‖ connId_i (4) ‖ connId_r (4), 32 bytes)` with the labels
 * `"warpmesh v1 initiator to responder"` and `"warpmesh v1 responder to initiator"`.
 * The initiator seals with `initiatorToResponder` and opens with
 * `responderToInitiator`; the responder the other way round (see
 * `PacketProtector`).
 *
 * @throws {RangeError} if a nonce is not {@link NONCE_LENGTH} bytes or a connection id not a uint32.
 */
export function deriveSessionKeys(
  key: Uint8Array, initiatorNonce: Uint8Array, responderNonce: Uint8Array, initiatorConnId: number, responderConnId: number,
): SessionKeys {
  if (initiatorNonce.length !== NONCE_LENGTH || responderNonce.length !== NONCE_LENGTH) {
    throw new RangeError(`nonces must be ${NONCE_LENGTH} bytes; got ${initiatorNonce.length} and ${responderNonce.length}`)
  }
  if (!isUint32(initiatorConnId) || !isUint32(responderConnId)) {
    throw new RangeError(`connection ids must be uint32; got ${initiatorConnId} and ${responderConnId}`)
  }
  const salt = Buffer.concat([initiatorNonce, responderNonce])
  const ids = Buffer.allocUnsafe(8)
  ids.writeUInt32BE(initiatorConnId, 0)
  ids.writeUInt32BE(responderConnId, 4)
  const derive = (label: string): Buffer =>
    Buffer.from(hkdfSync('sha256', key, salt, Buffer.concat([Buffer.from(label, 'latin1'), ids]), SESSION_KEY_LENGTH))
  return { initiatorToResponder: derive(I2R_INFO), responderToInitiator: derive(R2I_INFO) }
}
