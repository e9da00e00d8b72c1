/**
 * The per-message paths of MeshNode (send, receive, broadcast) keep their
 * behaviour: every channel and delivery mode arrives as sent, also from the
 * queue a session drains when it opens; received data is the receiver's own;
 * tag filters follow metadata changes. Simulated network, fake clock.
 */
import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import type { MeshMessage } from '../../lib/mesh/node.js'
import { SimMesh } from './fixtures/sim.js'

const enc = (s: string): Uint8Array => Buffer.from(s)
const dec = (b: Uint8Array): string => Buffer.from(b).toString()
const MODES = [Delivery.UNRELIABLE, Delivery.UNRELIABLE_SEQUENCED, Delivery.RELIABLE_UNORDERED, Delivery.RELIABLE_ORDERED]

t.test('every channel and delivery mode arrives as sent, queued (session opening) or direct', async (t) => {
  const m = new SimMesh({ delayMs: 0.5 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b')
  t.ok(await m.runUntil(() => a.peers().length === 1 && b.peers().length === 1, 1000))
  const got: MeshMessage[] = []
  b.on('message', (msg: MeshMessage) => got.push(msg))
  const sent: string[] = []
  // No session yet: the first round is queued and sent when the session opens; the second goes straight out.
  for (const round of ['queued', 'direct']) {
    for (let channel = 0; channel < 16; channel++) {
      for (const delivery of MODES) {
        const text = `${round} ${channel} ${delivery}`
        sent.push(text)
        a.send('b', enc(text), { channel, delivery })
      }
    }
    t.ok(await m.runUntil(() => got.length === sent.length, 2000), `${round}: all ${sent.length} arrive`)
  }
  t.same(got.map((g) => `${dec(g.data)}`).sort(), [...sent].sort(), 'each once')
  for (const g of got) {
    const [, channel, delivery] = dec(g.data).split(' ')
    t.same([g.from, g.channel, g.delivery, g.topic], ['a', Number(channel), Number(delivery), undefined], dec(g.data))
  }
  const defaults: MeshMessage[] = []
  b.on('message', (msg: MeshMessage) => defaults.push(msg))
  a.send('b', enc('defaults'))
  t.ok(await m.runUntil(() => defaults.length === 1, 1000))
  t.same([defaults[0].channel, defaults[0].delivery], [0, Delivery.RELIABLE_ORDERED], 'channel 0, reliable-ordered by default')
})

t.test('received data belongs to the receiver: writing into one message changes no other', async (t) => {
  const m = new SimMesh()
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b')
  t.ok(await m.runUntil(() => a.peers().length === 1, 1000))
  const got: MeshMessage[] = []
  const viaIterator: MeshMessage[] = []
  b.on('message', (msg: MeshMessage) => {
    got.push(msg)
    msg.data.fill(0x78) // the application scribbles over what it received
  })
  const payloads = Array.from({ length: 20 }, (_, i) => enc(`message ${i} `.repeat(3)))
  for (const p of payloads) a.send('b', p) // several per datagram
  t.ok(await m.runUntil(() => got.length === 20, 1000))
  t.ok(got.every((g) => g.data instanceof Uint8Array && g.data.every((x) => x === 0x78)), 'each message is writable')
  t.same(payloads.map(dec), Array.from({ length: 20 }, (_, i) => `message ${i} `.repeat(3)), "the sender's buffers are untouched")
  // Each message's bytes are its own: filling one never reached its neighbours in the same datagram.
  const lengths = got.map((g) => g.data.length)
  t.same(lengths, payloads.map((p) => p.length))

  // With an iterator attached, the iterator and the event see the same message.
  const it = b.messages()
  b.removeAllListeners('message')
  b.on('message', (msg: MeshMessage) => viaIterator.push(msg))
  a.send('b', enc('iter'))
  const next = await m.drive(it.next())
  t.equal(dec(next.value.data), 'iter')
  t.equal(viaIterator[0], next.value, 'one object for both')
  await it.return!()
  t.equal(b.stats().totals.messagesReceived, 21)
})

t.test('broadcast by tag follows the tags in the table (spaces trimmed, setMeta, restart)', async (t) => {
  const m = new SimMesh({ heartbeatMs: 200 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const proxy = await m.node('proxy', { role: 'proxy' })
  const d1 = await m.node('d1', { meta: { tags: 'lobby, eu ,skywars' } })
  const d2 = await m.node('d2', { meta: { tags: 'game,us' } })
  const d3 = await m.node('d3')
  t.ok(await m.runUntil(() => proxy.peers().length === 3, 2000))
  const tagged = (tag: string): string[] => proxy.peers().filter((p) => (p.meta.tags ?? '').split(',').map((s) => s.trim()).includes(tag)).map((p) => p.id).sort()
  const seen: string[] = []
  for (const n of [d1, d2, d3]) n.on('message', (msg: MeshMessage) => seen.push(`${n.id}:${dec(msg.data)}`))
  const check = async (tag: string, expected: string[], what: string): Promise<void> => {
    t.same(tagged(tag), expected, `${what}: the table says ${expected.join(',') || 'none'}`)
    seen.length = 0
    t.equal(proxy.broadcast({ tag }, enc(tag)), expected.length, `${what}: broadcast({ tag: '${tag}' }) count`)
    t.equal(proxy.broadcast({ tag }, enc(tag)), expected.length, `${what}: same again`)
    await m.runFor(30)
    t.same(seen.sort(), expected.flatMap((id) => [`${id}:${tag}`, `${id}:${tag}`]).sort(), `${what}: reached exactly those`)
  }
  await check('eu', ['d1'], 'trimmed tag')
  await check('skywars', ['d1'], 'last tag')
  await check('lobby', ['d1'], 'first tag')
  await check('us', ['d2'], 'other node')
  await check('', ['d3'], 'no tags: the empty tag')
  await check('lobby, eu', [], 'not a whole tag')
  t.equal(proxy.broadcast({ role: 'downstream', tag: 'game' }, enc('x')), 1, 'role and tag together')
  t.equal(proxy.broadcast({ role: 'proxy', tag: 'game' }, enc('x')), 0)
  await m.runFor(30)

  d1.setMeta({ tags: 'game' })
  d2.setMeta({ tags: 'lobby' })
  t.ok(await m.runUntil(() => tagged('game').join() === 'd1', 2000), 'new tags in the table')
  await check('game', ['d1'], 'after setMeta')
  await check('lobby', ['d2'], 'after setMeta')
  await check('eu', [], 'dropped tag')

  // d2 restarts with other tags: the new incarnation's tags count.
  await m.kill(d2)
  t.ok(await m.runUntil(() => proxy.peers().length === 2, 5000), 'd2 expires')
  const d2b = await m.node('d2', { meta: { tags: 'eu' } })
  d2b.on('message', (msg: MeshMessage) => seen.push(`d2:${dec(msg.data)}`))
  t.ok(await m.runUntil(() => tagged('eu').join() === 'd2', 5000), 'the new d2 in the table')
  await check('eu', ['d2'], 'after restart')
  await check('lobby', [], 'the old incarnation\'s tag')
})

t.test('metadata updated every few hundred ms: the coordinator session stays up, peers see every value', async (t) => {
  // An update on a registered session gets no answer of its own (the change
  // comes back as a delta, or nothing when nothing changed); it must not
  // count as an unanswered heartbeat, or the node tears its coordinator
  // session down every heartbeat (seen in the demo: "coordinator down" each
  // second while player counts changed).
  const m = new SimMesh({ delayMs: 0.5, heartbeatMs: 1000 })
  t.teardown(() => m.closeAll())
  await m.coordinator()
  const a = await m.node('a')
  const b = await m.node('b')
  t.ok(await m.runUntil(() => a.peers().length === 1 && b.peers().length === 1, 2000))
  const downs: string[] = []
  const ups: string[] = []
  a.on('coordinator-down', (k: string) => downs.push(k))
  a.on('coordinator-up', (k: string) => ups.push(k))
  for (let i = 0; i < 20; i++) {
    a.setMeta({ players: String(i % 3 === 2 ? i - 1 : i) }) // now and then the same value again: no delta at all
    await m.runFor(300)
  }
  t.same(downs, [], 'the coordinator session was never torn down')
  t.same(ups, [], 'nor re-established')
  t.ok(await m.runUntil(() => b.peers().find((p) => p.id === 'a')?.meta.players === '19', 2000), 'the last value reached the other node')
})
