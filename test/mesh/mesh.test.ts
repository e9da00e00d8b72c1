/**
 * Mesh behaviour in the simulated network (fake clock, deterministic).
 */
import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import { ClosedError, DuplicateIdError, PeerDownError, TimeoutError, UnknownPeerError } from '../../lib/errors.js'
import type { MeshMessage, MeshNode } from '../../lib/mesh/node.js'
import type { PeerInfo } from '../../lib/mesh/control.js'
import { memoryLogger, SimMesh } from './fixtures/sim.js'

const enc = (s: string): Uint8Array => Buffer.from(s)
const dec = (b: Uint8Array): string => Buffer.from(b).toString()

function ids(n: MeshNode): string[] {
  return n.peers().map((p) => p.id).sort()
}

t.test('proxy and three downstreams: direct messages, requests, broadcast, topics, meta; nothing relayed', async (t) => {
  const m = new SimMesh()
  t.teardown(() => m.closeAll())
  const coord = await m.coordinator()
  const proxy = await m.node('proxy', { role: 'proxy' })
  const d = [
    await m.node('d1', { meta: { tags: 'lobby,eu' } }),
    await m.node('d2', { meta: { tags: 'game' } }),
    await m.node('d3'),
  ]
  const all = [proxy, ...d]
  t.ok(await m.runUntil(() => all.every((n) => n.peers().length === 3), 5000), 'every table has the 3 others')
  t.same(ids(d[0]), ['d2', 'd3', 'proxy'])
  t.same(coord.table().map((p) => p.id).sort(), ['d1', 'd2', 'd3', 'proxy'])
  t.equal(d[0].peers().find((p) => p.id === 'proxy')!.role, 'proxy')

  const got: MeshMessage[] = []
  d[1].on('message', (msg: MeshMessage) => got.push(msg))
  for (let i = 0; i < 100; i++) t.equal(d[0].send('d2', enc(`m${i}`), { channel: 3 }), true)
  t.ok(await m.runUntil(() => got.length === 100, 2000), '100 messages arrive')
  t.same(got.map((g) => dec(g.data)), Array.from({ length: 100 }, (_, i) => `m${i}`), 'in order, once each')
  t.same({ from: got[0].from, channel: got[0].channel, delivery: got[0].delivery, topic: got[0].topic },
    { from: 'd1', channel: 3, delivery: Delivery.RELIABLE_ORDERED, topic: undefined })

  // requests, sync and async handlers
  d[2].onRequest((data, from) => enc(`echo ${dec(data)} from ${from}`))
  d[1].onRequest(async (data) => { await Promise.resolve(); return enc(dec(data).toUpperCase()) })
  t.equal(dec(await m.drive(d[0].request('d3', enc('hi')))), 'echo hi from d1')
  t.equal(dec(await m.drive(proxy.request('d2', enc('abc')))), 'ABC')
  d[2].onRequest(() => { throw new Error('boom') })
  await t.rejects(m.drive(d[0].request('d3', enc('x'))), /boom/, 'handler error travels back')

  // broadcast by role and by tag, directly
  const seen = new Map<string, string[]>()
  for (const n of all) n.on('message', (msg: MeshMessage) => { seen.set(n.id, [...(seen.get(n.id) ?? []), dec(msg.data)]) })
  t.equal(proxy.broadcast({ role: 'downstream' }, enc('all-ds')), 3)
  t.equal(proxy.broadcast({ tag: 'lobby' }, enc('lobbies')), 1)
  t.equal(d[2].broadcast({ role: 'nobody' }, enc('x')), 0)
  await m.runFor(50)
  t.same(seen.get('d1'), ['all-ds', 'lobbies'])
  t.same(seen.get('d2'), ['all-ds'])
  t.same(seen.get('d3'), ['all-ds'])

  // topics travel in the table
  d[0].subscribe('status')
  d[2].subscribe('status')
  t.ok(await m.runUntil(() => proxy.peers().filter((p) => p.topics.includes('status')).length === 2, 1000), 'subscriptions reach the proxy')
  const topicMsgs: MeshMessage[] = []
  d[2].on('message', (msg: MeshMessage) => { if (msg.topic !== undefined) topicMsgs.push(msg) })
  t.equal(proxy.publish('status', enc('players=7'), { channel: 2 }), 2)
  await m.runFor(20)
  t.same(topicMsgs.map((x) => [x.from, x.topic, dec(x.data), x.channel]), [['proxy', 'status', 'players=7', 2]])
  d[2].unsubscribe('status')
  t.ok(await m.runUntil(() => proxy.peers().filter((p) => p.topics.includes('status')).length === 1, 1000), 'unsubscribe travels')

  // setMeta → peer-updated everywhere
  const updated: PeerInfo[] = []
  proxy.on('peer-updated', (p: PeerInfo) => updated.push(p))
  d[1].setMeta({ players: '12', max: '50' })
  t.ok(await m.runUntil(() => updated.length === 1, 1000), 'peer-updated')
  t.same(updated[0].meta, { players: '12', max: '50' })

  // async iterator
  const it = d[1].messages()
  d[0].send('d2', enc('via-iterator'))
  const next = await m.drive(it.next())
  t.equal(dec(next.value.data), 'via-iterator')
  await it.return!()

  const cs = coord.stats()
  t.equal(cs.dataFramesRelayed, 0, 'coordinator relayed no data')
  t.equal(cs.dataMessagesReceived, 0, 'coordinator received no data')
  t.ok(cs.controlBytesSent > 0 && cs.controlBytesReceived > 0)
  t.equal(cs.registrations >= 4, true)
  const st = d[0].stats()
  t.ok(st.peers.d2 !== undefined && st.peers.d2.id === 'd2', 'per-peer stats')
  t.ok(st.totals.messagesSent >= 100)
  t.throws(() => d[0].send('d2', enc('x'), { channel: 16 }), RangeError, 'channel 16 is reserved')
})

