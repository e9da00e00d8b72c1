/**
 * Transfers, selectors, player messaging: every named failure, a target
 * that dies mid-transfer, racing transfers, concurrent fills. Simulated
 * network, fake clock.
 */
import t from 'tap'
import { SimMesh } from '../mesh/fixtures/sim.js'
import { Network } from '../../lib/services/network.js'
import type { ServerSettings } from '../../lib/services/types.js'
import {
  ClosedError, ErrorCode, NoSuchServerError, RefusedError, ServerFullError, TargetDownError, TimeoutError,
  TransferConflictError, UnknownPlayerError, isWarpmeshError,
} from '../../lib/errors.js'

const HB = 200

/** A proxy (not listed; performs moves by moving the player's announcement) and servers. */
async function network(servers: Record<string, ServerSettings>): Promise<{ sim: SimMesh; proxy: Network; s: Record<string, Network>; moves: string[] }> {
  const sim = new SimMesh({ heartbeatMs: HB, insecure: true, seed: 11 })
  await sim.coordinator()
  const ids = ['proxy', ...Object.keys(servers)]
  const nodes = await sim.drive(Promise.all(ids.map((id) => sim.startNode(id))))
  await sim.runUntil(() => nodes.every((x) => x.peers().length === ids.length - 1), 5000)
  const proxy = Network.create(nodes[0], { clock: sim.clock, syncMs: HB })
  const s: Record<string, Network> = {}
  nodes.slice(1).forEach((node, i) => { s[ids[i + 1]] = Network.create(node, { clock: sim.clock, syncMs: HB, server: servers[ids[i + 1]] }) })
  const moves: string[] = []
  proxy.onMove((p, server) => {
    moves.push(`${p.name}:${p.server}->${server}`)
    s[p.server]?.leave(p.name)
    s[server].join({ name: p.name, xuid: p.xuid, proxy: 'proxy' })
  })
  await sim.runUntil(() => Object.keys(servers).every((id) => proxy.server(id) !== undefined), 2000)
  return { sim, proxy, s, moves }
}

async function settle<T>(sim: SimMesh, p: Promise<T>, maxMs = 10_000): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await sim.drive(p, maxMs, 2) }
  } catch (error) {
    return { error }
  }
}

t.test('a transfer asks the target, then the proxy, and resolves with where the player went', async (t) => {
  const { sim, proxy, s, moves } = await network({ lobby1: { state: 'lobby', mode: 'lobby', max: 10 }, sw1: { state: 'lobby', mode: 'skywars', max: 8 } })
  t.teardown(() => sim.closeAll())
  s.lobby1.join({ name: 'Steve', xuid: '1', proxy: 'proxy' })
  await sim.runUntil(() => proxy.isOnline('steve'), 1000)
  const r = await settle(sim, proxy.transfer('steve', 'sw1'))
  t.same(r.value, { player: 'Steve', server: 'sw1', from: 'lobby1', via: 'proxy' })
  t.same(moves, ['Steve:lobby1->sw1'])
  t.ok(await sim.runUntil(() => [proxy, s.lobby1, s.sw1].every((n) => n.locate('STEVE')?.server === 'sw1'), 1000), 'the directory follows')
  t.equal(s.lobby1.server('sw1')?.players, 1)
  const r2 = await settle(sim, s.sw1.transfer('Steve', { mode: 'lobby' }))
  t.equal(r2.value?.server, 'lobby1', 'selector')
  t.equal(proxy.stats().transfers, 1)
  t.equal(s.sw1.stats().transfers, 1)
})

