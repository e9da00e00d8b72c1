/**
 * The protected floor: raw `node:dgram` (as in `raw-dgram.ts`) with every
 * datagram sealed and opened by warpmesh's own AEAD ({@link PacketProtector}:
 * ChaCha20-Poly1305 from libsodium, the nonce from a packet number, the
 * header authenticated as associated data, sealed into a new buffer and
 * opened in place, as warpmesh's endpoint does). No sessions, no handshake,
 * no replay window, no acknowledgements, no reliability.
 *
 * The latency goals are judged on warpmesh protected as in
 * production; this is the lowest round trip any design that protects every
 * datagram with warpmesh's AEAD reaches on this machine. A goal whose
 * target is below it cannot be met by changing the protocol. The driver runs
 * it in the loopback latency cases only ({@link Variant.scenarios}): ping-pong,
 * back to back and sparse, and fan-out (the proxy seals the broadcast once per
 * downstream and gathers their sealed answers).
 *
 * Datagram: `u16 from | u32 packet number | ciphertext | 16-byte tag`; the
 * first six bytes are the associated data. Each ordered pair of nodes has its
 * own traffic key, derived from a fixed string: the cost measured does not
 * depend on the key, and nothing here is meant to be secret.
 */

import { createHash } from 'node:crypto'
import { PacketProtector, TAG_LENGTH } from '../../lib/security/aead.js'
import type { BenchNode, NodeContext, Variant } from '../harness/variant.js'
import { siblingModule } from '../harness/variant.js'
import type { DatagramCodec } from './raw-dgram.js'
import { DatagramNode, bindNodeSocket } from './raw-dgram.js'

const HEADER_BYTES = 6

/** Driver-side description. */
export const variant: Variant = {
  name: 'sealed-dgram',
  summary: 'raw-dgram with every datagram sealed by warpmesh\'s AEAD (ChaCha20-Poly1305, libsodium), no protocol: the floor of a protected design',
  guarantees: { reliable: false, ordered: false },
  module: siblingModule(import.meta.url, 'sealed-dgram'),
  scenarios: ['ping-pong', 'fan-out'],
  checkAvailable: async () => undefined,
}

/** The traffic key of datagrams from `from` to `to`. */
export function trafficKey (from: number, to: number): Buffer {
  return createHash('sha256').update(`warpmesh bench sealed-dgram ${from}>${to}`).digest()
}

/** Protection of the datagrams to and from one peer. */
interface Peer {
  readonly protector: PacketProtector
  /** Packet number of the next datagram sealed for the peer. */
  next: number
}

/** Per-peer packet protection; see the module comment for the datagram. */
export class SealedCodec implements DatagramCodec {
  readonly #address: number
  readonly #peers = new Map<number, Peer>()
  /** Datagrams that failed to open (wrong key, tampered, truncated); also counted as malformed. */
  #authFailures = 0

  constructor (address: number) {
    this.#address = address
  }

  #peer (peer: number): Peer {
    let p = this.#peers.get(peer)
    if (p === undefined) {
      const self = this.#address
      p = { protector: new PacketProtector(trafficKey(self, peer), trafficKey(peer, self)), next: 0 }
      this.#peers.set(peer, p)
    }
    return p
  }

  encode (to: number, payload: Buffer): Buffer[] {
    const p = this.#peer(to)
    const pn = p.next++
    const h = header(this.#address, pn)
    return [h, p.protector.seal(h, pn, payload)]
  }

  /** Opens in place: the datagram (the socket's fresh buffer) is overwritten by its plaintext. */
  decode (from: number, datagram: Buffer): Buffer | null {
    if (datagram.length < HEADER_BYTES + TAG_LENGTH) {
      if (datagram.length >= HEADER_BYTES) this.#authFailures++
      return null
    }
    const plaintext = this.#peer(from).protector.open(datagram.subarray(0, HEADER_BYTES), datagram.readUInt32LE(2),
      datagram.subarray(HEADER_BYTES), datagram.subarray(HEADER_BYTES, datagram.length - TAG_LENGTH))
    if (plaintext === null) this.#authFailures++
    return plaintext
  }

  stats (): Record<string, number> {
    return { authFailures: this.#authFailures }
  }
}

function header (from: number, pn: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES)
  h.writeUInt16LE(from, 0)
  h.writeUInt32LE(pn, 2)
  return h
}

/** Node-process entry. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  return new DatagramNode(await bindNodeSocket(ctx), ctx.address, new SealedCodec(ctx.address))
}
