/**
 * One process of `warpmesh demo`: `node demo-node.js coordinator` or
 * `node demo-node.js node`. Configured from the environment like any node
 * (`WARPMESH_ID`, `WARPMESH_ROLE`, `WARPMESH_KEY`, `WARPMESH_META` for a
 * server's `mode`, `max` and `hub`, …), it talks to the demo parent over the
 * IPC channel: `ready` once started, `stats` every {@link DEMO_REPORT_MS},
 * `event` for what the live table lists under "recent". It stops gracefully
 * (services closed, deregister, flush) on SIGINT, SIGTERM, a `stop` message,
 * or when the parent goes away (IPC disconnect), and exits 0 after a clean close.
 *
 * Every node runs the network services ({@link Network}), like a small
 * Bedrock network:
 * - the proxy connects simulated players (a new one every
 *   {@link CONNECT_INTERVAL_MS} up to {@link POPULATION}) to the least full
 *   lobby (`pick({ mode: 'lobby' })`) and tells that server to `join` them
 *   (announced with proxy = the proxy); players quit now and then; it answers
 *   `/find` from the directory (`locate`), and performs moves: its `onMove`
 *   handler tells the old server the player left and the target that they
 *   arrived, and returns once the directory shows them on the target;
 * - a lobby sends a player to a game every {@link QUEUE_INTERVAL_MS}:
 *   `transfer(player, { mode, state: 'lobby', fallback: any game in lobby state })`;
 * - a game server (tag `game`) is `starting`, then `lobby` (its transfer hook
 *   refuses players once a round runs); when it has `max` players it turns
 *   `full`, then `in-game` (and messages its players, through their proxy),
 *   and at the end of the round transfers everyone to the hub (a named
 *   server, `lobby-1`) and is `lobby` again;
 * - the proxy broadcasts an announcement to every downstream every few seconds.
 *
 * @module
 */

import { performance } from 'node:perf_hooks'
import { coordinatorOptionsFromEnv, nodeOptionsFromEnv } from './config.js'
import { coordinatorSnapshot, coordinatorStartOptions, meshNodeOptions, metricsSnapshot, warnInsecure } from './cli.js'
import { MedianWindow } from './core/median-window.js'
import { ErrorCode } from './errors.js'
import { createLogger, type Logger } from './log.js'
import type { MeshMessage } from './mesh/node.js'
import type { MetricsSnapshot } from './metrics.js'
import type { Network } from './services/network.js'
import { ServerState, type PlayerInfo, type ServerSelector } from './services/types.js'
import { Delivery } from './wire/codec.js'

/** Interval between `stats` reports to the parent, in ms. */
export const DEMO_REPORT_MS = 500
/** Interval between announcements of the proxy, in ms. */
export const ANNOUNCE_INTERVAL_MS = 3000
/** The proxy connects a new player this often (while fewer than {@link POPULATION} are online), in ms. */
export const CONNECT_INTERVAL_MS = 100
/** Players the proxy keeps online at most. */
export const POPULATION = 60
/** A random player quits this often, in ms. */
export const QUIT_INTERVAL_MS = 1500
/** The proxy answers a `/find` for a random player this often, in ms. */
export const FIND_INTERVAL_MS = 1000
/** A lobby sends a player to a game this often, in ms. */
export const QUEUE_INTERVAL_MS = 150
/** A game server is `starting` this long before it opens (`lobby`), in ms. */
export const STARTING_MS = 300
/** A full game server waits this long before the round starts (`in-game`), in ms. */
export const FULL_HOLD_MS = 500
/** A round lasts this long, in ms. */
export const ROUND_MS = 2500
/** Longest a move may take at the proxy (the directory shows the player on the target), in ms. */
export const MOVE_TIMEOUT_MS = 2000
/** Longest a graceful close may take before the process exits anyway, in ms. */
const CLOSE_TIMEOUT_MS = 3000

/** Moves the proxy's `requestRttMs` is the median of. */
export const REQUEST_RTT_SAMPLES = 32

