/**
 * The network services through the agent, end to end on real sockets: a
 * coordinator, two agents, a proxy client and server clients. Players joined
 * on one client are located, listed and counted from another; registry
 * queries; transfers through the proxy client's move handler; every error
 * code reachable from a client; messages and kicks delivered to the proxy
 * client's handlers; player and server events; the bound and timeout of
 * service calls; services-only checks of Hello; a reconnect restoring the
 * client's server entry and players.
 */
import { join } from 'node:path'
import t from 'tap'
import { Agent } from '../../lib/agent/agent.js'
import { AgentClient, type AgentMessageEvent } from '../../lib/agent/client.js'
import { AgentErrorCode, ServiceCallKind } from '../../lib/agent/protocol.js'
import type { PlayerInfo, ServerInfo } from '../../lib/services/types.js'
import { SERVICES_CHANNEL } from '../../lib/services/types.js'
import { client, nodeOptions, Raw, startAgent, startCoordinator, tempDir, until } from './fixtures.js'

const E = AgentErrorCode

/** A promise settled from outside (a held handler). */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

t.test('network services through the agent', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agentA = await startAgent(t, coordinator, dir, {}, 'a')
  const agentB = await startAgent(t, coordinator, dir, {}, 'b')

  // The servers by id, for the proxy's move handler (it makes the target host the player and the source let them go).
  const servers = new Map<string, AgentClient>()
  const delivered: string[] = []
  let holdMove: Promise<void> | null = null
  const proxy = await client(t, agentA, {
    id: 'proxy', role: 'proxy', services: true, playerEvents: true,
    handlers: {
      move: async (p: PlayerInfo, target: string) => {
        if (p.name === 'Stuck') throw new Error('Stuck cannot move right now')
        if (holdMove !== null) await holdMove
        await servers.get(target)!.join({ name: p.name, xuid: p.xuid, proxy: 'proxy', fields: p.fields })
        await servers.get(p.server)!.leave(p.name)
      },
      message: (p: PlayerInfo, text: string) => { delivered.push(`message ${p.name} ${text}`) },
      kick: (p: PlayerInfo, reason: string) => {
        if (reason === 'no') throw new Error('kick refused by the proxy')
        delivered.push(`kick ${p.name} ${reason}`)
      },
    },
  })
  const lobby = await client(t, agentA, { id: 'lobby', services: true, server: { state: 'lobby', mode: 'lobby', max: 10 } })
  const asked: string[] = []
  const sw1 = await client(t, agentB, {
    id: 'sw1', services: true, server: { state: 'lobby', mode: 'skywars', max: 2, tags: ['eu'], fields: { map: 'islands' } },
    handlers: {
      transferRequest: ({ player, from, players, arriving }) => {
        asked.push(`${player.name} from ${from} (${players}+${arriving})`)
        return player.name === 'Banned' ? 'banned here' : true
      },
    },
  })
  const sw2 = await client(t, agentB, { id: 'sw2', services: true, server: { state: 'starting', mode: 'skywars', max: 1 } })
  const plain = await client(t, agentB, { id: 'plain' })
  servers.set('lobby', lobby).set('sw1', sw1).set('sw2', sw2)
  const all = [proxy, lobby, sw1, sw2]

  // Mesh messages on the services' channel are the services' traffic: never forwarded to a client that runs them.
  const servicesChannel: string[] = []
  for (const c of [...all, plain]) {
    c.on('message', (m: AgentMessageEvent) => { if (m.channel === SERVICES_CHANNEL) servicesChannel.push(`${c.id} from ${m.from}`) })
  }
  const events: string[] = []
  proxy.on('player-joined', (p: PlayerInfo) => events.push(`joined ${p.name} ${p.server}`))
  proxy.on('player-left', (p: PlayerInfo) => events.push(`left ${p.name} ${p.server}`))
  proxy.on('player-moved', (p: PlayerInfo, from: string) => events.push(`moved ${p.name} ${from}->${p.server}`))
  const serverEvents: string[] = []
  proxy.on('server-updated', (s: ServerInfo) => serverEvents.push(`updated ${s.id} ${s.state}`))
  proxy.on('server-removed', (id: string) => serverEvents.push(`removed ${id}`))

  await until(async () => (await proxy.servers()).length === 3 && (await sw2.servers()).length === 3, 'every registry lists the three servers')

  await t.test('directory: join on one client, locate, list and count from the others', async (t) => {
    await lobby.join({ name: 'Steve', xuid: '2535400000000001', proxy: 'proxy', fields: { rank: 'vip' } })
    await lobby.join({ name: 'Alex', proxy: 'proxy' })
    await lobby.join({ name: 'Banned', proxy: 'proxy' })
    await lobby.join({ name: 'Stuck', proxy: 'proxy' })
    await lobby.join({ name: 'Local' }) // no proxy: the lobby itself delivers to them, and it has no handlers
    for (const c of all) await until(async () => (await c.count()) === 5, `${c.id} counts 5 players`)
    t.same(await sw1.locate('steve'), { name: 'Steve', xuid: '2535400000000001', server: 'lobby', proxy: 'proxy', fields: { rank: 'vip' } },
      'located by name in any case, with every field')
    t.equal((await sw2.locate('2535400000000001'))?.name, 'Steve', 'located by XUID')
    t.equal(await sw2.locate('nobody'), undefined, 'an unknown player is not found')
    t.equal(await proxy.isOnline('ALEX'), true)
    t.equal(await proxy.isOnline('nobody'), false)
    t.equal(await sw1.count({ server: 'lobby' }), 5)
    t.equal(await sw1.count({ mode: 'lobby' }), 5)
    t.equal(await sw1.count({ mode: 'skywars' }), 0)
    const page = await sw2.listPlayers({ limit: 2 })
    t.equal(page.count, 5, 'count is every matching player')
    t.equal(page.players.length, 2, 'players at most the limit')
    const everyone = await sw2.listPlayers()
    t.same(everyone.players.map((p) => p.name).sort(), ['Alex', 'Banned', 'Local', 'Steve', 'Stuck'])
    t.equal(await lobby.leave('nobody'), false, 'leave of a player it does not host')
    await until(() => events.filter((e) => e.startsWith('joined')).length === 5, 'player-joined events at the proxy')
    t.ok(events.includes('joined Steve lobby'))
  })

  await t.test('registry queries and setServer', async (t) => {
    const got = await lobby.servers()
    t.same(got.map((s) => s.id), ['lobby', 'sw1', 'sw2'], 'all servers, by id')
    t.same(await sw2.server('sw1'), {
      id: 'sw1', role: 'downstream', state: 'lobby', mode: 'skywars', tags: ['eu'], players: 0, max: 2, fields: { map: 'islands' },
    })
    t.same((await proxy.servers({ mode: 'skywars' })).map((s) => s.id), ['sw1', 'sw2'])
    t.same((await proxy.servers({ state: 'starting' })).map((s) => s.id), ['sw2'])
    t.same((await proxy.servers({ state: ['starting', 'lobby'], mode: 'skywars' })).map((s) => s.id), ['sw1', 'sw2'])
    t.same((await proxy.servers({ tag: 'eu' })).map((s) => s.id), ['sw1'])
    t.equal((await proxy.server('lobby'))?.players, 5, 'players counted from the directory')
    t.equal(await proxy.server('proxy'), undefined, 'a proxy is not listed')
    await sw2.setServer({ state: 'lobby' })
    await until(async () => (await proxy.server('sw2'))?.state === 'lobby', 'the new state everywhere')
    t.equal((await lobby.server('sw2'))?.max, 1, 'unset fields keep their value')
    await until(() => serverEvents.includes('updated sw2 lobby'), 'server-updated event at the proxy')
    await t.rejects(sw2.setServer({ state: 'Not A State' }), { code: 'INVALID_ARGUMENT', message: /state must be/ })
    await t.rejects(lobby.join({ name: '' }), { code: 'INVALID_ARGUMENT', message: /player name/ })
  })

  await t.test('a transfer through the proxy client\'s move handler', async (t) => {
    const done = await sw2.transfer('steve', 'sw1')
    t.same(done, { player: 'Steve', server: 'sw1', from: 'lobby', via: 'proxy' })
    t.same(asked, ['Steve from lobby (0+0)'], 'the target client\'s transfer hook was asked, with players and arriving')
    for (const c of all) await until(async () => (await c.locate('Steve'))?.server === 'sw1', `${c.id} sees Steve on sw1`)
    t.same((await proxy.locate('Steve'))?.fields, { rank: 'vip' }, 'fields moved with the player')
    await until(() => events.includes('moved Steve lobby->sw1'), 'player-moved event at the proxy')
    t.equal(await proxy.count({ mode: 'skywars' }), 1)

    // By selector: the least full skywars server in state lobby (sw1 has 1 of 2, sw2 0 of 1), the current one left out.
    const bySelector = await lobby.transfer('Alex', { mode: 'skywars', state: 'lobby' })
    t.same(bySelector, { player: 'Alex', server: 'sw2', from: 'lobby', via: 'proxy' })
    for (const c of all) await until(async () => (await c.locate('Alex'))?.server === 'sw2', `${c.id} sees Alex on sw2`)
  })

  await t.test('error codes', async (t) => {
    await t.rejects(lobby.transfer('nobody', 'sw1'), { code: 'UNKNOWN_PLAYER', message: /nobody/ })
    await t.rejects(lobby.message('nobody', 'hi'), { code: 'UNKNOWN_PLAYER' })
    await t.rejects(lobby.transfer('Local', 'nowhere'), { code: 'NO_SUCH_SERVER', message: /nowhere/ })
    await t.rejects(lobby.transfer('Local', { mode: 'bedwars' }), { code: 'NO_SUCH_SERVER', message: /no server matches/ })
    await t.rejects(lobby.transfer('Local', 'proxy'), { code: 'NO_SUCH_SERVER' }, 'a proxy is no server')
    // sw2 holds Alex, its max is 1.
    await t.rejects(lobby.transfer('Local', 'sw2'), { code: 'SERVER_FULL', message: /sw2/ })
    await sw1.setServer({ state: 'full' })
    await until(async () => (await lobby.server('sw1'))?.state === 'full', 'sw1 full everywhere')
    await t.rejects(lobby.transfer('Local', { mode: 'skywars' }), { code: 'SERVER_FULL' }, 'every matching server full')
    await sw1.setServer({ state: 'lobby' })
    await until(async () => (await lobby.server('sw1'))?.state === 'lobby', 'sw1 open again everywhere')
    await t.rejects(lobby.transfer('Banned', 'sw1'), { code: 'REFUSED', message: 'banned here' }, 'the target client\'s hook said no, with its reason')
    await t.rejects(lobby.transfer('Stuck', 'sw1'), { code: 'REFUSED', message: 'Stuck cannot move right now' }, 'the proxy client\'s move handler threw')
    await t.rejects(lobby.transfer('Steve', 'sw1'), { code: 'REFUSED', message: /already on/ })

    // Two transfers of one player at once: the second is a conflict; with the move held past the timeout: TIMEOUT.
    const held = gate()
    holdMove = held.promise
    await lobby.join({ name: 'Racer', proxy: 'proxy' })
    await until(async () => (await proxy.isOnline('Racer')), 'Racer everywhere')
    const slow = lobby.transfer('Racer', 'sw1', { timeoutMs: 2000 }).then(() => null, (err: unknown) => err)
    await until(() => asked.includes('Racer from lobby (1+0)'), 'the first transfer reached the target')
    await until(() => agentA.session('proxy')!.pendingIncoming === 1, 'its move waits at the proxy client')
    await t.rejects(lobby.transfer('Racer', 'sw1'), { code: 'TRANSFER_CONFLICT', message: /already being transferred by this node/ },
      'a second transfer from the same node')
    await t.rejects(sw2.transfer('Racer', 'sw1'), { code: 'TRANSFER_CONFLICT', message: /already being moved by "proxy"/ },
      'a second transfer from another node: refused at the proxy')
    t.match(await slow, { code: 'TIMEOUT' }, 'the held move times out')
    holdMove = null
    held.open()
    await until(async () => (await lobby.locate('Racer'))?.server === 'sw1', 'the late move still lands (the proxy client did it)')

    await t.rejects(lobby.transfer('Steve', 'sw1', { timeoutMs: -1 }), RangeError, 'a bad timeout is refused by the client')
    await t.rejects(lobby.join({ name: 'X', fields: { k: 'v'.repeat(200) } }), { code: 'INVALID_ARGUMENT', message: /field "k"/ })
    await t.rejects(plain.locate('Steve'), { code: 'SERVICES_OFF', message: /Locate: the network services are off/ })
    await t.rejects(plain.transfer('Steve', 'sw1'), { code: 'SERVICES_OFF' })
    await t.rejects(plain.join({ name: 'X' }), { code: 'SERVICES_OFF' })
  })

  await t.test('message and kick reach the proxy client\'s handlers', async (t) => {
    delivered.length = 0
    await sw1.message('alex', 'hello there')
    await sw1.kick('Alex', 'afk')
    t.same(delivered, ['message Alex hello there', 'kick Alex afk'])
    await t.rejects(sw1.kick('Alex', 'no'), { code: 'REFUSED', message: 'kick refused by the proxy' })
    await t.rejects(sw1.message('Local', 'hi'), { code: 'REFUSED', message: /no message handler on "lobby"/ },
      'the lobby answers no handler: the Network refuses')
  })

  await t.test('a transfer started at the player\'s own proxy (the move runs locally, through its client)', async (t) => {
    await lobby.join({ name: 'Own', proxy: 'proxy' })
    await until(async () => (await proxy.isOnline('Own')), 'Own at the proxy')
    await sw1.setServer({ max: 10 }) // it holds Steve and Racer
    await until(async () => (await proxy.server('sw1'))?.max === 10, 'sw1 has room at the proxy')
    t.same(await proxy.transfer('Own', 'sw1', { timeoutMs: 5000 }), { player: 'Own', server: 'sw1', from: 'lobby', via: 'proxy' })
    await until(async () => (await sw2.locate('Own'))?.server === 'sw1', 'Own on sw1 everywhere')
  })

  await t.test('the target or the player\'s proxy going down mid-transfer', async (t) => {
    const hold = gate()
    t.teardown(() => hold.open())
    const duel = await client(t, agentB, {
      id: 'duel', services: true, server: { mode: 'duel' },
      handlers: { transferRequest: async ({ player }) => { if (player.name === 'Dora') await hold.promise; return true } },
    })
    const proxy2 = await client(t, agentA, { id: 'proxy2', services: true, handlers: { move: () => hold.promise } })
    await lobby.join({ name: 'Eve', proxy: 'proxy2' })
    await lobby.join({ name: 'Dora', proxy: 'proxy' })
    await until(async () => (await lobby.server('duel')) !== undefined, 'duel listed at the lobby')
    const eve = lobby.transfer('Eve', 'duel', { timeoutMs: 20_000 }).then(() => null, (err: unknown) => err)
    await until(() => agentA.session('proxy2')?.pendingIncoming === 1, 'the move waits at proxy2\'s client')
    await proxy2.close()
    t.match(await eve, { code: 'PEER_DOWN', message: /proxy2/ }, 'the player\'s proxy went down')
    const dora = lobby.transfer('Dora', 'duel', { timeoutMs: 20_000 }).then(() => null, (err: unknown) => err)
    await until(() => agentB.session('duel')?.pendingIncoming === 1, 'the transfer request waits at duel\'s client')
    await duel.close()
    t.match(await dora, { code: 'TARGET_DOWN', message: /duel/ }, 'the target went down')
  })

  await t.test('players of a server that leaves vanish everywhere; events', async (t) => {
    await lobby.leave('Local')
    await until(() => events.includes('left Local lobby'), 'player-left event')
    await sw2.close()
    for (const c of [proxy, lobby, sw1]) {
      await until(async () => !(await c.isOnline('Alex')) && (await c.server('sw2')) === undefined, `${c.id} forgot sw2 and its player`)
    }
    await until(() => serverEvents.includes('removed sw2'), 'server-removed event')
    await until(() => events.includes('left Alex sw2'), 'player-left of the closed server\'s player')
  })

  t.same(servicesChannel, [], 'no services-channel traffic reached any client')
  t.same(agentA.stats().rejected['services-off'] ?? 0, 0)
  t.equal(agentB.stats().rejected['services-off'], 3, 'SERVICES_OFF counted')
})