t.test('request to an unknown peer, request timeout, close rejects pending; no leaks', async (t) => {
  const m = new SimMesh()
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b')
  await m.runUntil(() => a.peers().length === 1, 1000)
  t.throws(() => a.send('nobody', enc('x')), UnknownPeerError)
  await t.rejects(a.request('nobody', enc('x')), UnknownPeerError)
  b.onRequest(() => new Promise<Uint8Array>(() => {})) // never answers
  const start = m.clock.now()
  const err = await m.drive(a.request('b', enc('x'), { timeoutMs: 300 })).catch((e: unknown) => e)
  t.ok(err instanceof TimeoutError, 'TimeoutError')
  t.ok(m.clock.now() - start >= 300 && m.clock.now() - start < 310, 'after timeoutMs')
  t.equal(a.stats().totals.requestsTimedOut, 1)
  const pending = a.request('b', enc('y'), { timeoutMs: 60_000 })
  const closing = a.close()
  await t.rejects(m.drive(pending), ClosedError, 'pending request rejects on close')
  await m.drive(closing)
  t.throws(() => a.send('b', enc('x')), ClosedError)
  t.equal(a.stats().totals.requestsFailed, 1)
})

t.test('duplicate id refused on both sides; free after the lease expires', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  const clog = memoryLogger()
  const coord = await m.coordinator('10.0.0.1', 7400, clog.logger)
  const first = await m.node('lobby-1')
  const nlog = memoryLogger()
  const err = await m.node('lobby-1', { logger: nlog.logger }).catch((e: unknown) => e)
  t.ok(err instanceof DuplicateIdError, 'DuplicateIdError')
  t.match((err as Error).message, /lobby-1.*held by a live node at 10\.1\.0\.1/)
  t.equal(coord.stats().refusals, 1)
  t.ok(clog.lines.some((l) => /registration refused: duplicate node id/.test(l) && /lobby-1/.test(l)), 'coordinator logs it')
  t.ok(nlog.lines.some((l) => /registration refused: duplicate node id/.test(l)), 'node logs it')
  t.equal(coord.table().length, 1)
  await m.kill(first)
  t.ok(await m.runUntil(() => coord.table().length === 0, 1000), 'lease expires after 3 missed heartbeats')
  const again = await m.node('lobby-1')
  t.equal(again.id, 'lobby-1', 'the id is free again')
})

