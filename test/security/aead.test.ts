import t from 'tap'
import { createCipheriv, hkdfSync, randomBytes, type CipherGCMTypes } from 'node:crypto'
import {
  AEAD_ALGORITHMS, AEAD_LIMITS, AEAD_NONCE_LENGTH, DEFAULT_AEAD, PACKETS_PER_KEY, PacketProtector, TAG_LENGTH,
} from '../../lib/security/aead.js'
import { ReplayWindow } from '../../lib/security/replay.js'

const K1 = Buffer.alloc(32, 0x01)
const K2 = Buffer.alloc(32, 0x02)
const HEADER = Buffer.from('0d48534d5710011805250a0b0c0d2d07000000', 'hex') // a plausible 19-byte header

/** Both ends of one session. */
function pair(algorithm = DEFAULT_AEAD) {
  return { a: new PacketProtector(K1, K2, algorithm), b: new PacketProtector(K2, K1, algorithm) }
}

t.test('constants', async (t) => {
  t.ok(AEAD_ALGORITHMS.includes(DEFAULT_AEAD))
  t.equal(DEFAULT_AEAD, 'aes-256-gcm')
  t.equal(TAG_LENGTH, 16)
  t.equal(PACKETS_PER_KEY, 2 ** 32)
  t.equal(AEAD_LIMITS['aes-256-gcm'].maxBlocks, 2 ** 35)
  t.equal(AEAD_LIMITS['chacha20-poly1305'].maxBlocks, Infinity)
})

for (const algorithm of AEAD_ALGORITHMS) {
  t.test(`${algorithm}: round trip both ways, sizes 0..1200`, async (t) => {
    const { a, b } = pair(algorithm)
    t.equal(a.algorithm, algorithm)
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

  t.test(`${algorithm}: follows the documented construction (interoperable)`, async (t) => {
    const { a } = pair(algorithm)
    const pn = 0x01020304
    const plaintext = Buffer.from('hello, warpmesh')
    const sealed = a.seal(HEADER, pn, plaintext)
    const key = Buffer.from(hkdfSync('sha256', K1, Buffer.alloc(0), Buffer.from('warpmesh v1 aead key'), 32))
    const iv = Buffer.from(hkdfSync('sha256', K1, Buffer.alloc(0), Buffer.from('warpmesh v1 aead iv'), AEAD_NONCE_LENGTH))
    const nonce = Buffer.from(iv)
    for (let i = 0; i < 4; i++) nonce[8 + i] ^= [1, 2, 3, 4][i]
    const c = createCipheriv(algorithm as CipherGCMTypes, key, nonce, { authTagLength: 16 })
    c.setAAD(HEADER)
    const expected = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
    t.same(sealed, expected)
  })

  t.test(`${algorithm}: every single-bit flip of header or sealed payload → null`, async (t) => {
    for (const size of [64, 1200]) {
      const { a, b } = pair(algorithm)
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
      const flips = (HEADER.length + sealed.length) * 8
      t.equal(accepted, 0, `${size} B: ${flips} flips, none accepted`)
      t.equal(b.openFailures, flips, 'each counted')
      t.same(b.open(HEADER, pn, sealed), plaintext, 'the original still opens')
    }
  })

  t.test(`${algorithm}: wrong packet number, truncation, extension, wrong key or direction → null`, async (t) => {
    const { a, b } = pair(algorithm)
    const pn = 0x80000001
    const plaintext = randomBytes(100)
    const sealed = a.seal(HEADER, pn, plaintext)
    for (const other of [pn + 1, pn - 1, pn ^ 0x80000000, 0, 0xffffffff]) {
      t.equal(b.open(HEADER, other, sealed), null, `packet number ${other}`)
    }
    for (let len = 0; len < sealed.length; len++) {
      if (b.open(HEADER, pn, sealed.subarray(0, len)) !== null) t.fail(`truncated to ${len} opened`)
    }
    t.equal(b.open(HEADER, pn, Buffer.concat([sealed, Buffer.alloc(1)])), null, 'one byte appended')
    t.equal(b.open(HEADER.subarray(1), pn, sealed), null, 'header shortened')
    t.equal(b.open(Buffer.concat([HEADER, Buffer.alloc(1)]), pn, sealed), null, 'header extended')
    t.equal(a.open(HEADER, pn, sealed), null, 'own packet reflected back')
    t.equal(new PacketProtector(K2, K2, algorithm).open(HEADER, pn, sealed), null, 'wrong key')
    const otherAlgorithm = AEAD_ALGORITHMS.find((x) => x !== algorithm)
    t.equal(new PacketProtector(K2, K1, otherAlgorithm).open(HEADER, pn, sealed), null, 'other algorithm')
    t.equal(b.openFailures, 5 + sealed.length + 3 + 0)
    t.same(b.open(HEADER, pn, sealed), plaintext)
  })

  t.test(`${algorithm}: open never throws`, async (t) => {
    const { a, b } = pair(algorithm)
    const sealed = a.seal(HEADER, 1, randomBytes(10))
    for (const pn of [-1, 1.5, 2 ** 32, Number.NaN, Infinity]) {
      t.equal(b.open(HEADER, pn, sealed), null, `packet number ${pn}`)
    }
    t.equal(b.open(HEADER, 1, Buffer.alloc(0)), null)
    t.equal(b.open(HEADER, 1, randomBytes(TAG_LENGTH)), null)
    t.equal(b.open(Buffer.alloc(0), 1, randomBytes(2000)), null)
  })
}

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
  // the same plaintext under different packet numbers gives unrelated ciphertexts
  t.notSame(a.seal(HEADER, 13, p), a.seal(HEADER, 14, p))
  // same packet number in the two directions: different keys and IVs
  t.notSame(pair().a.seal(HEADER, 0, p), pair().b.seal(HEADER, 0, p))
})