t.test('service calls: bound and timeout shared with incoming requests', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir, { maxIncomingRequests: 1, incomingTimeoutMs: 400 })
  const never = gate()
  t.teardown(() => never.open())
  const proxy = await client(t, agent, { id: 'proxy', services: true, handlers: { message: () => never.promise } })
  const server = await client(t, agent, { id: 'server', services: true, server: { max: 0 } })
  await server.join({ name: 'P', proxy: 'proxy' })
  await until(async () => proxy.isOnline('P'), 'P in the proxy\'s directory')
  const first = server.message('P', 'one', { timeoutMs: 5000 }).then(() => null, (err: unknown) => err)
  await until(() => agent.session('proxy')!.pendingIncoming === 1, 'the first call waits for the proxy client')
  await t.rejects(server.message('P', 'two', { timeoutMs: 5000 }), { code: 'REFUSED', message: /1 unanswered requests and calls \(the agent's limit\)/ })
  t.match(await first, { code: 'REFUSED', message: /not answered by the client within 400 ms/ }, 'an unanswered call expires')
  t.equal(agent.session('proxy')!.pendingIncoming, 0)
  t.same(agent.stats().rejected, { 'incoming-overflow': 1, 'incoming-expired': 1 })
})

t.test('services in Hello and on the raw protocol', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const agent = await startAgent(t, coordinator, dir)
  const path = agent.socketPath!

  async function fatal(name: string, hello: Record<string, unknown>, message: RegExp): Promise<void> {
    const r = await Raw.open(t, path)
    r.hello(`x-${name}`, hello)
    t.match(await r.next('error'), { code: E.INVALID_ARGUMENT, fatal: true, message }, name)
    await r.waitClosed()
  }
  await fatal('handles-without-services', { handles: [ServiceCallKind.MOVE] }, /need Hello.services/)
  await fatal('server-without-services', { server: { state: 'lobby' } }, /need Hello.services/)
  await fatal('events-without-services', { playerEvents: true }, /need Hello.services/)
  await fatal('bad-kind', { services: true, handles: [9] }, /Hello.handles: 9 is not a ServiceCall.Kind/)
  await fatal('bad-server', { services: true, server: { state: 'Bad State' } }, /Hello.server: state must be/)

  // A raw services client: answers, events, and mistakes that the connection survives.
  const other = await client(t, agent, { id: 'host', services: true, server: { mode: 'm' } })
  const r = await Raw.open(t, path)
  r.hello('raw', { services: true, playerEvents: true, handles: [ServiceCallKind.MESSAGE] })
  await r.next('welcome')
  await until(() => r.messages.some((m) => m.body === 'serverEvent'), 'a ServerEvent for host')
  await other.join({ name: 'Q', proxy: 'raw' })
  const joined = await r.next('playerEvent')
  t.match(joined, { kind: 1, player: { name: 'Q', server: 'host', proxy: 'raw' } })
  const delivery = other.message('Q', 'ping')
  const call = await r.next('serviceCall')
  t.match(call, { kind: ServiceCallKind.MESSAGE, player: { name: 'Q' }, text: 'ping' })
  r.send({ reply: { id: call.id, data: Buffer.from('x') } })
  await until(() => r.messages.some((m) => m.body === 'error'), 'an error for Reply to a ServiceCall')
  t.match(r.messages.find((m) => m.body === 'error')!.error, { code: E.UNKNOWN_REQUEST, message: /is a ServiceCall; answer it with ServiceAnswer/ })
  r.send({ serviceAnswer: { id: call.id, ok: false, reason: 'player muted the proxy' } })
  await t.rejects(delivery, { code: 'REFUSED', message: 'player muted the proxy' })
  const from = r.messages.length
  r.send({ serviceAnswer: { id: call.id, ok: true } })
  const late = await r.next('error', from)
  t.match(late, { code: E.UNKNOWN_REQUEST, message: /ServiceAnswer to call \d+: not pending/ })
  t.equal(Number(late.id), 0)
  const from2 = r.messages.length
  r.send({ transfer: { id: 0, player: 'Q', server: 'host' } })
  t.match(await r.next('error', from2), { code: E.INVALID_ARGUMENT, message: /Transfer.id must be non-zero/ })
  const from3 = r.messages.length
  r.send({ transfer: { id: 5, player: 'Q' } })
  const noTarget = await r.next('error', from3)
  t.match(noTarget, { code: E.INVALID_ARGUMENT, message: /set server \(the target\) or selector/ })
  t.equal(Number(noTarget.id), 5)
  const from4 = r.messages.length
  let deep: Record<string, unknown> = { mode: 'm' }
  for (let i = 0; i < 9; i++) deep = { mode: 'm', fallback: deep }
  r.send({ transfer: { id: 6, player: 'Q', selector: deep } })
  const tooDeep = await r.next('error', from4)
  t.match(tooDeep, { code: E.INVALID_ARGUMENT, message: /nested deeper than 8/ })
  t.equal(Number(tooDeep.id), 6)
  const from5 = r.messages.length
  r.send({ locate: { id: 7, player: 'q' } })
  const found = await r.next('playerResult', from5)
  t.match(found, { found: true, player: { name: 'Q', server: 'host' } })
  t.equal(Number(found.id), 7)
  r.send({ goodbye: { reason: 'done' } })
  await r.next('goodbye')
  await r.waitClosed()
  t.equal(await other.count(), 1, 'the host serves on')
})

