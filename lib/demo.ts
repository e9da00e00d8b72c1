/**
 * `warpmesh demo` (what `npm start` runs): on 127.0.0.1, a coordinator, one
 * proxy and three downstream servers (a lobby and two game servers) as
 * separate processes (`demo-node.js`), sharing a freshly generated network
 * key, all running the network services: simulated players join through the
 * proxy, are transferred between servers, located, messaged; game servers
 * fill and change state. A live table shows peers, each server's state, its
 * own player count beside the count the directory reports for it as another
 * node sees it, RTT, msgs/s, retransmits, and the recent services events.
 *
 * On a terminal the table refreshes in place; otherwise a block of plain
 * lines is printed every {@link PLAIN_REFRESH_MS}. SIGINT/SIGTERM (or the end
 * of `durationMs`) stops the nodes, then the coordinator, each by PID with
 * SIGTERM (SIGKILL after {@link STOP_TIMEOUT_MS}); children also stop when
 * this process dies (IPC disconnect).
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { formatTable } from './cli.js'
import type { DemoReport } from './demo-node.js'
import { generateKey } from './security/keys.js'

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Stop after this long once every process is up, in ms. Default: run until SIGINT/SIGTERM. */
  durationMs?: number
  /** Where the table goes. Default `process.stdout`. */
  out?: NodeJS.WriteStream
  /** Downstream servers to start. Default 3. */
  downstreams?: number
}

/** Refresh interval of the in-place table on a terminal, in ms. */
export const TTY_REFRESH_MS = 500
/** Interval between plain table blocks when stdout is not a terminal, in ms. */
export const PLAIN_REFRESH_MS = 1000
/** The table is drawn this long after the children's report tick (a multiple of `DEMO_REPORT_MS`), in ms. */
export const RENDER_AFTER_TICK_MS = 150
/** Longest wait for a child to start, in ms. */
export const START_TIMEOUT_MS = 20_000
/** Longest wait for a child to stop after SIGTERM before SIGKILL, in ms. */
export const STOP_TIMEOUT_MS = 4000
/** Messages per second are averaged over this window, in ms. */
export const RATE_WINDOW_MS = 2000
/** Log lines of the children kept for display under the table. */
const LOG_LINES = 6
/** Services events (transfers, state changes, /find…) shown under the table on a terminal. */
export const EVENT_LINES = 8
/** Most services events one plain block lists (every event since the previous block, up to this many). */
export const MAX_PLAIN_EVENTS = 200
/** Node whose directory the DIRECTORY column shows for the servers. */
const PROXY_ID = 'proxy-1'

/** The servers, in start order; the game servers send their players back to the hub `lobby-1`. */
const DOWNSTREAMS = [
  { id: 'lobby-1', meta: 'mode=lobby,max=100' },
  { id: 'skywars-1', meta: 'mode=skywars,max=8,hub=lobby-1' },
  { id: 'bedwars-1', meta: 'mode=bedwars,max=12,hub=lobby-1' },
  { id: 'duels-1', meta: 'mode=duels,max=2,hub=lobby-1' },
  { id: 'lobby-2', meta: 'mode=lobby,max=100' },
]

interface Child {
  readonly id: string
  readonly role: string
  readonly proc: ChildProcess
  ready: Promise<Extract<DemoReport, { type: 'ready' }>>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  last?: Extract<DemoReport, { type: 'stats' }>
  /** (time, messages) of recent reports, oldest first, spanning about {@link RATE_WINDOW_MS}. */
  samples: { t: number; messages: number }[]
  rate: number
  exit?: { code: number | null; signal: NodeJS.Signals | null }
}

/** Where `demo-node` is: next to this module, `.ts` when running from source under a TypeScript loader. */
function entry(): { path: string; execArgv: string[] } {
  const source = import.meta.url.endsWith('.ts')
  return {
    path: fileURLToPath(new URL(source ? './demo-node.ts' : './demo-node.js', import.meta.url)),
    execArgv: source ? process.execArgv : [],
  }
}

