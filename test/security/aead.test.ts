import t from 'tap'
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto'
import {
  AEAD_KEY_LENGTH, AEAD_LIMITS, AEAD_NONCE_LENGTH, PACKETS_PER_KEY, PacketProtector, TAG_LENGTH,
} from '../../lib/security/aead.js'
import { ReplayWindow } from '../../lib/security/replay.js'
import { allocationDuring } from './fixtures/allocation.js'

const K1 = Buffer.alloc(32, 0x01)
const K2 = Buffer.alloc(32, 0x02)
const HEADER = Buffer.from('0d48534d5710011805250a0b0c0d2d07000000', 'hex') // a plausible 19-byte header

/** Both ends of one session. */
function pair() {
  return { a: new PacketProtector(K1, K2), b: new PacketProtector(K2, K1) }
}

t.test('constants: RFC 9001 §6.6 limits of AEAD_CHACHA20_POLY1305', async (t) => {
  t.equal(TAG_LENGTH, 16)
  t.equal(AEAD_NONCE_LENGTH, 12)
  t.equal(AEAD_KEY_LENGTH, 32)
  t.equal(PACKETS_PER_KEY, 2 ** 32)
  t.same(AEAD_LIMITS, { maxPackets: 2 ** 32, maxOpenFailures: 2 ** 36 })
  t.ok(Object.isFrozen(AEAD_LIMITS))
})

t.test('round trip both ways, sizes 0..1200', async (t) => {
  const { a, b } = pair()
  let pn = 0
  for (const size of [0, 1, 15, 16, 17, 64, 1200]) {
    const plaintext = randomBytes(size)
    const copy = Buffer.from(plaintext)
    const header = Buffer.from(HEADER)
    const sealed = a.seal(header, pn, plaintext)
    t.equal(sealed.length, size + TAG_LENGTH, `${size} B sealed length`)
    if (size >= 16) t.notSame(sealed.subarray(0, size), plaintext, `${size} B is encrypted`)
    t.same(b.open(header, pn, sealed), plaintext, `${size} B a → b`)
    t.same(a.open(header, pn, b.seal(header, pn, plaintext)), plaintext, `${size} B b → a`)
    t.same(plaintext, copy, 'input not modified')
    t.same(header, HEADER, 'header not modified')
    pn++
  }
  t.equal(a.openFailures + b.openFailures, 0)
})

t.test('follows the documented construction: HKDF labels, nonce = IV xor packet number (interoperable with node:crypto)', async (t) => {
  const key = Buffer.from(hkdfSync('sha256', K1, Buffer.alloc(0), Buffer.from('warpmesh chacha20-poly1305 key'), 32))
  const iv = Buffer.from(hkdfSync('sha256', K1, Buffer.alloc(0), Buffer.from('warpmesh chacha20-poly1305 iv'), AEAD_NONCE_LENGTH))
  const plaintext = Buffer.from('hello, warpmesh')
  for (const pn of [0, 1, 0x01020304, 0xffffffff]) {
    const nonce = Buffer.from(iv)
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ pn) >>> 0, 8)
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
    c.setAAD(HEADER)
    const expected = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
    t.same(pair().a.seal(HEADER, pn, plaintext), expected, `packet number ${pn}`)
  }
})

t.test('nonce uniqueness: 20,000 packet numbers give 20,000 distinct keystreams; the two directions differ', async (t) => {
  const { a, b } = pair()
  const zeros = Buffer.alloc(16)
  const empty = Buffer.alloc(0)
  const seen = new Set<string>()
  // Encrypting zeros reveals the first keystream block: equal nonces would give equal blocks.
  for (let pn = 0; pn < 10_000; pn++) {
    seen.add(a.seal(empty, pn, zeros).subarray(0, 16).toString('hex'))
    seen.add(b.seal(empty, pn, zeros).subarray(0, 16).toString('hex'))
  }
  t.equal(seen.size, 20_000)
})

