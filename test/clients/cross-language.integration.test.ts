/**
 * Cross-language test of the agent: real programs — a coordinator, two
 * `warpmesh agent` processes, and clients driven through the bench/test
 * client contract (docs/agent.md): `pingpong`/`echo` for volume, `repl` for
 * everything else. The client table has the Node client now; the Java and
 * PHP entries are used when their build outputs exist and skipped with a
 * message otherwise. With all three, the pairing is used: Java on
 * agent 1, PHP on agent 2.
 *
 * Short heartbeats (WARPMESH_HEARTBEAT_MS) keep the lease, and so the test,
 * short. Every process is stopped by PID, also when the test fails.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Coordinator } from '../../lib/mesh/coordinator.js'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const CLI = join(ROOT, 'dist', 'lib', 'cli.js')
const HB = 200
const LEASE_MISSES = 3
/** How long a killed client may take to show as down: its lease, plus the agent's and the coordinator's turn. */
const DOWN_BOUND_MS = HB * LEASE_MISSES * 2 + 2000
const REQUESTS = Number(process.env.WARPMESH_XLANG_REQUESTS ?? 10_000)

interface ClientKind { name: string; command: string[] }

const JAVA_JAR = join(ROOT, 'clients', 'java', 'build', 'warpmesh-client.jar')
const PHP_CLIENT = join(ROOT, 'clients', 'php', 'tools', 'bench-client.php')
const KINDS: { name: string; command: string[]; built: boolean }[] = [
  { name: 'node', command: [process.execPath, join(ROOT, 'dist', 'bench', 'agent-client.js')], built: true },
  { name: 'java', command: ['java', '-cp', `${JAVA_JAR}:/usr/share/java/protobuf.jar`, 'dev.warpmesh.agent.tools.BenchClient'], built: existsSync(JAVA_JAR) },
  { name: 'php', command: ['php', PHP_CLIENT], built: existsSync(PHP_CLIENT) },
]
for (const k of KINDS) if (!k.built) t.comment(`${k.name} client not built (${k.name === 'java' ? JAVA_JAR : PHP_CLIENT} missing): its cases are skipped`)
const available = KINDS.filter((k) => k.built)
const kindA: ClientKind = available.find((k) => k.name === 'java') ?? available[0]!
const kindB: ClientKind = available.find((k) => k.name === 'php') ?? available[0]!

interface Proc { child: ChildProcess; out: string; err: string; lines: Record<string, unknown>[] }
const procs = new Set<Proc>()

function start(command: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const p: Proc = { child, out: '', err: '', lines: [] }
  let partial = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    p.out += s
    partial += s
    const parts = partial.split('\n')
    partial = parts.pop()!
    for (const line of parts) if (line.startsWith('{')) p.lines.push(JSON.parse(line) as Record<string, unknown>)
  })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { p.err += s })
  procs.add(p)
  child.once('exit', () => procs.delete(p))
  return p
}

function kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (p.child.exitCode === null && p.child.signalCode === null) process.kill(p.child.pid!, signal)
}

function exited(p: Proc): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve(p.child.exitCode)
  return new Promise((resolve) => p.child.once('exit', (code) => resolve(code)))
}

t.teardown(() => { for (const p of procs) kill(p) })

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** A client in repl mode. */
class Repl {
  readonly p: Proc
  readonly id: string
  #tag = 0
  constructor(kind: ClientKind, socket: string, id: string, extra: string[] = []) {
    this.id = id
    this.p = start([...kind.command, '--socket', socket, '--id', id, '--mode', 'repl', ...extra])
  }
  async ready(): Promise<void> { await until(() => this.p.out.startsWith('ready\n') || this.p.out.includes('\nready\n') || this.p.out.includes('ready'), `${this.id} ready`) }
  /** Send a command; resolves with its answer (result, response, peers or error with the tag). */
  async cmd(line: string): Promise<Record<string, unknown>> {
    const tag = `t${++this.#tag}`
    const [verb, ...rest] = line.split(' ')
    this.p.child.stdin!.write(`${[verb, tag, ...rest].join(' ')}\n`)
    let found: Record<string, unknown> | undefined
    await until(() => (found = this.p.lines.find((l) => l.tag === tag)) !== undefined, `${this.id}: answer to ${line.slice(0, 60)}`)
    return found!
  }
  events(ev: string): Record<string, unknown>[] { return this.p.lines.filter((l) => l.ev === ev) }
  async hasPeer(id: string): Promise<boolean> {
    const r = await this.cmd('peers')
    return (r.peers as { id: string }[] | undefined)?.some((p) => p.id === id) ?? false
  }
  async close(): Promise<number | null> { this.p.child.stdin!.end(); return exited(this.p) }
}

