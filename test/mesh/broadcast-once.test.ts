/**
 * A publication is encoded once, whatever the number of subscribers, and a
 * broadcast or publication leaves as one datagram per peer, all in the same
 * flush. Encodings are counted through lib/testing.ts's `envelopesEncoded`.
 */
import t from 'tap'
import type { MeshMessage } from '../../lib/mesh/node.js'
import { envelopesEncoded } from '../../lib/testing.js'
import { SimMesh } from './fixtures/sim.js'

t.test('publish to 5 subscribers: one encoding, one datagram each, in one flush', async (t) => {
  const m = new SimMesh({ delayMs: 0.5 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const hub = await m.node('hub')
  const subs = await Promise.all(['s1', 's2', 's3', 's4', 's5'].map((id) => m.node(id)))
  for (const s of subs) s.subscribe('news')
  t.ok(await m.runUntil(() => hub.peers().filter((p) => p.topics.includes('news')).length === 5, 3000), 'the hub sees 5 subscribers')
  const got: MeshMessage[] = []
  for (const s of subs) s.on('message', (msg: MeshMessage) => got.push(msg))
  // Open the sessions first, so the counted publication goes straight out.
  hub.publish('news', Buffer.from('warm'))
  t.ok(await m.runUntil(() => got.length === 5, 3000))
  await m.runFor(20)
  got.length = 0
  const encodedBefore = envelopesEncoded.count
  const before = hub.stats().peers
  const sentBefore = Object.values(before).reduce((n, p) => n + p.packetsSent, 0)
  t.equal(hub.publish('news', Buffer.from('hello'), { channel: 3 }), 5, 'sent to 5')
  t.equal(envelopesEncoded.count - encodedBefore, 1, 'encoded once for 5 subscribers')
  // Nothing has left yet: the datagrams go when the current callback returns (the fake clock's deferred run), all together.
  const sentNow = (): number => Object.values(hub.stats().peers).reduce((n, p) => n + p.packetsSent, 0)
  t.equal(sentNow() - sentBefore, 0, 'nothing sent during the call')
  m.clock.runDeferred()
  t.equal(sentNow() - sentBefore, 5, 'one datagram per subscriber, all in the one flush that follows')
  t.ok(await m.runUntil(() => got.length === 5, 1000))
  t.same(got.map((g) => [g.topic, g.channel, Buffer.from(g.data).toString()]), Array(5).fill(['news', 3, 'hello']))
})

t.test('broadcast to 4 peers: no envelope at all, one datagram each, in one flush', async (t) => {
  const m = new SimMesh({ delayMs: 0.5 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const proxy = await m.node('proxy')
  const downs = await Promise.all(['d1', 'd2', 'd3', 'd4'].map((id) => m.node(id)))
  t.ok(await m.runUntil(() => proxy.peers().length === 4, 3000))
  const got: MeshMessage[] = []
  for (const d of downs) d.on('message', (msg: MeshMessage) => got.push(msg))
  proxy.broadcast({}, Buffer.from('warm'))
  t.ok(await m.runUntil(() => got.length === 4, 3000))
  await m.runFor(20)
  got.length = 0
  const encodedBefore = envelopesEncoded.count
  const sentNow = (): number => Object.values(proxy.stats().peers).reduce((n, p) => n + p.packetsSent, 0)
  const before = sentNow()
  t.equal(proxy.broadcast({}, Buffer.from('round')), 4)
  t.equal(sentNow() - before, 0, 'nothing sent during the call')
  m.clock.runDeferred()
  t.equal(sentNow() - before, 4, 'one datagram per peer, all in the one flush that follows')
  t.equal(envelopesEncoded.count, encodedBefore, 'application data travels without an envelope')
  t.ok(await m.runUntil(() => got.length === 4, 1000))
})

t.test('a request and its reply: one encoding each', async (t) => {
  const m = new SimMesh({ delayMs: 0.5 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b')
  t.ok(await m.runUntil(() => a.peers().length === 1, 1000))
  b.onRequest((data) => Buffer.concat([Buffer.from('re:'), data]))
  const first = a.request('b', Buffer.from('warm'))
  t.ok(await m.runUntil(() => b.stats().totals.requestsServed === 1, 2000))
  await first
  const encodedBefore = envelopesEncoded.count
  const p = a.request('b', Buffer.from('x'))
  t.ok(await m.runUntil(() => b.stats().totals.requestsServed === 2, 2000))
  t.same(Buffer.from(await p).toString(), 're:x')
  t.equal(envelopesEncoded.count - encodedBefore, 2, 'one request and one reply encoded')
})