t.test('wraparound 0xFFFFFFFF → 0 is an advance; the 2^32-th packet number is refused', async (t) => {
  const { a, b } = pair('chacha20-poly1305')
  const p = Buffer.from('y')
  t.equal(a.keyUsage, 0)
  a.seal(HEADER, 0xfffffffe, p)
  const wrapped = a.seal(HEADER, 0xffffffff, p)
  const zero = a.seal(HEADER, 0, p)
  t.same(b.open(HEADER, 0xffffffff, wrapped), p)
  t.same(b.open(HEADER, 0, zero), p)
  t.equal(a.keyUsage, 3 / 2 ** 32)

  // walk the whole space in big strides: 0, 2^31-1, 2^32-2, 2^32-1 (offsets from the first)
  const c = new PacketProtector(K1, K2, 'chacha20-poly1305')
  c.seal(HEADER, 0, p)
  c.seal(HEADER, 0x7fffffff, p)
  c.seal(HEADER, 0xfffffffe, p)
  c.seal(HEADER, 0xffffffff, p)
  t.equal(c.keyUsage, 1)
  t.throws(() => c.seal(HEADER, 0, p), /traffic key exhausted: 4294967296 packet numbers used/)
  t.throws(() => c.seal(HEADER, 5, p), RangeError)
})

t.test('stricter limits: packets and blocks', async (t) => {
  const p = new PacketProtector(K1, K2, 'aes-256-gcm', { maxPackets: 4 })
  for (let pn = 100; pn < 104; pn++) p.seal(HEADER, pn, Buffer.alloc(1))
  t.equal(p.keyUsage, 1)
  t.throws(() => p.seal(HEADER, 104, Buffer.alloc(1)), /packet numbers used/)

  // blocks: ceil(len / 16) + 1 per packet
  const q = new PacketProtector(K1, K2, 'aes-256-gcm', { maxBlocks: 12 })
  q.seal(HEADER, 0, Buffer.alloc(64)) // 5
  q.seal(HEADER, 1, Buffer.alloc(0)) // 1
  q.seal(HEADER, 2, Buffer.alloc(65)) // 6 → 12
  t.equal(q.keyUsage, 1)
  t.throws(() => q.seal(HEADER, 3, Buffer.alloc(0)), /budget of 12 blocks used/)
  // a refused seal changes nothing: a smaller limit shows it
  const r = new PacketProtector(K1, K2, 'aes-256-gcm', { maxBlocks: 10 })
  r.seal(HEADER, 0, Buffer.alloc(64)) // 5
  t.throws(() => r.seal(HEADER, 1, Buffer.alloc(80)), RangeError) // 6 > 5 left
  r.seal(HEADER, 1, Buffer.alloc(64)) // the same packet number is still free: 5 → 10
  t.equal(r.keyUsage, 1)

  for (const bad of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN]) {
    t.throws(() => new PacketProtector(K1, K2, 'aes-256-gcm', { maxPackets: bad }), RangeError, `maxPackets ${bad}`)
  }
  t.throws(() => new PacketProtector(K1, K2, 'aes-256-gcm', { maxBlocks: 2 ** 35 + 1 }), RangeError)
  t.ok(new PacketProtector(K1, K2, 'chacha20-poly1305', { maxBlocks: 2 ** 40 }))
})

