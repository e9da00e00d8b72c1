/**
 * Network services benchmark (`npm run bench:services`): warpmesh's player
 * directory (`Network`, lib/services/) against a Redis directory built the
 * way RedisBungee does it (bench/lib/services-redis.ts), every node a real
 * process, a real redis-server, in one run:
 *
 * 1. time until a move is visible on every node, p50 and p99 (goal: warpmesh ≤ 0.5 × Redis);
 * 2. a lookup: warpmesh `locate` (local) vs Redis `HGET` (a round trip) (goal: ≥ 100 × faster);
 * 3. after a server (warpmesh) / proxy (Redis) is SIGKILLed with its players,
 *    time until no node lists them, each with its own heartbeat settings
 *    (warpmesh 1000 ms × 3 misses; RedisBungee 1 s heartbeats, 30 s timeout) (goal: ≤ 0.2 × Redis);
 * 4. heap per player on a node holding 100,000 players replicated from the others (goal: ≤ 300 B).
 *
 * Figures are medians of `--repetitions` (default 3); the repetitions of the
 * two directories alternate. How each is measured: bench/SERVICES.md (written
 * by this program, with a JSON beside it).
 *
 * Options: `--quick` (small counts, one repetition, short heartbeats: a
 * smoke run, its ratios mean nothing), `--nodes N` (5), `--players N` (500),
 * `--moves N` (300), `--lookups N` (20000), `--kill-players N` (100),
 * `--memory-players N` (100000), `--repetitions R` (3), `--seed S`,
 * `--warmup N` (0: warm-up round trips of every warpmesh node before it
 * binds, `MeshNodeOptions.warmup`, as docs/benchmarks.md "Warm-up" advises for nodes that
 * exchange few messages), `--md PATH`, `--json PATH`.
 */
import { writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatLine, formatMicros, median } from './harness/stats.js'
import type { Summary } from './harness/stats.js'
import {
  DEFAULT_TIMING, DirectoryCluster, QUICK_TIMING, checkClock, makePlayers, measureFanoutFloor, measureKill, measureLookups,
  measureMemory, measureMoves, redisUnavailable,
} from './lib/services-bench.js'
import type { BackendName, KillRun, LookupRun, MemoryRun, MoveRun } from './lib/services-bench.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