/** Channel on which the proxy tells a server a player arrived or left (the services use 15). */
export const PLAYER_CHANNEL = 2
/** Tag of the game servers in the registry. */
export const GAME_TAG = 'game'
/** Hub the game servers send their players back to when `WARPMESH_META` names none. */
export const DEFAULT_HUB = 'lobby-1'

/** What a node knows of the network services, for the table. */
export interface DemoServices {
  /** Its registry state; '' for the proxy (not listed). */
  state: string
  mode: string
  /** A server: players it hosts. The proxy: players connected through it. */
  players: number
  /** Capacity; 0 for the proxy. */
  max: number
  /** `count({ server })` for every server in this node's registry: the directory as this node sees it. */
  directory: Record<string, number>
  /** `count()`: every player in this node's directory. */
  total: number
}

/** Messages a demo child sends its parent. */
export type DemoReport =
  | { type: 'ready'; id: string; role: string; pid: number; port: number }
  | { type: 'event'; id: string; text: string }
  | {
      type: 'stats'
      id: string
      role: string
      pid: number
      /** Peers in this process's table (the coordinator: table size). */
      peers: number
      /** Mean path round trip over live sessions (their `roundTripTime`), ms; 0 before the first sample. */
      rttMs: number
      /** Application messages sent + received since start. */
      messages: number
      /** Frames retransmitted since start. */
      retransmits: number
      /**
       * The proxy: median time of its last {@link REQUEST_RTT_SAMPLES} moves
       * (told the servers to the directory showing the player on the target),
       * ms, measured by the application beside the RTT column; absent before the first.
       */
      requestRttMs?: number
      /** Nodes: their view of the services. */
      services?: DemoServices
      /** Role-specific counters: transfers, moves, rounds… */
      events: Record<string, number>
    }

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const encode = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
const decode = (data: Uint8Array): Record<string, unknown> => {
  try {
    return JSON.parse(decoder.decode(data)) as Record<string, unknown>
  } catch {
    return {}
  }
}

function report(message: DemoReport): void {
  if (process.connected) process.send?.(message)
}

/** Mean path round trip over peers, messages sent + received, retransmits: the table's columns. */
function summarize(snapshot: MetricsSnapshot): { rttMs: number; messages: number; retransmits: number } {
  const rtts = snapshot.peers.map((p) => p.rttMs ?? 0).filter((v) => v > 0)
  return {
    rttMs: rtts.length === 0 ? 0 : rtts.reduce((a, b) => a + b, 0) / rtts.length,
    messages: snapshot.totals.messagesSent + snapshot.totals.messagesReceived,
    retransmits: snapshot.totals.retransmits,
  }
}

/** Run `stop` once, on any of the ways a demo child is told to stop. */
function onStop(stop: (why: string) => void): void {
  let stopping = false
  const once = (why: string): void => {
    if (stopping) return
    stopping = true
    stop(why)
  }
  process.on('SIGINT', () => once('SIGINT'))
  process.on('SIGTERM', () => once('SIGTERM'))
  process.on('disconnect', () => once('parent gone'))
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') once('stop')
  })
}

async function closeAndExit(logger: Logger, why: string, close: () => Promise<void>): Promise<never> {
  logger.info('stopping', { why })
  const failsafe = setTimeout(() => {
    logger.error('graceful close timed out', { timeoutMs: CLOSE_TIMEOUT_MS })
    process.exit(1)
  }, CLOSE_TIMEOUT_MS)
  try {
    await close()
  } catch (err) {
    logger.error('close failed', { err })
    process.exit(1)
  }
  clearTimeout(failsafe)
  process.exit(0)
}

async function runCoordinator(): Promise<void> {
  const config = coordinatorOptionsFromEnv()
  const logger = createLogger({ level: config.logLevel, name: config.id })
  warnInsecure(logger, config.insecure)
  const { Coordinator } = await import('./mesh/coordinator.js')
  const coordinator = await Coordinator.start(coordinatorStartOptions(config, logger))
  const timer = setInterval(() => {
    const summary = summarize(coordinatorSnapshot(coordinator))
    report({ type: 'stats', id: config.id, role: 'coordinator', pid: process.pid, peers: coordinator.table().length, ...summary, events: {} })
  }, DEMO_REPORT_MS)
  onStop((why) => {
    clearInterval(timer)
    void closeAndExit(logger, why, () => coordinator.close())
  })
  report({ type: 'ready', id: config.id, role: 'coordinator', pid: process.pid, port: coordinator.port })
}