t.test('every single-bit flip of header or sealed payload, and every truncation, fails to open', async (t) => {
  for (const size of [0, 64, 1200]) {
    const { a, b } = pair()
    const pn = 77
    const plaintext = randomBytes(size)
    const sealed = a.seal(HEADER, pn, plaintext)
    let accepted = 0
    for (let bit = 0; bit < HEADER.length * 8; bit++) {
      const header = Buffer.from(HEADER)
      header[bit >> 3] ^= 1 << (bit & 7)
      if (b.open(header, pn, sealed) !== null) accepted++
    }
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const bad = Buffer.from(sealed)
      bad[bit >> 3] ^= 1 << (bit & 7)
      if (b.open(HEADER, pn, bad) !== null) accepted++
    }
    for (let n = 0; n < sealed.length; n++) if (b.open(HEADER, pn, sealed.subarray(0, n)) !== null) accepted++
    for (let n = 0; n < HEADER.length; n++) if (b.open(HEADER.subarray(0, n), pn, sealed) !== null) accepted++
    const tries = (HEADER.length + sealed.length) * 8 + sealed.length + HEADER.length
    t.equal(accepted, 0, `${size} B: ${tries} flips and truncations, none accepted`)
    t.equal(b.openFailures, tries, 'each counted')
    t.same(b.open(HEADER, pn, sealed), plaintext, 'the original still opens')
  }
})

t.test('associated data is authenticated: another header, a longer or an empty one fails', async (t) => {
  const { a, b } = pair()
  const sealed = a.seal(HEADER, 3, Buffer.from('payload'))
  t.equal(b.open(Buffer.concat([HEADER, Buffer.from([0])]), 3, sealed), null, 'one byte appended')
  t.equal(b.open(Buffer.alloc(0), 3, sealed), null, 'no associated data')
  t.equal(b.open(Buffer.alloc(HEADER.length), 3, sealed), null, 'zeros of the same length')
  t.same(b.open(HEADER, 3, sealed), Buffer.from('payload'))
})

t.test('wrong packet number, wrong direction, wrong key fail', async (t) => {
  const { a, b } = pair()
  const plaintext = Buffer.from('direction matters')
  const pn = 5
  const sealed = a.seal(HEADER, pn, plaintext)
  t.equal(b.open(HEADER, pn + 1, sealed), null, 'another packet number')
  t.equal(a.open(HEADER, pn, sealed), null, 'own packet reflected back')
  t.equal(new PacketProtector(K2, Buffer.alloc(32, 3)).open(HEADER, pn, sealed), null, 'wrong key')
  t.equal(b.openFailures, 1)
  t.same(b.open(HEADER, pn, sealed), plaintext)
})

t.test('open never throws for bad input', async (t) => {
  const { a, b } = pair()
  const sealed = a.seal(HEADER, 1, randomBytes(10))
  for (const pn of [-1, 1.5, 2 ** 32, Number.NaN, Infinity]) {
    t.equal(b.open(HEADER, pn, sealed), null, `packet number ${pn}`)
  }
  t.equal(b.open(HEADER, 1, Buffer.alloc(0)), null)
  t.equal(b.open(HEADER, 1, randomBytes(TAG_LENGTH)), null)
  t.equal(b.open(Buffer.alloc(0), 1, randomBytes(2000)), null)
  t.equal(b.open(HEADER, 1, Buffer.alloc(3), Buffer.alloc(99)), null, 'shorter than a tag: null before looking at out')
  t.equal(b.openFailures, 9)
})

