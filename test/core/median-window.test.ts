import t from 'tap'
import { MedianWindow } from '../../lib/core/median-window.js'

t.test('median of the last N values, computed when read', async (t) => {
  const w = new MedianWindow(4)
  t.ok(Number.isNaN(w.median()), 'NaN when empty')
  t.equal(w.count, 0)
  w.add(5)
  t.equal(w.median(), 5)
  w.add(1)
  t.equal(w.median(), 3, 'even count: mean of the middle two')
  w.add(100)
  t.equal(w.median(), 5, 'odd count: the middle value, whatever the outlier')
  w.add(2)
  t.equal(w.count, 4)
  t.equal(w.median(), 3.5, '(1, 2, 5, 100)')
  w.add(3) // replaces 5, the oldest
  t.equal(w.count, 4, 'bounded: the size, never more')
  t.equal(w.median(), 2.5, '(1, 2, 3, 100): the oldest value fell out')
  for (let i = 0; i < 9; i++) w.add(7)
  t.equal(w.median(), 7, 'wraps around any number of times')
  t.throws(() => new MedianWindow(0), RangeError)
  t.throws(() => new MedianWindow(1.5), RangeError)
})
