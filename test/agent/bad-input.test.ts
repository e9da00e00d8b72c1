/**
 * Bad input on the agent's socket: each case gets an Error naming what was
 * wrong (fatal, and the connection closed, where the stream can no longer be
 * trusted), is counted by reason, and the agent keeps serving everyone else.
 */
import t from 'tap'
import { writeVarint } from '../../lib/agent/framing.js'
import { AGENT_MAX_FRAME, AgentErrorCode } from '../../lib/agent/protocol.js'
import { Agent } from '../../lib/agent/agent.js'
import { join } from 'node:path'
import { client, HB, Raw, startAgent, startCoordinator, tempDir, until } from './fixtures.js'

const E = AgentErrorCode

t.test('bad input', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir, { helloTimeoutMs: 300, maxClients: 6 })
  const path = agent.socketPath!
  const other = await client(t, agent, { id: 'other' })
  other.on('request', () => { /* never answers */ })

  async function fatal(name: string, act: (r: Raw) => void, code: number, message: RegExp): Promise<void> {
    const r = await Raw.open(t, path)
    act(r)
    const e = await r.next('error')
    t.match(e, { code, fatal: true, message }, `${name}: error`)
    await r.waitClosed()
    t.pass(`${name}: connection closed`)
  }

  await fatal('malformed before hello', (r) => r.socket.write(Buffer.from([3, 0xff, 0xff, 0xff])), E.BAD_MESSAGE, /malformed ClientMessage before Hello/)
  await fatal('message before hello', (r) => r.send({ getPeers: { id: 1 } }), E.NOT_HELLO, /first message must be Hello, got getPeers/)
  await fatal('oversized length', (r) => {
    const b = Buffer.alloc(5)
    r.socket.write(b.subarray(0, writeVarint(AGENT_MAX_FRAME + 1, b, 0)))
  }, E.TOO_LARGE, new RegExp(`${AGENT_MAX_FRAME + 1} bytes declared; the maximum is ${AGENT_MAX_FRAME}`))
  await fatal('varint too long', (r) => r.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), E.BAD_MESSAGE, /malformed frame length/)
  await fatal('protocol version', (r) => r.send({ hello: { protocolVersion: 2, id: 'v' } }), E.BAD_MESSAGE, /protocol_version 2 is not supported/)
  await fatal('bad node id', (r) => r.hello('bad id!'), E.INVALID_ARGUMENT, /Hello: id must be/)
  await fatal('bad topic', (r) => r.hello('t1', { topics: ['x'.repeat(65)] }), E.INVALID_ARGUMENT, /Hello.topics/)
  await fatal('id of another client', (r) => r.hello('other'), E.DUPLICATE_NODE, /already used by another client of this agent/)
  await fatal('hello timeout', () => {}, E.NOT_HELLO, /no Hello within 300 ms/)

  // Errors after Hello that the connection survives.
  const r = await Raw.open(t, path)
  r.hello('raw')
  await r.next('welcome')
  await until(() => other.hasPeer('raw'), 'other sees raw')
  const errors = (): Record<string, unknown>[] => r.messages.filter((m) => m.body === 'error').map((m) => m.error as Record<string, unknown>)
  r.socket.write(Buffer.from([3, 0xff, 0xff, 0xff]))
  r.send({})
  r.send({ request: { id: 0, to: 'other', data: Buffer.from('x') } })
  r.send({ request: { id: 7, to: 'nobody', data: Buffer.from('x') } })
  r.send({ request: { id: 8, to: 'other', data: Buffer.from('x'), timeoutMs: 60_000 } })
  r.send({ request: { id: 8, to: 'other', data: Buffer.from('y') } })
  r.send({ send: { id: 8, to: 'other', data: Buffer.from('y') } })
  r.send({ send: { id: 9, to: 'other', data: Buffer.from('y'), channel: 16 } })
  r.send({ send: { id: 10, to: 'other', data: Buffer.from('y'), delivery: 9 } })
  r.send({ reply: { id: 12345, data: Buffer.from('late') } })
  await until(() => errors().length === 9, '9 errors')
  r.send({ hello: { protocolVersion: 1, id: 'raw' } })
  await until(() => errors().length === 10, 'the 10th error')
  const got = errors().map((e) => [Number(e.id), e.code, e.fatal])
  const sorted = (rows: unknown[][]): unknown[][] => [...rows].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))
  // Requests are answered asynchronously (UNKNOWN_PEER may come after later frames' errors): compare as sets.
  t.same(sorted(got), sorted([
    [0, E.BAD_MESSAGE, false],
    [0, E.BAD_MESSAGE, false],
    [0, E.INVALID_ARGUMENT, false],
    [7, E.UNKNOWN_PEER, false],
    [8, E.DUPLICATE_ID, false],
    [8, E.DUPLICATE_ID, false],
    [9, E.INVALID_ARGUMENT, false],
    [10, E.INVALID_ARGUMENT, false],
    [0, E.UNKNOWN_REQUEST, false],
    [0, E.NOT_HELLO, true],
  ]), 'each case answered')
  const text = (code: number): string[] => errors().filter((e) => e.code === code).map((e) => e.message as string).sort()
  t.match(text(E.BAD_MESSAGE), [/without a body/, /malformed ClientMessage \(3 bytes\)/])
  t.match(text(E.INVALID_ARGUMENT), [/Request.id must be non-zero/, /channel must be an integer 0..15/, /delivery 9 is not a Delivery value/])
  t.match(text(E.DUPLICATE_ID), [/operation id 8 is already outstanding/, /operation id 8/])
  t.match(text(E.UNKNOWN_PEER), [/unknown peer "nobody"/])
  t.match(text(E.UNKNOWN_REQUEST), [/Reply to incoming request 12345: not pending/])
  t.match(text(E.NOT_HELLO), [/a second Hello/])
  await r.waitClosed()

  // Too many clients.
  const extra: Raw[] = []
  for (let i = 0; i < 6; i++) extra.push(await Raw.open(t, path))
  await until(() => extra.some((x) => x.closed), 'one connection refused')
  const refused = extra.find((x) => x.closed)!
  t.match(refused.messages[0]?.error, { code: E.OVERLOADED, fatal: true, message: /at most 6 clients/ })
  for (const x of extra) x.socket.destroy()
  await until(() => agent.clients === 1, 'only "other" left')

  // The agent still serves: a new client joins and talks to "other".
  const late = await client(t, agent, { id: 'late' })
  await until(() => late.hasPeer('other'), 'late sees other')
  t.equal((await late.getPeers()).length, 1)
  t.same(agent.stats().rejected, {
    malformed: 2, 'not-hello': 1, 'too-large': 1, 'bad-length': 1, 'bad-version': 1, 'invalid-argument': 5, 'duplicate-node': 1,
    'hello-timeout': 1, 'no-body': 1, 'unknown-peer': 1, 'duplicate-id': 2, 'unknown-request': 1, 'second-hello': 1, 'too-many-clients': 1,
  }, 'every case counted by reason')
})

t.test('a node that cannot start: START_FAILED', async (t) => {
  const dir = tempDir(t)
  const agent = await Agent.start({
    socket: join(dir, 'a.sock'),
    node: { coordinators: [{ host: '127.0.0.1', port: 9 }], insecure: true, address: '127.0.0.1', heartbeatMs: HB, startTimeoutMs: 300 },
  })
  t.teardown(() => agent.close())
  const r = await Raw.open(t, agent.socketPath!)
  r.hello('lonely')
  t.match(await r.next('error'), { code: E.START_FAILED, fatal: true, message: /could not start: no coordinator accepted/ })
  await r.waitClosed()
  t.same(agent.stats().rejected, { 'start-failed': 1 })
  await until(() => agent.clients === 0, 'session gone')
})
