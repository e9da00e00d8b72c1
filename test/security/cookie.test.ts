import t from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { COOKIE_LENGTH, CookieJar, MAX_COOKIE_LIFETIME_MS, MAX_COOKIE_NONCE_LENGTH } from '../../lib/security/cookie.js'

const ADDRESS = '198.18.0.7'
const PORT = 7400
const CONN = 0x89abcdef
const NONCE = Buffer.alloc(32, 0x5a)

/** A jar on a fake clock; `clock.t` is the time in ms. */
function makeJar(options: { lifetimeMs?: number, rotateIntervalMs?: number, secret?: Buffer, start?: number } = {}) {
  const clock = { t: options.start ?? 1_000_000 }
  const jar = new CookieJar({ ...options, now: () => clock.t })
  return { jar, clock }
}

t.test('issue: 20 bytes, verifies for the same address, port, connection id and nonce', async (t) => {
  const { jar } = makeJar()
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.equal(cookie.length, COOKIE_LENGTH)
  t.ok(COOKIE_LENGTH <= 24)
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true)
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, Buffer.from(NONCE)), true, 'nonce compared by value')
  t.equal(jar.verify(new Uint8Array(cookie), ADDRESS, PORT, CONN, NONCE), true, 'plain Uint8Array cookie')
})

t.test('layout: uint32 seconds then HMAC-SHA256 over the documented input, truncated to 16 bytes', async (t) => {
  const secret = randomBytes(32)
  const { jar } = makeJar({ secret, start: 1234567.8 })
  const cookie = jar.issue('::1', 65535, 7, NONCE)
  t.equal(cookie.readUInt32BE(0), 1234)
  const fixed = Buffer.alloc(12)
  fixed[0] = 1
  fixed.writeUInt32BE(1234, 1)
  fixed.writeUInt16BE(65535, 5)
  fixed.writeUInt32BE(7, 7)
  fixed[11] = NONCE.length
  const mac = createHmac('sha256', secret).update(fixed).update(NONCE).update('::1').digest().subarray(0, 16)
  t.same(cookie.subarray(4), mac)
})

t.test('a cookie for anything else is refused', async (t) => {
  const { jar } = makeJar()
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.equal(jar.verify(cookie, '198.18.0.8', PORT, CONN, NONCE), false, 'other address')
  t.equal(jar.verify(cookie, '::ffff:198.18.0.7', PORT, CONN, NONCE), false, 'other spelling of the address')
  t.equal(jar.verify(cookie, ADDRESS, PORT + 1, CONN, NONCE), false, 'other port')
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN ^ 1, NONCE), false, 'other connection id')
  const nonce = Buffer.from(NONCE)
  nonce[31] ^= 0x80
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, nonce), false, 'other nonce')
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE.subarray(0, 31)), false, 'shorter nonce')
  const other = makeJar().jar
  t.equal(other.verify(cookie, ADDRESS, PORT, CONN, NONCE), false, 'another jar (another secret)')
})

t.test('every single-bit flip of a cookie is refused', async (t) => {
  const { jar } = makeJar()
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  let accepted = 0
  for (let bit = 0; bit < cookie.length * 8; bit++) {
    const bad = Buffer.from(cookie)
    bad[bit >> 3] ^= 1 << (bit & 7)
    if (jar.verify(bad, ADDRESS, PORT, CONN, NONCE)) accepted++
  }
  t.equal(accepted, 0, `${cookie.length * 8} flips, none accepted`)
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true, 'the original still verifies')
})

t.test('malformed arguments to verify are refused, never thrown', async (t) => {
  const { jar } = makeJar()
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.equal(jar.verify(cookie.subarray(0, 19), ADDRESS, PORT, CONN, NONCE), false)
  t.equal(jar.verify(Buffer.concat([cookie, Buffer.alloc(1)]), ADDRESS, PORT, CONN, NONCE), false)
  t.equal(jar.verify(Buffer.alloc(0), ADDRESS, PORT, CONN, NONCE), false)
  t.equal(jar.verify(cookie, ADDRESS, 65536, CONN, NONCE), false)
  t.equal(jar.verify(cookie, ADDRESS, -1, CONN, NONCE), false)
  t.equal(jar.verify(cookie, ADDRESS, PORT, 2 ** 32, NONCE), false)
  t.equal(jar.verify(cookie, ADDRESS, PORT, 1.5, NONCE), false)
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, Buffer.alloc(MAX_COOKIE_NONCE_LENGTH + 1)), false)
  t.equal(jar.verify(cookie, undefined as unknown as string, PORT, CONN, NONCE), false)
})