t.test('every named failure', async (t) => {
  const { sim, proxy, s } = await network({
    lobby1: { state: 'lobby', mode: 'lobby', max: 10 },
    full1: { state: 'lobby', mode: 'skywars', max: 1 },
    stop1: { state: 'stopping', mode: 'skywars' },
    picky: { state: 'lobby', mode: 'bedwars' },
    slow: { state: 'lobby', mode: 'slow' },
  })
  t.teardown(() => sim.closeAll())
  const hookSaw: string[] = []
  s.picky.onTransferRequest(({ player, from }) => { hookSaw.push(`${player.name} from ${from}`); return player.name === 'Vip' || player.name === 'Noproxy' ? true : 'vip only' })
  s.slow.onTransferRequest(() => new Promise(() => {}))
  s.lobby1.join({ name: 'Steve', proxy: 'proxy' })
  s.lobby1.join({ name: 'Vip', proxy: 'proxy' })
  s.lobby1.join({ name: 'Noproxy' })
  s.full1.join({ name: 'Filler', proxy: 'proxy' })
  await sim.runUntil(() => proxy.count() === 4, 1000)
  const fail = async (p: Promise<unknown>): Promise<unknown> => (await settle(sim, p)).error

  const unknown = await fail(proxy.transfer('nobody', 'lobby1'))
  t.ok(unknown instanceof UnknownPlayerError && unknown.player === 'nobody', `unknown player: ${String(unknown)}`)
  const noServer = await fail(proxy.transfer('steve', 'nope'))
  t.ok(noServer instanceof NoSuchServerError && noServer.server === 'nope', `no such server: ${String(noServer)}`)
  const noMatch = await fail(proxy.transfer('steve', { mode: 'pvp' }))
  t.ok(noMatch instanceof NoSuchServerError, `no server matches the selector: ${String(noMatch)}`)
  const ghostFallback = await fail(proxy.transfer('steve', { mode: 'pvp', fallback: 'ghost' }))
  t.ok(ghostFallback instanceof NoSuchServerError && ghostFallback.server === 'ghost', `a fallback naming an unlisted server: ${String(ghostFallback)}`)
  const notServer = await fail(proxy.transfer('steve', 'proxy'))
  t.ok(notServer instanceof NoSuchServerError, 'the proxy is not a listed server')
  const full = await fail(proxy.transfer('steve', 'full1'))
  t.ok(full instanceof ServerFullError && full.server === 'full1', `server full: ${String(full)}`)
  const allFull = await fail(proxy.transfer('steve', { mode: 'skywars' }))
  t.ok(allFull instanceof ServerFullError, `every matching server full or closed: ${String(allFull)}`)
  const stopping = await fail(proxy.transfer('steve', 'stop1'))
  t.ok(stopping instanceof RefusedError && /stopping/.test(stopping.reason), `stopping: ${String(stopping)}`)
  const refused = await fail(proxy.transfer('steve', 'picky'))
  t.ok(refused instanceof RefusedError && refused.reason === 'vip only', `the hook refused: ${String(refused)}`)
  t.equal((await settle(sim, proxy.transfer('vip', 'picky'))).value?.server, 'picky', 'the hook accepted')
  const already = await fail(proxy.transfer('steve', 'lobby1'))
  t.ok(already instanceof RefusedError, 'already there')
  const noMover = await fail(proxy.transfer('noproxy', 'picky'))
  t.ok(noMover instanceof RefusedError, `no proxy and the server has no move handler: ${String(noMover)}`)
  const timedOut = await fail(proxy.transfer('steve', 'slow', { timeoutMs: 300 }))
  t.ok(timedOut instanceof TimeoutError, `timeout: ${String(timedOut)}`)
  t.ok(isWarpmeshError(timedOut, ErrorCode.Timeout))
  t.same(hookSaw, ['Steve from lobby1', 'Vip from lobby1', 'Noproxy from lobby1'], 'the hook sees the player\'s current server')
  t.equal(proxy.stats().transfersFailed, 11, 'every failure counted (an unknown player is not a transfer)')
  await t.rejects(proxy.transfer('steve', 'lobby1', { timeoutMs: -1 }), RangeError)
  await t.rejects(proxy.transfer('steve', { mode: 'Bad Mode' }), RangeError)
  t.throws(() => s.lobby1.join({ name: '' }), RangeError)
  t.throws(() => s.lobby1.setServer({ state: 'NOPE' }), RangeError)
  t.throws(() => s.lobby1.setServer({ max: -1 }), RangeError)
})

