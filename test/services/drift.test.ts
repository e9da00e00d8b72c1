/**
 * Drift: the directory under loss, duplication and reordering converges to
 * the truth within two heartbeats of the traffic stopping; a dead server's
 * players leave with its lease; with every coordinator down the directory
 * keeps updating over direct paths. Simulated network, fake clock.
 */
import t from 'tap'
import { SimMesh } from '../mesh/fixtures/sim.js'
import { createRng } from '../../lib/testing.js'
import { Network } from '../../lib/services/network.js'

const SERVERS = 10
const PLAYERS = 1000
const MOVES_PER_SECOND = 100
const SECONDS = 60
const HEARTBEAT_MS = 1000

/** name → server, as each node's directory has it. */
function view(n: Network): Map<string, string> {
  return new Map(n.list().map((p) => [p.name, p.server]))
}

function sameAs(n: Network, truth: Map<string, string>): boolean {
  if (n.count() !== truth.size) return false
  for (const [name, server] of truth) if (n.locate(name)?.server !== server) return false
  return true
}

t.test(`${SERVERS} servers, ${PLAYERS} players, ${MOVES_PER_SECOND} moves/s for ${SECONDS} s under 5 % loss, duplication and reordering`, async (t) => {
  const sim = new SimMesh({ heartbeatMs: HEARTBEAT_MS, insecure: true, seed: 20 })
  t.teardown(() => sim.closeAll())
  await sim.coordinator()
  const nodes = await sim.drive(Promise.all(Array.from({ length: SERVERS }, (_, i) => sim.startNode(`server-${i}`))))
  t.ok(await sim.runUntil(() => nodes.every((n) => n.peers().length === SERVERS - 1), 10_000), 'peer tables complete')
  const nets = nodes.map((node) => Network.create(node, { clock: sim.clock, syncMs: HEARTBEAT_MS, server: { state: 'lobby', max: 0 } }))
  const rng = createRng(7)
  const truth = new Map<string, string>()
  const at = new Map<string, number>()
  for (let i = 0; i < PLAYERS; i++) {
    const s = Math.floor(rng() * SERVERS)
    const name = `Player${i}`
    nets[s].join({ name, xuid: String(2535400000000000 + i), proxy: 'proxy-1' })
    truth.set(name, `server-${s}`)
    at.set(name, s)
  }
  t.ok(await sim.runUntil(() => nets.every((n) => sameAs(n, truth)), 10_000, 5), 'initial directory everywhere')

  sim.net.configure({ loss: 0.05, duplicate: 0.05, reorder: 0.05, reorderDelayMs: 15, jitterMs: 2 })
  const stepMs = 1000 / MOVES_PER_SECOND
  for (let i = 0; i < MOVES_PER_SECOND * SECONDS; i++) {
    const p = Math.floor(rng() * PLAYERS)
    const name = `Player${p}`
    const from = at.get(name)!
    const to = (from + 1 + Math.floor(rng() * (SERVERS - 1))) % SERVERS
    nets[from].leave(name)
    nets[to].join({ name, xuid: String(2535400000000000 + p), proxy: 'proxy-1' })
    truth.set(name, `server-${to}`)
    at.set(name, to)
    await sim.runFor(stepMs, 5)
  }
  const stopped = sim.clock.now()
  const converged = await sim.runUntil(() => nets.every((n) => sameAs(n, truth)), 2 * HEARTBEAT_MS, 5)
  const took = sim.clock.now() - stopped
  t.ok(converged, `every directory equals the truth within two heartbeats of the traffic stopping (took ${took} ms)`)
  if (!converged) {
    for (const n of nets) {
      const v = view(n)
      const wrong = [...truth].filter(([name, s]) => v.get(name) !== s).length
      t.comment(`${n.node.id}: ${v.size} listed, ${wrong} wrong, stats ${JSON.stringify(n.stats())}`)
    }
  }
  const totals = nets.map((n) => n.stats()).reduce((a, s) => ({ ignored: a.ignored + s.deltasIgnored, snapshots: a.snapshots + s.snapshotsApplied, dropped: a.dropped + s.dropped }), { ignored: 0, snapshots: 0, dropped: 0 })
  let retransmitted = 0
  let duplicates = 0
  for (const n of nodes) for (const s of Object.values(n.stats().peers)) { retransmitted += s.framesRetransmitted; duplicates += s.duplicatePackets }
  t.ok(retransmitted > 0 && duplicates > 0, `the network lost and duplicated datagrams (${retransmitted} frames retransmitted, ${duplicates} duplicate packets)`)
  t.comment(`deltas ignored ${totals.ignored}, snapshots applied ${totals.snapshots}, dropped ${totals.dropped}`)
  for (const n of nets) t.equal(n.server(`server-0`)?.players, nets[0].hosted().length, `${n.node.id}: server-0's count as it says`)
})

async function smallMesh(n: number, heartbeatMs = 200): Promise<{ sim: SimMesh; nets: Network[] }> {
  const sim = new SimMesh({ heartbeatMs, insecure: true, seed: 3 })
  await sim.coordinator()
  const nodes = await sim.drive(Promise.all(Array.from({ length: n }, (_, i) => sim.startNode(`s${i}`))))
  await sim.runUntil(() => nodes.every((x) => x.peers().length === n - 1), 5000)
  const nets = nodes.map((node) => Network.create(node, { clock: sim.clock, syncMs: heartbeatMs, server: { state: 'lobby' } }))
  return { sim, nets }
}

