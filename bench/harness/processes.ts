/**
 * Child processes and last-resort cleanup for the driver.
 *
 * Every process the harness starts is tracked by PID and stopped by PID
 * (never by name). Cleanup hooks run on normal exit, on SIGINT/SIGTERM/
 * SIGHUP, and are unregistered by the code that registered them once it has
 * cleaned up itself, so on the normal path nothing is left for them.
 */

import type { ChildProcess } from 'node:child_process'

const tracked = new Map<number, ChildProcess>()
const hooks = new Set<() => void>()
let installed = false

function runHooks (): void {
  for (const pid of tracked.keys()) {
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
  }
  tracked.clear()
  for (const hook of [...hooks]) {
    hooks.delete(hook)
    try { hook() } catch { /* best effort: keep running the others */ }
  }
}

function onSignal (signal: NodeJS.Signals): void {
  runHooks()
  process.removeListener(signal, onSignal)
  // Re-raise only if nobody else handles it, so the default action (and exit status) stays.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function install (): void {
  if (installed) return
  installed = true
  process.on('exit', runHooks)
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal)
}

/**
 * Register a synchronous cleanup to run if the driver exits or is signalled
 * before {@link removeExitHook} is called. Returns `hook` for convenience.
 */
export function addExitHook (hook: () => void): () => void {
  install()
  hooks.add(hook)
  return hook
}

/** Unregister a hook added with {@link addExitHook}. */
export function removeExitHook (hook: () => void): void {
  hooks.delete(hook)
}

/**
 * Track `child` so it is SIGKILLed by PID if the driver exits while it is
 * still running. Returns the PID. Throws if the process failed to start.
 */
export function trackProcess (child: ChildProcess): number {
  const pid = child.pid
  if (pid === undefined) throw new Error('child process has no PID (spawn failed)')
  install()
  tracked.set(pid, child)
  child.once('exit', () => { if (tracked.get(pid) === child) tracked.delete(pid) })
  return pid
}

/** Whether `child` has not exited yet. */
export function isRunning (child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

/** Send `signal` to `child` by its PID, if it is still running. */
export function signalProcess (child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !isRunning(child)) return
  try { process.kill(child.pid, signal) } catch { /* exited meanwhile */ }
}

/** Resolves when `child` has exited, or with `false` after `timeoutMs`. */
export function waitForExit (child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.removeListener('exit', onExit); resolve(false) }, timeoutMs)
    const onExit = (): void => { clearTimeout(timer); resolve(true) }
    child.once('exit', onExit)
  })
}

/**
 * Stop `child` by PID: `signal` first (default SIGTERM), SIGKILL if it has
 * not exited within `graceMs` (default 2000).
 */
export async function stopProcess (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 2000): Promise<void> {
  if (!isRunning(child)) return
  signalProcess(child, signal)
  if (await waitForExit(child, graceMs)) return
  signalProcess(child, 'SIGKILL')
  await waitForExit(child, 2000)
}