t.test('a target that dies mid-transfer: TargetDownError', async (t) => {
  const { sim, proxy, s } = await network({ lobby1: { state: 'lobby' }, doomed: { state: 'lobby' } })
  t.teardown(() => sim.closeAll())
  let asked = false
  s.doomed.onTransferRequest(() => { asked = true; return new Promise(() => {}) })
  s.lobby1.join({ name: 'Steve', proxy: 'proxy' })
  await sim.runUntil(() => proxy.isOnline('steve'), 1000)
  const p = settle(sim, proxy.transfer('steve', 'doomed', { timeoutMs: 10_000 }))
  await sim.runUntil(() => asked, 1000)
  await sim.kill(s.doomed.node)
  const r = await p
  t.ok(r.error instanceof TargetDownError && r.error.server === 'doomed', `target down: ${String(r.error)}`)
})

t.test('two transfers of the same player racing: one wins, the other gets TransferConflictError', async (t) => {
  const { sim, proxy, s } = await network({ a: { state: 'lobby' }, b: { state: 'lobby' }, c: { state: 'lobby' } })
  t.teardown(() => sim.closeAll())
  proxy.onMove(async (p, server) => {
    await new Promise<void>((resolve) => sim.clock.setTimer(resolve, 100))
    s[p.server].leave(p.name)
    s[server].join({ name: p.name, proxy: 'proxy' })
  })
  s.a.join({ name: 'Steve', proxy: 'proxy' })
  await sim.runUntil(() => [s.b, s.c].every((n) => n.isOnline('steve')), 1000)
  const [r1, r2] = await Promise.all([settle(sim, s.b.transfer('steve', 'b')), settle(sim, s.c.transfer('steve', 'c'))])
  const won = [r1, r2].filter((r) => r.value !== undefined)
  const lost = [r1, r2].filter((r) => r.error !== undefined)
  t.equal(won.length, 1, 'one wins')
  t.equal(lost.length, 1, 'one loses')
  t.ok(lost[0].error instanceof TransferConflictError, `with a clear error: ${String(lost[0].error)}`)
  t.ok(await sim.runUntil(() => [proxy, s.a, s.b, s.c].every((n) => n.locate('steve')?.server === won[0].value!.server), 1000), 'everyone agrees where they went')
  // The same node twice at once: refused locally.
  const first = s.a.transfer('steve', 'a')
  const second = await settle(sim, s.a.transfer('steve', 'a'))
  t.ok(second.error instanceof TransferConflictError)
  await settle(sim, first)
})

t.test('selectors under concurrent fills never overfill a server', async (t) => {
  const servers: Record<string, ServerSettings> = { hub: { state: 'lobby', mode: 'hub' } }
  for (const id of ['g1', 'g2', 'g3']) servers[id] = { state: 'lobby', mode: 'game', max: 4 }
  const { sim, proxy, s } = await network(servers)
  t.teardown(() => sim.closeAll())
  s.g3.onTransferRequest(({ players, arriving }) => players + arriving < 2 || 'g3 takes two at most') // its hook is stricter than its max
  for (let i = 0; i < 16; i++) s.hub.join({ name: `p${i}`, proxy: 'proxy' })
  await sim.runUntil(() => proxy.count() === 16, 1000)
  // Every node starts a transfer at once, from the same (stale) view of the registry.
  const initiators = [proxy, s.hub, s.g1, s.g2, s.g3]
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) =>
    settle(sim, initiators[i % initiators.length].transfer(`p${i}`, { mode: 'game', fallback: { mode: 'nothing' } }))))
  const ok = results.filter((r) => r.value !== undefined)
  const failed = results.filter((r) => r.error !== undefined)
  await sim.runFor(500, 5)
  t.ok(s.g1.hosted().length <= 4 && s.g2.hosted().length <= 4, `g1 ${s.g1.hosted().length}, g2 ${s.g2.hosted().length} ≤ max 4`)
  t.ok(s.g3.hosted().length <= 2, `g3 ${s.g3.hosted().length} ≤ what its hook accepts (2)`)
  t.equal(ok.length, s.g1.hosted().length + s.g2.hosted().length + s.g3.hosted().length, 'every success landed')
  t.equal(ok.length, 10, 'all room used: 4 + 4 + 2')
  t.ok(failed.every((r) => r.error instanceof ServerFullError || r.error instanceof RefusedError), `the rest failed with full or refused: ${failed.map((r) => (r.error as Error).name).join(',')}`)
  t.equal(proxy.pick({ mode: 'game' })?.id, 'g3', 'pick sees capacity only (g3 has room by its max; its hook decides)')
  t.equal(proxy.count({ mode: 'game' }), 10)
})