t.test('deltas lost with a broken session are repaired by digest and snapshot within two heartbeats of the heal', async (t) => {
  const { sim, nets } = await smallMesh(3)
  t.teardown(() => sim.closeAll())
  const [a, b] = nets
  for (let i = 0; i < 50; i++) b.join({ name: `p${i}` })
  t.ok(await sim.runUntil(() => a.count() === 50, 2000), 'a sees b\'s 50 players')
  const ta = sim.transports.get(a.node.endpoint)!
  const tb = sim.transports.get(b.node.endpoint)!
  sim.net.setLink(ta, tb, { loss: 1 })
  sim.net.setLink(tb, ta, { loss: 1 })
  for (let i = 0; i < 30; i++) b.leave(`p${i}`)
  for (let i = 50; i < 70; i++) b.join({ name: `p${i}` })
  await sim.runFor(1500, 5) // longer than the peer timeout (3 heartbeats): b's session to a goes down, its queue with it
  t.equal(a.count(), 50, 'a still holds the old facts (b is in the table: the coordinator hears it)')
  t.equal(nets[2].count(), 40, 'the third node has the new ones')
  sim.net.clearLink(ta, tb)
  sim.net.clearLink(tb, ta)
  const healed = sim.clock.now()
  const snapshots = a.stats().snapshotsApplied
  t.ok(await sim.runUntil(() => a.count() === 40 && a.locate('p69')?.server === 's1' && !a.isOnline('p0'), 2 * 200, 5), `converged ${sim.clock.now() - healed} ms after the heal`)
  t.ok(a.stats().snapshotsApplied > snapshots, 'repaired by a snapshot from b')
})

t.test('a killed server\'s players leave every directory with its lease; counts agree', async (t) => {
  const { sim, nets } = await smallMesh(4)
  t.teardown(() => sim.closeAll())
  for (let i = 0; i < 100; i++) nets[3].join({ name: `victim${i}` })
  for (let i = 0; i < 10; i++) nets[0].join({ name: `stay${i}` })
  t.ok(await sim.runUntil(() => nets.every((n) => n.count() === 110), 2000), 'all listed')
  const left: string[] = []
  nets[1].on('player-left', (p) => left.push(p.name))
  const killedAt = sim.clock.now()
  await sim.kill(nets[3].node)
  const lease = 3 * 200
  const gone = await sim.runUntil(() => nets.slice(0, 3).every((n) => n.count() === 10 && n.server('s3') === undefined), lease + 200, 5)
  t.ok(gone, `no node lists them ${sim.clock.now() - killedAt} ms after the kill (lease ${lease} ms + one heartbeat of slack)`)
  t.equal(left.length, 100, 'player-left for each, at once (no move window for a dead server)')
  t.same(nets.slice(0, 3).map((n) => n.count({ server: 's0' })), [10, 10, 10], 'counts agree everywhere')
})

t.test('with every coordinator down the directory keeps updating over direct paths', async (t) => {
  const { sim, nets } = await smallMesh(3)
  t.teardown(() => sim.closeAll())
  nets[0].join({ name: 'Alex' })
  t.ok(await sim.runUntil(() => nets.every((n) => n.isOnline('alex')), 2000))
  await sim.kill(sim.coordinators[0])
  await sim.runFor(2000, 5)
  t.equal(nets[1].node.stats().totals.coordinatorsUp, 0, 'no coordinator')
  nets[0].leave('alex')
  nets[2].join({ name: 'Alex' })
  nets[1].join({ name: 'Bob' })
  t.ok(await sim.runUntil(() => nets.every((n) => n.locate('alex')?.server === 's2' && n.locate('bob')?.server === 's1'), 1000, 5), 'moves and joins reach every node')
  t.same(nets.map((n) => n.count()), [2, 2, 2])
})

t.test('a server restarted under the same id and address: only the new incarnation\'s facts are listed', async (t) => {
  const { sim, nets } = await smallMesh(3)
  t.teardown(() => sim.closeAll())
  for (let i = 0; i < 20; i++) nets[2].join({ name: `old${i}` })
  t.ok(await sim.runUntil(() => nets[0].count() === 20, 2000))
  const oldEpoch = nets[2].node.epoch
  await sim.kill(nets[2].node)
  // As a restarted server does: retry until the coordinator frees the id (the old lease expired).
  let node: Awaited<ReturnType<typeof sim.node>> | undefined
  for (let i = 0; i < 20 && node === undefined; i++) {
    try {
      node = await sim.node('s2', { host: '10.1.0.3' })
    } catch {
      await sim.runFor(100, 5)
    }
  }
  if (node === undefined) throw new Error('s2 could not register again')
  const restarted = Network.create(node, { clock: sim.clock, syncMs: 200, server: { state: 'starting' } })
  t.not(node.epoch, oldEpoch, 'a new incarnation')
  restarted.join({ name: 'new0' })
  t.ok(await sim.runUntil(() => nets[0].count() === 1 && nets[1].count() === 1 && nets[0].locate('new0')?.server === 's2', 3000),
    'every node lists only the new incarnation\'s player')
  t.equal(nets[1].server('s2')?.state, 'starting')
})