t.test('caller-provided outputs: in place, exact sizes, zeroed on failure', async (t) => {
  const { a, b } = pair()
  const plaintext = randomBytes(100)
  // seal in place: the plaintext at the start of a buffer with room for the tag
  const buf = Buffer.alloc(116)
  plaintext.copy(buf)
  const sealedInPlace = a.seal(HEADER, 0, buf.subarray(0, 100), buf)
  t.equal(sealedInPlace, buf, 'returns out')
  t.same(buf, pair().a.seal(HEADER, 0, plaintext), 'same bytes as sealing into a new buffer')
  // open in place
  const opened = b.open(HEADER, 0, buf, buf.subarray(0, 100))
  t.ok(opened !== null && opened.buffer === buf.buffer && opened.byteOffset === 0, 'the plaintext is the datagram\'s own memory')
  t.same(opened, plaintext)
  // open into a separate buffer
  const sealed = a.seal(HEADER, 1, plaintext)
  const out = Buffer.alloc(100)
  t.equal(b.open(HEADER, 1, sealed, out), out)
  t.same(out, plaintext)
  // failure: out is not trusted (libsodium zeroes it)
  const bad = Buffer.from(a.seal(HEADER, 2, plaintext))
  bad[0] ^= 1
  const out2 = Buffer.alloc(100, 0xaa)
  t.equal(b.open(HEADER, 2, bad, out2), null)
  t.ok(out2.every((x) => x === 0), 'zeroed')
  // wrong sizes are caller mistakes
  t.throws(() => a.seal(HEADER, 3, plaintext, Buffer.alloc(115)), RangeError)
  t.throws(() => a.seal(HEADER, 3, plaintext, Buffer.alloc(117)), /out must be plaintext.length \+ 16 = 116 bytes; got 117/)
  t.throws(() => b.open(HEADER, 1, sealed, Buffer.alloc(99)), /out must be sealed.length - 16 = 100 bytes; got 99/)
  t.same(b.open(HEADER, 3, a.seal(HEADER, 3, plaintext)), plaintext, 'a refused seal consumed nothing')
})

t.test('no allocation per seal/open with caller-provided outputs (and the measurement sees allocation)', async (t) => {
  const { a, b } = pair()
  const ops = 100_000
  let pn = 0
  for (const size of [64, 1200]) {
    const plaintext = randomBytes(size)
    const sealed = Buffer.alloc(size + TAG_LENGTH)
    const opened = Buffer.alloc(size)
    let failures = 0
    const sealOpen = (): void => {
      a.seal(HEADER, pn, plaintext, sealed)
      if (b.open(HEADER, pn, sealed, opened) !== opened) failures++
      pn++
    }
    const none = await allocationDuring(sealOpen, ops)
    t.equal(failures, 0)
    t.same(opened, plaintext)
    t.equal(none.scavenges, 0, `${size} B: no young-generation GC during ${ops} seal + open`)
    t.ok(none.heapGrowth < 256 * 1024, `${size} B: heap grew ${none.heapGrowth} B over ${ops} seal + open`)
    // The same measurement on the allocating forms (a new output per call) sees it.
    const fresh = await allocationDuring(() => { b.open(HEADER, pn, a.seal(HEADER, pn, plaintext)); pn++ }, ops)
    t.ok(fresh.scavenges > 0 || fresh.heapGrowth > 4 * 1024 * 1024,
      `${size} B allocating forms: ${fresh.scavenges} scavenges, heap +${fresh.heapGrowth} B`)
  }
})

t.test('nonces are never reused: packet numbers must advance', async (t) => {
  const { a, b } = pair()
  const p = Buffer.from('x')
  a.seal(HEADER, 10, p)
  t.throws(() => a.seal(HEADER, 10, p), RangeError, 'same packet number again')
  t.throws(() => a.seal(HEADER, 9, p), RangeError, 'going back')
  t.throws(() => a.seal(HEADER, 10 + 2 ** 31, p), RangeError, 'half the space ahead counts as behind')
  t.throws(() => a.seal(HEADER, -1, p), RangeError)
  t.throws(() => a.seal(HEADER, 2 ** 32, p), RangeError)
  t.throws(() => a.seal(HEADER, 1.5, p), RangeError)
  const gap = a.seal(HEADER, 12, p) // gaps are fine
  t.same(b.open(HEADER, 12, gap), p)
  t.notSame(a.seal(HEADER, 13, p), a.seal(HEADER, 14, p), 'same plaintext, different packet numbers')
  t.notSame(pair().a.seal(HEADER, 0, p), pair().b.seal(HEADER, 0, p), 'same packet number, the two directions')
})