t.test(`cross-language: ${kindA.name} on agent 1, ${kindB.name} on agent 2`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wm-xlang-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const coordinator = await Coordinator.start({ address: '127.0.0.1', port: 0, insecure: true, heartbeatMs: HB, leaseMisses: LEASE_MISSES })
  t.teardown(() => coordinator.close())
  const env = {
    WARPMESH_COORDINATORS: `127.0.0.1:${coordinator.port}`, WARPMESH_INSECURE: '1', WARPMESH_BIND: '127.0.0.1:0',
    WARPMESH_HEARTBEAT_MS: String(HB), WARPMESH_LEASE_MISSES: String(LEASE_MISSES), WARPMESH_LOG: 'warn',
  }
  const sockets = [join(dir, 'agent1.sock'), join(dir, 'agent2.sock')]
  const startAgent = async (i: number): Promise<Proc> => {
    const a = start([process.execPath, CLI, 'agent'], { ...env, WARPMESH_AGENT_SOCKET: sockets[i]! })
    await until(async () => existsSync(sockets[i]!) && await canConnect(sockets[i]!), `agent ${i + 1}`, 60_000)
    return a
  }
  const agent1 = await startAgent(0)
  let agent2 = await startAgent(1)

  await t.test(`${REQUESTS} requests each way, contents checked`, async (t) => {
    for (const [from, to, fromSock, toSock] of [[kindA, kindB, sockets[0]!, sockets[1]!], [kindB, kindA, sockets[1]!, sockets[0]!]] as const) {
      const echoId = `echo-${to.name}`
      const echo = start([...to.command, '--socket', toSock, '--id', echoId, '--mode', 'echo'])
      await until(() => echo.out.includes('ready'), `${to.name} echo`)
      const ping = start([...from.command, '--socket', fromSock, '--id', `ping-${from.name}`, '--mode', 'pingpong', '--peer', echoId, '--count', String(REQUESTS), '--size', '100', '--timeout-ms', '20000'])
      t.equal(await exited(ping), 0, `${from.name} → ${to.name}: every reply byte-equal (exit 0) ${ping.err.slice(-300)}`)
      const res = ping.lines.find((l) => l.mode === 'pingpong')
      t.equal((res?.rtt_us as number[] | undefined)?.length, REQUESTS, `${REQUESTS} round trips`)
      echo.child.stdin!.end()
      t.equal(await exited(echo), 0, `${to.name} echo leaves with 0`)
    }
  })

  const a = new Repl(kindA, sockets[0]!, 'a', ['--role', 'proxy'])
  const b = new Repl(kindB, sockets[1]!, 'b', ['--meta', 'tags=lobby,eu', '--topic', 'news'])
  const c = new Repl(kindA, sockets[1]!, 'c')
  await Promise.all([a.ready(), b.ready(), c.ready()])
  await until(async () => (await a.hasPeer('b')) && (await a.hasPeer('c')) && (await b.hasPeer('a')) && (await c.hasPeer('a')), 'everyone sees everyone')

  await t.test('reliable ordered messages: in order, none lost or doubled', async (t) => {
    const N = 1000
    for (let i = 0; i < N; i++) a.p.child.stdin!.write(`send s${i} b m${i}\n`)
    await until(() => b.events('message').filter((m) => m.from === 'a').length >= N, `${N} messages at b`)
    const got = b.events('message').filter((m) => m.from === 'a').map((m) => m.data)
    t.same(got, Array.from({ length: N }, (_, i) => `m${i}`), 'exactly m0..m999 in order')
    const acked = (): number => a.p.lines.filter((l) => typeof l.tag === 'string' && (l.tag as string).startsWith('s') && l.ev === 'result').length
    // The sender's results may print after the receiver has the messages: wait for them, then count exactly.
    await until(() => acked() >= N, `${N} send results at a`)
    t.equal(acked(), N, 'every send acknowledged by the agent, once')
  })

  await t.test('broadcast and pub/sub reach exactly the right peers', async (t) => {
    const before = (r: Repl): number => r.events('message').length
    const [b0, c0, a0] = [before(b), before(c), before(a)]
    t.match(await a.cmd('broadcast downstream - to-downstream'), { ev: 'result', count: 2 })
    t.match(await a.cmd('broadcast - lobby to-lobby'), { ev: 'result', count: 1 })
    t.match(await a.cmd('broadcast proxy - to-proxy'), { ev: 'result', count: 0 })
    t.match(await a.cmd('publish news extra'), { ev: 'result', count: 1 })
    t.match(await c.cmd('publish news from-c'), { ev: 'result', count: 1 })
    await until(() => before(b) - b0 === 4 && before(c) - c0 === 1, 'deliveries')
    t.same(b.events('message').slice(b0).map((m) => [m.from, m.data, m.topic]).sort(), [
      ['a', 'extra', 'news'], ['a', 'to-downstream', ''], ['a', 'to-lobby', ''], ['c', 'from-c', 'news'],
    ].sort(), 'b: both broadcasts and both publications')
    t.same(c.events('message').slice(c0).map((m) => [m.from, m.data]), [['a', 'to-downstream']], 'c: the role broadcast only')
    t.equal(before(a), a0, 'a: nothing (not a downstream, not subscribed)')
    t.match(await b.cmd('unsubscribe news'), { ev: 'result' })
    await until(async () => ((await a.cmd('peers')).peers as { id: string; topics: string[] }[]).find((p) => p.id === 'b')?.topics.length === 0, 'unsubscribe visible')
    t.match(await a.cmd('publish news nobody'), { count: 0 })
  })

  await t.test('setMeta shows in the other side\'s table', async (t) => {
    t.match(await b.cmd('meta players=12,mode=skywars'), { ev: 'result' })
    await until(async () => {
      const peers = (await a.cmd('peers')).peers as { id: string; meta: Record<string, string> }[]
      return peers.find((p) => p.id === 'b')?.meta.players === '12'
    }, 'b\'s meta at a')
    t.ok(a.events('peer-updated').some((e) => e.id === 'b' && (e.meta as Record<string, string>).mode === 'skywars'), 'peer-updated event at a')
  })

  await t.test('requests and errors through repl', async (t) => {
    t.match(await a.cmd('request b hello there'), { ev: 'response', data: 're:hello there' })
    t.match(await b.cmd('request a x'), { ev: 'response', data: 're:x' })
    t.match(await a.cmd('request nobody x'), { ev: 'error', code: 'UNKNOWN_PEER' })
    t.match(await a.cmd('send nobody x'), { ev: 'error', code: 'UNKNOWN_PEER' })
  })

  await t.test('restarting an agent: its clients reconnect and traffic resumes', async (t) => {
    kill(agent2, 'SIGTERM')
    t.equal(await exited(agent2), 0, 'agent 2 stops cleanly')
    await until(() => b.events('disconnected').length === 1, 'b disconnected')
    agent2 = await startAgent(1)
    await until(() => b.events('reconnected').length === 1, 'b reconnected')
    await until(async () => a.hasPeer('b'), 'b back in a\'s table')
    t.match(await a.cmd('request b again'), { ev: 'response', data: 're:again' }, 'traffic resumes')
    const peers = (await a.cmd('peers')).peers as { id: string; meta: Record<string, string> }[]
    t.equal(peers.find((p) => p.id === 'b')?.meta.players, '12', 'b came back with its current meta')
  })

  await t.test(`killing ${kindB.name}'s process: ${kindA.name} sees peer-down within the lease`, async (t) => {
    const downs = a.events('peer-down').length
    kill(b.p, 'SIGKILL')
    await until(() => a.events('peer-down').slice(downs).some((e) => e.id === 'b'), 'peer-down of b at a', DOWN_BOUND_MS)
    t.pass(`peer-down within ${DOWN_BOUND_MS} ms`)
    t.match(await a.cmd('request b x'), { ev: 'error', code: 'UNKNOWN_PEER' })
  })

  t.equal(await a.close(), 0, 'a leaves with 0 on stdin EOF')
  t.equal(await c.close(), 0)
  kill(agent1, 'SIGTERM')
  kill(agent2, 'SIGTERM')
  t.equal(await exited(agent1), 0)
  t.equal(await exited(agent2), 0)
})
