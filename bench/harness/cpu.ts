/**
 * CPU time of the bench's processes, read from `/proc/<pid>/stat` (Linux):
 * user + system time, in µs, at the kernel's clock-tick resolution (10 ms
 * at the usual 100 Hz). Elsewhere, or for a process that is gone, the
 * figure is NaN: the scenarios report it as not measured rather than zero.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 if that fails). */
export function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    let n = NaN
    try { n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) } catch { /* not POSIX */ }
    ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100
  }
  return ticksPerSecond
}

/**
 * utime + stime in clock ticks from the text of a `/proc/<pid>/stat` file,
 * or NaN when it does not parse. The command name (field 2) is in
 * parentheses and may itself contain spaces and parentheses, so fields are
 * counted from the last `)`.
 */
export function parseStatTicks (stat: string): number {
  const close = stat.lastIndexOf(')')
  if (close < 0) return NaN
  // After ") ": state(3) ppid(4) ... utime(14) stime(15), 1-based as in proc(5).
  const fields = stat.slice(close + 2).trim().split(/\s+/)
  const utime = Number(fields[14 - 3])
  const stime = Number(fields[15 - 3])
  return Number.isInteger(utime) && Number.isInteger(stime) ? utime + stime : NaN
}

/** CPU µs (user + system) used so far by process `pid`, or NaN. */
export function processCpuUs (pid: number): number {
  let text: string
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return NaN }
  return parseStatTicks(text) * 1e6 / clockTicks()
}

/** CPU µs used so far by each named process. */
export function cpuSnapshot (processes: ReadonlyArray<{ readonly name: string, readonly pid: number }>): Map<string, number> {
  return new Map(processes.map((p) => [p.name, processCpuUs(p.pid)]))
}

/**
 * CPU µs per unit (round, message) each process used between two
 * snapshots, and their sum. A process missing from either snapshot, or not
 * measurable, makes the total NaN (not an undercount).
 */
export function cpuPerUnit (before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, units: number): { total: number, byProcess: Record<string, number> } {
  const byProcess: Record<string, number> = {}
  let total = 0
  for (const [name, a] of after) {
    const b = before.get(name)
    const v = b === undefined || !(units > 0) ? NaN : (a - b) / units
    byProcess[name] = v
    total += v
  }
  return { total: after.size > 0 ? total : NaN, byProcess }
}

/**
 * CPU µs used so far by process `pid`, split into its main thread (the event
 * loop: the thread whose id is the pid) and all its other threads (V8's
 * optimizing compiler and garbage collector helpers, libuv's pool), from
 * `/proc/<pid>/task/<tid>/stat`; NaNs when not readable.
 */
export function threadCpuUs (pid: number): { main: number, other: number } {
  let tids: string[]
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { return { main: NaN, other: NaN } }
  let main = NaN
  let other = 0
  for (const tid of tids) {
    let text: string
    try { text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8') } catch { continue } // a thread that just ended
    const us = parseStatTicks(text) * 1e6 / clockTicks()
    if (Number(tid) === pid) main = us
    else other += us
  }
  return { main, other }
}
