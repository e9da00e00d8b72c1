import t from 'tap'
import { alive, cleanEnv, killAll, runCli, startCli, waitGone } from './fixtures/cli.js'

t.teardown(killAll)

interface Row {
  node: string
  role: string
  pid: number
  peers: number
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
      if (cells.length < 8) break
      rows.push({ node: cells[0]!, role: cells[1]!, pid: Number(cells[2]), peers: Number(cells[3]), rate: Number(cells[6]) })
    }
    if (rows.length > 0) return rows
  }
  return []
}

t.test('demo --duration 4: a table with the proxy and 3 downstreams, nonzero msgs/s; exit 0, no process left', async (t) => {
  const r = await runCli(['demo', '--duration', '4'], cleanEnv(), 50_000)
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
  t.match(r.stdout, /proxy-1 .* \d+\.\d\d +[\d.]+ +\d+ +transfers \d+ ok\/\d+ full\/\d+ failed \(round trip p50 \d+\.\d\d ms\)/,
    'the proxy shows its RTT and, beside it, the round trip its transfer requests measure')
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