/**
 * Run the demo until SIGINT/SIGTERM or `durationMs`.
 *
 * @returns the exit code: 0 when every child stopped cleanly, 1 otherwise.
 */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout
  const tty = out.isTTY === true
  const key = generateKey()
  const logs: string[] = []
  const recent: string[] = []
  const children: Child[] = []
  const started = Date.now()
  let stopping = false
  let coordinatorPort = 0
  let failure: string | undefined

  const { path, execArgv } = entry()
  const baseEnv: Record<string, string | undefined> = { ...process.env, WARPMESH_KEY: key }
  delete baseEnv.WARPMESH_KEY_FILE
  delete baseEnv.WARPMESH_INSECURE
  baseEnv.WARPMESH_LOG = (process.env.WARPMESH_LOG ?? '').trim() || 'warn'
  for (const name of ['WARPMESH_METRICS', 'WARPMESH_ADVERTISE', 'WARPMESH_META', 'WARPMESH_HEARTBEAT_MS', 'WARPMESH_LEASE_MISSES']) {
    delete baseEnv[name]
  }

  const start = (kind: 'coordinator' | 'node', id: string, role: string, env: Record<string, string>): Child => {
    const proc = spawn(process.execPath, [...execArgv, path, kind], {
      env: { ...baseEnv, WARPMESH_ID: id, WARPMESH_ROLE: role, WARPMESH_BIND: '127.0.0.1:0', ...env },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Own process group: a terminal's Ctrl-C reaches only us, and we stop the
      // children in order (nodes, then the coordinator).
      detached: true,
    })
    let resolveReady!: Child['ready'] extends Promise<infer T> ? (v: T) => void : never
    let rejectReady!: (err: Error) => void
    const child: Child = {
      id, role, proc, samples: [], rate: 0,
      ready: new Promise((resolve, reject) => {
        resolveReady = resolve
        rejectReady = reject
      }),
      exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
    }
    child.ready.catch(() => {})
    const timer = setTimeout(() => rejectReady(new Error(`${id} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    proc.on('message', (m: DemoReport) => {
      if (m.type === 'ready') {
        clearTimeout(timer)
        resolveReady(m)
      } else if (m.type === 'stats') {
        const now = Date.now()
        const samples = child.samples
        samples.push({ t: now, messages: m.messages })
        while (samples.length > 2 && now - (samples[1] as { t: number }).t >= RATE_WINDOW_MS) samples.shift()
        const first = samples[0] as { t: number; messages: number }
        if (now > first.t) child.rate = (Math.max(0, m.messages - first.messages) * 1000) / (now - first.t)
        child.last = m
      } else if (m.type === 'event') {
        recent.push(`${clock(Date.now() - started)}  ${m.text.slice(0, 160)}`)
        // A terminal shows the last few; plain output every event once (the block's list is emptied after printing).
        if (recent.length > (tty ? EVENT_LINES : MAX_PLAIN_EVENTS)) recent.shift()
      }
    })
    proc.on('error', (err) => rejectReady(err))
    void child.exited.then((exit) => {
      clearTimeout(timer)
      child.exit = exit
      rejectReady(new Error(`${id} exited (code ${exit.code}, signal ${exit.signal}) before it was ready`))
      if (!stopping) {
        failure ??= `${id} (pid ${proc.pid}) exited unexpectedly (code ${exit.code}, signal ${exit.signal})`
        requestStop()
      }
    })
    let partial = ''
    proc.stderr?.setEncoding('utf8')
    proc.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        if (line.trim() === '') continue
        if (tty) {
          logs.push(shortLog(line))
          if (logs.length > LOG_LINES) logs.shift()
        } else process.stderr.write(`[${id}] ${line}\n`)
      }
    })
    children.push(child)
    return child
  }

  let wake: () => void = () => {}
  const stopRequested = new Promise<void>((resolve) => {
    wake = resolve
  })
  function requestStop(): void {
    wake()
  }
  const onSignal = (): void => requestStop()
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const render = (final = false): void => {
    const lines = [...table(children, coordinatorPort, key, Date.now() - started), '', ...servicesLines(children, recent, tty)]
    if (!tty) recent.length = 0
    if (tty) {
      const body = [...lines, '', ...(logs.length > 0 ? ['recent log lines:', ...logs] : []), final ? '' : 'Ctrl-C to stop.', '']
      out.write(`\x1b[H\x1b[2J${body.join('\n')}`)
    } else {
      out.write(`${lines.join('\n')}\n\n`)
    }
  }

  let refresh: NodeJS.Timeout | undefined
  try {
    const coordinator = start('coordinator', 'coordinator', 'coordinator', {})
    const ready = await Promise.race([coordinator.ready, stopRequested.then(() => undefined)])
    if (ready !== undefined) {
      coordinatorPort = ready.port
      const nodeEnv = { WARPMESH_COORDINATORS: `127.0.0.1:${coordinatorPort}` }
      const nodes = [start('node', 'proxy-1', 'proxy', nodeEnv)]
      for (const d of DOWNSTREAMS.slice(0, options.downstreams ?? 3)) {
        nodes.push(start('node', d.id, 'downstream', { ...nodeEnv, WARPMESH_META: d.meta }))
      }
      const all = await Promise.race([Promise.all(nodes.map((n) => n.ready)), stopRequested.then(() => undefined)])
      if (all !== undefined) {
        if (!tty) out.write(`warpmesh demo: coordinator 127.0.0.1:${coordinatorPort}, ${nodes.length} nodes up, key ${key.slice(0, 8)}… (generated for this run)\n\n`)
        // Just after the children's common report tick (DEMO_REPORT_MS divides both periods): every row from the same moment.
        const period = tty ? TTY_REFRESH_MS : PLAIN_REFRESH_MS
        refresh = setTimeout(() => {
          render()
          refresh = setInterval(() => render(), period)
        }, period - ((Date.now() - RENDER_AFTER_TICK_MS) % period))
        if (options.durationMs !== undefined) setTimeout(requestStop, options.durationMs).unref()
        await stopRequested
      }
    }
  } catch (err) {
    failure ??= (err as Error).message
  } finally {
    stopping = true
    if (refresh !== undefined) clearInterval(refresh)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    // Keep a second Ctrl-C from killing us half-way through the cleanup.
    process.on('SIGINT', () => {})
    const coordinators = children.filter((c) => c.role === 'coordinator')
    const nodes = children.filter((c) => c.role !== 'coordinator')
    if (children.some((c) => c.last !== undefined)) render(true)
    await stopAll(nodes)
    await stopAll(coordinators)
  }
  const unclean = children.filter((c) => c.exit?.code !== 0)
  const summary = children.map((c) => `${c.id}(${c.proc.pid})`).join(' ')
  if (failure !== undefined) process.stderr.write(`warpmesh demo: ${failure}\n`)
  if (unclean.length > 0) {
    process.stderr.write(
      `warpmesh demo: ${unclean.map((c) => `${c.id} (pid ${c.proc.pid}) exited with code ${c.exit?.code}, signal ${c.exit?.signal}`).join('; ')}\n`,
    )
  }
  out.write(`stopped ${children.length} processes: ${summary}\n`)
  return failure === undefined && unclean.length === 0 ? 0 : 1
}

/** SIGTERM every child by PID, wait for it, SIGKILL what is left after {@link STOP_TIMEOUT_MS}. */
async function stopAll(children: readonly Child[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    if (child.exit !== undefined || child.proc.pid === undefined) return
    try {
      process.kill(child.proc.pid, 'SIGTERM')
    } catch {
      // already gone
    }
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          if (child.proc.pid !== undefined) process.kill(child.proc.pid, 'SIGKILL')
        } catch {
          // already gone
        }
        resolve()
      }, STOP_TIMEOUT_MS)
    })
    await Promise.race([child.exited, killed])
    clearTimeout(timer)
    await child.exited
  }))
}

function shortLog(line: string): string {
  try {
    const record = JSON.parse(line) as Record<string, unknown>
    const { t: _t, level, name, msg, ...rest } = record
    const extra = Object.keys(rest).length === 0 ? '' : ` ${JSON.stringify(rest)}`
    return `${String(level).padEnd(5)} ${String(name)}: ${String(msg)}${extra}`.slice(0, 160)
  } catch {
    return line.slice(0, 160)
  }
}

/** `m:ss.s` since the demo started. */
function clock(ms: number): string {
  const s = ms / 1000
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, '0')}`
}

type Stats = NonNullable<Child['last']>

/** The report of the node whose directory is shown for `c`: the proxy's for a server, the first server's for the proxy. */
function viewerOf(children: readonly Child[], c: Child): Child | undefined {
  if (c.role === 'proxy') return children.find((x) => x.role !== 'proxy' && x.role !== 'coordinator')
  return children.find((x) => x.id === PROXY_ID) ?? children.find((x) => x.role === 'proxy')
}

/** The table lines: one row per process. */
function table(children: readonly Child[], port: number, key: string, uptimeMs: number): string[] {
  const rows = children.map((c) => {
    const s = c.last
    const services = s?.services
    const viewer = viewerOf(children, c)?.last?.services
    let players = '-'
    let directory = '-'
    if (services !== undefined && c.role === 'proxy') {
      players = String(services.players)
      if (viewer !== undefined) directory = String(viewer.total)
    } else if (services !== undefined) {
      players = `${services.players}/${services.max}`
      const seen = viewer?.directory[c.id]
      if (seen !== undefined) directory = String(seen)
    }
    return [
      c.id,
      c.role,
      String(c.proc.pid ?? '-'),
      s === undefined ? '-' : String(s.peers),
      services === undefined || services.state === '' ? '-' : services.state,
      players,
      directory,
      s === undefined || s.rttMs === 0 ? '-' : s.rttMs.toFixed(2),
      c.rate < 10 ? c.rate.toFixed(1) : c.rate.toFixed(0),
      s === undefined ? '-' : String(s.retransmits),
      s === undefined ? '' : events(c, s),
    ]
  })
  return [
    `warpmesh demo  127.0.0.1  coordinator :${port}  key ${key.slice(0, 8)}… (generated)  up ${(uptimeMs / 1000).toFixed(1)}s`,
    '',
    ...formatTable(['NODE', 'ROLE', 'PID', 'PEERS', 'STATE', 'PLAYERS', 'DIRECTORY', 'RTT MS', 'MSGS/S', 'RETRANS', 'TRAFFIC'], rows).trimEnd().split('\n'),
  ]
}

/** Under the table: what PLAYERS and DIRECTORY mean, the directory as the proxy sees it, and the recent services events. */
function servicesLines(children: readonly Child[], recent: readonly string[], tty: boolean): string[] {
  const proxy = children.find((c) => c.id === PROXY_ID)
  const view = proxy?.last?.services
  const lines = [`PLAYERS: players a server hosts (the proxy: connected through it); DIRECTORY: the count network.count({ server }) reports in ${PROXY_ID}'s directory (for ${PROXY_ID}: the total in ${viewerOf(children, proxy ?? children[0]!)?.id ?? '-'}'s)`]
  if (view !== undefined) {
    const servers = Object.entries(view.directory).map(([id, n]) => `${id} ${n}`).join(', ')
    lines.push(`directory seen from ${PROXY_ID}: ${servers === '' ? 'no server listed yet' : servers}; total ${view.total}, ${view.players} connected through ${PROXY_ID}`)
  }
  const title = tty ? 'recent services events:' : 'services events since the last table:'
  return [...lines, ...(recent.length > 0 ? [title, ...recent.map((l) => `  ${l}`)] : [])]
}

function events(c: Child, s: Stats): string {
  const n = (k: string): number => s.events[k] ?? 0
  if (c.role === 'proxy') {
    // The application's own round trip beside the RTT column: servers told to the directory showing the move.
    const moveMs = s.requestRttMs === undefined ? '' : ` (p50 ${s.requestRttMs.toFixed(2)} ms)`
    return `moves ${n('moves')} ok/${n('movesFailed')} failed${moveMs}, joined ${n('connected')}, quit ${n('quit')}, /find ${n('finds')}, messages ${n('messages')}`
  }
  if (c.role === 'coordinator') return 'peer table only, no data relayed'
  if (s.services?.mode === 'lobby') {
    return `transfers out ${n('transfersOk')} ok/${n('transfersWaiting')} no game open/${n('transfersFailed')} failed, announcements ${n('announcements')}`
  }
  return `rounds ${n('rounds')}, players in ${n('joined')}, back to hub ${n('backToHub')}, announcements ${n('announcements')}`
}