t.test('constructor validation', async (t) => {
  t.throws(() => new PacketProtector(K1, K2, 'aes-128-gcm' as never), TypeError)
  t.throws(() => new PacketProtector(K1.subarray(0, 15), K2), RangeError)
  t.throws(() => new PacketProtector(K1, K2.subarray(0, 15)), RangeError)
  t.equal(new PacketProtector(K1, K2).algorithm, DEFAULT_AEAD)
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

for (const algorithm of AEAD_ALGORITHMS) {
  t.test(`${algorithm}: prepare() makes the next cipher ahead; output identical, never misused`, async (t) => {
    const { a, b } = pair(algorithm)
    const ref = pair(algorithm) // same keys, never prepared
    const msg = Buffer.from('prepared ahead of time')
    a.prepare()
    b.prepare()
    t.equal(a.preparedHits + b.preparedHits, 0, 'nothing to prepare before the first seal/open')
    // Sequential packet numbers: every seal and open after the first finds its cipher ready.
    for (let pn = 0; pn < 50; pn++) {
      const sealed = a.seal(HEADER, pn, msg)
      t.same(sealed, ref.a.seal(HEADER, pn, msg), `pn ${pn}: same bytes as without prepare`)
      t.same(b.open(HEADER, pn, sealed), msg)
      t.ok(ref.b.open(HEADER, pn, sealed))
      a.prepare()
      b.prepare()
      a.prepare() // idempotent
    }
    t.equal(a.preparedHits, 49, 'seals 1..49 used the prepared cipher')
    t.equal(b.preparedHits, 49, 'opens 1..49 used the prepared decipher')
    // A skipped packet number (the prepared one is for 50): a fresh cipher, same result.
    const skipped = a.seal(HEADER, 52, msg)
    t.same(skipped, ref.a.seal(HEADER, 52, msg))
    t.equal(a.preparedHits, 49, 'a prepared cipher for another packet number is not used')
    // A forged packet with the expected number consumes the prepared decipher; the real one still opens.
    t.equal(b.open(HEADER, 50, Buffer.alloc(msg.length + TAG_LENGTH, 7)), null)
    t.same(b.open(HEADER, 52, skipped), msg, 'reordered: opened with a fresh decipher')
    b.prepare()
    const next = a.seal(HEADER, 53, msg)
    t.same(b.open(HEADER, 53, next), msg)
    t.equal(b.preparedHits, 51, 'the forged 50 and the real 53 used prepared deciphers')
    // Authentication still fails for a wrong header with a prepared decipher.
    a.prepare()
    b.prepare()
    const bad = a.seal(HEADER, 54, msg)
    t.equal(a.preparedHits, 50)
    t.equal(b.open(Buffer.from('other header'), 54, bad), null)
    t.equal(b.openFailures, 2)
  })
}

for (const algorithm of AEAD_ALGORITHMS) {
  t.test(`${algorithm}: prepare(aadFor) feeds the predicted associated data ahead; a wrong prediction costs a fresh cipher, never a wrong result`, async (t) => {
    const { a, b } = pair(algorithm)
    const ref = pair(algorithm)
    const aadOf = (pn: number): Buffer => Buffer.concat([HEADER.subarray(0, 14), Buffer.from([pn & 0xff, pn >>> 8, 0, 0])])
    const predicted: Array<[number, boolean]> = []
    let wrong = false
    const aadFor = (pn: number, sending: boolean): Uint8Array => {
      predicted.push([pn, sending])
      return wrong ? Buffer.from('not the header') : aadOf(pn)
    }
    const msg = Buffer.from('associated data fed ahead')
    for (let pn = 0; pn < 20; pn++) {
      const sealed = a.seal(aadOf(pn), pn, msg)
      t.same(sealed, ref.a.seal(aadOf(pn), pn, msg), `pn ${pn}: same bytes as without prepare`)
      t.same(b.open(aadOf(pn), pn, sealed), msg)
      a.prepare(aadFor)
      b.prepare(aadFor)
    }
    t.equal(a.preparedHits, 19, 'seals 1..19 used the prepared cipher and its associated data')
    t.equal(b.preparedHits, 19, 'opens 1..19 likewise')
    t.same(predicted.slice(0, 2), [[1, true], [1, false]], 'asked for the next packet number each way')
    // The associated data differs from the prediction: a fresh cipher, the same bytes.
    const other = Buffer.concat([aadOf(20), Buffer.from([1])])
    const sealed = a.seal(other, 20, msg)
    t.same(sealed, ref.a.seal(other, 20, msg), 'sealed with the real associated data')
    t.equal(a.preparedHits, 19, 'the prepared cipher was not used')
    t.same(b.open(other, 20, sealed), msg, 'opened with the real associated data')
    t.equal(b.preparedHits, 19, 'the prepared decipher was not used')
    // A wrong prediction never authenticates a packet under the predicted bytes.
    wrong = true
    a.prepare(aadFor)
    b.prepare(aadFor)
    const next = a.seal(aadOf(21), 21, msg)
    t.same(next, ref.a.seal(aadOf(21), 21, msg))
    t.equal(b.open(Buffer.from('not the header'), 21, next), null, 'the predicted bytes are not the real associated data')
    t.same(b.open(aadOf(21), 21, next), msg, 'the real associated data opens it, with a fresh decipher')
    t.equal(a.preparedHits, 19, 'the seal did not use the wrongly predicted cipher')
    t.equal(b.preparedHits, 20, 'only the open that passed the predicted bytes themselves used it (and failed)')
  })
}

t.test('prepare() does not prepare past the key limit', async (t) => {
  const p = new PacketProtector(K1, K2, DEFAULT_AEAD, { maxPackets: 2 })
  p.seal(HEADER, 0, Buffer.alloc(1))
  p.prepare()
  p.seal(HEADER, 1, Buffer.alloc(1))
  t.equal(p.preparedHits, 1)
  p.prepare()
  t.throws(() => p.seal(HEADER, 2, Buffer.alloc(1)), RangeError, 'still refused at the limit')
})