t.test('wraparound 0xFFFFFFFF → 0 is an advance; the 2^32-th packet number is refused', async (t) => {
  const { a, b } = pair()
  const p = Buffer.from('y')
  t.equal(a.keyUsage, 0)
  a.seal(HEADER, 0xfffffffe, p)
  const wrapped = a.seal(HEADER, 0xffffffff, p)
  const zero = a.seal(HEADER, 0, p)
  t.same(b.open(HEADER, 0xffffffff, wrapped), p)
  t.same(b.open(HEADER, 0, zero), p)
  t.equal(a.keyUsage, 3 / 2 ** 32)

  // walk the whole space in big strides: 0, 2^31-1, 2^32-2, 2^32-1 (offsets from the first)
  const c = new PacketProtector(K1, K2)
  c.seal(HEADER, 0, p)
  c.seal(HEADER, 0x7fffffff, p)
  c.seal(HEADER, 0xfffffffe, p)
  c.seal(HEADER, 0xffffffff, p)
  t.equal(c.keyUsage, 1)
  t.throws(() => c.seal(HEADER, 0, p), /traffic key exhausted: 4294967296 packet numbers used/)
  t.throws(() => c.seal(HEADER, 5, p), RangeError)
})

t.test('stricter limits: packets sealed, failed opens (integrity limit enforced)', async (t) => {
  const p = new PacketProtector(K1, K2, { maxPackets: 4 })
  for (let pn = 100; pn < 104; pn++) p.seal(HEADER, pn, Buffer.alloc(1))
  t.equal(p.keyUsage, 1)
  t.throws(() => p.seal(HEADER, 104, Buffer.alloc(1)), /packet numbers used/)

  const sender = new PacketProtector(K1, K2)
  const q = new PacketProtector(K2, K1, { maxOpenFailures: 3 })
  const good = sender.seal(HEADER, 0, Buffer.from('ok'))
  t.same(q.open(HEADER, 0, good), Buffer.from('ok'), 'opens before the limit')
  for (let i = 0; i < 3; i++) t.equal(q.open(HEADER, 1, randomBytes(20)), null)
  t.equal(q.openFailures, 3)
  t.equal(q.open(HEADER, 0, good), null, 'past the integrity limit even a genuine packet is refused: the key is retired')
  t.equal(q.openFailures, 4, 'and counted')

  for (const bad of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN]) {
    t.throws(() => new PacketProtector(K1, K2, { maxPackets: bad }), RangeError, `maxPackets ${bad}`)
  }
  t.throws(() => new PacketProtector(K1, K2, { maxOpenFailures: 2 ** 36 + 1 }), /maxOpenFailures must be an integer 1..68719476736/)
  t.ok(new PacketProtector(K1, K2, { maxOpenFailures: 2 ** 36 }))
})

t.test('constructor validation', async (t) => {
  t.throws(() => new PacketProtector(K1.subarray(0, 15), K2), RangeError)
  t.throws(() => new PacketProtector(K1, K2.subarray(0, 15)), RangeError)
  t.ok(new PacketProtector(K1.subarray(0, 16), K2.subarray(0, 16)), '16-byte keys are expanded by HKDF')
})

t.test('receive path: check, open, commit only after authentication', async (t) => {
  const { a, b } = pair()
  const window = new ReplayWindow()
  const delivered: string[] = []
  const receive = (pn: number, sealed: Buffer): void => {
    if (!window.check(pn)) return
    const plaintext = b.open(HEADER, pn, sealed)
    if (plaintext === null) return
    window.commit(pn)
    delivered.push(plaintext.toString())
  }
  const captured = [0, 1, 2].map((pn) => ({ pn, sealed: a.seal(HEADER, pn, Buffer.from(`m${pn}`)) }))
  // a forgery with a far-future packet number must not move the window
  receive(1_000_000, randomBytes(40))
  for (const { pn, sealed } of captured) receive(pn, sealed)
  for (const { pn, sealed } of captured) receive(pn, sealed) // replayed
  t.same(delivered, ['m0', 'm1', 'm2'])
  t.equal(window.largest, 2)
  t.equal(b.openFailures, 1)
})
