/**
 * Drift across real processes on 127.0.0.1: the services directory of every
 * node follows a SIGKILLed server's lease, and keeps updating over direct
 * paths with every coordinator down. Heartbeat 200 ms × 3 lease misses keeps
 * it short. Every child is killed by PID in teardown (also on failure); every
 * wait is bounded.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { freePorts, Procs, type Proc } from '../mesh/fixtures/procs.js'
import { ServicesProcs, type ServicesProc } from './fixtures/services-procs.js'

const HB = 200
/** The coordinator (test/mesh/fixtures/proc.ts) keeps its default of 3; the nodes are given the same. */
const LEASE_MISSES = 3
const LEASE_MS = HB * LEASE_MISSES
/**
 * Slack over the lease: one heartbeat, because the coordinator checks leases
 * once per heartbeat (an expiry is noticed up to one heartbeat after it is
 * due), plus {@link LATE_MS} for its table push (batched 5 ms) to reach the
 * nodes and for late timers on a loaded 2-CPU machine.
 */
const SLACK_MS = HB
const LATE_MS = 100
/** The services' `syncMs` here; they also check suspected owners every min(syncMs, 250) ms. */
const SYNC_MS = 200
/** IPC and the fixture's 10 ms poll: how precisely a child times what it sees. */
const OBSERVE_MS = 20
const START_MS = 30_000
/** Bound on waits for the directories to converge (repair runs every `syncMs`). */
const CONVERGE_MS = 5000

function env(): Record<string, string> {
  return {
    WARPMESH_KEY: randomBytes(32).toString('hex'),
    MESH_HB: String(HB),
    MESH_LEASE_MISSES: String(LEASE_MISSES),
    SERVICES_SYNC_MS: String(SYNC_MS),
  }
}

interface Directory { players: string[]; count: number; byServer: Record<string, number>; servers: string[] }

const directoryOf = async (p: ServicesProc): Promise<Directory> => (await p.cmd('directory')) as unknown as Directory

async function until(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Wait until every node's directory lists exactly `truth` (sorted `name@server`); returns the last directories. */
async function converge(nodes: ServicesProc[], truth: string[], what: string): Promise<Directory[]> {
  let last: Directory[] = []
  try {
    await until(async () => {
      last = await Promise.all(nodes.map(directoryOf))
      return last.every((d) => d.players.length === truth.length && d.players.every((x, i) => x === truth[i]))
    }, CONVERGE_MS, what)
  } catch (err) {
    const diff = last.map((d, i) => `${nodes[i]?.name}: ${d.count} players, missing ${truth.filter((x) => !d.players.includes(x)).slice(0, 5).join(' ')}, extra ${d.players.filter((x) => !truth.includes(x)).slice(0, 5).join(' ')}`)
    throw new Error(`${(err as Error).message}\n${diff.join('\n')}`)
  }
  return last
}

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`)
const at = (server: string) => (name: string): string => `${name}@${server}`

/** A coordinator, a proxy and listed servers `ids`, every process killed by PID in teardown; resolves once every peer table is full. */
async function cluster(t: Test, ids: string[]): Promise<{ coordinator: Proc; proxy: ServicesProc; servers: ServicesProc[]; all: ServicesProc[] }> {
  const mesh = new Procs(env())
  const services = new ServicesProcs(mesh.env)
  t.teardown(() => {
    services.stopAll()
    mesh.stopAll()
  })
  const [coordPort] = await freePorts(1) as [number]
  const coordinator = mesh.coordinator('c1', coordPort)
  await coordinator.started(START_MS)
  const proxy = services.node('proxy', 'proxy', [coordPort])
  const servers = ids.map((id) => services.node(id, 'downstream', [coordPort], { server: true }))
  const all = [proxy, ...servers]
  await Promise.all(all.map((p) => p.started(START_MS)))
  await until(async () => (await Promise.all(all.map((p) => p.cmd('peers')))).every((r) => (r.peers as string[]).length === all.length - 1),
    CONVERGE_MS, `every peer table to hold the ${all.length - 1} others`)
  return { coordinator, proxy, servers, all }
}

t.test('a server SIGKILLed with 100 players: every other node stops listing them within the lease; counts agree', async (t) => {
  const { proxy, servers, all } = await cluster(t, ['s1', 's2', 's3', 's4'])
  const [victim, ...others] = servers as [ServicesProc, ...ServicesProc[]]

  const [s2, s3] = others as [ServicesProc, ServicesProc, ServicesProc]
  await victim.cmd('join', { names: names('Victim', 100), proxy: 'proxy' })
  await s2.cmd('join', { names: names('Alex', 30), proxy: 'proxy' })
  await s3.cmd('join', { names: names('Steve', 20), proxy: 'proxy' })
  const before = [...names('Victim', 100).map(at('s1')), ...names('Alex', 30).map(at('s2')), ...names('Steve', 20).map(at('s3'))].sort()
  await converge(all, before, 'every directory to list the 150 players')
  const survivors = [proxy, ...others]
  for (const p of survivors) {
    t.equal((await directoryOf(p)).byServer.s1, 100, `${p.name} lists 100 players on s1 before the kill`)
    await p.cmd('watch', { server: 's1' })
  }

  const killedAt = Date.now()
  await victim.kill9()
  t.pass(`s1 (pid ${victim.pid}) SIGKILLed`)
  const bound = LEASE_MS + SLACK_MS + LATE_MS
  await Promise.all(survivors.map((p) => p.waitFor(() => p.events.some((e) => e.ev === 'gone' && e.server === 's1'), bound + 5000, 's1 gone')))
  for (const p of survivors) {
    const gone = p.events.find((e) => e.ev === 'gone' && e.server === 's1')!
    const ms = gone.at - killedAt
    const tableMs = typeof gone.tableGoneAt === 'number' ? gone.tableGoneAt - killedAt : Infinity
    t.ok(tableMs <= bound + OBSERVE_MS,
      `${p.name}: the peer table dropped s1 ${tableMs} ms after the SIGKILL (≤ lease ${LEASE_MS} + ${SLACK_MS} slack + ${LATE_MS} late = ${bound} ms)`)
    t.ok(ms - tableMs <= LATE_MS + OBSERVE_MS,
      `${p.name}: the directory dropped s1's 100 players ${ms - tableMs} ms after the table did (at once: 'peer-removed')`)
    t.ok(ms <= bound + OBSERVE_MS, `${p.name} stopped listing s1 and its 100 players ${ms} ms after the SIGKILL (≤ ${bound} ms)`)
  }

  const after = [...names('Alex', 30).map(at('s2')), ...names('Steve', 20).map(at('s3'))].sort()
  const directories = await converge(survivors, after, 'every directory to hold the 50 players left')
  for (const [i, d] of directories.entries()) {
    const name = survivors[i]?.name
    t.same({ count: d.count, byServer: d.byServer, servers: d.servers }, { count: 50, byServer: { s2: 30, s3: 20, s4: 0 }, servers: ['s2', 's3', 's4'] },
      `${name}: counts agree (50 players: s2 30, s3 20, s4 0; s1 no longer in the registry)`)
  }
  t.same((await proxy.cmd('locate', { name: 'victim7' })).player, null, 'locate() no longer finds a player of s1 (name case-insensitive)')
  t.match((await others[2]!.cmd('locate', { name: 'alex7' })).player, { name: 'Alex7', server: 's2', proxy: 'proxy' }, 'a player of a live server is still found')
})

