import t from 'tap'
import { alive, cleanEnv, killAll, runCli, startCli, waitGone } from './fixtures/cli.js'

t.teardown(killAll)

interface Row {
  node: string
  role: string
  pid: number
  peers: number
  state: string
  players: string
  directory: string
  rate: number
}

/** The rows of the last complete table block in the demo's plain (non-TTY) output. */
function lastTable(stdout: string): Row[] {
  const blocks = stdout.split(/\n(?=warpmesh demo {2}127\.0\.0\.1)/)
  for (const block of blocks.reverse()) {
    const lines = block.split('\n')
    const header = lines.findIndex((l) => l.startsWith('NODE '))
    if (header < 0) continue
    const rows: Row[] = []
    for (const line of lines.slice(header + 1)) {
      const cells = line.split(/\s{2,}/)
      if (cells.length < 10) break
      rows.push({
        node: cells[0]!, role: cells[1]!, pid: Number(cells[2]), peers: Number(cells[3]),
        state: cells[4]!, players: cells[5]!, directory: cells[6]!, rate: Number(cells[8]),
      })
    }
    if (rows.length > 0) return rows
  }
  return []
}

t.test('demo --duration 8: a table with the proxy and 3 downstreams, nonzero msgs/s, the services at work; exit 0, no process left', async (t) => {
  const r = await runCli(['demo', '--duration', '8'], cleanEnv(), 50_000)
  t.equal(r.code, 0, 'exit 0')
  const rows = lastTable(r.stdout)
  t.same(rows.map((row) => [row.node, row.role]), [
    ['coordinator', 'coordinator'],
    ['proxy-1', 'proxy'],
    ['lobby-1', 'downstream'],
    ['skywars-1', 'downstream'],
    ['bedwars-1', 'downstream'],
  ], `table rows\n${r.stdout}\n${r.stderr}`)
  for (const row of rows.slice(1)) {
    t.ok(row.rate > 0, `${row.node}: ${row.rate} msgs/s`)
    t.equal(row.peers, 3, `${row.node} sees the other 3 nodes`)
  }
  t.equal(rows[0]?.peers, 4, 'coordinator table holds 4 nodes')
  t.match(r.stdout, /proxy-1 .* \d+\.\d\d +[\d.]+ +\d+ +moves \d+ ok\/\d+ failed \(p50 \d+\.\d\d ms\)/,
    'the proxy shows its RTT and, beside it, how long its moves take')

  // The services: every server listed with a state and its own count beside the directory's.
  for (const row of rows.slice(2)) {
    t.match(row.state, /^(starting|lobby|full|in-game)$/, `${row.node} has a server state`)
    t.match(row.players, /^\d+\/(100|8|12)$/, `${row.node}: its own count / max`)
    t.match(row.directory, /^\d+$/, `${row.node}: the count proxy-1's directory reports`)
  }
  t.match(rows[1]?.directory, /^\d+$/, 'proxy-1: the total in another node\'s directory')
  const views = [...r.stdout.matchAll(/^directory seen from proxy-1: bedwars-1 (\d+), lobby-1 (\d+), skywars-1 (\d+); total (\d+), (\d+) connected through proxy-1$/gm)]
  t.ok(views.length > 0, 'a line with the directory counts per server, as proxy-1 sees them')
  t.ok(views.some((m) => Number(m[4]) > 0), 'the directory lists players')
  for (const m of views) t.equal(Number(m[1]) + Number(m[2]) + Number(m[3]), Number(m[4]), `the per-server counts add up to the total: ${m[0]}`)
  t.match(r.stdout, /^ {2}\d+:\d\d\.\d {2}transfer Steve\d+ lobby-1 → (skywars|bedwars)-1 via proxy-1 in \d+\.\d\d ms/m,
    'a player transferred from the lobby to a game by a selector, moved by the proxy')
  t.match(r.stdout, /^ {2}\d+:\d\d\.\d {2}\/find steve\d+: (Steve\d+ is on [a-z]+-1|not online)$/m, 'a player located through the directory, name case-insensitive')
  t.match(r.stdout, /(skywars|bedwars)-1: starting → lobby \(0\/\d+ players\)/, 'a game server opens: starting → lobby')
  t.match(r.stdout, /(skywars|bedwars)-1: lobby → full \((8\/8|12\/12) players\)/, 'a game server fills: lobby → full')
  t.match(r.stdout, /(skywars|bedwars)-1: full → in-game/, '… then starts its round: full → in-game')
  const pids = rows.map((row) => row.pid)
  t.equal(new Set(pids).size, 5, 'five separate processes')
  t.match(r.stdout, /stopped 5 processes: coordinator\(\d+\) proxy-1\(\d+\)/)
  t.same(pids.filter(alive), [], 'every child is gone when the demo exits')
  t.notMatch(r.stderr, /"level":"error"/, 'no error logged')
})

t.test('demo: SIGINT stops every child and exits 0; SIGKILL of the parent takes the children down', async (t) => {
  const interrupted = startCli(['demo'], cleanEnv())
  const killed = startCli(['demo'], cleanEnv())
  const pidsOf = async (p: typeof interrupted): Promise<number[]> => {
    await p.waitFor(/bedwars-1 .*\n/, 'stdout', 40_000)
    return lastTable(p.stdout).map((row) => row.pid)
  }
  const [a, b] = await Promise.all([pidsOf(interrupted), pidsOf(killed)])
  t.equal(a.length, 5)
  t.equal(b.length, 5)
  const [ra] = await Promise.all([interrupted.stop('SIGINT'), killed.stop('SIGKILL')])
  t.equal(ra.code, 0, 'SIGINT: exit 0')
  t.match(ra.stdout, /stopped 5 processes/)
  t.same(a.filter(alive), [], 'SIGINT: no child left')
  t.same(await waitGone(b), [], 'parent SIGKILLed: the children notice the IPC disconnect and exit')
})
