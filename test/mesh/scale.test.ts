/**
 * Scale in the simulated network: 1,000 nodes join one coordinator at once.
 */
import t from 'tap'
import { SimMesh } from './fixtures/sim.js'

t.test('1,000 nodes join: every table converges', async (t) => {
  const m = new SimMesh({ heartbeatMs: 1000, insecure: true })
  t.teardown(() => m.closeAll())
  const coord = await m.coordinator()
  const N = 1000
  const start = m.clock.now()
  const nodes = await m.drive(Promise.all(Array.from({ length: N }, (_, i) => m.startNode(`n${i}`))), 10_000, 5)
  t.ok(await m.runUntil(() => nodes.every((n) => n.peers().length === N - 1), 10_000, 5), 'every table complete')
  const took = m.clock.now() - start
  t.ok(took <= 2000, `converged in ${took} simulated ms`)
  t.equal(coord.table().length, N)
  t.equal(coord.stats().dataMessagesReceived, 0)
})