t.test('every coordinator down: joins, leaves and moves still reach every directory over direct paths', async (t) => {
  const { coordinator, proxy, servers, all } = await cluster(t, ['s1', 's2', 's3'])
  const [s1, s2, s3] = servers as [ServicesProc, ServicesProc, ServicesProc]
  await s1.cmd('join', { names: names('Alex', 10), proxy: 'proxy' })
  await converge(all, names('Alex', 10).map(at('s1')).sort(), 'every directory to list the 10 players')

  // Every coordinator down (this cluster has one), by PID.
  process.kill(coordinator.pid, 'SIGKILL')
  await coordinator.waitFor(() => coordinator.exited, 10_000, 'exit after SIGKILL')
  t.pass(`coordinator (pid ${coordinator.pid}) SIGKILLed`)
  await until(async () => (await Promise.all(all.map((p) => p.cmd('totals')))).every((r) => (r.totals as { coordinatorsUp: number }).coordinatorsUp === 0),
    5000 + LEASE_MS * 2, 'every node to see its coordinator down')
  t.pass('every node sees 0 coordinators up')

  // Join, leave, move (leave on s1, join on s3 at once).
  await s2.cmd('join', { names: names('Steve', 5), proxy: 'proxy' })
  t.same((await s1.cmd('leave', { names: ['Alex1', 'Alex2', 'Alex3'] })).left, [true, true, true], 'Alex1..3 leave s1')
  t.same((await s1.cmd('leave', { names: ['Alex0'] })).left, [true], 'Alex0 leaves s1 …')
  await s3.cmd('join', { names: ['Alex0'], proxy: 'proxy' })
  t.pass('… and joins s3 (a move)')
  const truth = [
    ...['Alex4', 'Alex5', 'Alex6', 'Alex7', 'Alex8', 'Alex9'].map(at('s1')),
    ...names('Steve', 5).map(at('s2')),
    at('s3')('Alex0'),
  ].sort()
  const directories = await converge(all, truth, 'every directory to follow the joins, leaves and the move')
  for (const [i, d] of directories.entries()) {
    t.same({ count: d.count, byServer: d.byServer }, { count: 12, byServer: { s1: 6, s2: 5, s3: 1 } }, `${all[i]?.name}: counts follow with no coordinator`)
  }
  for (const p of [proxy, s2]) {
    await p.waitFor(() => p.events.some((e) => e.ev === 'player-moved' && e.name === 'Alex0'), CONVERGE_MS, 'Alex0 moved')
    t.match(p.events.find((e) => e.ev === 'player-moved' && e.name === 'Alex0'), { server: 's3', from: 's1' },
      `${p.name} reports Alex0 moved s1 → s3 (within the move window)`)
  }
  const totals = await Promise.all(all.map((p) => p.cmd('totals')))
  t.same(totals.map((r) => (r.totals as { coordinatorsUp: number; peers: number }).coordinatorsUp), [0, 0, 0, 0], 'still no coordinator up at the end')
  t.same(totals.map((r) => (r.totals as { peers: number }).peers), [3, 3, 3, 3], 'every node kept its peer table')
})
