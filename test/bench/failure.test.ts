import t from 'tap'
import { Cluster } from '../../bench/harness/cluster.js'
import { failure } from '../../bench/harness/scenarios.js'
import { variant as star } from '../../bench/variants/tcp-star.js'
import { variant as raw } from '../../bench/variants/raw-dgram.js'

const stream = { ratePerSecond: 500, durationMs: 1200, killAtMs: 300, drainMs: 400 } as const
const clusterOptions = { downstreams: 2, startTimeoutMs: 60_000, taskTimeoutMs: 60_000 } as const

t.test('tcp-star: the failure scenario detects the proxy outage', async (t) => {
  const cluster = await Cluster.start(star, clusterOptions)
  t.teardown(() => cluster.close())

  await t.test('a restarted proxy is found again by the reconnecting clients', async (t) => {
    // Room after the restart: the proxy process takes ~1 s to start under the
    // TypeScript loader (several seconds on a loaded CI machine: once more than
    // 8 s, when the stream was 9 s and ended before any client could
    // reconnect), then clients reconnect within their 1 s max backoff.
    const r = await failure(cluster, { ...stream, durationMs: 15_000, restartAfterMs: 300 })
    t.equal(r.target, 'proxy')
    t.equal(r.outageDetected, true)
    t.not(r.recoveryMs, null, `traffic flows again (the restarted proxy was ready ${r.restartReadyMs} ms after the kill)`)
    t.ok(r.restartReadyMs !== null && r.restartReadyMs >= 300, `restarted after the downtime (${r.restartReadyMs} ms)`)
    t.ok(r.recoveryMs! >= 300, `not before the restart (${r.recoveryMs} ms)`)
    t.ok(r.longestGapMs >= 300, `a gap of at least the downtime (${r.longestGapMs} ms)`)
    t.ok(r.afterRestartMs !== null && r.afterRestartMs < 2500, `clients reconnect within their backoff (${r.afterRestartMs} ms)`)
    t.equal(r.duplicates + r.corrupt, 0)
  })

  await t.test('without a restart traffic never flows again', async (t) => {
    const r = await failure(cluster, { ...stream, restartAfterMs: null })
    t.equal(r.outageDetected, true)
    t.equal(r.ok, false, 'reported as failed')
    t.equal(r.recoveryMs, null, 'never recovers without a proxy')
    t.ok(r.lost >= 400, `messages after the kill are lost (lost ${r.lost} of ${r.sent})`)
    t.ok(r.received >= 100, `messages before the kill arrived (${r.received})`)
    t.equal(r.duplicates + r.corrupt + r.outOfOrder, 0, 'what arrived is intact')
    t.match(r.failure, /never flowed again/)
  })
})

t.test('raw-dgram: downstream↔downstream does not depend on the proxy', async (t) => {
  const cluster = await Cluster.start(raw, clusterOptions)
  t.teardown(() => cluster.close())
  const r = await failure(cluster, { ...stream, restartAfterMs: null })
  t.equal(r.target, 'proxy')
  t.equal(r.lost, 0, 'nothing lost')
  // No message lost or delayed past the harness's outage threshold (200 ms; the
  // star's clients, above, lose everything until the proxy is back, 300 ms and
  // more). 100 ms here failed once on a loaded CI run (147 ms): scheduling, not an outage.
  t.equal(r.outageDetected, false, `no outage (worst delay ${r.worstDelayMs} ms)`)
  t.ok(r.recoveryMs !== null && r.recoveryMs < 200, `the next message after the kill arrives within the threshold (${r.recoveryMs} ms)`)
})