// ---------------------------------------------------------------- options

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined
}
function intArg(name: string, fallback: number, min = 1): number {
  const text = arg(name)
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`)
  return n
}
const quick = process.argv.includes('--quick')
const settings = {
  quick,
  nodes: intArg('nodes', quick ? 3 : 5, 2),
  players: intArg('players', quick ? 30 : 500),
  warmupMoves: quick ? 3 : 30,
  moves: intArg('moves', quick ? 10 : 300),
  lookups: intArg('lookups', quick ? 2000 : 20_000),
  lookupBatch: 1000,
  killPlayers: intArg('kill-players', quick ? 20 : 100),
  memoryPlayers: intArg('memory-players', quick ? 2000 : 100_000),
  repetitions: intArg('repetitions', quick ? 1 : 3),
  seed: intArg('seed', 20, 0),
  timing: { ...(quick ? QUICK_TIMING : DEFAULT_TIMING), meshWarmup: intArg('warmup', 0, 0) },
}
const mdPath = arg('md') ?? join(ROOT, 'bench', 'SERVICES.md')
const jsonPath = arg('json') ?? join(ROOT, 'bench', 'services-results.json')

/** Goals of issue 20's Benchmark section. */
const GOALS = { moveRatio: 0.5, lookupSpeedup: 100, killRatio: 0.2, bytesPerPlayer: 300 }

/** How it is measured and what the Redis variant follows: the second half of bench/SERVICES.md. */
const METHOD = `## How it is measured

Every node is its own process (\`bench/lib/services-node.ts\`), driven by the bench over an IPC pipe that is
never on a measured path. Both directories run at once on the same machine (${settings.nodes} nodes each, ids
\`n1\`..\`n${settings.nodes}\`); their repetitions alternate. **One clock:** every process stamps events with
\`process.hrtime.bigint()\`, which on Linux reads CLOCK_MONOTONIC, shared by all processes of the machine; the
bench checks this at start (a node's stamp must fall between the driver's readings before and after asking).

- **warpmesh**: a coordinator process and nodes with a \`MeshNode\` (encrypted, the coordinator's key) and a
  \`Network\` (\`lib/services/network.ts\`), each listed as a server; default heartbeat 1000 ms × 3 misses.
- **Redis**: a real \`redis-server\` (started by the redis variant's launcher, \`bench/variants/redis.ts\`) and
  nodes that each play one RedisBungee proxy (\`bench/lib/services-redis.ts\`), two ioredis connections each.

1. **Move visible on every node.** ${settings.players} players placed round-robin, then moves one at a time, 10 ms
   apart (a random player to a random other server, the same seeded sequence for both). Before a move every node
   registers the expectation "this player is on the new server" and checks its own view on every directory event
   (a 20 ms sweep is only a fallback; what it catches is counted as "by sweep" and should be 0). warpmesh: the old
   server calls \`network.leave(p)\`, then, once it answered (≥ 10 ms later: replies are held 10 ms so that no IPC
   message wakes the driver while nodes are receiving), the new one calls \`network.join(p)\`, as when a player
   leaves one server and connects to another; t0 is the \`join\` call; a node's view is
   \`network.locate(p).server\`. Redis: the player's proxy does \`HSET player:<uuid> server <new>\` and
   \`PUBLISH redisbungee-data\` a SERVER_CHANGE (issued together: one pipelined write, applied in order); t0 is
   just before; a node's view is its server cache, updated in place by the message. The figure is the last node's
   stamp − t0 (the writing node included). A node whose view left the new server again after showing it counts a
   "flap" (must be 0).
   **Floor:** after each repetition's moves, raw UDP datagrams (64 B, no protocol, no encryption) from one of the
   warpmesh node processes to all the others, sent back to back (${settings.moves} rounds, the sender taking turns,
   10 ms apart), timed to the last arrival the same way: the least any one-hop fan-out to those processes takes
   on this machine; and the same with \`MeshNode.send\` (reliable-ordered, encrypted, as a delta is sent) on
   channel 3, without the services' work: what the mesh under the services costs.
2. **Lookup.** On node n1, lookups of every placed player in turn, each answer checked against the bench's
   record. warpmesh: \`locate(name)\` answers from memory, too fast to time one call, so ${settings.lookupBatch}-call
   batches are timed and the figure is per call (p50/p99 over batches). Redis: \`HGET player:<uuid> server\`,
   each round trip awaited and timed alone — what RedisBungee's \`getServer\` does on a cache miss.
3. **Players of a killed node.** Per repetition a fresh node hosts ${settings.killPlayers} players; once every
   node lists them it is SIGKILLed by PID (t0 just before the signal), and each node stamps the moment its own view
   lists none of them (warpmesh: \`count({ server })\` is 0; Redis: the proxy left its live-proxy list, so
   \`getPlayers\` no longer includes its set), then confirms with a full query (warpmesh: \`isOnline\` of each;
   Redis: \`SUNION\` of the live proxies' \`usersOnline\` sets) that none is listed. The figure is the last node's
   stamp − t0. Each side keeps its own heartbeat settings: warpmesh 1000 ms × 3 misses (lease), Redis as RedisBungee
   (1 s heartbeat, 30 s timeout in whole seconds).
4. **Heap per player.** A separate warpmesh cluster of ${Math.max(2, settings.nodes - 1)} nodes hosts
   ${settings.memoryPlayers.toLocaleString('en-US')} players (names like \`mPlayer12345\`, 16-digit XUIDs, no fields). Per repetition a
   fresh observer process (\`--expose-gc\`) starts its \`MeshNode\`, reads \`heapUsed\` after forced GCs, creates
   its \`Network\` (not listed: like a proxy), waits until its directory holds every player, and reads
   \`heapUsed\` again: (after − before) / players.

### The Redis variant, and where it comes from

Built after RedisBungee as of ProxioDev/ValioBungee tag \`0.11.4\` (the last release with this layout):

- \`RedisBungee-Bungee/src/main/java/com/imaginarycode/minecraft/redisbungee/RedisBungeeBungeeListener.java\`,
  \`onServerChange\`: \`hset("player:" + uuid, "server", name)\`, then
  \`PayloadUtils.playerServerChangePayload\` publishes a SERVER_CHANGE on \`redisbungee-data\`.
- \`RedisBungee-API/.../api/AbstractDataManager.java\`: on SERVER_CHANGE, \`serverCache.put(target, server)\`;
  \`getServer\` on a miss: \`hget("player:" + uuid, "server")\`.
- \`RedisBungee-API/.../api/tasks/HeartbeatTask.java\`: every second (\`INTERVAL = 1\`, seconds),
  \`hset("heartbeats", proxyId, <redis TIME in seconds>)\`, then \`updateProxiesIds()\`.
- \`RedisBungee-API/.../api/RedisBungeePlugin.java\`, \`getCurrentProxiesIds\`: a proxy is live while
  \`time <= stamp + RedisUtil.PROXY_TIMEOUT\` (\`PROXY_TIMEOUT = 30\`, \`api/util/RedisUtil.java\`);
  \`getPlayers\`: \`SUNION\` of \`proxy:<id>:usersOnline\` of the live proxies. A crashed proxy's players therefore
  stay listed until its last heartbeat is 30 s old.

The current ValioBungee (master, \`af80e20\`) is slower still, which this bench does not take: heartbeats go through a
Redis stream (\`api/ProxyDataManager.java\`, \`publishHeartbeat\`, every 1 s) but dead proxies are only looked for
by \`correctionTask\`, scheduled every 60 s (\`proxies/bungeecord/.../RedisBungee.java\`), with the same 30 s
timeout — a crashed proxy's players linger 30–90 s; and a server change only invalidates the cache
(\`PlayerDataManager.handleNetworkPlayerServerChange\`), so the next lookup pays an \`HGET\`. The variant here takes
the faster choices: a cache updated in place from the message (the TODO in that method), HSET and PUBLISH in one
write, and a live-proxy check every heartbeat.
`

// ---------------------------------------------------------------- output

const lines: string[] = []
const say = (line: string): void => { lines.push(line); process.stdout.write(`${line}\n`) }
const msText = (x: number): string => formatMicros(x * 1000)
const nsText = (x: number): string => formatMicros(x / 1000)
const fixed = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '—')
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT MET')

/** One table row: what, the variant, each repetition, the median. */
function row(what: string, variant: string, reps: readonly number[], fmt: (x: number) => string): string {
  return `| ${what} | ${variant} | ${reps.map(fmt).join(' / ')} | ${fmt(median(reps))} |`
}

// ---------------------------------------------------------------- run

interface Results {
  settings: typeof settings
  machine: { cpus: number, loadAverage: number[] }
  clockCheckUs?: Record<BackendName, number>
  moves: Record<BackendName, MoveRun[]>
  /** Raw UDP fan-out from one node process to the others: the floor under a move (ms). */
  fanoutFloor: Summary[]
  /** The same with MeshNode.send (reliable-ordered, encrypted), without the services (ms). */
  meshFanout: Summary[]
  lookups: Record<BackendName, LookupRun[]>
  kills: Record<BackendName, KillRun[]>
  memory: MemoryRun[]
  nodeStats?: Record<string, unknown>
  goals?: Record<string, { value: number, byRepetition: number[], goal: string, met: boolean }>
}

const results: Results = {
  settings,
  machine: { cpus: availableParallelism(), loadAverage: loadavg() },
  moves: { warpmesh: [], redis: [] },
  fanoutFloor: [],
  meshFanout: [],
  lookups: { warpmesh: [], redis: [] },
  kills: { warpmesh: [], redis: [] },
  memory: [],
}

const reason = await redisUnavailable()
if (reason !== undefined) {
  process.stderr.write(`bench:services needs redis-server: ${reason}\n`)
  process.exit(1)
}

say(`machine: ${results.machine.cpus} CPUs, load average ${results.machine.loadAverage.map((x) => x.toFixed(1)).join(' ')} at start (a shared machine: compare ratios within one run)`)
say(`bench:services${quick ? ' --quick (smoke run: short heartbeats, small counts; the ratios mean nothing)' : ''} — ${settings.nodes} nodes per directory, ${settings.players} players, ${settings.moves} moves (+ ${settings.warmupMoves} warm-up), ${settings.lookups} lookups, kill with ${settings.killPlayers} players, memory at ${settings.memoryPlayers} players, medians of ${settings.repetitions}`)
say(`heartbeats: warpmesh ${settings.timing.meshHeartbeatMs} ms × ${settings.timing.leaseMisses} misses${settings.timing.meshWarmup ? `, warm-up ${settings.timing.meshWarmup} round trips` : ''}; Redis ${settings.timing.redisHeartbeatMs} ms, proxy timeout ${settings.timing.redisTimeoutMs} ms (stamps in ${settings.timing.redisStampUnitMs === 1000 ? 's' : `${settings.timing.redisStampUnitMs} ms`})`)

const clusters: Partial<Record<BackendName, DirectoryCluster>> = {}
const backends: BackendName[] = ['warpmesh', 'redis']
try {
  const players = makePlayers(settings.players, 'b')
  for (const b of backends) {
    const c = await DirectoryCluster.start(b, { nodes: settings.nodes, timing: settings.timing })
    clusters[b] = c
    results.clockCheckUs ??= { warpmesh: NaN, redis: NaN }
    results.clockCheckUs[b] = await checkClock(c.nodes[0]!)
    await c.place(players)
    // Unmeasured moves first (both directories get the same sequence: same seed, same placement).
    await measureMoves(c, { moves: settings.warmupMoves, seed: settings.seed })
  }
  const both = (): Array<[BackendName, DirectoryCluster]> => backends.map((b) => [b, clusters[b]!])

  for (let r = 0; r < settings.repetitions; r++) {
    for (const [b, c] of both()) {
      const run = await measureMoves(c, { moves: settings.moves, seed: settings.seed + 1 + r, gapMs: 10 })
      results.moves[b].push(run)
      say(formatLine(`move visible everywhere, ${b} #${r + 1}`, [`p50 ${msText(run.visibleMs.p50)}`, `p99 ${msText(run.visibleMs.p99)}`, `max ${msText(run.visibleMs.max)}`, `(n=${run.moves}, flaps ${run.flaps}, by sweep ${run.polled})`], 40))
    }
    for (const kind of ['udp', 'mesh'] as const) {
      const floor = await measureFanoutFloor(clusters.warpmesh!, { rounds: settings.moves, kind })
      ;(kind === 'udp' ? results.fanoutFloor : results.meshFanout).push(floor)
      say(formatLine(`${kind === 'udp' ? 'floor: raw UDP' : 'MeshNode.send'} fan-out to ${settings.nodes - 1} #${r + 1}`, [`p50 ${msText(floor.p50)}`, `p99 ${msText(floor.p99)}`, `max ${msText(floor.max)}`, `(n=${floor.count})`], 40))
    }
  }
  for (let r = 0; r < settings.repetitions; r++) {
    for (const [b, c] of both()) {
      const run = await measureLookups(c, { count: settings.lookups, batch: settings.lookupBatch })
      results.lookups[b].push(run)
      say(formatLine(`lookup, ${b} #${r + 1}`, [`p50 ${nsText(run.perCallNs.p50)}`, `p99 ${nsText(run.perCallNs.p99)}`, run.kind === 'batch' ? `(per call of ${settings.lookupBatch}-call batches, ${run.lookups} calls)` : `(each round trip timed, ${run.lookups})`], 40))
    }
  }
  for (let r = 0; r < settings.repetitions; r++) {
    for (const [b, c] of both()) {
      const timeoutMs = b === 'warpmesh' ? 30_000 : settings.timing.redisTimeoutMs + 20_000
      const run = await measureKill(c, { victim: `v${r + 1}`, players: settings.killPlayers, timeoutMs })
      results.kills[b].push(run)
      say(formatLine(`killed node's players gone, ${b} #${r + 1}`, [`${msText(run.goneMs)}`, `(each node: ${Object.values(run.byNode).map(msText).join(', ')}; by sweep ${run.polled})`], 40))
    }
  }
  results.nodeStats = {}
  for (const [b, c] of both()) results.nodeStats[b] = await c.stats()
} finally {
  for (const c of Object.values(clusters)) await c.close()
}

{
  // The memory measurement on a cluster of its own: its nodes host the players, fresh observers hold them.
  const c = await DirectoryCluster.start('warpmesh', { nodes: Math.max(2, settings.nodes - 1), timing: settings.timing })
  try {
    await c.place(makePlayers(settings.memoryPlayers, 'm'), 600_000)
    for (let r = 0; r < settings.repetitions; r++) {
      const run = await measureMemory(c, { observer: `m${r + 1}`, timeoutMs: 300_000 })
      results.memory.push(run)
      say(formatLine(`heap per player, warpmesh #${r + 1}`, [`${fixed(run.bytesPerPlayer, 0)} B`, `(${run.players} players from ${c.nodes.length} nodes; heap ${(run.heapBeforeBytes / 2 ** 20).toFixed(1)} → ${(run.heapAfterBytes / 2 ** 20).toFixed(1)} MiB; filled in ${msText(run.fillMs)})`], 40))
    }
  } finally {
    await c.close()
  }
}

// ---------------------------------------------------------------- table and goals

const p = (runs: readonly MoveRun[], k: keyof Summary): number[] => runs.map((x) => x.visibleMs[k])
const lk = (runs: readonly LookupRun[], k: keyof Summary): number[] => runs.map((x) => x.perCallNs[k])
const kills = (runs: readonly KillRun[]): number[] => runs.map((x) => x.goneMs)
const byRep = (a: readonly number[], b: readonly number[], f: (x: number, y: number) => number): number[] => a.map((x, i) => f(x, b[i]!))

const goals: NonNullable<Results['goals']> = {}
const goal = (key: string, value: number, reps: number[], text: string, met: boolean): void => { goals[key] = { value, byRepetition: reps, goal: text, met } }
const wm = results.moves.warpmesh
const rd = results.moves.redis
goal('moveP50Ratio', median(p(wm, 'p50')) / median(p(rd, 'p50')), byRep(p(wm, 'p50'), p(rd, 'p50'), (x, y) => x / y), `≤ ${GOALS.moveRatio}`, median(p(wm, 'p50')) / median(p(rd, 'p50')) <= GOALS.moveRatio)
goal('moveP99Ratio', median(p(wm, 'p99')) / median(p(rd, 'p99')), byRep(p(wm, 'p99'), p(rd, 'p99'), (x, y) => x / y), `≤ ${GOALS.moveRatio}`, median(p(wm, 'p99')) / median(p(rd, 'p99')) <= GOALS.moveRatio)
const lw = lk(results.lookups.warpmesh, 'p50')
const lr = lk(results.lookups.redis, 'p50')
goal('lookupSpeedup', median(lr) / median(lw), byRep(lr, lw, (x, y) => x / y), `≥ ${GOALS.lookupSpeedup}`, median(lr) / median(lw) >= GOALS.lookupSpeedup)
const kw = kills(results.kills.warpmesh)
const kr = kills(results.kills.redis)
goal('killRatio', median(kw) / median(kr), byRep(kw, kr, (x, y) => x / y), `≤ ${GOALS.killRatio}`, median(kw) / median(kr) <= GOALS.killRatio)
const mem = results.memory.map((m) => m.bytesPerPlayer)
goal('bytesPerPlayer', median(mem), mem, `≤ ${GOALS.bytesPerPlayer} B`, median(mem) <= GOALS.bytesPerPlayer)
results.goals = goals

say('')
say('| measurement | directory | each repetition | median |')
say('|---|---|---|---|')
for (const b of backends) say(row('move visible on every node, p50', b, p(results.moves[b], 'p50'), msText))
for (const b of backends) say(row('move visible on every node, p99', b, p(results.moves[b], 'p99'), msText))
say(row('floor: raw UDP fan-out to every other process, p50', 'udp', results.fanoutFloor.map((f) => f.p50), msText))
say(row('floor: raw UDP fan-out to every other process, p99', 'udp', results.fanoutFloor.map((f) => f.p99), msText))
say(row('MeshNode.send fan-out to every other process, p50', 'warpmesh mesh', results.meshFanout.map((f) => f.p50), msText))
say(row('MeshNode.send fan-out to every other process, p99', 'warpmesh mesh', results.meshFanout.map((f) => f.p99), msText))
for (const b of backends) say(row('lookup, p50 per call', b, lk(results.lookups[b], 'p50'), nsText))
for (const b of backends) say(row('lookup, p99 per call', b, lk(results.lookups[b], 'p99'), nsText))
for (const b of backends) say(row('killed node\'s players gone everywhere', b, kills(results.kills[b]), msText))
say(row('heap per player at ' + settings.memoryPlayers.toLocaleString('en-US') + ' players', 'warpmesh', mem, (x) => `${fixed(x, 0)} B`))
say('')
say('| goal | value (median) | each repetition | goal | |')
say('|---|---|---|---|---|')
const goalRow = (label: string, key: string, fmt: (x: number) => string): void => {
  const g = goals[key]!
  say(`| ${label} | ${fmt(g.value)} | ${g.byRepetition.map(fmt).join(' / ')} | ${g.goal} | ${verdict(g.met)} |`)
}
goalRow('move visible, p50: warpmesh / Redis', 'moveP50Ratio', (x) => fixed(x, 3))
goalRow('move visible, p99: warpmesh / Redis', 'moveP99Ratio', (x) => fixed(x, 3))
{
  const floor = median(results.fanoutFloor.map((f) => f.p50))
  say(`| (context) raw UDP fan-out floor p50 / Redis move p50 | ${fixed(floor / median(p(rd, 'p50')), 3)} | ${results.fanoutFloor.map((f, i) => fixed(f.p50 / rd[i]!.visibleMs.p50, 3)).join(' / ')} | the least a one-hop fan-out can take here | |`)
  const mesh = median(results.meshFanout.map((f) => f.p50))
  say(`| (context) MeshNode.send fan-out p50 / Redis move p50 | ${fixed(mesh / median(p(rd, 'p50')), 3)} | ${results.meshFanout.map((f, i) => fixed(f.p50 / rd[i]!.visibleMs.p50, 3)).join(' / ')} | the mesh under the services, without them | |`)
}
goalRow('lookup p50: Redis HGET / warpmesh locate', 'lookupSpeedup', (x) => `${fixed(x, 0)} ×`)
goalRow('players of a killed node gone: warpmesh / Redis', 'killRatio', (x) => fixed(x, 3))
goalRow('heap per player per node', 'bytesPerPlayer', (x) => `${fixed(x, 0)} B`)

writeFileSync(jsonPath, `${JSON.stringify(results, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`)
writeFileSync(mdPath, [
  '# Network services benchmark',
  '',
  `Written by \`npm run bench:services${quick ? ' -- --quick' : ''}\` (${new Date().toISOString()}, Node ${process.version}); the figures in JSON: \`${jsonPath.startsWith(ROOT) ? jsonPath.slice(ROOT.length + 1) : jsonPath}\`.`,
  '',
  '```',
  ...lines.filter((l) => !l.startsWith('|') && l !== ''),
  '```',
  '',
  ...lines.filter((l) => l.startsWith('|') || l === '').slice(1),
  '',
  METHOD,
].join('\n'))
process.stdout.write(`\nwrote ${mdPath} and ${jsonPath}\n`)
