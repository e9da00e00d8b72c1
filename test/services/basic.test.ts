import t from 'tap'
import { SimMesh } from '../mesh/fixtures/sim.js'
import { Network } from '../../lib/services/network.js'
import type { MeshNode } from '../../lib/mesh/node.js'

async function mesh(n: number, o: { heartbeatMs?: number } = {}): Promise<{ sim: SimMesh; nodes: MeshNode[]; nets: Network[] }> {
  const sim = new SimMesh({ heartbeatMs: o.heartbeatMs ?? 200, insecure: true })
  await sim.coordinator()
  const nodes = await sim.drive(Promise.all(Array.from({ length: n }, (_, i) => sim.startNode(`s${i}`))))
  await sim.runUntil(() => nodes.every((x) => x.peers().length === n - 1), 5000)
  const nets = nodes.map((node, i) => Network.create(node, { clock: sim.clock, syncMs: 200, server: { state: 'lobby', mode: i % 2 === 0 ? 'skywars' : 'bedwars', max: 10 } }))
  return { sim, nodes, nets }
}

t.test('a join is visible on every node, a leave everywhere, names case-insensitive', async (t) => {
  const { sim, nets } = await mesh(3)
  t.teardown(() => sim.closeAll())
  const joined: string[] = []
  nets[2].on('player-joined', (p) => joined.push(`${p.name}@${p.server}`))
  nets[0].join({ name: 'Steve', xuid: '2535400000000001', proxy: 'proxy-1' })
  t.ok(await sim.runUntil(() => nets.every((n) => n.locate('steve')?.server === 's0'), 2000), 'located on every node')
  t.same(nets[1].locate('2535400000000001'), { name: 'Steve', xuid: '2535400000000001', server: 's0', proxy: 'proxy-1', fields: {} })
  t.same(joined, ['Steve@s0'])
  t.equal(nets[2].count(), 1)
  t.equal(nets[2].count({ mode: 'skywars' }), 1)
  t.equal(nets[2].count({ mode: 'bedwars' }), 0)
  t.equal(nets[1].server('s0')?.players, 1)
  t.equal(nets[1].servers({ mode: 'skywars' }).length, 2)
  const moved: string[] = []
  nets[2].on('player-moved', (p, from) => moved.push(`${p.name}:${from}->${p.server}`))
  nets[0].leave('STEVE')
  nets[1].join({ name: 'steve', xuid: '2535400000000001', proxy: 'proxy-1' })
  t.ok(await sim.runUntil(() => nets.every((n) => n.locate('Steve')?.server === 's1'), 2000), 'moved everywhere')
  t.same(moved, ['steve:s0->s1'])
  nets[1].leave('steve')
  t.ok(await sim.runUntil(() => nets.every((n) => !n.isOnline('steve')), 2000), 'left everywhere')
  t.equal(nets[0].stats().dropped, 0)
})

t.test('a listener that throws does not stop a delta half-applied', async (t) => {
  const { sim, nets } = await mesh(2)
  t.teardown(() => sim.closeAll())
  await sim.runFor(500) // initial snapshots done: what follows comes as a delta
  const applied = nets[1].stats().deltasApplied
  nets[1].on('player-joined', (p) => { throw new Error(`listener bug on ${p.name}`) })
  nets[0].join({ name: 'A' })
  nets[0].join({ name: 'B' }) // same turn: one delta with both
  t.ok(await sim.runUntil(() => nets[1].count() === 2, 1000), 'both applied')
  t.equal(nets[1].stats().listenerErrors, 2)
  t.equal(nets[1].stats().deltasApplied, applied + 1, 'as one delta')
})

t.test('closing the node closes its services; the others drop its facts', async (t) => {
  const { sim, nets } = await mesh(2)
  t.teardown(() => sim.closeAll())
  nets[1].join({ name: 'Leaver' })
  t.ok(await sim.runUntil(() => nets[0].isOnline('leaver'), 1000))
  await sim.drive(nets[1].node.close(), 5000)
  t.throws(() => nets[1].join({ name: 'Late' }), { name: 'ClosedError' }, 'the services closed with the node')
  t.ok(await sim.runUntil(() => !nets[0].isOnline('leaver') && nets[0].server('s1') === undefined, 2000), 'its facts left with its registration')
})
