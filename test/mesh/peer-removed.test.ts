import t from 'tap'
import { SimMesh } from './fixtures/sim.js'

t.test("'peer-removed' when a peer leaves the table, also after its session already went down", async (t) => {
  const sim = new SimMesh({ heartbeatMs: 200, insecure: true })
  t.teardown(() => sim.closeAll())
  await sim.coordinator()
  const [a, b, c] = await sim.drive(Promise.all([sim.startNode('a'), sim.startNode('b'), sim.startNode('c')]))
  await sim.runUntil(() => a.peers().length === 2, 2000)
  const events: string[] = []
  a.on('peer-down', (p, reason) => events.push(`down ${p.id} ${reason}`))
  a.on('peer-removed', (p, reason) => events.push(`removed ${p.id} ${reason}`))
  a.send('b', new Uint8Array([1])) // a direct session with b: it will time out before the coordinator drops b
  await sim.runFor(50)
  const tb = sim.transports.get(b.endpoint)!
  const ta = sim.transports.get(a.endpoint)!
  sim.net.setLink(tb, ta, { loss: 1 }) // b still heartbeats the coordinator; a hears nothing from b
  sim.net.setLink(ta, tb, { loss: 1 })
  t.ok(await sim.runUntil(() => events.length === 1, 3000), 'the session times out first')
  t.match(events[0], /^down b /)
  t.equal(a.peers().filter((p) => p.id === 'b').length, 1, 'b stays in the table (the coordinator hears it)')
  await sim.kill(b)
  t.ok(await sim.runUntil(() => events.length === 2, 3000), 'then its lease expires')
  t.match(events[1], /^removed b /, "'peer-removed' comes alone (no second 'peer-down')")
  await sim.drive(c.close(), 5000)
  t.ok(await sim.runUntil(() => events.length === 4, 3000))
  t.same(events.slice(2).map((e) => e.split(' ').slice(0, 2).join(' ')), ['down c', 'removed c'], 'a clean leave: down, then removed')
})
