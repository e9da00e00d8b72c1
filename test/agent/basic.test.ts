/**
 * The agent end to end on real sockets: two clients of one agent talk
 * through the mesh (send, request/reply, errors mapped to codes, broadcast,
 * pub/sub, setMeta, peer events, stats, goodbye).
 */
import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import type { AgentClient, AgentMessageEvent, AgentPeer, AgentRequestEvent } from '../../lib/agent/client.js'
import { client, startAgent, startCoordinator, tempDir, until } from './fixtures.js'

const enc = (s: string): Uint8Array => Buffer.from(s)
const dec = (b: Uint8Array): string => Buffer.from(b).toString()

function echo(c: AgentClient): void {
  c.on('request', (r: AgentRequestEvent) => {
    const text = dec(r.data)
    if (text === 'fail') c.reply(r.id, new Uint8Array(0), 'handler said no')
    else if (text !== 'ignore') c.reply(r.id, enc(`re:${text}`))
  })
}

t.test('two clients of one agent', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir)
  const a = await client(t, agent, { id: 'a', role: 'proxy', meta: { tags: 'x,y' } })
  const b = await client(t, agent, { id: 'b', topics: ['news'] })
  await until(() => a.hasPeer('b') && b.hasPeer('a'), 'both tables')
  await until(() => a.peers().find((p) => p.id === 'b')?.topics[0] === 'news', 'Hello topics in the table')
  t.equal(b.peers().find((p) => p.id === 'a')?.role, 'proxy')
  t.ok(a.udpPort > 0, 'Welcome carries the UDP port')
  echo(a)
  echo(b)

  // send: ordered, channel and delivery kept
  const got: AgentMessageEvent[] = []
  b.on('message', (m: AgentMessageEvent) => got.push({ ...m, data: Buffer.from(m.data) }))
  for (let i = 0; i < 500; i++) a.send('b', enc(`m${i}`), { channel: 3 })
  a.send('b', enc('u'), { delivery: Delivery.RELIABLE_UNORDERED })
  await until(() => got.length === 501, '501 messages')
  t.same(got.slice(0, 500).map((m) => dec(m.data)), Array.from({ length: 500 }, (_, i) => `m${i}`), 'in order, once each')
  t.same([got[0]!.from, got[0]!.channel, got[0]!.delivery, got[0]!.topic], ['a', 3, Delivery.RELIABLE_ORDERED, ''])
  t.equal(got[500]!.delivery, Delivery.RELIABLE_UNORDERED)

  // request / reply and the error codes
  t.equal(dec(await a.request('b', enc('hi'))), 're:hi')
  t.equal(dec(await b.request('a', enc('yo'))), 're:yo')
  await t.rejects(a.request('b', enc('fail')), { code: 'REMOTE_ERROR', message: 'handler said no' })
  await t.rejects(a.request('b', enc('ignore'), { timeoutMs: 100 }), { code: 'TIMEOUT' })
  await t.rejects(a.request('nobody', enc('x')), { code: 'UNKNOWN_PEER' })
  const unknownSend = new Promise((resolve) => a.once('agent-error', resolve))
  a.send('nobody', enc('x'))
  t.match(await unknownSend, { code: 'UNKNOWN_PEER', fatal: false }, 'a failed send without id is reported with id 0')
  await t.rejects(a.broadcast({}, enc('x'), { channel: 16 }), { code: 'INVALID_ARGUMENT' })
  await t.rejects(a.broadcast({}, enc('x'), { delivery: 7 as Delivery }), { code: 'INVALID_ARGUMENT' })
  await t.rejects(a.subscribe(''), { code: 'INVALID_ARGUMENT' })
  await t.rejects(a.setMeta({ k: 'v'.repeat(129) }), { code: 'INVALID_ARGUMENT' })

  // broadcast by role and tag, publish to subscribers
  got.length = 0
  t.equal(await b.broadcast({ role: 'proxy' }, enc('to-proxy')), 1)
  t.equal(await b.broadcast({ tag: 'y' }, enc('to-y')), 1)
  t.equal(await b.broadcast({ role: 'nobody' }, enc('x')), 0)
  t.equal(await a.broadcast({}, enc('all')), 1)
  t.equal(await a.publish('news', enc('extra')), 1)
  t.equal(await a.publish('sports', enc('x')), 0)
  await until(() => got.length === 2, 'broadcast and publication at b')
  t.same(got.map((m) => [dec(m.data), m.topic]), [['all', ''], ['extra', 'news']])
  await b.unsubscribe('news')
  await until(() => !(a.peers().find((p) => p.id === 'b')?.topics.includes('news') ?? true), 'unsubscribe visible')
  t.equal(await a.publish('news', enc('x')), 0)
  await b.subscribe('sports')
  await until(() => a.peers().find((p) => p.id === 'b')?.topics.includes('sports') === true, 'subscribe visible')

  // setMeta shows on the other side, as a peer-updated event
  const updated = new Promise<AgentPeer>((resolve) => a.on('peer-updated', (p: AgentPeer) => { if (p.meta.players === '7') resolve(p) }))
  await b.setMeta({ players: '7' })
  t.equal((await updated).id, 'b')
  t.same((await a.getPeers()).find((p) => p.id === 'b')?.meta, { players: '7' })

  // stats
  const s = await a.stats()
  t.ok(s.messagesSent >= 501, 'messages sent counted')
  t.equal(s.peers, 1)
  t.equal(s.coordinatorsUp, 1)
  t.ok(s.requestsSucceeded >= 1)
  t.ok(s.peerStats.some((p) => p.id === 'b' && p.packetsSent > 0), 'per-peer session stats')

  // goodbye: b leaves, a sees peer-down
  const down = new Promise<[AgentPeer, string]>((resolve) => a.on('peer-down', (p: AgentPeer, reason: string) => resolve([p, reason])))
  await b.close()
  const [peer, reason] = await down
  t.equal(peer.id, 'b')
  t.match(reason, /^(left|peer-shutdown)$/, 'left cleanly')
  await until(() => agent.clients === 1, 'the agent has one client left')
  t.same(agent.stats().rejected, { 'unknown-peer': 2, 'invalid-argument': 4 }, 'only the expected cases counted')
})