t.test('after a reconnect the client lists its server and announces its players again', async (t) => {
  const dir = tempDir(t)
  const coordinator = await startCoordinator(t)
  const stable = await startAgent(t, coordinator, dir, {}, 'stable')
  const path = join(dir, 'restarting.sock')
  let agent = await Agent.start({ socket: path, node: nodeOptions(coordinator) })
  t.teardown(() => agent.close())
  const roamer = await AgentClient.connect({ socket: path, id: 'roamer', services: true, server: { mode: 'duel', max: 4 } })
  t.teardown(() => roamer.close())
  const observer = await client(t, stable, { id: 'observer', services: true })
  await roamer.join({ name: 'Kept', xuid: '42', proxy: 'observer' })
  await roamer.join({ name: 'Gone' })
  t.equal(await roamer.leave('GONE'), true)
  await roamer.setServer({ state: 'in-game' })
  await until(async () => (await observer.locate('Kept'))?.server === 'roamer' && (await observer.server('roamer'))?.state === 'in-game', 'roamer\'s facts at the observer')

  const reconnected = new Promise((resolve) => roamer.once('reconnected', resolve))
  await agent.close()
  await until(async () => !(await observer.isOnline('Kept')) && (await observer.server('roamer')) === undefined, 'the facts left with the node')
  agent = await Agent.start({ socket: path, node: nodeOptions(coordinator) })
  await reconnected
  await until(async () => (await observer.locate('42'))?.server === 'roamer', 'Kept announced again', 15_000)
  t.same(await observer.locate('Kept'), { name: 'Kept', xuid: '42', server: 'roamer', proxy: 'observer', fields: {} })
  t.equal(await observer.isOnline('Gone'), false, 'a player who left is not announced again')
  await until(async () => (await observer.server('roamer'))?.state === 'in-game', 'listed again with its current settings')
  t.match(await observer.server('roamer'), { mode: 'duel', max: 4, state: 'in-game', players: 1 })
})
