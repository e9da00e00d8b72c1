import t from 'tap'
import { clockTicks, cpuPerUnit, parseStatTicks, processCpuUs } from '../../bench/harness/cpu.js'

t.test('parseStatTicks counts fields from the last parenthesis', async (t) => {
  // Field 2 (comm) may hold spaces and parentheses; utime and stime are fields 14 and 15.
  const fields = (utime: number, stime: number): string => ['S', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, utime, stime, 0, 0, 20, 0, 1].join(' ')
  t.equal(parseStatTicks(`1234 (node) ${fields(150, 25)}`), 175)
  t.equal(parseStatTicks(`99 (a) b (c d)) ${fields(7, 3)}\n`), 10, 'comm "a) b (c d)"')
  t.ok(Number.isNaN(parseStatTicks('garbage')), 'no parenthesis')
  t.ok(Number.isNaN(parseStatTicks('1 (x) S 1 2')), 'too few fields')
})

t.test('cpuPerUnit divides each process\'s difference and sums them; a gap makes the total NaN', async (t) => {
  const before = new Map([['proxy', 1000], ['d1', 500]])
  const after = new Map([['proxy', 3000], ['d1', 1500]])
  t.same(cpuPerUnit(before, after, 100), { total: 30, byProcess: { proxy: 20, d1: 10 } })
  const late = cpuPerUnit(before, new Map([['proxy', 3000], ['hub', 900]]), 100)
  t.equal(late.byProcess.proxy, 20)
  t.ok(Number.isNaN(late.byProcess.hub!) && Number.isNaN(late.total), 'a process not in the first snapshot is not counted as zero')
  t.ok(Number.isNaN(cpuPerUnit(before, after, 0).total), 'no units')
  t.ok(Number.isNaN(cpuPerUnit(before, new Map(), 10).total), 'nothing measured')
})

t.test('processCpuUs reads this process from /proc and grows with work', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  t.ok(clockTicks() > 0)
  const a = processCpuUs(process.pid)
  const end = performance.now() + 60
  let x = 0
  while (performance.now() < end) x += Math.sqrt(x + 1)
  const b = processCpuUs(process.pid)
  t.ok(a > 0 && b > a, `CPU µs ${a} → ${b} after 60 ms of work (${x > 0})`)
  t.ok(Number.isNaN(processCpuUs(2 ** 22 + 12345)), 'a process that does not exist')
})