t.test('caller mistakes in issue throw', async (t) => {
  const { jar } = makeJar()
  t.throws(() => jar.issue(ADDRESS, 65536, CONN, NONCE), RangeError)
  t.throws(() => jar.issue(ADDRESS, 1.5, CONN, NONCE), RangeError)
  t.throws(() => jar.issue(ADDRESS, PORT, -1, NONCE), RangeError)
  t.throws(() => jar.issue(ADDRESS, PORT, CONN, Buffer.alloc(MAX_COOKIE_NONCE_LENGTH + 1)), RangeError)
  const longest = Buffer.alloc(MAX_COOKIE_NONCE_LENGTH, 1)
  t.equal(jar.verify(jar.issue(ADDRESS, 0, 0, longest), ADDRESS, 0, 0, longest), true, 'limits themselves are fine')
  t.equal(jar.verify(jar.issue(ADDRESS, PORT, CONN, Buffer.alloc(0)), ADDRESS, PORT, CONN, Buffer.alloc(0)), true)
})

t.test('expiry: accepted for at least lifetimeMs, never lifetimeMs + 1000 after issue', async (t) => {
  for (const lifetimeMs of [1000, 10_000]) {
    for (const offset of [0, 1, 500, 999]) {
      const { jar, clock } = makeJar({ lifetimeMs, start: 50_000 + offset })
      const issuedAt = clock.t
      const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
      clock.t = issuedAt + lifetimeMs - 1
      t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true, `lifetime ${lifetimeMs}, +${offset}: valid at lifetime - 1 ms`)
      clock.t = issuedAt + lifetimeMs + 1000
      t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), false, `lifetime ${lifetimeMs}, +${offset}: expired at lifetime + 1000 ms`)
    }
  }
  // exact second boundaries with the default 10 s
  const { jar, clock } = makeJar({ start: 20_000 })
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  clock.t = 30_999
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true, 'whole-second age 10 of 10')
  clock.t = 31_000
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), false, 'whole-second age 11')
  clock.t = 19_999
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), false, 'from the future (clock went back)')
})

t.test('expired cookie with a forged fresh timestamp is refused (the MAC covers the time)', async (t) => {
  const { jar, clock } = makeJar({ start: 100_000 })
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  clock.t = 115_000
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), false)
  const forged = Buffer.from(cookie)
  forged.writeUInt32BE(115, 0)
  t.equal(jar.verify(forged, ADDRESS, PORT, CONN, NONCE), false)
})

t.test('timestamps wrap: cookies work across 2^32 seconds', async (t) => {
  const { jar, clock } = makeJar({ start: (2 ** 32 - 1) * 1000 })
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.equal(cookie.readUInt32BE(0), 0xffffffff)
  clock.t += 2000
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true)
  const after = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.equal(after.readUInt32BE(0), 1)
  t.equal(jar.verify(after, ADDRESS, PORT, CONN, NONCE), true)
})

t.test('rotation: the previous secret is kept, the one before is forgotten', async (t) => {
  const { jar } = makeJar()
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  jar.rotate()
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true, 'valid after one rotation')
  const fresh = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.not(fresh.toString('hex'), cookie.toString('hex'), 'new secret, new MAC')
  t.equal(jar.verify(fresh, ADDRESS, PORT, CONN, NONCE), true)
  jar.rotate()
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), false, 'invalid after two rotations')
  t.equal(jar.verify(fresh, ADDRESS, PORT, CONN, NONCE), true)
})