t.test('pick: least full first, state and tag filters, fallback', async (t) => {
  const { sim, proxy, s } = await network({
    a: { state: 'lobby', mode: 'sw', max: 10, tags: ['eu'] }, b: { state: 'lobby', mode: 'sw', max: 10 }, c: { state: 'in-game', mode: 'sw', max: 10 },
  })
  t.teardown(() => sim.closeAll())
  s.a.join({ name: 'x' })
  await sim.runUntil(() => proxy.server('a')?.players === 1, 1000)
  t.equal(proxy.pick({ mode: 'sw' })?.id, 'b', 'least full')
  t.equal(proxy.pick({ mode: 'sw', tag: 'eu' })?.id, 'a')
  t.equal(proxy.pick({ mode: 'sw', state: 'in-game' })?.id, 'c')
  t.same(proxy.servers({ state: ['lobby', 'in-game'] }).map((x) => x.id), ['a', 'b', 'c'])
  s.b.setServer({ state: 'full' })
  await sim.runUntil(() => proxy.server('b')?.state === 'full', 1000)
  t.equal(proxy.pick({ mode: 'sw', state: 'lobby' })?.id, 'a')
  t.equal(proxy.pick({ mode: 'none', fallback: { mode: 'sw', state: 'in-game' } })?.id, undefined, 'pick looks at the first selector only')
  const events: string[] = []
  proxy.on('server-removed', (id) => events.push(id))
  await s.c.close()
  t.ok(await sim.runUntil(() => proxy.server('c') === undefined, 500), 'a closed Network leaves the registry at once')
  t.same(events, ['c'])
  t.throws(() => s.c.join({ name: 'late' }), ClosedError)
})

t.test('message and kick reach the player\'s proxy, with a typed answer', async (t) => {
  const { sim, proxy, s } = await network({ lobby1: { state: 'lobby' } })
  t.teardown(() => sim.closeAll())
  const seen: string[] = []
  proxy.onMessage((p, text) => { seen.push(`msg ${p.name}: ${text}`) })
  s.lobby1.join({ name: 'Steve', proxy: 'proxy' })
  s.lobby1.join({ name: 'Local' })
  await sim.runUntil(() => proxy.count() === 2, 1000)
  t.same((await settle(sim, s.lobby1.message('steve', 'hello'))).value, { player: 'Steve', via: 'proxy' })
  const noKick = (await settle(sim, s.lobby1.kick('steve', 'bye'))).error
  t.ok(noKick instanceof RefusedError, `no kick handler: ${String(noKick)}`)
  proxy.onKick((p, reason) => { if (reason === 'nope') throw new Error('cannot kick staff'); seen.push(`kick ${p.name}: ${reason}`) })
  t.same((await settle(sim, proxy.kick('STEVE', 'bye'))).value, { player: 'Steve', via: 'proxy' })
  const thrown = (await settle(sim, proxy.kick('steve', 'nope'))).error
  t.ok(thrown instanceof RefusedError && thrown.reason === 'cannot kick staff', 'a handler that throws refuses with its message')
  s.lobby1.onMessage((p, text) => { seen.push(`local ${p.name}: ${text}`) })
  t.equal((await settle(sim, proxy.message('local', 'hi'))).value?.via, 'lobby1', 'no proxy: the server delivers')
  t.ok((await settle(sim, proxy.message('ghost', 'hi'))).error instanceof UnknownPlayerError)
  t.same(seen, ['msg Steve: hello', 'kick Steve: bye', 'local Local: hi'])
})