/** Transfer failures that mean "no game has room now": the player waits in the lobby. */
const WAITING: readonly string[] = [ErrorCode.NoSuchServer, ErrorCode.ServerFull, ErrorCode.Refused]

/** What the proxy tells a server on {@link PLAYER_CHANNEL}. */
type PlayerNotice = { type: 'connect'; name: string; xuid: string } | { type: 'disconnect'; name: string }

async function runNode(): Promise<void> {
  const config = nodeOptionsFromEnv()
  const logger = createLogger({ level: config.logLevel, name: config.id })
  warnInsecure(logger, config.insecure)
  const { MeshNode } = await import('./mesh/node.js')
  const { Network } = await import('./services/network.js')
  const isProxy = config.role === 'proxy'
  const mode = config.meta.mode ?? 'lobby'
  const isLobby = !isProxy && mode === 'lobby'
  const isGame = !isProxy && !isLobby
  const max = Number(config.meta.max ?? 50)
  const hub = config.meta.hub ?? DEFAULT_HUB
  const node = await MeshNode.start(meshNodeOptions(config, logger))
  let state: string = isGame ? ServerState.STARTING : ServerState.LOBBY
  const network = Network.create(node, isProxy ? { logger } : { logger, server: { state, mode, max, tags: isGame ? [GAME_TAG] : [] } })

  const events: Record<string, number> = {}
  const count = (name: string): void => {
    events[name] = (events[name] ?? 0) + 1
  }
  const tell = (text: string): void => report({ type: 'event', id: config.id, text })
  const moveTimes = new MedianWindow(REQUEST_RTT_SAMPLES)
  const timers: NodeJS.Timeout[] = []
  const every = (ms: number, fn: () => void): void => {
    timers.push(setInterval(() => {
      try {
        fn()
      } catch (err) {
        // A peer that just went down, backpressure: the demo carries on.
        logger.rateLimited(`demo:${fn.name}`, 5000).debug('demo traffic step failed', { err })
      }
    }, ms))
  }
  const after = (ms: number, fn: () => void): void => {
    timers.push(setTimeout(fn, ms))
  }
  const pickOne = <T>(list: readonly T[]): T | undefined => list[Math.floor(Math.random() * list.length)]
  const notify = (to: string, notice: PlayerNotice): void => {
    node.send(to, encode(notice), { channel: PLAYER_CHANNEL, delivery: Delivery.RELIABLE_ORDERED })
  }

  let stopped = false
  node.on('message', (m: MeshMessage) => {
    if (stopped) return
    if (m.channel === PLAYER_CHANNEL && !isProxy) {
      const notice = decode(m.data)
      try {
        if (notice.type === 'connect' && typeof notice.name === 'string') {
          network.join({ name: notice.name, xuid: typeof notice.xuid === 'string' ? notice.xuid : '', proxy: m.from })
          count('joined')
          checkFull()
        } else if (notice.type === 'disconnect' && typeof notice.name === 'string') {
          if (network.leave(notice.name)) count('left')
        }
      } catch (err) {
        logger.warn('player notice failed', { from: m.from, notice, err })
      }
    } else if (m.channel === 0 && decode(m.data).type === 'announcement') count('announcements')
  })

  // ---------------------------------------------------------------- game servers: the round
  function setState(next: string): void {
    const was = state
    state = next
    network.setServer({ state })
    tell(`${config.id}: ${was} → ${state} (${network.hosted().length}/${max} players)`)
  }
  function checkFull(): void {
    if (!isGame || state !== ServerState.LOBBY || network.hosted().length < max) return
    setState(ServerState.FULL)
    after(FULL_HOLD_MS, startRound)
  }
  function startRound(): void {
    setState(ServerState.IN_GAME)
    count('rounds')
    const players = network.hosted()
    void Promise.allSettled(players.map((p) => network.message(p.name, `${mode} starts now: good luck!`))).then((results) => {
      const delivered = results.filter((r) => r.status === 'fulfilled')
      const via = [...new Set(delivered.map((r) => (r as PromiseFulfilledResult<{ via: string }>).value.via))].join(', ') || '-'
      tell(`${config.id}: messaged ${delivered.length}/${players.length} players "${mode} starts now" (delivered by ${via})`)
    })
    after(ROUND_MS, () => {
      endRound().catch((err: unknown) => logger.warn('end of round failed', { err }))
    })
  }
  async function endRound(): Promise<void> {
    const players = network.hosted()
    const results = await Promise.allSettled(players.map((p) => network.transfer(p.name, hub)))
    const ok = results.filter((r) => r.status === 'fulfilled').length
    events.backToHub = (events.backToHub ?? 0) + ok
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (stopped) return
    tell(`${config.id}: round over, transfer(player, '${hub}') for ${players.length}: ${ok} ok${failed === undefined ? '' : `, first failure ${(failed.reason as Error).name}`}`)
    setState(ServerState.LOBBY)
    checkFull()
  }
  if (isGame) {
    // Open only before a round runs; the services already refuse starting/full/stopping servers and full ones.
    network.onTransferRequest(() => state === ServerState.LOBBY ? true : `round in progress (${state})`)
    after(STARTING_MS, () => setState(ServerState.LOBBY))
  }

  // ---------------------------------------------------------------- lobbies: the queue to the games
  if (isLobby) {
    let nextMode = 0
    const sending = new Set<string>()
    every(QUEUE_INTERVAL_MS, function queue() {
      const modes = [...new Set(network.servers({ tag: GAME_TAG }).map((s) => s.mode))].sort()
      const player = pickOne(network.hosted().filter((p) => !sending.has(p.name)))
      if (modes.length === 0 || player === undefined) return
      const wanted = modes[nextMode++ % modes.length] as string
      const selector: ServerSelector = { mode: wanted, state: ServerState.LOBBY, fallback: { tag: GAME_TAG, state: ServerState.LOBBY } }
      sending.add(player.name)
      const started = performance.now()
      network.transfer(player.name, selector).then(
        (r) => {
          count('transfersOk')
          const target = network.server(r.server)
          const asked = target !== undefined && target.mode !== wanted ? `asked for ${wanted}: none open, fallback` : wanted
          tell(`transfer ${r.player} ${r.from} → ${r.server} via ${r.via} in ${(performance.now() - started).toFixed(2)} ms (${asked})`)
        },
        (err: { code?: string }) => {
          // No game open or with room: the player waits in the lobby.
          count(WAITING.includes(err.code ?? '') ? 'transfersWaiting' : 'transfersFailed')
        },
      ).finally(() => sending.delete(player.name))
    })
  }

  // ---------------------------------------------------------------- the proxy: players come, go and move
  const online = new Set<string>()
  if (isProxy) {
    let joined = 0
    const waiters = new Map<string, { server: string; done: () => void }>()
    const arrived = (p: PlayerInfo): void => {
      const key = p.name.toLowerCase()
      const w = waiters.get(key)
      if (w !== undefined && w.server === p.server) {
        waiters.delete(key)
        w.done()
      }
    }
    network.on('player-joined', arrived)
    network.on('player-moved', arrived)
    network.onMove(async (player: PlayerInfo, server: string) => {
      const started = performance.now()
      const key = player.name.toLowerCase()
      let timer: NodeJS.Timeout | undefined
      const there = new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => {
          waiters.delete(key)
          reject(new Error(`${player.name} did not show up on ${server} within ${MOVE_TIMEOUT_MS} ms`))
        }, MOVE_TIMEOUT_MS)
        waiters.set(key, { server, done: resolve })
      })
      try {
        notify(player.server, { type: 'disconnect', name: player.name })
        notify(server, { type: 'connect', name: player.name, xuid: player.xuid })
        await there
        count('moves')
        moveTimes.add(performance.now() - started)
      } catch (err) {
        count('movesFailed')
        // The target never took them: back where they were, rather than nowhere.
        try {
          notify(player.server, { type: 'connect', name: player.name, xuid: player.xuid })
        } catch { /* their old server is gone too: they quit */ }
        throw err
      } finally {
        clearTimeout(timer)
        waiters.delete(key)
      }
    })
    network.onMessage(() => {
      count('messages')
    })
    every(CONNECT_INTERVAL_MS, function connect() {
      if (online.size >= POPULATION) return
      const lobby = network.pick({ mode: 'lobby' })
      if (lobby === undefined) return
      const name = `Steve${++joined}`
      notify(lobby.id, { type: 'connect', name, xuid: String(2535400000000000 + joined) })
      online.add(name)
      count('connected')
    })
    every(QUIT_INTERVAL_MS, function quit() {
      const name = pickOne([...online])
      const where = name === undefined ? undefined : network.locate(name)
      if (name === undefined || where === undefined || waiters.has(name.toLowerCase())) return
      notify(where.server, { type: 'disconnect', name })
      online.delete(name)
      count('quit')
      tell(`${name} quit (was on ${where.server})`)
    })
    every(FIND_INTERVAL_MS, function find() {
      const name = pickOne([...online])
      if (name === undefined) return
      // Names are compared case-insensitively: ask as a player would type it.
      const where = network.locate(name.toLowerCase())
      count('finds')
      tell(`/find ${name.toLowerCase()}: ${where === undefined ? 'not online' : `${where.name} is on ${where.server}`}`)
    })
    let announcement = 0
    every(ANNOUNCE_INTERVAL_MS, function announce() {
      const n = node.broadcast({ role: 'downstream' }, encode({ type: 'announcement', n: ++announcement, text: 'Double XP weekend!' }))
      if (n > 0) count('announced')
    })
  }

  // Every process reports on the same wall-clock ticks, so the parent compares
  // a server's own count with another node's directory sampled at the same moment.
  const nextTick = (): number => DEMO_REPORT_MS - (Date.now() % DEMO_REPORT_MS)
  const sendStats = (): void => {
    const summary = summarize(metricsSnapshot(node.stats()))
    const directory: Record<string, number> = {}
    for (const s of network.servers()) directory[s.id] = network.count({ server: s.id })
    const services: DemoServices = {
      state: isProxy ? '' : state,
      mode: isProxy ? '' : mode,
      players: isProxy ? online.size : network.hosted().length,
      max: isProxy ? 0 : max,
      directory,
      total: network.count(),
    }
    const requestRttMs = moveTimes.median()
    report({
      type: 'stats', id: config.id, role: config.role, pid: process.pid, peers: node.peers().length, ...summary,
      ...(Number.isNaN(requestRttMs) ? {} : { requestRttMs }), services, events: { ...events },
    })
    timers.push(setTimeout(sendStats, nextTick()))
  }
  timers.push(setTimeout(sendStats, nextTick()))

  onStop((why) => {
    stopped = true
    for (const t of timers) {
      clearInterval(t)
      clearTimeout(t)
    }
    void closeAndExit(logger, why, async () => {
      await network.close()
      await node.close()
    })
  })
  report({ type: 'ready', id: config.id, role: config.role, pid: process.pid, port: 0 })
}

const kind = process.argv[2]
const run = kind === 'coordinator' ? runCoordinator : kind === 'node' ? runNode : undefined
if (run === undefined) {
  process.stderr.write(`demo-node: expected "coordinator" or "node", got ${JSON.stringify(kind)}\n`)
  process.exit(2)
}
run().catch((err: unknown) => {
  process.stderr.write(`${JSON.stringify({ t: Date.now(), level: 'error', name: process.env.WARPMESH_ID ?? 'demo', msg: 'demo process failed', err: String((err as Error)?.message ?? err) })}\n`)
  process.exit(1)
})
