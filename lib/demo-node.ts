/**
 * One process of `warpmesh demo`: `node demo-node.js coordinator` or
 * `node demo-node.js node`. Configured from the environment like any node
 * (`WARPMESH_ID`, `WARPMESH_ROLE`, `WARPMESH_KEY`, …), it talks to the demo
 * parent over the IPC channel: `ready` once started, `stats` every
 * {@link DEMO_REPORT_MS}. It stops gracefully (deregister, flush) on SIGINT,
 * SIGTERM, a `stop` message, or when the parent goes away (IPC disconnect),
 * and exits 0 after a clean close.
 *
 * Traffic, like a small Bedrock network:
 * - downstreams publish their status (players online / max) every 500 ms
 *   through `setMeta()` and the `status` topic, answer transfer requests, and
 *   send party messages to the other downstreams (channel 1);
 * - the proxy subscribes to `status`, sends transfer requests
 *   (request/response) to downstreams, and broadcasts an announcement to every
 *   downstream every few seconds.
 *
 * @module
 */

import { coordinatorOptionsFromEnv, nodeOptionsFromEnv } from './config.js'
import { coordinatorSnapshot, coordinatorStartOptions, meshNodeOptions, metricsSnapshot, warnInsecure } from './cli.js'
import { MedianWindow } from './core/median-window.js'
import { createLogger, type Logger } from './log.js'
import type { MetricsSnapshot } from './metrics.js'
import { Delivery } from './wire/codec.js'

/** Interval between `stats` reports to the parent, in ms. */
export const DEMO_REPORT_MS = 500
/** Interval between status updates of a downstream, in ms. */
export const STATUS_INTERVAL_MS = 500
/** Interval between transfer requests of the proxy, in ms. */
export const TRANSFER_INTERVAL_MS = 200
/** Interval between announcements of the proxy, in ms. */
export const ANNOUNCE_INTERVAL_MS = 3000
/** Interval between party messages of a downstream, in ms. */
export const PARTY_INTERVAL_MS = 400
/** Longest a graceful close may take before the process exits anyway, in ms. */
const CLOSE_TIMEOUT_MS = 3000

/** Transfer round trips the proxy's `requestRttMs` is the median of. */
export const REQUEST_RTT_SAMPLES = 32

/** Channel of party messages (announcements and transfers use the defaults). */
export const PARTY_CHANNEL = 1

/** Messages a demo child sends its parent. */
export type DemoReport =
  | { type: 'ready'; id: string; role: string; pid: number; port: number }
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
       * The proxy: median round trip of its last {@link REQUEST_RTT_SAMPLES}
       * transfer requests (request sent to reply handled), ms, measured by the
       * application beside the RTT column; absent before the first reply.
       */
      requestRttMs?: number
      /** Downstreams: players online and capacity. The proxy: sum over the downstreams it knows. */
      players?: number
      maxPlayers?: number
      /** Role-specific counters: transfers, announcements, party messages… */
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

const MODES = ['lobby', 'skywars', 'bedwars', 'survival']

async function runNode(): Promise<void> {
  const config = nodeOptionsFromEnv()
  const logger = createLogger({ level: config.logLevel, name: config.id })
  warnInsecure(logger, config.insecure)
  const { MeshNode } = await import('./mesh/node.js')
  const downstream = config.role !== 'proxy'
  const maxPlayers = Number(config.meta.max ?? 50)
  let players = downstream ? Math.floor(maxPlayers / 4 + Math.random() * (maxPlayers / 4)) : 0
  const mode = config.meta.mode ?? MODES[Math.floor(Math.random() * MODES.length)]!
  const meta = () => ({ ...config.meta, mode, players: String(players), max: String(maxPlayers) })
  const node = await MeshNode.start({ ...meshNodeOptions(config, logger), ...(downstream ? { meta: meta() } : {}) })
  const events: Record<string, number> = {}
  const count = (name: string): void => {
    events[name] = (events[name] ?? 0) + 1
  }
  const known = new Map<string, { players: number; max: number }>()
  const requestRtts = new MedianWindow(REQUEST_RTT_SAMPLES)
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
  const others = (role: string): string[] => node.peers().filter((p) => p.role === role && p.id !== config.id).map((p) => p.id)
  const pickOne = <T>(list: readonly T[]): T | undefined => list[Math.floor(Math.random() * list.length)]

  node.on('message', (m: { from: string; data: Uint8Array; channel: number; topic?: string }) => {
    const body = decode(m.data)
    if (m.topic === 'status') {
      known.set(m.from, { players: Number(body.players ?? 0), max: Number(body.max ?? 0) })
      count('status')
    } else if (body.type === 'party-invite') count('party')
    else if (body.type === 'announcement') count('announcements')
  })

  if (downstream) {
    node.onRequest((data: Uint8Array) => {
      const request = decode(data)
      count('transfersIn')
      if (request.type !== 'transfer') return encode({ ok: false, reason: 'unknown request' })
      if (players >= maxPlayers) return encode({ ok: false, reason: 'full' })
      players++
      return encode({ ok: true, server: config.id, players })
    })
    every(STATUS_INTERVAL_MS, function status() {
      // Players leave and join; transfers add to it.
      players = Math.max(0, Math.min(maxPlayers, players + Math.round((Math.random() - 0.55) * 4)))
      node.setMeta(meta())
      node.publish('status', encode({ players, max: maxPlayers, mode }))
    })
    every(PARTY_INTERVAL_MS, function party() {
      const to = pickOne(others('downstream'))
      if (to === undefined) return
      node.send(to, encode({ type: 'party-invite', from: config.id, leader: `player${Math.floor(Math.random() * 1000)}` }), {
        channel: PARTY_CHANNEL,
        delivery: Delivery.RELIABLE_ORDERED,
      })
      count('partySent')
    })
  } else {
    node.subscribe('status')
    let transfer = 0
    every(TRANSFER_INTERVAL_MS, function transferStep() {
      const to = pickOne(others('downstream'))
      if (to === undefined) return
      const player = `Steve${++transfer}`
      count('transfers')
      const sent = performance.now()
      node.request(to, encode({ type: 'transfer', player }), { timeoutMs: 1000 }).then(
        (reply: Uint8Array) => {
          requestRtts.add(performance.now() - sent)
          count(decode(reply).ok === true ? 'transfersOk' : 'transfersRefused')
        },
        () => count('transfersFailed'),
      )
    })
    let announcement = 0
    every(ANNOUNCE_INTERVAL_MS, function announce() {
      const n = node.broadcast({ role: 'downstream' }, encode({ type: 'announcement', n: ++announcement, text: 'Double XP weekend!' }))
      if (n > 0) count('announced')
    })
  }

  timers.push(setInterval(() => {
    const summary = summarize(metricsSnapshot(node.stats()))
    let online = players
    let max = maxPlayers
    if (!downstream) {
      online = 0
      max = 0
      for (const p of node.peers()) {
        const s = known.get(p.id)
        const fromMeta = Number(p.meta.players)
        online += s?.players ?? (Number.isFinite(fromMeta) ? fromMeta : 0)
        max += s?.max ?? Number(p.meta.max ?? 0)
      }
    }
    const requestRttMs = requestRtts.median()
    report({
      type: 'stats', id: config.id, role: config.role, pid: process.pid, peers: node.peers().length, ...summary,
      ...(Number.isNaN(requestRttMs) ? {} : { requestRttMs }), players: online, maxPlayers: max, events: { ...events },
    })
  }, DEMO_REPORT_MS))

  onStop((why) => {
    for (const t of timers) clearInterval(t)
    void closeAndExit(logger, why, () => node.close())
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
