/**
 * The agent's environment variables: defaults, every bad value named with
 * its variable and expected form, and the ENV_VARS rows agreeing.
 */
import t from 'tap'
import { agentOptionsFromEnv, ENV_VARS, formatEnvTable, parseBytes, parseToken } from '../../lib/config.js'
import { agentStartOptions } from '../../lib/cli.js'
import { createLogger } from '../../lib/log.js'
import type { ConfigError } from '../../lib/errors.js'

const BASE = { WARPMESH_COORDINATORS: '127.0.0.1:7400', WARPMESH_INSECURE: '1' }

t.test('defaults', async (t) => {
  const c = agentOptionsFromEnv(BASE)
  t.equal(c.socket, '/tmp/warpmesh-agent.sock')
  t.equal(c.clientBuffer, 8 * 1024 * 1024)
  t.equal(c.requestTimeoutMs, 5000)
  t.equal(c.listen, undefined)
  t.equal(c.token, undefined)
  t.same(c.bind, { host: '0.0.0.0', port: 0, family: 4 })
  t.same(c.coordinators, [{ host: '127.0.0.1', port: 7400, family: 4 }])
  t.equal(c.insecure, true)
  const byName = new Map(ENV_VARS.map((s) => [s.name, s]))
  t.equal(byName.get('WARPMESH_AGENT_SOCKET')?.agent?.default, c.socket)
  t.equal(parseBytes('X', byName.get('WARPMESH_AGENT_CLIENT_BUFFER')!.agent!.default!), c.clientBuffer)
  t.equal(byName.get('WARPMESH_REQUEST_TIMEOUT_MS')?.agent?.default, String(c.requestTimeoutMs))
  t.equal(byName.get('WARPMESH_COORDINATORS')?.agent?.required, true)
  t.equal(byName.get('WARPMESH_ID')?.agent, undefined, 'the id comes from each Hello')
})

t.test('values', async (t) => {
  const c = agentOptionsFromEnv({
    ...BASE, WARPMESH_AGENT_SOCKET: ' /run/wm.sock ', WARPMESH_AGENT_LISTEN: '127.0.0.1:7500', WARPMESH_AGENT_TOKEN: 'abc!DEF',
    WARPMESH_AGENT_CLIENT_BUFFER: '512KiB', WARPMESH_REQUEST_TIMEOUT_MS: '2s', WARPMESH_BIND: '127.0.0.1:0', WARPMESH_HEARTBEAT_MS: '200',
  })
  t.equal(c.socket, '/run/wm.sock')
  t.same(c.listen, { host: '127.0.0.1', port: 7500, family: 4 })
  t.equal(c.token, 'abc!DEF')
  t.equal(c.clientBuffer, 512 * 1024)
  t.equal(c.requestTimeoutMs, 2000)
  t.equal(c.heartbeatMs, 200)
  t.same(agentOptionsFromEnv({ ...BASE, WARPMESH_AGENT_LISTEN: '[::1]:0', WARPMESH_AGENT_TOKEN: 't' }).listen, { host: '::1', port: 0, family: 6 })
  for (const [text, bytes] of [['65536', 65536], ['64k', 65536], ['8MiB', 8 << 20], ['1G', 1 << 30], ['2 MiB', 2 << 20]] as const) {
    t.equal(parseBytes('X', text), bytes, text)
  }
  const o = agentStartOptions(c, createLogger({ level: 'silent' }))
  t.same(o.listen, { host: '127.0.0.1', port: 7500 })
  t.equal(o.node.address, '127.0.0.1')
  t.equal(o.node.port, 0)
  t.equal(o.node.requestTimeoutMs, 2000)
  t.equal(o.clientBuffer, 512 * 1024)
})