t.test('a killed peer: peer-down within the timeout, pending requests reject, restart brings peer-up with a new epoch', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const c = await m.node('c')
  const b = await m.node('b', { host: '10.9.9.9', bindPort: 5000 })
  await m.runUntil(() => a.peers().length === 2 && c.peers().length === 2, 1000)
  const oldEpoch = a.peers().find((p) => p.id === 'b')!.epoch
  b.onRequest(() => new Promise<Uint8Array>(() => {}))
  a.send('b', enc('warm')) // a has a direct session, c does not
  await m.runFor(20)
  const downs: [string, string, number][] = []
  for (const n of [a, c]) n.on('peer-down', (p: PeerInfo, why: string) => downs.push([n.id, why, m.clock.now()]))
  const pending = a.request('b', enc('q'), { timeoutMs: 60_000 })
  pending.catch(() => {})
  await m.runFor(5)
  const killedAt = m.clock.now()
  await m.kill(b)
  const timeout = 200 * 3
  t.ok(await m.runUntil(() => downs.length === 2, 3000), 'every other node sees peer-down')
  for (const [, , at] of downs) t.ok(at - killedAt <= timeout + 2 * 200 + 50, `within the timeout (+ detection) ${at - killedAt} ms`)
  await t.rejects(pending, PeerDownError, 'its pending request rejects')
  t.equal(a.peers().some((p) => p.id === 'b'), false, 'gone from the table')
  const ups: PeerInfo[] = []
  a.on('peer-up', (p: PeerInfo) => ups.push(p))
  const b2 = await m.node('b', { host: '10.9.9.9', bindPort: 5000 })
  t.ok(await m.runUntil(() => ups.length === 1, 1000), 'peer-up after restart')
  t.not(ups[0].epoch, oldEpoch, 'with a new epoch')
  t.equal(ups[0].epoch, b2.epoch)
  b2.onRequest(() => enc('back'))
  t.equal(dec(await m.drive(a.request('b', enc('q')))), 'back')
})

t.test('restart without waiting for the lease: same address, new epoch replaces the entry', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  const coord = await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b', { host: '10.9.9.9', bindPort: 5000 })
  a.send('b', enc('x'))
  await m.runFor(20)
  const events: string[] = []
  a.on('peer-down', (p: PeerInfo, why: string) => events.push(`down ${p.epoch} ${why}`))
  a.on('peer-up', (p: PeerInfo) => events.push(`up ${p.epoch}`))
  await m.kill(b)
  const b2 = await m.node('b', { host: '10.9.9.9', bindPort: 5000 })
  t.equal(coord.stats().refusals, 0, 'not refused')
  t.ok(await m.runUntil(() => events.some((e) => e === `up ${b2.epoch}`), 1000))
  t.equal(events.filter((e) => e.startsWith('down')).length, 1, 'one peer-down for the old incarnation')
})

t.test('coordinator killed: nodes keep their table and keep sending; a restarted empty one is refilled within two heartbeats', async (t) => {
  const hb = 200
  const m = new SimMesh({ heartbeatMs: hb })
  t.teardown(() => m.closeAll())
  const coord = await m.coordinator()
  const nodes = [await m.node('p', { role: 'proxy' }), await m.node('d1'), await m.node('d2'), await m.node('d3')]
  await m.runUntil(() => nodes.every((n) => n.peers().length === 3), 1000)
  const got: number[] = []
  nodes[2].on('message', (msg: MeshMessage) => got.push(Buffer.from(msg.data).readUInt32BE(0)))
  const downs: string[] = []
  for (const n of nodes) n.on('peer-down', (p: PeerInfo) => downs.push(`${n.id}:${p.id}`))
  let sent = 0
  const pump = (k: number): void => {
    for (let i = 0; i < k; i++) {
      const b = Buffer.alloc(8)
      b.writeUInt32BE(sent++)
      nodes[1].send('d2', b)
    }
  }
  pump(500)
  await m.kill(coord)
  for (let i = 0; i < 20; i++) {
    pump(250)
    await m.runFor(100)
  }
  t.ok(nodes.every((n) => n.peers().length === 3), 'tables kept while every coordinator is down')
  t.same(downs, [], 'no peer-down')
  const restarted = await m.coordinator()
  const restartAt = m.clock.now()
  t.ok(await m.runUntil(() => restarted.table().length === 4, 2 * hb), 'refilled within two heartbeats')
  t.ok(m.clock.now() - restartAt <= 2 * hb, `refilled after ${m.clock.now() - restartAt} ms`)
  pump(500)
  t.ok(await m.runUntil(() => got.length === sent, 2000), 'every message arrived')
  t.same(got, Array.from({ length: sent }, (_, i) => i), 'once each, in order')
  // after its refill period the restarted coordinator is complete; nobody was dropped
  await m.runFor(hb * 4)
  t.ok(restarted.complete)
  t.ok(nodes.every((n) => n.peers().length === 3))
  t.same(downs, [])
  // and discovery works again
  const late = await m.node('late', { coordinators: [{ host: '10.0.0.1', port: 7400 }] })
  t.ok(await m.runUntil(() => nodes.every((n) => n.peers().length === 4), 1000), 'a new node is seen by all')
  t.equal(late.peers().length, 4)
})

