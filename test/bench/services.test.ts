/**
 * The pieces of `bench:services`, small and with quick heartbeats, against
 * real processes: a warpmesh coordinator and nodes, a real redis-server and
 * RedisBungee-style proxies. Checks outcomes and that every process is
 * gone afterwards; no timing assertions.
 */
import t from 'tap'
import {
  DirectoryCluster, ServicesProc, QUICK_TIMING, checkClock, makePlayers, measureFanoutFloor, measureKill, measureLookups, measureMemory, measureMoves,
  redisUnavailable,
} from '../../bench/lib/services-bench.js'
import type { BackendName } from '../../bench/lib/services-bench.js'

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('players', async (t) => {
  const a = makePlayers(50, 'x')
  t.equal(new Set(a.map((p) => p.name.toLowerCase())).size, 50, 'names unique, case-insensitively')
  t.equal(new Set(a.map((p) => p.xuid)).size, 50, 'XUIDs unique')
  t.ok(a.every((p) => /^[0-9]{1,20}$/.test(p.xuid)), 'XUIDs are digits')
})

t.test('a node process names what is wrong with a request', async (t) => {
  const proc = new ServicesProc('bad')
  try {
    await t.rejects(proc.request({ op: 'start', backend: 'redis', config: { id: 'x', heartbeatMs: 1000 } }), /config\.redis \(host, port\) is required/)
    await t.rejects(proc.request({ op: 'start', backend: 'warpmesh', config: { id: 'x', heartbeatMs: 1000 } }), /config\.coordinator \(host, port, key\) is required/)
    await t.rejects(proc.request({ op: 'join', players: [], server: 'x' }), /no directory started in this process/)
    await t.rejects(proc.request({ op: 'heap' }), /--expose-gc/)
    await t.rejects(proc.request({ op: 'udp-fanout', id: 1, ports: [] }), /before udp-bind/)
  } finally {
    await proc.stop()
  }
  t.equal(alive(proc.pid), false, 'stopped by PID')
  await t.rejects(proc.request({ op: 'now' }), /is not running/)
})

const redisMissing = await redisUnavailable()

for (const backend of ['warpmesh', 'redis'] as BackendName[]) {
  t.test(`${backend}: moves, lookups, a kill${backend === 'warpmesh' ? ', memory' : ''}`, { skip: backend === 'redis' ? (redisMissing ?? false) : false }, async (t) => {
    const c = await DirectoryCluster.start(backend, { nodes: 3, timing: QUICK_TIMING })
    const pids = c.pids()
    t.equal(pids.length, 4, 'three nodes and the coordinator or redis-server')
    try {
      const rtt = await checkClock(c.nodes[0]!, 5)
      t.ok(rtt > 0, 'a node\'s hrtime falls between the driver\'s readings (one clock)')

      await c.place(makePlayers(30, 'p'))
      t.equal(c.players.size, 30)

      const moves = await measureMoves(c, { moves: 8, seed: 1 })
      t.equal(moves.moves, 8, 'every move measured')
      t.equal(moves.visibleMs.count, 8)
      t.ok(moves.visibleMs.min >= 0 && moves.visibleMs.p50 <= moves.visibleMs.max, 'ordered figures')
      t.equal(moves.flaps, 0, 'no node showed the old server again')
      t.equal(moves.polled, 0, 'every node saw each move through an event, not the fallback sweep')
      const onServers = new Set([...c.players.values()].map((p) => p.server))
      t.ok([...onServers].every((s) => c.nodes.some((n) => n.label === s)), 'the driver\'s truth names real servers')

      if (backend === 'warpmesh') {
        const udp = await measureFanoutFloor(c, { rounds: 6, kind: 'udp' })
        t.equal(udp.count, 6, 'the raw UDP fan-out floor: every round reached every other process')
        const mesh = await measureFanoutFloor(c, { rounds: 6, kind: 'mesh' })
        t.equal(mesh.count, 6, 'the MeshNode fan-out: every round reached every other process')
      }

      const lookups = await measureLookups(c, { count: 300, batch: 100 })
      t.equal(lookups.kind, backend === 'warpmesh' ? 'batch' : 'each', 'warpmesh is timed in batches (local), Redis per round trip')
      t.equal(lookups.lookups, 300, 'every lookup made (answers checked inside)')
      t.ok(lookups.perCallNs.p50 > 0)

      // Players leave: every node's view shrinks to what is left.
      const leaving = [...c.players.values()].filter((p) => p.host === 'n1').slice(0, 3)
      t.equal(leaving.length, 3)
      await c.node('n1').request({ op: 'leave', players: leaving.map((p) => p.player) })
      for (const p of leaving) c.players.delete(p.player.name)
      await Promise.all(c.nodes.map((n) => n.request({ op: 'wait', size: c.players.size, timeoutMs: 10_000 })))
      const stats = await c.stats()
      t.same(Object.keys(stats).sort(), ['n1', 'n2', 'n3'], 'counters of every node')

      const kill = await measureKill(c, { victim: 'v1', players: 20, timeoutMs: 20_000 })
      t.equal(kill.players, 20)
      t.same(Object.keys(kill.byNode).sort(), ['n1', 'n2', 'n3'], 'every node stopped listing them')
      t.ok(kill.goneMs > 0 && Object.values(kill.byNode).every((v) => v <= kill.goneMs), 'the slowest node is the figure')

      if (backend === 'warpmesh') {
        await c.place(makePlayers(2000, 'm'))
        const mem = await measureMemory(c, { observer: 'm1', timeoutMs: 30_000 })
        t.equal(mem.players, 2027, 'the observer held every player')
        t.ok(mem.heapBeforeBytes > 0 && mem.heapAfterBytes > 0, 'heap measured after forced GC')
        t.ok(Number.isFinite(mem.bytesPerPlayer), `bytes per player computed (${mem.bytesPerPlayer.toFixed(0)})`)
      } else {
        await t.rejects(measureMemory(c, { observer: 'm1', timeoutMs: 1000 }), /for warpmesh/)
      }
    } finally {
      await c.close()
    }
    t.ok(pids.every((p) => !alive(p)), 'every process is gone (nodes, coordinator or redis-server)')
  })
}
