/**
 * `warpmesh agent` as a real process (dist/, built by `npm test`'s pretest):
 * serves clients, the Node bench client works through it, SIGTERM makes
 * every client node leave cleanly and removes the socket file. Then
 * `bench:agent --quick` with the Node client only, so it cannot rot.
 * Every process is stopped by PID.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AgentClient, type AgentPeer } from '../../lib/agent/client.js'
import { startCoordinator, tempDir, until } from './fixtures.js'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const CLI = join(ROOT, 'dist', 'lib', 'cli.js')

interface Child { child: ChildProcess; out: string; err: string }

function run(t: { teardown(f: () => void): void }, args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const c: Child = { child, out: '', err: '' }
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { c.out += s })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { c.err += s })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL') })
  return c
}

function exit(c: Child): Promise<number | null> {
  if (c.child.exitCode !== null) return Promise.resolve(c.child.exitCode)
  return new Promise((resolve) => c.child.once('exit', (code) => resolve(code)))
}

t.test('warpmesh agent: serves, stops cleanly on SIGTERM', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const socket = join(dir, 'agent.sock')
  const agent = run(t, [CLI, 'agent'], {
    WARPMESH_AGENT_SOCKET: socket, WARPMESH_COORDINATORS: `127.0.0.1:${coordinator.port}`, WARPMESH_INSECURE: '1',
    WARPMESH_BIND: '127.0.0.1:0', WARPMESH_HEARTBEAT_MS: '500', WARPMESH_LOG: 'info',
  })
  await until(() => agent.err.includes('"ready"'), 'the agent ready line', 60_000)
  const echo = run(t, [join(ROOT, 'dist', 'bench', 'agent-client.js'), '--socket', socket, '--id', 'echo', '--mode', 'echo'], {})
  await until(() => echo.out.includes('ready'), 'the echo client', 60_000)
  const c = await AgentClient.connect({ socket, id: 'asker', meta: { k: 'v' } })
  t.teardown(() => c.close())
  await until(() => c.hasPeer('echo'), 'asker sees echo')
  t.equal(Buffer.from(await c.request('echo', Buffer.from('hello'))).toString(), 'hello', 'echoed through the agent process')
  c.send('echo', Buffer.from('one'))
  c.send('echo', Buffer.from('two'))
  await until(async () => Buffer.from(await c.request('echo', new Uint8Array(0))).toString() === '2', 'echo counted 2 messages')

  // flood mode with a warm-up (to a fresh echo, whose count starts at 0): the warm-up is counted by the peer, then the timed messages.
  const sink = run(t, [join(ROOT, 'dist', 'bench', 'agent-client.js'), '--socket', socket, '--id', 'sink', '--mode', 'echo'], {})
  await until(() => sink.out.includes('ready') && c.hasPeer('sink'), 'the sink client', 60_000)
  const flood = run(t, [join(ROOT, 'dist', 'bench', 'agent-client.js'), '--socket', socket, '--id', 'flooder', '--mode', 'flood',
    '--peer', 'sink', '--count', '300', '--warmup', '100', '--size', '64'], {})
  t.equal(await exit(flood), 0, `flood exits 0 ${flood.err}`)
  const line = JSON.parse(flood.out.split('\n').find((l) => l.startsWith('{'))!) as { mode: string, count: number, received: number, elapsed_ms: number }
  t.match(line, { mode: 'flood', count: 300, received: 300 }, 'the timed part counted, the warm-up not')
  t.ok(line.elapsed_ms > 0)
  t.equal(Buffer.from(await c.request('sink', new Uint8Array(0))).toString(), '400', 'the peer counted warm-up and timed messages')

  const down: string[] = []
  c.on('peer-down', (p: AgentPeer) => down.push(p.id))
  const disconnected = new Promise((resolve) => c.once('disconnected', resolve))
  process.kill(agent.child.pid!, 'SIGTERM')
  t.equal(await exit(agent), 0, 'exit 0 on SIGTERM')
  await disconnected
  t.notOk(existsSync(socket), 'socket file removed')
  t.match(agent.err, /"stopping"/)
  t.match(agent.err, /"agent client left"/)
  t.equal(echo.child.exitCode, null, 'the echo client keeps retrying')
  process.kill(sink.child.pid!, 'SIGTERM')
  t.equal(await exit(sink), 0)
  process.kill(echo.child.pid!, 'SIGTERM')
  t.equal(await exit(echo), 0, 'the echo client ends with 0 on SIGTERM')
  await until(() => coordinator.table().length === 0, 'every client node deregistered')
})

t.test('bench:agent --quick with the Node client', async (t) => {
  const dir = tempDir(t)
  const md = join(dir, 'AGENT.md')
  const json = join(dir, 'agent.json')
  const bench = run(t, [join(ROOT, 'dist', 'bench', 'agent.js'), '--quick', '--clients', 'node,java,php', '--count', '100', '--flood', '2000', '--duration', '1', '--md', md, '--json', json], {})
  t.equal(await exit(bench), 0, `bench exits 0 ${bench.err.slice(-500)}`)
  const r = JSON.parse(readFileSync(json, 'utf8')) as { clients: Record<string, { rtt?: { count: number, p50: number }, cpu?: { relays: number, echo: number }, floodPerSecond?: number, skipped?: string }>, rawUnix: { count: number }, directMesh: { count: number }, rawDgram: { count: number }, rawRelay: { count: number }, rawRelayCpu: { relays: number, echo: number }, memory: { samples: number[] } }
  t.equal(r.clients.node?.rtt?.count, 100, 'node round trips measured')
  t.ok(r.clients.node!.floodPerSecond! > 0, 'node one-way rate measured')
  t.equal(r.rawUnix.count, 100)
  t.equal(r.directMesh.count, 100)
  t.equal(r.rawDgram.count, 100, 'raw dgram measured')
  t.equal(r.rawRelay.count, 100, 'raw relays (the topology floor) measured')
  // CPU per round trip from /proc: NaN when a process was not measured (10 ms ticks: a short run may read 0).
  for (const [what, cpu] of [['raw relays', r.rawRelayCpu], ['agents', r.clients.node!.cpu!]] as const) {
    t.ok(Number.isFinite(cpu.relays) && cpu.relays >= 0 && Number.isFinite(cpu.echo) && cpu.echo >= 0, `${what}: CPU per round trip measured`)
  }
  t.ok(r.memory.samples.length >= 2)
  for (const name of ['java', 'php']) {
    if (r.clients[name]?.skipped !== undefined) t.match(r.clients[name]!.skipped, /not built/, `${name}: skipped with a reason`)
  }
  t.match(readFileSync(md, 'utf8'), /agent adds .* × two raw Unix round trips/)
  t.match(readFileSync(md, 'utf8'), /floor: the agent's topology with no work .* adds .* × two raw Unix round trips/)
  t.match(readFileSync(md, 'utf8'), /each repetition: \d+\.\d\d\n/, 'the goal per repetition (one with --quick)')
  const byRep = (r as unknown as { goalAgentOverheadByRepetition: number[] }).goalAgentOverheadByRepetition
  t.ok(byRep.length === 1 && Number.isFinite(byRep[0]), 'one finite ratio per repetition')
  t.match(bench.out, /wrote /)
})
