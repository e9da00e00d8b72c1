import t from 'tap'
import { DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW, ReplayWindow } from '../../lib/security/replay.js'

t.test('empty window accepts anything once', async (t) => {
  const w = new ReplayWindow()
  t.equal(w.size, DEFAULT_REPLAY_WINDOW)
  t.equal(w.size, 1024)
  t.equal(w.largest, undefined)
  t.equal(w.check(12345), true)
  t.equal(w.check(0xffffffff), true)
  t.equal(w.commit(12345), true)
  t.equal(w.largest, 12345)
  t.equal(w.check(12345), false, 'duplicate')
  t.equal(w.commit(12345), false, 'duplicate commit refused')
})

t.test('in-order stream: each accepted once', async (t) => {
  const w = new ReplayWindow()
  let accepted = 0
  for (let pn = 0; pn < 5000; pn++) if (w.check(pn) && w.commit(pn)) accepted++
  t.equal(accepted, 5000)
  let again = 0
  for (let pn = 0; pn < 5000; pn++) if (w.check(pn)) again++
  t.equal(again, 0, 'no duplicate accepted')
  t.equal(w.largest, 4999)
})

t.test('window edge: size - 1 behind is accepted, size behind is too old', async (t) => {
  const w = new ReplayWindow()
  w.commit(5000)
  t.equal(w.check(5000 - 1023), true, '1023 behind')
  t.equal(w.check(5000 - 1024), false, '1024 behind: too old')
  t.equal(w.commit(5000 - 1024), false)
  t.equal(w.commit(5000 - 1023), true)
  t.equal(w.check(5000 - 1023), false, 'now a duplicate')
  // everything between, out of order, once each
  let accepted = 0
  for (let pn = 5000 - 1; pn > 5000 - 1023; pn -= 2) if (w.commit(pn)) accepted++
  for (let pn = 5000 - 2; pn > 5000 - 1023; pn -= 2) if (w.commit(pn)) accepted++
  t.equal(accepted, 1022, "every number strictly between")
  for (let pn = 5000 - 1023; pn <= 5000; pn++) if (w.check(pn)) t.fail(`${pn} accepted twice`)
  t.equal(w.largest, 5000)
})

t.test('wraparound across 0xFFFFFFFF → 0', async (t) => {
  const w = new ReplayWindow()
  for (let pn = 0xfffffff0; pn <= 0xffffffff; pn++) t.equal(w.commit(pn), true)
  for (let pn = 0; pn <= 10; pn++) t.equal(w.commit(pn), true, `after wrap ${pn}`)
  t.equal(w.largest, 10)
  t.equal(w.check(0xfffffffa), false, 'duplicate from before the wrap')
  t.equal(w.check(0xffffffff), false)
  t.equal(w.check(0), false)
  t.equal(w.check(0xffffffe0), true, 'unseen, 43 behind across the wrap')
  t.equal(w.check(((10 - 1023) >>> 0)), true, '1023 behind across the wrap')
  t.equal(w.check(((10 - 1024) >>> 0)), false, '1024 behind across the wrap: too old')
  t.equal(w.check(11), true)
})

t.test('large jumps forward clear the window', async (t) => {
  const w = new ReplayWindow()
  w.commit(10)
  w.commit(11)
  w.commit(11 + 1023) // jump of size - 1: 11 stays inside the window, still marked
  t.equal(w.check(11), false, '11 remembered')
  t.equal(w.check(10), false, '10 too old now')
  t.equal(w.check(12), true, 'skipped numbers are unseen')
  t.equal(w.check(11 + 1022), true)

  const v = new ReplayWindow()
  v.commit(11)
  v.commit(11 + 1024) // jump of exactly size
  t.equal(v.check(11), false, 'too old')
  t.equal(v.check(12), true)
  t.equal(v.check(11 + 1024), false)

  const u = new ReplayWindow()
  u.commit(0)
  u.commit(1_000_000)
  t.equal(u.check(999_999), true)
  t.equal(u.check(0), false)
  t.equal(u.check(1_000_000), false)
  t.equal(u.check(1_000_001), true)
})

t.test('half the space ahead or more counts as behind (serial arithmetic)', async (t) => {
  const w = new ReplayWindow()
  w.commit(0)
  t.equal(w.check(0x7fffffff), true, '2^31 - 1 ahead: newer')
  t.equal(w.check(0x80000000), false, '2^31 ahead: treated as older, too old')
  t.equal(w.commit(0x7fffffff), true)
  t.equal(w.check(0), false)
  t.equal(w.check(0xfffffffe), true, 'now newer than 0x7fffffff')
})

t.test('not a uint32: never accepted, never thrown', async (t) => {
  const w = new ReplayWindow()
  for (const bad of [-1, 1.5, 2 ** 32, Number.NaN, Infinity, -Infinity]) {
    t.equal(w.check(bad), false, `check ${bad}`)
    t.equal(w.commit(bad), false, `commit ${bad}`)
  }
  t.equal(w.largest, undefined, 'nothing changed')
})

t.test('sizes', async (t) => {
  for (const bad of [0, 16, 31, 33, 100, 1000, MAX_REPLAY_WINDOW * 2, 1.5, Number.NaN]) {
    t.throws(() => new ReplayWindow(bad), RangeError, `size ${bad}`)
  }
  const small = new ReplayWindow(32)
  small.commit(100)
  t.equal(small.check(100 - 31), true)
  t.equal(small.check(100 - 32), false)
  const big = new ReplayWindow(MAX_REPLAY_WINDOW)
  big.commit(100_000)
  t.equal(big.check(100_000 - 65535), true)
  t.equal(big.check(100_000 - 65536), false)
})

t.test('matches a reference model on a seeded random walk across the wrap', async (t) => {
  // xorshift32, seeded: deterministic
  let seed = 0x9e3779b9
  const random = (): number => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 2 ** 32
  }
  for (const size of [32, 1024]) {
    const w = new ReplayWindow(size)
    const seen = new Set<number>()
    let largest: number | undefined
    let base = 0xffff0000
    let mismatches = 0
    let accepted = 0
    for (let i = 0; i < 200_000; i++) {
      const r = random()
      // mostly near the front, some duplicates and old ones, rare big jumps
      const delta = r < 0.001 ? Math.floor(random() * 5000) : Math.floor(random() * size * 1.5) - size
      const pn = (base + delta) >>> 0
      if (delta > 0 && random() < 0.5) base = pn
      let expected: boolean
      if (largest === undefined) expected = true
      else {
        const diff = (pn - largest) | 0
        expected = diff > 0 || (-diff < size && !seen.has(pn))
      }
      if (w.check(pn) !== expected) mismatches++
      if (expected) {
        w.commit(pn)
        seen.add(pn)
        accepted++
        if (largest === undefined || ((pn - largest) | 0) > 0) largest = pn
      }
    }
    t.equal(mismatches, 0, `size ${size}: check agrees with the model`)
    t.equal(w.largest, largest)
    t.ok(accepted > 10_000, `size ${size}: ${accepted} accepted`)
    t.ok(((base - 0xffff0000) >>> 0) > 0x20000, 'the walk crossed 0xFFFFFFFF → 0')
  }
})
