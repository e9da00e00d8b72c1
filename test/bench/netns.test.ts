import t from 'tap'
import { execFileSync } from 'node:child_process'
import { Cluster } from '../../bench/harness/cluster.js'
import { NetnsNetwork, checkNetnsSupport, listOurNamespaces, measureDropRate } from '../../bench/harness/netns.js'
import { pingPong, throughput } from '../../bench/harness/scenarios.js'
import { variant as star } from '../../bench/variants/tcp-star.js'

const reason = await checkNetnsSupport()

function rootLinks (): string {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
}

t.test('namespaces with 5% nftables loss', { skip: reason ?? false }, async (t) => {
  const linksBefore = rootLinks()
  const net = await NetnsNetwork.create({ lossPercent: 5 })
  let created: readonly string[] = []
  try {
    const [a, b] = await Promise.all([net.addHost('a'), net.addHost('b')])
    created = net.namespaces
    t.equal(created.length, 3, 'two hosts and the switch')
    const existing = await listOurNamespaces()
    t.ok(created.every((n) => existing.includes(n)), 'namespaces exist while the network is open')
    t.match(a.address, /^198\.18\./)
    t.match(b.address, /^198\.18\./)
    t.not(a.address, b.address)
    t.equal(rootLinks(), linksBefore, 'no interface appears in the initial namespace')

    const drop = await measureDropRate(net, a, b, { datagrams: 4000 })
    t.equal(drop.sent, 4000)
    t.ok(Math.abs(drop.lossRate - 0.05) < 0.02, `measured loss ${(drop.lossRate * 100).toFixed(2)}% is 5% ± 2%`)
    t.ok(drop.nftDropped >= drop.sent - drop.received, `nft counted the drops (${drop.nftDropped} ≥ ${drop.sent - drop.received})`)

    // TCP sees the same loss and still delivers everything, in order.
    const cluster = await Cluster.start(star, { downstreams: 2, network: net, startTimeoutMs: 60_000, taskTimeoutMs: 60_000 })
    try {
      t.ok(cluster.nodes.every((n) => n.host.address.startsWith('198.18.')), 'nodes run inside the namespaces')
      const tp = await throughput(cluster, { count: 3000, warmup: 0 })
      t.equal(tp.ok, true, `throughput under loss ok ${tp.failure ?? ''}`)
      t.equal(tp.received, 3000)
      // Few round trips: about one in ten loses a segment and waits for TCP's ≥200 ms RTO.
      const pp = await pingPong(cluster, { from: 0, to: 1, count: 40, warmup: 0 })
      t.equal(pp.ok, true, 'ping-pong under loss ok')
      t.equal(pp.network, 'netns loss 5%')
    } finally {
      await cluster.close()
    }
  } finally {
    await net.close()
  }
  const left = await listOurNamespaces()
  t.ok(created.every((n) => !left.includes(n)), 'every namespace is deleted')
  t.same(net.namespaces, [], 'nothing left to delete')
  t.equal(rootLinks(), linksBefore, 'no veth left in the initial namespace')
})

t.test('loss percentage is validated', { skip: reason ?? false }, async (t) => {
  await t.rejects(NetnsNetwork.create({ lossPercent: 101 }), RangeError)
  await t.rejects(NetnsNetwork.create({ lossPercent: 2.5 }), RangeError)
})
