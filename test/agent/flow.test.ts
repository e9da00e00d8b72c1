/**
 * Flow control and failure: a client that never reads is cut off at the
 * output-buffer limit (SLOW_CLIENT) while the others carry on; a client's
 * pending requests are bounded by pausing its socket; a big stream arrives
 * whole and in order; a client vanishing mid-request fails the requests of
 * other nodes with PEER_DOWN and leaves nothing behind.
 */
import t from 'tap'
import { AgentErrorCode } from '../../lib/agent/protocol.js'
import type { AgentMessageEvent, AgentRequestEvent } from '../../lib/agent/client.js'
import { client, Raw, startAgent, startCoordinator, tempDir, until } from './fixtures.js'

t.test('a client that never reads gets SLOW_CLIENT and is disconnected; the others are unaffected', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir, { clientBuffer: 64 * 1024 })
  const sender = await client(t, agent, { id: 'sender' })
  const third = await client(t, agent, { id: 'third' })
  const slow = await Raw.open(t, agent.socketPath!)
  slow.hello('slow')
  await slow.next('welcome')
  await until(() => sender.hasPeer('slow') && sender.hasPeer('third'), 'sender sees slow and third')
  slow.socket.pause() // never reads from now on
  const payload = Buffer.alloc(2048, 7)
  let sent = 0
  while (agent.session('slow') !== undefined && sent < 5000) {
    if (!sender.send('slow', payload)) await sender.waitDrain()
    sent++
    if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  await until(() => agent.stats().rejected['slow-client'] === 1, 'slow-client counted')
  await until(() => sender.peers().every((p) => p.id !== 'slow'), 'sender sees slow leave')
  t.ok(sent * payload.length > 64 * 1024, `disconnected after ${sent} messages of 2 KiB`)
  // Others are unaffected.
  third.on('request', (r: AgentRequestEvent) => third.reply(r.id, r.data))
  t.equal(Buffer.from(await sender.request('third', Buffer.from('still here'))).toString(), 'still here')
  // The slow client reads what was already in the socket, then the reason.
  slow.socket.resume()
  await slow.waitClosed()
  const last = slow.messages.at(-1)!
  t.equal(last.body, 'error')
  t.match(last.error, { code: AgentErrorCode.SLOW_CLIENT, fatal: true, message: /more than 65536 bytes of events/ })
  t.ok(slow.messages.filter((m) => m.body === 'message').length > 0, 'events before it were delivered')
})

t.test('pending requests of a client are bounded: the agent stops reading it', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir, { maxPendingRequests: 4 })
  const server = await client(t, agent, { id: 'server' })
  const held: AgentRequestEvent[] = []
  server.on('request', (r: AgentRequestEvent) => held.push({ ...r, data: Buffer.from(r.data) }))
  const r = await Raw.open(t, agent.socketPath!)
  r.hello('asker')
  await r.next('welcome')
  await until(() => server.hasPeer('asker'), 'server sees asker')
  await until(async () => (await server.getPeers()).length === 1, 'asker in the node table')
  for (let i = 1; i <= 10; i++) r.send({ request: { id: i, to: 'server', data: Buffer.from(`q${i}`), timeoutMs: 30_000 } })
  await until(() => held.length === 4, '4 requests at the server')
  t.equal(agent.session('asker')!.pendingRequests, 4, 'the agent holds 4, the rest wait unread')
  // Each answer lets one more in; all 10 are answered in the end.
  while (held.length > 0) {
    const q = held.shift()!
    server.reply(q.id, Buffer.from(`a:${Buffer.from(q.data).toString()}`))
    if (held.length === 0) await until(() => held.length > 0 || r.messages.filter((m) => m.body === 'response').length === 10, 'more requests or all answered')
  }
  const answers = r.messages.filter((m) => m.body === 'response').map((m) => m.response as { id: unknown; data: Uint8Array })
  t.same(answers.map((a) => Buffer.from(a.data).toString()), Array.from({ length: 10 }, (_, i) => `a:q${i + 1}`), 'all 10 answered, in order')
  t.equal(agent.session('asker')!.pendingRequests, 0)
})

t.test('a large stream through the agent arrives whole and in order', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir)
  const a = await client(t, agent, { id: 'a' })
  const b = await client(t, agent, { id: 'b' })
  await until(() => a.hasPeer('b'), 'a sees b')
  const N = 4000
  let next = 0
  let bad = 0
  b.on('message', (m: AgentMessageEvent) => {
    if (m.data.length !== 4096 || Buffer.from(m.data).readUInt32LE(0) !== next || m.data[4095] !== (next & 0xff)) bad++
    next++
  })
  for (let i = 0; i < N; i++) {
    const p = Buffer.alloc(4096, i & 0xff)
    p.writeUInt32LE(i, 0)
    if (!a.send('b', p)) await a.waitDrain()
  }
  await until(() => next === N, `${N} messages of 4 KiB`, 30_000)
  t.equal(bad, 0, 'each intact and in order')
})

t.test('a client vanishing mid-request: requests to it fail with PEER_DOWN, nothing leaks', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir)
  const b = await client(t, agent, { id: 'b' })
  const incomingAtB: AgentRequestEvent[] = []
  b.on('request', (r: AgentRequestEvent) => incomingAtB.push(r))
  const a = await Raw.open(t, agent.socketPath!)
  a.hello('a')
  await a.next('welcome')
  await until(() => b.hasPeer('a'), 'b sees a')
  // a asks b (b holds it), b asks a (a never answers), then a's process vanishes.
  a.send({ request: { id: 1, to: 'b', data: Buffer.from('from a'), timeoutMs: 30_000 } })
  await until(() => incomingAtB.length === 1, 'b got a request')
  const pending = b.request('a', Buffer.from('to a'), { timeoutMs: 30_000 })
  await a.next('incomingRequest')
  t.equal(agent.session('b')!.pendingIncoming, 1)
  t.equal(agent.session('a')!.pendingRequests, 1)
  a.socket.destroy()
  await t.rejects(pending, { code: 'PEER_DOWN' }, "b's request fails with PEER_DOWN")
  await until(() => agent.session('a') === undefined && agent.clients === 1, "a's session is gone")
  await until(() => agent.session('b')!.pendingIncoming === 0, "the request from a at b is forgotten")
  const late = new Promise((resolve) => b.once('agent-error', resolve))
  b.reply(incomingAtB[0]!.id, Buffer.from('too late'))
  t.match(await late, { code: 'UNKNOWN_REQUEST' })
  t.equal(agent.session('b')!.pendingRequests, 0, 'nothing left at b')
  t.same(b.peers(), [], 'a left the table')
  const stats = await b.stats()
  t.equal(stats.peers, 0)
})