t.test('two coordinators: one killed, new nodes still join through the other; tables merged', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  const c1 = await m.coordinator('10.0.0.1')
  const c2 = await m.coordinator('10.0.0.2')
  const a = await m.node('a')
  const b = await m.node('b')
  await m.runUntil(() => c1.table().length === 2 && c2.table().length === 2, 1000)
  t.equal(c1.table().length, 2)
  t.equal(c2.table().length, 2, 'registered with both')
  const downs: string[] = []
  a.on('peer-down', (p: PeerInfo) => downs.push(p.id))
  await m.kill(c1)
  const late = await m.node('late')
  t.ok(await m.runUntil(() => a.peers().length === 2 && b.peers().length === 2, 1000), 'a and b see the new node')
  t.same(ids(late), ['a', 'b'])
  a.send('late', enc('hello'))
  const got: string[] = []
  late.on('message', (msg: MeshMessage) => got.push(dec(msg.data)))
  await m.runFor(20)
  t.same(got, ['hello'])
  t.same(downs, [], 'nobody lost a peer')
})

t.test('a join costs every other node O(1) bytes, independent of the network size', async (t) => {
  const m = new SimMesh({ heartbeatMs: 1000, insecure: true })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const perJoin: number[] = []
  let count = 0
  for (const size of [20, 80]) {
    while (count < size) {
      await m.node(`n${count++}`)
    }
    await m.runUntil(() => m.nodes.every((n) => n.peers().length === count - 1), 2000)
    const watcher = m.nodes[0]
    const before = watcher.stats().totals.coordinatorBytesReceived
    await m.node(`n${count++}`)
    await m.runUntil(() => watcher.peers().length === count - 1, 1000)
    perJoin.push(watcher.stats().totals.coordinatorBytesReceived - before)
  }
  t.ok(perJoin[0] > 0 && perJoin[0] < 200, `bytes per join at 20 nodes: ${perJoin[0]}`)
  t.equal(perJoin[1], perJoin[0], `bytes per join at 80 nodes: ${perJoin[1]}, the same`)
})

t.test('a node with a wrong advertise address: sends to it fail clearly, its own sends work and get answers', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const wlog = memoryLogger()
  const a2 = await m.node('a2', { logger: wlog.logger })
  const x = await m.node('x', { advertise: { host: '10.200.0.1', port: 4000 } })
  await m.runUntil(() => a.peers().length === 2 && x.peers().length === 2, 1000)
  t.same(a.peers().find((p) => p.id === 'x')!.address, '10.200.0.1')
  const unreachable: string[] = []
  a2.on('peer-unreachable', (id: string) => unreachable.push(id))
  const err = await m.drive(a2.request('x', enc('hi'))).catch((e: unknown) => e)
  t.ok(err instanceof PeerDownError, 'request rejects with PeerDownError')
  t.match((err as Error).message, /unreachable at 10\.200\.0\.1:4000/)
  t.same(unreachable, ['x'])
  t.ok(wlog.lines.some((l) => /WARPMESH_ADVERTISE/.test(l)), 'the warning names the setting to check')
  // x opens the session itself: a identifies it by x's HELLO and answers over it
  a.onRequest((d) => enc(`pong ${dec(d)}`))
  t.equal(dec(await m.drive(x.request('a', enc('1')))), 'pong 1')
  const got: string[] = []
  x.on('message', (msg: MeshMessage) => got.push(dec(msg.data)))
  a.send('x', enc('over the existing session'))
  await m.runFor(20)
  t.same(got, ['over the existing session'])

  // advertising another node's address: never delivered to that node
  const y = await m.node('y', { advertise: { host: a.endpoint.address, port: a.port } })
  await m.runUntil(() => a2.peers().length === 4, 1000)
  const aGot: string[] = []
  a.on('message', (msg: MeshMessage) => aGot.push(dec(msg.data)))
  a2.send('y', enc('for y'))
  await m.runFor(500)
  t.same(aGot, [], 'a did not get y\'s message')
  t.ok(wlog.lines.some((l) => /another endpoint answers/.test(l)))
  t.ok(y)
})

