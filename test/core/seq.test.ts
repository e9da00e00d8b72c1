import t from 'tap'
import { seqAdd, seqDiff, seqLess, seqMax } from '../../lib/core/seq.js'

t.test('comparison without wraparound', async (t) => {
  t.equal(seqLess(1, 2), true)
  t.equal(seqLess(2, 1), false)
  t.equal(seqLess(5, 5), false)
  t.equal(seqDiff(10, 3), 7)
  t.equal(seqDiff(3, 10), -7)
  t.equal(seqMax(3, 10), 10)
  t.equal(seqMax(10, 3), 10)
})

t.test('comparison across the 2^32 wrap', async (t) => {
  t.equal(seqLess(0xffffffff, 0), true, '0xffffffff comes before 0')
  t.equal(seqLess(0, 0xffffffff), false)
  t.equal(seqDiff(0, 0xffffffff), 1)
  t.equal(seqDiff(0xffffffff, 0), -1)
  t.equal(seqDiff(5, 0xfffffffb), 10)
  t.equal(seqMax(0xfffffff0, 3), 3)
  t.equal(seqMax(3, 0xfffffff0), 3)
  t.equal(seqAdd(0xffffffff, 1), 0)
  t.equal(seqAdd(0xfffffffe, 5), 3)
  t.equal(seqAdd(7, 0), 7)
})

t.test('the largest distance that still compares correctly is 2^31 - 1', async (t) => {
  const far = 0x7fffffff
  for (const base of [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x12345678]) {
    const ahead = seqAdd(base, far)
    t.equal(seqLess(base, ahead), true, `${base} < ${base}+2^31-1`)
    t.equal(seqLess(ahead, base), false)
    t.equal(seqDiff(ahead, base), far)
    t.equal(seqDiff(base, ahead), -far)
    const next = seqAdd(base, 1)
    t.equal(seqLess(base, next), true)
    t.equal(seqDiff(next, base), 1)
  }
  // Exactly 2^31 apart is ambiguous (RFC 1982): both directions read as "before".
  t.equal(seqDiff(0x80000000, 0), -0x80000000)
})

t.test('a run of numbers through the wrap stays increasing', async (t) => {
  let prev = 0xfffffff0
  let bad = 0
  for (let i = 0; i < 64; i++) {
    const next = seqAdd(prev, 1)
    if (!seqLess(prev, next) || seqDiff(next, prev) !== 1) bad++
    prev = next
  }
  t.equal(prev, 0x30)
  t.equal(bad, 0)
})