t.test('bad values name the variable, the value and the expected form', async (t) => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ WARPMESH_AGENT_SOCKET: `/${'x'.repeat(120)}` }, 'WARPMESH_AGENT_SOCKET', /is 121 bytes long, at most 107 allowed; expected a file path/],
    [{ WARPMESH_AGENT_SOCKET: 'a\0b' }, 'WARPMESH_AGENT_SOCKET', /NUL/],
    [{ WARPMESH_AGENT_LISTEN: '0.0.0.0:7500', WARPMESH_AGENT_TOKEN: 't' }, 'WARPMESH_AGENT_LISTEN', /0.0.0.0 is not a loopback address/],
    [{ WARPMESH_AGENT_LISTEN: '10.0.0.1:7500', WARPMESH_AGENT_TOKEN: 't' }, 'WARPMESH_AGENT_LISTEN', /10.0.0.1 is not a loopback address/],
    [{ WARPMESH_AGENT_LISTEN: 'localhost:7500', WARPMESH_AGENT_TOKEN: 't' }, 'WARPMESH_AGENT_LISTEN', /localhost is not a loopback address/],
    [{ WARPMESH_AGENT_LISTEN: '127.0.0.1', WARPMESH_AGENT_TOKEN: 't' }, 'WARPMESH_AGENT_LISTEN', /the port is missing/],
    [{ WARPMESH_AGENT_LISTEN: '127.0.0.1:7500' }, 'WARPMESH_AGENT_TOKEN', /WARPMESH_AGENT_TOKEN is not set: expected .*required with WARPMESH_AGENT_LISTEN/],
    [{ WARPMESH_AGENT_TOKEN: 'has space' }, 'WARPMESH_AGENT_TOKEN', /"<redacted>" is invalid: the character at position 4 is not printable ASCII/],
    [{ WARPMESH_AGENT_TOKEN: 'x'.repeat(257) }, 'WARPMESH_AGENT_TOKEN', /257 characters long, at most 256/],
    [{ WARPMESH_AGENT_CLIENT_BUFFER: 'lots' }, 'WARPMESH_AGENT_CLIENT_BUFFER', /"lots" is invalid: expected a size from 64KiB to 1GiB/],
    [{ WARPMESH_AGENT_CLIENT_BUFFER: '1k' }, 'WARPMESH_AGENT_CLIENT_BUFFER', /1024 bytes is out of range/],
    [{ WARPMESH_AGENT_CLIENT_BUFFER: '2G' }, 'WARPMESH_AGENT_CLIENT_BUFFER', /out of range/],
    [{ WARPMESH_REQUEST_TIMEOUT_MS: 'soon' }, 'WARPMESH_REQUEST_TIMEOUT_MS', /expected a duration/],
    [{ WARPMESH_BIND: '127.0.0.1:7401' }, 'WARPMESH_BIND', /one UDP port per client: give port 0/],
    [{ WARPMESH_COORDINATORS: '' }, 'WARPMESH_COORDINATORS', /is not set/],
    [{ WARPMESH_HEARTBEAT_MS: 'x' }, 'WARPMESH_HEARTBEAT_MS', /expected a duration/],
  ]
  for (const [env, variable, message] of cases) {
    try {
      agentOptionsFromEnv({ ...BASE, ...env })
      t.fail(`${JSON.stringify(env)} accepted`)
    } catch (err) {
      t.equal((err as ConfigError).variable, variable, `${variable}: named`)
      t.match((err as Error).message, message, JSON.stringify(env).slice(0, 80))
      const spec = ENV_VARS.find((s) => s.name === variable)
      if (variable !== 'WARPMESH_AGENT_TOKEN' && variable !== 'WARPMESH_BIND') t.equal((err as ConfigError).expected, spec?.expected, `${variable}: table agrees`)
    }
  }
  t.throws(() => parseToken('T', ''), /the value is empty/)
})

t.test('env table: agent rows and scope', async (t) => {
  const table = formatEnvTable()
  t.match(table, '| `WARPMESH_AGENT_SOCKET` | /tmp/warpmesh-agent.sock (agent only) |')
  t.match(table, '| `WARPMESH_AGENT_CLIENT_BUFFER` | 8MiB (agent only) |')
  const agent = formatEnvTable({ scope: 'agent' })
  t.match(agent, '| `WARPMESH_COORDINATORS` | required |')
  t.match(agent, '| `WARPMESH_AGENT_TOKEN` | optional |')
  t.notMatch(agent, 'WARPMESH_ID')
  t.notMatch(formatEnvTable({ scope: 'node' }), 'WARPMESH_AGENT_SOCKET')
})

t.test('agentSnapshot: totals of the client nodes, bad input as agent- reasons', async (t) => {
  const { agentSnapshot } = await import('../../lib/cli.js')
  const node = (sent: number) => ({
    stats: () => ({ peers: { p: { id: 'p', packetsSent: sent, messagesSent: 1, srtt: 1 } }, totals: { messagesSent: sent, messagesReceived: 2 } }),
  })
  const snap = agentSnapshot({ stats: () => ({ rejected: { malformed: 2, 'slow-client': 1 } }), nodes: () => [node(5), node(7)] })
  t.equal(snap.peersUp, 2)
  t.equal(snap.totals.packetsSent, 12)
  t.equal(snap.totals.messagesSent, 12)
  t.equal(snap.totals.messagesReceived, 4)
  t.same(snap.peers, [])
  t.same(snap.malformed, { 'agent-malformed': 2, 'agent-slow-client': 1 })
})
