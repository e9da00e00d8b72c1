import t from 'tap'
import { Cluster } from '../../bench/harness/cluster.js'
import { failure } from '../../bench/harness/scenarios.js'
import { COORDINATOR, variant } from '../../bench/variants/warpmesh.js'
import { variantSuite } from './fixtures/variant-suite.js'

// Exactly once, in order, intact: throughput both ways, ping-pong, 1 KiB, fan-out.
await variantSuite(variant)

t.test('warpmesh: killing the coordinator loses nothing between downstreams', async (t) => {
  const cluster = await Cluster.start(variant, { downstreams: 2, startTimeoutMs: 60_000, taskTimeoutMs: 60_000 })
  t.teardown(() => cluster.close())
  t.ok(cluster.services.has(COORDINATOR), 'the coordinator is its own process')
  const r = await failure(cluster, { ratePerSecond: 500, durationMs: 1500, killAtMs: 300, drainMs: 500, restartAfterMs: null })
  t.equal(r.target, COORDINATOR)
  t.equal(r.failure, undefined, 'no failure reported')
  t.equal(r.ok, true)
  t.equal(r.lost, 0, `every message arrived (${r.received}/${r.sent})`)
  t.equal(r.duplicates + r.outOfOrder + r.corrupt, 0, 'once, in order, intact')
  t.equal(r.outageDetected, false, `no interruption (worst delay ${r.worstDelayMs} ms)`)
})