t.test('graceful close: peers see the node leave, coordinator forgets it at once', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  const coord = await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b')
  await m.runUntil(() => a.peers().length === 1, 1000)
  const got: number[] = []
  a.on('message', () => got.push(1))
  for (let i = 0; i < 200; i++) b.send('a', enc(`x${i}`))
  const reasons: string[] = []
  a.on('peer-down', (_p: PeerInfo, why: string) => reasons.push(why))
  await m.drive(b.close())
  t.equal(got.length, 200, 'queued messages flushed before close resolved')
  t.equal(coord.table().length, 1, 'deregistered')
  t.equal(coord.stats().deregistrations, 1)
  t.ok(await m.runUntil(() => reasons.length === 1, 500))
})

t.test('send() to a peer that left throws UnknownPeerError, also right after sending to it; it works again when the peer returns', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  let b = await m.node('b')
  await m.runUntil(() => a.peers().length === 1, 1000)
  const got: string[] = []
  b.on('message', (msg: MeshMessage) => got.push(dec(msg.data)))
  for (let i = 0; i < 3; i++) a.send('b', enc(`m${i}`))
  t.ok(await m.runUntil(() => got.length === 3, 1000))
  await m.drive(b.close())
  t.ok(await m.runUntil(() => a.peers().length === 0, 1000), 'b left the table')
  t.throws(() => a.send('b', enc('late')), UnknownPeerError, 'the last peer sent to is forgotten with the table entry')
  b = await m.node('b')
  await m.runUntil(() => a.peers().length === 1, 1000)
  const again: string[] = []
  b.on('message', (msg: MeshMessage) => again.push(dec(msg.data)))
  t.equal(a.send('b', enc('back')), true)
  t.ok(await m.runUntil(() => again.length === 1, 2000))
  t.same(again, ['back'])
})

t.test('messages() buffer is bounded: oldest dropped and counted', async (t) => {
  const m = new SimMesh()
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a', { messageBufferSize: 10 })
  const b = await m.node('b')
  await m.runUntil(() => b.peers().length === 1, 1000)
  const it = a.messages()
  for (let i = 0; i < 25; i++) b.send('a', enc(`${i}`))
  await m.runFor(20)
  t.equal(a.stats().totals.iteratorDropped, 15)
  const first = await it.next()
  t.equal(dec(first.value.data), '15', 'the newest 10 are kept')
  await it.return!()
})

t.test('a node with the wrong key: start fails with an error naming the key problem', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  const coord = await m.coordinator()
  const { Endpoint } = await import('../../lib/endpoint.js')
  const { MeshNode } = await import('../../lib/mesh/node.js')
  const { meshEndpointOptions } = await import('../../lib/mesh/control.js')
  const { randomBytes } = await import('node:crypto')
  const ep = new Endpoint(m.net.bind('10.7.7.7'), { ...meshEndpointOptions({ heartbeatMs: 200 }), keys: [randomBytes(32)], clock: m.clock })
  const err = await m.drive(MeshNode.start({
    id: 'intruder', endpoint: ep, clock: m.clock, heartbeatMs: 200, startTimeoutMs: 2000,
    coordinators: [{ host: '10.0.0.1', port: 7400 }],
  })).catch((e: unknown) => e)
  t.ok(err instanceof TimeoutError)
  t.match((err as Error).message, /10\.0\.0\.1:7400: .*no matching network key/)
  t.equal(coord.table().length, 0, 'not registered')
  await m.drive(ep.close())
})