/** Two jars with one secret on one clock issue equal cookies until either rotates. */
function twins(options: { lifetimeMs?: number, rotateIntervalMs?: number }) {
  const secret = randomBytes(32)
  const clock = { t: 0 }
  const a = new CookieJar({ ...options, secret, now: () => clock.t })
  const b = new CookieJar({ ...options, secret, now: () => clock.t })
  const same = (): boolean => a.issue(ADDRESS, PORT, CONN, NONCE).equals(b.issue(ADDRESS, PORT, CONN, NONCE))
  return { a, clock, same }
}

t.test('rotation happens by itself after rotateIntervalMs (default 2 × lifetimeMs)', async (t) => {
  const def = twins({})
  t.equal(def.same(), true, 'the secret option is used')
  def.clock.t = 19_999
  t.equal(def.same(), true, 'no rotation before 20 s')
  def.clock.t = 20_000
  t.equal(def.same(), false, 'rotated at 20 s')

  const custom = twins({ lifetimeMs: 2000, rotateIntervalMs: 3000 })
  custom.clock.t = 2999
  t.equal(custom.same(), true, 'no rotation before 3 s')
  custom.clock.t = 3000
  t.equal(custom.same(), false, 'rotated at 3 s')
})

t.test('automatic rotation never cuts a cookie short', async (t) => {
  const { jar, clock } = makeJar({ start: 0 })
  clock.t = 19_999
  const late = jar.issue(ADDRESS, PORT, CONN, NONCE) // the last cookie under the first secret
  clock.t = 20_000 // rotation due; happens inside the next call
  const rotated = jar.issue(ADDRESS, PORT, CONN, NONCE)
  t.equal(jar.verify(late, ADDRESS, PORT, CONN, NONCE), true, 'valid right after the rotation')
  clock.t = 29_999
  t.equal(jar.verify(late, ADDRESS, PORT, CONN, NONCE), true, 'valid for its whole lifetime')
  clock.t = 39_999
  t.equal(jar.verify(rotated, ADDRESS, PORT, CONN, NONCE), false, 'expired')
  clock.t = 40_000 // second rotation; the first secret is forgotten
  t.equal(jar.verify(late, ADDRESS, PORT, CONN, NONCE), false)
  const afterSecond = jar.issue(ADDRESS, PORT, CONN, NONCE)
  clock.t = 49_999
  t.equal(jar.verify(afterSecond, ADDRESS, PORT, CONN, NONCE), true)
})

t.test('constructor validation', async (t) => {
  const now = (): number => 0
  t.throws(() => new CookieJar({ now, lifetimeMs: 999 }), RangeError)
  t.throws(() => new CookieJar({ now, lifetimeMs: 1500 }), RangeError)
  t.throws(() => new CookieJar({ now, lifetimeMs: 0 }), RangeError)
  t.throws(() => new CookieJar({ now, lifetimeMs: MAX_COOKIE_LIFETIME_MS + 1000 }), RangeError)
  t.throws(() => new CookieJar({ now, lifetimeMs: Number.NaN }), RangeError)
  t.throws(() => new CookieJar({ now, lifetimeMs: 10_000, rotateIntervalMs: 10_999 }), RangeError)
  t.throws(() => new CookieJar({ now, rotateIntervalMs: Number.POSITIVE_INFINITY }), RangeError)
  t.throws(() => new CookieJar({ now, secret: Buffer.alloc(31) }), RangeError)
  t.throws(() => new CookieJar({} as unknown as { now: () => number }), TypeError)
  t.ok(new CookieJar({ now, lifetimeMs: MAX_COOKIE_LIFETIME_MS }))
  t.ok(new CookieJar({ now, lifetimeMs: 10_000, rotateIntervalMs: 11_000 }))
})

t.test('the secret is copied: changing the caller\'s buffer changes nothing', async (t) => {
  const secret = randomBytes(32)
  const { jar } = makeJar({ secret })
  const cookie = jar.issue(ADDRESS, PORT, CONN, NONCE)
  secret.fill(0)
  t.equal(jar.verify(cookie, ADDRESS, PORT, CONN, NONCE), true)
})
