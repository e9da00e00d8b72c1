/**
 * The agent's listeners: the Unix socket (mode 0600, a stale file replaced,
 * a live agent's or a non-socket file refused, removed on close) and the
 * TCP listener (loopback only, token required, refused and accepted).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, isLoopbackAddress } from '../../lib/agent/agent.js'
import { AgentClient } from '../../lib/agent/client.js'
import { ConfigError } from '../../lib/errors.js'
import { nodeOptions, startCoordinator, tempDir, until } from './fixtures.js'

t.test('Unix socket: mode 0600, removed on close, stale replaced, live and non-socket refused', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const path = join(dir, 'agent.sock')

  // A stale socket file: a process that listened there was killed (SIGKILL leaves the file).
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()))
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  t.ok(statSync(path).isSocket(), 'a stale socket file is left behind')

  const agent = await Agent.start({ socket: path, node: nodeOptions(coordinator) })
  t.teardown(() => agent.close())
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket mode 0600')
  const c = await AgentClient.connect({ socket: path, id: 'x' })
  t.ok(c.connected, 'the replaced socket serves')

  await t.rejects(Agent.start({ socket: path, node: nodeOptions(coordinator) }), { message: /another agent is listening on .*agent.sock/ }, 'a live agent is not replaced')
  t.ok(existsSync(path), 'the live agent keeps its socket file')
  t.ok(c.connected, 'and its client')

  const file = join(dir, 'not-a-socket')
  writeFileSync(file, 'keep me')
  await t.rejects(Agent.start({ socket: file, node: nodeOptions(coordinator) }), { message: /exists and is not a socket/ })
  t.ok(existsSync(file), 'a regular file is never deleted')

  await c.close()
  await agent.close()
  t.notOk(existsSync(path), 'socket file removed on close')
  await agent.close() // idempotent
})

t.test('TCP listener: loopback only, token required, refused and accepted', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const node = nodeOptions(coordinator)
  for (const host of ['0.0.0.0', '10.1.2.3', '::', '198.18.0.1']) {
    await t.rejects(Agent.start({ socket: null, listen: { host, port: 0 }, token: 'secret', node }), ConfigError, `${host} refused`)
  }
  await t.rejects(Agent.start({ socket: null, listen: { host: '0.0.0.0', port: 7500 }, token: 's', node }), {
    variable: 'WARPMESH_AGENT_LISTEN', message: /0.0.0.0 is not a loopback address/,
  })
  await t.rejects(Agent.start({ socket: null, listen: { host: '127.0.0.1', port: 0 }, node }), { variable: 'WARPMESH_AGENT_TOKEN' }, 'a token is required')
  await t.rejects(Agent.start({ socket: null, node }), TypeError, 'nothing to listen on')
  await t.rejects(Agent.start({ node: undefined as never }), TypeError)
  await t.rejects(Agent.start({ socket: join(dir, 'x.sock'), node, clientBuffer: 0 }), RangeError)
  t.ok(isLoopbackAddress('127.0.0.1') && isLoopbackAddress('127.9.9.9') && isLoopbackAddress('::1') && isLoopbackAddress('::ffff:127.0.0.1'))
  t.notOk(isLoopbackAddress('localhost') || isLoopbackAddress('128.0.0.1') || isLoopbackAddress('::2') || isLoopbackAddress('::ffff:10.0.0.1'))

  const agent = await Agent.start({ socket: join(dir, 'a.sock'), listen: { host: '127.0.0.1', port: 0 }, token: 'secret', node })
  t.teardown(() => agent.close())
  const port = agent.tcpPort!
  t.ok(port > 0)
  await t.rejects(AgentClient.connect({ tcp: { host: '127.0.0.1', port }, id: 'nope' }), { code: 'UNAUTHORIZED', fatal: true, message: /token is missing/ })
  await t.rejects(AgentClient.connect({ tcp: { host: '127.0.0.1', port }, id: 'nope', token: 'secreT' }), { code: 'UNAUTHORIZED', message: /token is wrong/ })
  const viaTcp = await AgentClient.connect({ tcp: { host: '127.0.0.1', port }, id: 'tcp', token: 'secret' })
  t.teardown(() => viaTcp.close())
  const viaUnix = await AgentClient.connect({ socket: agent.socketPath!, id: 'unix', token: 'ignored on the Unix socket' })
  t.teardown(() => viaUnix.close())
  await until(() => viaTcp.hasPeer('unix') && viaUnix.hasPeer('tcp'), 'both see each other')
  viaUnix.on('request', (r: { id: number; data: Uint8Array }) => viaUnix.reply(r.id, Buffer.from(`re:${Buffer.from(r.data).toString()}`)))
  t.equal(Buffer.from(await viaTcp.request('unix', Buffer.from('ping'))).toString(), 're:ping')
  t.same(agent.stats().rejected, { unauthorized: 2 })
})
