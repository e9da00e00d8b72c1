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
import t, { type Test } from 'tap'
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

/** A temporary directory, an insecure coordinator (both gone in teardown), the agents' environment and two socket paths. */
async function meshFixture(t: Test, prefix: string): Promise<{ env: Record<string, string>; sockets: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const coordinator = await Coordinator.start({ address: '127.0.0.1', port: 0, insecure: true, heartbeatMs: HB, leaseMisses: LEASE_MISSES })
  t.teardown(() => coordinator.close())
  const env = {
    WARPMESH_COORDINATORS: `127.0.0.1:${coordinator.port}`, WARPMESH_INSECURE: '1', WARPMESH_BIND: '127.0.0.1:0',
    WARPMESH_HEARTBEAT_MS: String(HB), WARPMESH_LEASE_MISSES: String(LEASE_MISSES), WARPMESH_LOG: 'warn',
  }
  return { env, sockets: [join(dir, 'agent1.sock'), join(dir, 'agent2.sock')] }
}

t.test(`cross-language: ${kindA.name} on agent 1, ${kindB.name} on agent 2`, async (t) => {
  const { env, sockets } = await meshFixture(t, 'wm-xlang-')
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

/**
 * Network services through the agents, across languages: PHP servers announce
 * players and list themselves, a Java proxy performs the moves (and messages,
 * refuses kicks), a Java game server accepts transfers once it is open, a PHP
 * game server refuses them in its hook, and a Java controller locates, lists
 * and transfers. Player and server events arrive at both languages; a killed
 * PHP server's players leave every directory within its lease.
 */
const javaKind = KINDS.find((k) => k.name === 'java' && k.built)
const phpKind = KINDS.find((k) => k.name === 'php' && k.built)
t.test('network services: Java and PHP clients through the agents', { skip: javaKind === undefined || phpKind === undefined ? 'needs both the Java and the PHP client built' : false }, async (t) => {
  const java = javaKind!
  const php = phpKind!
  const { env, sockets } = await meshFixture(t, 'wm-xlang-svc-')
  const agents = await Promise.all(sockets.map(async (socket) => {
    const a = start([process.execPath, CLI, 'agent'], { ...env, WARPMESH_AGENT_SOCKET: socket })
    await until(async () => existsSync(socket) && await canConnect(socket), `agent on ${socket}`, 60_000)
    return a
  }))
  const [s1, s2] = sockets as [string, string]
  const STEVE_XUID = '2535400000000001'
  const proxy = new Repl(java, s1, 'proxy-j', ['--role', 'proxy', '--services', '--player-events', '--handle', 'move', '--handle', 'message', '--handle', 'kick=no kicks here'])
  const ctl = new Repl(java, s1, 'ctl-j', ['--services'])
  const lobby = new Repl(php, s2, 'lobby-p', ['--player-events', '--server', 'state=lobby,mode=hub,max=10'])
  const gameJ = new Repl(java, s2, 'game-j', ['--server', 'state=full,mode=skywars,max=1', '--handle', 'transfer-request'])
  const gameP = new Repl(php, s1, 'game-p', ['--server', 'state=lobby,mode=skywars,max=8', '--handle', 'transfer-request=whitelist only'])
  await Promise.all([proxy, ctl, lobby, gameJ, gameP].map((r) => r.ready()))

  const BOUND = 10_000
  const serverIds = async (r: Repl, args = '- - -'): Promise<string[]> =>
    (((await r.cmd(`servers ${args}`)).servers as { id: string }[] | undefined) ?? []).map((s) => s.id).sort()
  await until(async () => (await serverIds(ctl)).join() === 'game-j,game-p,lobby-p', 'the three servers in ctl\'s registry', BOUND)
  t.same(await serverIds(ctl, 'skywars - -'), ['game-j', 'game-p'], 'registry query by mode')
  t.same(await serverIds(ctl, '- lobby -'), ['game-p', 'lobby-p'], 'registry query by state')

  await t.test('a PHP server announces players; the Java controller locates and lists them', async (t) => {
    t.match(await lobby.cmd(`join Steve ${STEVE_XUID} proxy-j`), { ev: 'result' })
    t.match(await lobby.cmd('join Alex - proxy-j'), { ev: 'result' })
    await until(async () => (await ctl.cmd('locate Alex')).found === true, 'Alex located at ctl', BOUND)
    t.match(await ctl.cmd('locate steve'), { ev: 'player', found: true, player: { name: 'Steve', xuid: STEVE_XUID, server: 'lobby-p', proxy: 'proxy-j' } }, 'by name, any case')
    t.match(await ctl.cmd(`locate ${STEVE_XUID}`), { found: true, player: { name: 'Steve' } }, 'by XUID')
    t.match(await ctl.cmd('locate Herobrine'), { ev: 'player', found: false })
    t.match(await ctl.cmd('players - - 0'), { ev: 'players', count: 2 })
    const limited = await ctl.cmd('players hub - 1')
    t.equal(limited.count, 2, 'count: all matching')
    t.equal((limited.players as unknown[]).length, 1, 'players: at most the limit')
    t.match(await ctl.cmd('players skywars - 0'), { count: 0 })
    await until(() => proxy.events('player-joined').length >= 2, 'player-joined twice at the Java proxy', BOUND)
    t.same(proxy.events('player-joined').map((e) => (e.player as { name: string; server: string })).map((p) => `${p.name}@${p.server}`).sort(),
      ['Alex@lobby-p', 'Steve@lobby-p'], 'the Java proxy saw both joins')
  })

  await t.test('transfers: typed failures, then one that the Java proxy performs', async (t) => {
    t.match(await ctl.cmd('transfer Steve game-j'), { ev: 'error', code: 'SERVER_FULL' }, 'a server in state full takes nobody')
    t.match(await gameJ.cmd('server state=starting'), { ev: 'result' })
    await until(async () => (await serverIds(ctl, 'skywars starting -')).includes('game-j'), 'game-j starting at ctl', BOUND)
    t.match(await ctl.cmd('transfer Steve game-j'), { ev: 'error', code: 'REFUSED', message: /starting/ }, 'a starting server refuses (docs/agent.md)')
    t.match(await ctl.cmd('transfer Steve game-p'), { ev: 'error', code: 'REFUSED', message: /whitelist only/ }, 'the PHP server\'s hook refuses')
    t.match(await ctl.cmd('transfer Ghost game-j'), { ev: 'error', code: 'UNKNOWN_PLAYER' })
    t.match(await ctl.cmd('transfer Steve nowhere'), { ev: 'error', code: 'NO_SUCH_SERVER' })
    t.equal(proxy.events('service-call').length, 0, 'no move was asked of the proxy yet')
    t.match(await gameJ.cmd('server state=lobby'), { ev: 'result' })
    const opened = (r: Repl): boolean => r.events('server-updated').some((e) => (e.server as { id: string; state: string }).id === 'game-j' && (e.server as { state: string }).state === 'lobby')
    await until(() => opened(lobby) && opened(proxy), 'server-updated game-j lobby at the PHP server and the Java proxy', BOUND)
    t.match(lobby.events('server-updated').find((e) => (e.server as { id: string }).id === 'game-j'), { server: { mode: 'skywars', max: 1, role: 'downstream' } }, 'ServerEvent at PHP')
    await until(async () => (await serverIds(ctl, 'skywars lobby -')).includes('game-j'), 'game-j open at ctl', BOUND)
    t.match(await ctl.cmd('transfer Steve game-j'), { ev: 'transfer-done', player: 'Steve', server: 'game-j', from: 'lobby-p', via: 'proxy-j' })
    // Each printed its call before answering it; the lines come through other pipes than ctl's.
    await until(() => gameJ.events('service-call').length > 0 && proxy.events('service-call').length > 0, 'the calls printed', BOUND)
    t.match(gameJ.events('service-call'), [{ kind: 'transfer-request', from: 'lobby-p', player: { name: 'Steve' } }], 'the Java target was asked')
    t.match(proxy.events('service-call'), [{ kind: 'move', server: 'game-j', player: { name: 'Steve', server: 'lobby-p' } }], 'the Java proxy moved him')
    // The player arrives: the target announces him, the old server lets him go.
    t.match(await gameJ.cmd(`join Steve ${STEVE_XUID} proxy-j`), { ev: 'result' })
    t.match(await lobby.cmd('leave Steve'), { ev: 'result', count: 1 })
    await until(() => lobby.events('player-moved').length > 0 && proxy.events('player-moved').length > 0, 'player-moved at PHP and Java', BOUND)
    for (const [who, r] of [['PHP server', lobby], ['Java proxy', proxy]] as const) {
      t.match(r.events('player-moved'), [{ from: 'lobby-p', player: { name: 'Steve', server: 'game-j' } }], `player-moved at the ${who}`)
    }
    await until(async () => (await ctl.cmd('locate Steve')).player !== undefined && ((await ctl.cmd('locate Steve')).player as { server: string }).server === 'game-j', 'Steve on game-j at ctl', BOUND)
    t.pass('the controller locates Steve on game-j')
    await until(async () => ((await ctl.cmd('servers skywars - -')).servers as { id: string; players: number }[]).some((s) => s.id === 'game-j' && s.players === 1), 'game-j lists 1 player', BOUND)
    t.match(await ctl.cmd('transfer Alex game-j'), { ev: 'error', code: 'SERVER_FULL' }, 'game-j is at its max of 1')
    t.match(await ctl.cmd('transfer Steve mode=hub'), { ev: 'transfer-done', player: 'Steve', server: 'lobby-p', from: 'game-j', via: 'proxy-j' }, 'a selector picks the hub')
  })

  await t.test('messages and kicks go to the Java proxy', async (t) => {
    t.match(await lobby.cmd('message Alex hello from PHP'), { ev: 'result' })
    await until(() => proxy.events('service-call').some((e) => e.kind === 'message'), 'the message call printed', BOUND)
    t.match(proxy.events('service-call').filter((e) => e.kind === 'message'), [{ text: 'hello from PHP', player: { name: 'Alex' } }])
    t.match(await lobby.cmd('kick Alex bye'), { ev: 'error', code: 'REFUSED', message: /no kicks here/ })
    t.match(await ctl.cmd('message Ghost hi'), { ev: 'error', code: 'UNKNOWN_PLAYER' })
  })

  await t.test('a killed PHP server process: its players leave every directory', async (t) => {
    const lefts = proxy.events('player-left').length
    kill(lobby.p, 'SIGKILL')
    await until(async () => (await ctl.cmd('locate Alex')).found === false, 'Alex gone at ctl', DOWN_BOUND_MS)
    await until(() => proxy.events('player-left').slice(lefts).some((e) => (e.player as { name: string }).name === 'Alex'), 'player-left Alex at the Java proxy', DOWN_BOUND_MS)
    t.notOk((await serverIds(ctl)).includes('lobby-p'), 'lobby-p left the registry')
    t.match(await ctl.cmd('players - - 0'), { count: 1 }, 'only Steve (announced by game-j) is left')
  })

  for (const r of [proxy, ctl, gameJ, gameP]) t.equal(await r.close(), 0, `${r.id} leaves with 0`)
  for (const a of agents) kill(a, 'SIGTERM')
  for (const a of agents) t.equal(await exited(a), 0, 'agent stops cleanly')
})
