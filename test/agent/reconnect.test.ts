/**
 * AgentClient reconnects to a restarted agent: outstanding operations fail
 * with CLOSED at the drop, the client says Hello again with its current
 * metadata and topics, and traffic resumes.
 */
import t from 'tap'
import { Agent } from '../../lib/agent/agent.js'
import { AgentClient, type AgentPeer, type AgentRequestEvent } from '../../lib/agent/client.js'
import { client, nodeOptions, startAgent, startCoordinator, tempDir, until } from './fixtures.js'
import { join } from 'node:path'

t.test('reconnect to a restarted agent', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const other = await startAgent(t, coordinator, dir, {}, 'other')
  const path = join(dir, 'restarting.sock')
  let agent = await Agent.start({ socket: path, node: nodeOptions(coordinator) })
  t.teardown(() => agent.close())
  const c = await AgentClient.connect({ socket: path, id: 'roamer', role: 'lobby' })
  t.teardown(() => c.close())
  const o = await client(t, other, { id: 'observer' })
  c.on('request', (r: AgentRequestEvent) => c.reply(r.id, Buffer.from(`re:${Buffer.from(r.data).toString()}`)))
  await until(() => o.hasPeer('roamer'), 'observer sees roamer')
  await c.setMeta({ players: '3' })
  await c.subscribe('chat')
  o.on('request', () => { /* held: outstanding when the agent goes */ })
  const outstanding = c.request('observer', Buffer.from('q'), { timeoutMs: 30_000 }).then(() => null, (err: unknown) => err)

  const events: string[] = []
  c.on('disconnected', () => events.push('disconnected'))
  c.on('reconnected', () => events.push('reconnected'))
  await agent.close()
  t.match(await outstanding, { code: 'CLOSED' }, 'outstanding request fails with CLOSED')
  await until(() => events.includes('disconnected'), 'disconnected event')
  t.notOk(c.connected)
  t.throws(() => c.send('observer', Buffer.from('x')), { code: 'CLOSED' })
  await t.rejects(c.getPeers(), { code: 'CLOSED' })
  await until(() => !o.hasPeer('roamer'), 'roamer left the mesh')

  agent = await Agent.start({ socket: path, node: nodeOptions(coordinator) })
  await until(() => events.includes('reconnected'), 'reconnected', 15_000)
  t.ok(c.connected)
  await until(() => {
    const p: AgentPeer | undefined = o.peers().find((x) => x.id === 'roamer')
    return p !== undefined && p.meta.players === '3' && p.topics.includes('chat') && p.role === 'lobby'
  }, 'roamer back with its role, meta and topics')
  t.equal(Buffer.from(await o.request('roamer', Buffer.from('again'))).toString(), 're:again', 'traffic resumes')
  await until(() => c.hasPeer('observer'), 'roamer table refilled from Welcome')
  t.same(events, ['disconnected', 'reconnected'])
  await c.close()
  t.notOk(c.connected)
  await c.close()
})

t.test('reconnect: false ends the client at the drop', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir)
  const c = await AgentClient.connect({ socket: agent.socketPath!, id: 'once', reconnect: false })
  const closed = new Promise((resolve) => c.once('closed', resolve))
  await agent.close()
  await closed
  t.notOk(c.connected)
  await t.rejects(AgentClient.connect({ socket: join(dir, 'none.sock'), id: 'x' }), { code: 'ENOENT' }, 'first connect is not retried')
})
