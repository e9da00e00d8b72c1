/**
 * bench/fanout-blocks.ts on a small cluster of real processes: blocks come
 * back in order with the figures a fan-out has (the raw UDP floor: no
 * warm-up, quick to start), and the CLI rejects a bad option by name.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { fanOutBlocks, formatBlock, HEADER } from '../../bench/fanout-blocks.js'

t.test('two blocks of a fan-out to 2 raw-dgram downstreams', async (t) => {
  const blocks = await fanOutBlocks('raw-dgram', { downstreams: 2, blocks: 2, rounds: 50, warmup: 10 })
  t.equal(blocks.length, 2)
  for (const b of blocks) {
    t.ok(b.p50 > 0, `p50 ${b.p50} µs`)
    t.ok(b.cpu >= 0 && b.proxy >= 0 && b.downstream >= 0, 'CPU figures measured (clock ticks: may be 0 for so few rounds)')
    t.ok(b.downstreamMain >= 0 && b.downstreamOther >= 0, 'thread split measured')
    // A round: 2 broadcasts and 2 answers, nothing else on UDP unless the machine sends more.
    t.ok(b.udpPerRound >= 4, `udp datagrams per round ${b.udpPerRound}`)
  }
  const line = formatBlock('raw-dgram', 0, blocks[0]!)
  t.match(line, /^raw-dgram\s+1\s+\d+/)
  t.equal(HEADER.split(/\s+/)[0], 'variant')
})

t.test('a bad option stops the CLI with its name', async (t) => {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'fanout-blocks.js')
  const r = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, [script, '--blocks', 'zero'], (err, _out, stderr) => resolve({ code: err === null ? 0 : (err as NodeJS.ErrnoException & { code: number }).code, stderr }))
  })
  t.equal(r.code, 1)
  t.match(r.stderr, /--blocks must be a positive integer, got zero/)
})
