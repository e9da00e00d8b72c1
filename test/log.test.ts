import t from 'tap'
import { ConfigError } from '../lib/errors.js'
import { createLogger, LOG_LEVELS, type LoggerOptions, type RecordLevel, silentLogger } from '../lib/log.js'

/** A logger writing into an array, with a clock the test moves. */
function setup(options: LoggerOptions = {}) {
  const raw: string[] = []
  const clock = { now: 1_700_000_000_000 }
  const log = createLogger({
    name: 'test',
    stream: { write: (line: string) => raw.push(line) },
    now: () => clock.now,
    ...options,
  })
  const records = (): Record<string, unknown>[] =>
    raw.map((line) => {
      if (!line.endsWith('\n') || line.indexOf('\n') !== line.length - 1) throw new Error(`not one line: ${line}`)
      return JSON.parse(line) as Record<string, unknown>
    })
  return { log, raw, clock, records }
}

const RECORD_LEVELS: RecordLevel[] = ['error', 'warn', 'info', 'debug', 'trace']

t.test('one JSON line per record, fields after the fixed ones', async (t) => {
  const { log, raw, records } = setup({ level: 'trace' })
  log.info('listening', { port: 7400, address: '0.0.0.0' })
  t.equal(raw.length, 1)
  t.equal(raw[0], '{"t":1700000000000,"level":"info","name":"test","msg":"listening","port":7400,"address":"0.0.0.0"}\n')
  log.warn('no fields')
  t.same(records()[1], { t: 1_700_000_000_000, level: 'warn', name: 'test', msg: 'no fields' })
  t.same(Object.keys(records()[0] as object), ['t', 'level', 'name', 'msg', 'port', 'address'], 'key order')
  log.info('quote " and newline \n and \u2028', { 'odd"key': 'x\ny' })
  t.same(records()[2], {
    t: 1_700_000_000_000,
    level: 'info',
    name: 'test',
    msg: 'quote " and newline \n and \u2028',
    'odd"key': 'x\ny',
  })
})

t.test('every method writes at its level', async (t) => {
  const { log, records } = setup({ level: 'trace' })
  for (const level of RECORD_LEVELS) log[level](`at ${level}`)
  t.same(
    records().map((r) => [r.level, r.msg]),
    RECORD_LEVELS.map((level) => [level, `at ${level}`]),
  )
})

t.test('level filtering and isEnabled', async (t) => {
  for (const threshold of LOG_LEVELS) {
    const { log, records } = setup({ level: threshold })
    t.equal(log.level, threshold)
    for (const level of RECORD_LEVELS) log[level]('x')
    const limit = LOG_LEVELS.indexOf(threshold)
    const want = threshold === 'silent' ? [] : RECORD_LEVELS.slice(0, limit + 1)
    t.same(
      records().map((r) => r.level),
      want,
      `threshold ${threshold}`,
    )
    for (const level of RECORD_LEVELS) t.equal(log.isEnabled(level), want.includes(level), `${threshold}: ${level}`)
  }
})

t.test('defaults: level info, name warpmesh, stderr, Date.now', async (t) => {
  const writes: string[] = []
  const original = process.stderr.write
  process.stderr.write = ((chunk: string) => {
    writes.push(chunk)
    return true
  }) as typeof process.stderr.write
  const before = Date.now()
  try {
    const log = createLogger()
    t.equal(log.level, 'info')
    t.equal(log.name, 'warpmesh')
    log.debug('hidden')
    log.info('shown')
  } finally {
    process.stderr.write = original
  }
  t.equal(writes.length, 1)
  const record = JSON.parse(writes[0] as string) as { t: number; name: string; msg: string }
  t.equal(record.name, 'warpmesh')
  t.equal(record.msg, 'shown')
  t.ok(record.t >= before && record.t <= Date.now(), 't is Date.now()')
  t.same(createLogger({}).level, 'info')
})

t.test('invalid options throw at once', async (t) => {
  t.throws(() => createLogger({ level: 'loud' as never }), {
    name: 'RangeError',
    message: 'options.level must be one of error, warn, info, debug, trace, silent; got "loud"',
  })
  t.throws(() => createLogger({ level: 'toString' as never }), RangeError, 'no prototype keys')
  t.throws(() => createLogger({ maxRateLimitKeys: 0 }), {
    name: 'RangeError',
    message: 'options.maxRateLimitKeys must be a positive integer; got 0',
  })
  t.throws(() => createLogger({ maxRateLimitKeys: 1.5 }), RangeError)
})

t.test('field values that JSON cannot take as they are', async (t) => {
  const { log, records } = setup()
  const cause = new Error('socket gone')
  const err = new ConfigError('WARPMESH_BIND', 'abc', 'host:port', { cause })
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  log.error('failed', {
    err,
    big: 12345678901234567890n,
    buf: Buffer.from([1, 2, 3]),
    bytes: new Uint8Array(5),
    skipped: undefined,
    nested: { ok: true, list: [1, 'two'] },
    nan: Number.NaN,
    fn: () => 1,
    sym: Symbol('s'),
    notBuffer: { type: 'Buffer', data: 'text' },
  })
  log.error('cycle', { cyclic, fine: 1 })
  const [first, second] = records() as [Record<string, any>, Record<string, any>]
  t.equal(first.err.name, 'ConfigError')
  t.equal(first.err.message, err.message)
  t.equal(first.err.code, 'ERR_WARPMESH_CONFIG')
  t.equal(first.err.variable, 'WARPMESH_BIND', 'own fields of the error are kept')
  t.equal(first.err.value, 'abc')
  t.match(first.err.stack, /^ConfigError: WARPMESH_BIND="abc" is invalid/)
  t.equal(first.err.cause.name, 'Error')
  t.equal(first.err.cause.message, 'socket gone')
  t.equal(first.big, '12345678901234567890')
  t.equal(first.buf, '<3 bytes>')
  t.equal(first.bytes, '<5 bytes>')
  t.notOk('skipped' in first, 'undefined fields are left out')
  t.same(first.nested, { ok: true, list: [1, 'two'] })
  t.equal(first.nan, null)
  t.equal(first.fn, null, 'a function field is written as null, keeping the line valid JSON')
  t.equal(first.sym, null)
  t.same(first.notBuffer, { type: 'Buffer', data: 'text' }, 'only real Buffer JSON is shortened')
  t.equal(second.cyclic, '[unserializable]', 'a cycle spoils only its own field')
  t.equal(second.fine, 1)
  t.equal(second.msg, 'cycle')
})

t.test('error causes: non-Error cause, deep chains', async (t) => {
  const { log, records } = setup()
  log.error('a', { err: new Error('outer', { cause: 'a string cause' }) })
  let deep: Error = new Error('level 0')
  for (let i = 1; i <= 10; i++) deep = new Error(`level ${i}`, { cause: deep })
  log.error('b', { err: deep })
  const noStack = new Error('no stack')
  noStack.stack = undefined
  log.error('c', { err: noStack })
  const [a, b, c] = records() as [Record<string, any>, Record<string, any>, Record<string, any>]
  t.equal(a.err.cause, 'a string cause')
  let depth = 0
  let node = b.err
  while (typeof node === 'object') {
    depth++
    node = node.cause
  }
  t.equal(depth, 5, 'cause chain cut after a bounded depth')
  t.equal(node, 'Error: level 5', 'the cut is shown as text')
  t.same(c.err, { name: 'Error', message: 'no stack' })
})

t.test('reserved keys in fields do not overwrite the record', async (t) => {
  const { log, records } = setup()
  log.info('real', { msg: 'fake', level: 'fake', t: 0, name: 'fake', other: 1 })
  t.same(records()[0], {
    t: 1_700_000_000_000,
    level: 'info',
    name: 'test',
    msg: 'real',
    _msg: 'fake',
    _level: 'fake',
    _t: 0,
    _name: 'fake',
    other: 1,
  })
})

t.test('child loggers add fields, record fields win, state is shared', async (t) => {
  const { log, raw, records, clock } = setup({ level: 'debug' })
  const child = log.child({ peer: 'lobby-1', session: 7 })
  t.equal(child.level, 'debug')
  t.equal(child.name, 'test')
  t.equal(child.isEnabled('trace'), false)
  child.info('up')
  child.info('update', { session: 8, extra: true })
  const grandchild = child.child({ channel: 2 })
  grandchild.debug('deep')
  grandchild.trace('filtered')
  const r = records()
  t.same(r[0], { t: clock.now, level: 'info', name: 'test', msg: 'up', peer: 'lobby-1', session: 7 })
  t.same(r[1], { t: clock.now, level: 'info', name: 'test', msg: 'update', peer: 'lobby-1', session: 8, extra: true })
  t.notMatch(raw[1], /"session":7/, 'overridden binding is not written twice')
  t.same(r[2], { t: clock.now, level: 'debug', name: 'test', msg: 'deep', peer: 'lobby-1', session: 7, channel: 2 })
  t.equal(r.length, 3)
  // Rate-limit state is shared between parent and child.
  log.rateLimited('k', 1000).warn('parent')
  child.rateLimited('k', 1000).warn('child, suppressed')
  t.equal(records().length, 4)
})

t.test('rateLimited: suppresses within the interval, reports the count in the next line', async (t) => {
  const { log, clock, records } = setup()
  const warnFailed = (address: string): void =>
    log.rateLimited(`handshake-failed:${address}`, 10_000).warn('handshake failed: no matching key', { address })
  warnFailed('10.0.0.7:7400') // t=0: written
  clock.now += 1
  warnFailed('10.0.0.7:7400') // suppressed
  clock.now += 5000
  warnFailed('10.0.0.7:7400') // suppressed
  warnFailed('10.0.0.8:7400') // other key: written
  clock.now += 4998 // 9999 ms after the first record
  warnFailed('10.0.0.7:7400') // suppressed
  clock.now += 1 // exactly 10000 ms: written, reports 3
  warnFailed('10.0.0.7:7400')
  clock.now += 10_000
  warnFailed('10.0.0.7:7400') // written, nothing suppressed in between
  const r = records()
  t.same(
    r.map((x) => [x.address, x.suppressed, x.t]),
    [
      ['10.0.0.7:7400', undefined, 1_700_000_000_000],
      ['10.0.0.8:7400', undefined, 1_700_000_005_001],
      ['10.0.0.7:7400', 3, 1_700_000_010_000],
      ['10.0.0.7:7400', undefined, 1_700_000_020_000],
    ],
  )
  t.equal(r[2]?.msg, 'handshake failed: no matching key')
  t.equal(r[2]?.level, 'warn')
})

t.test('rateLimited: every level, and disabled levels are not counted', async (t) => {
  const { log, clock, records } = setup({ level: 'info' })
  const limited = log.rateLimited('x', 100)
  limited.debug('below threshold') // not written, not counted, does not start the interval
  limited.trace('below threshold')
  limited.error('first')
  limited.warn('suppressed')
  limited.info('suppressed')
  limited.debug('not counted')
  clock.now += 100
  limited.info('second')
  t.same(
    records().map((r) => [r.level, r.msg, r.suppressed]),
    [
      ['error', 'first', undefined],
      ['info', 'second', 2],
    ],
  )
  const all = setup({ level: 'trace' })
  for (const level of RECORD_LEVELS) {
    all.log.rateLimited(level, 1)[level](level)
    all.clock.now += 1
  }
  t.same(
    all.records().map((r) => r.level),
    RECORD_LEVELS,
  )
})

t.test('rateLimited: state is bounded, least recently written key forgotten first', async (t) => {
  const { log, clock, records } = setup({ maxRateLimitKeys: 2 })
  const warn = (key: string): void => log.rateLimited(key, 1000).warn(key)
  warn('a') // written; keys [a]
  clock.now += 1
  warn('b') // written; keys [a, b]
  clock.now += 1
  warn('a') // suppressed (a still known)
  clock.now += 1
  warn('c') // written; evicts a (least recently written); keys [b, c]
  clock.now += 1
  warn('b') // suppressed: b still known
  warn('a') // written again: a was forgotten (its suppressed count is lost); evicts b
  t.same(
    records().map((r) => [r.msg, r.suppressed]),
    [
      ['a', undefined],
      ['b', undefined],
      ['c', undefined],
      ['a', undefined],
    ],
  )
  clock.now += 1000
  warn('c') // known, 1000 ms later: written, reports nothing suppressed
  t.same(records().at(-1), { t: clock.now, level: 'warn', name: 'test', msg: 'c' })
  // Writing again refreshes a key: after c's record, a is the oldest.
  warn('b') // unknown (evicted), written; evicts a
  clock.now += 1
  warn('a')
  t.equal(records().at(-1)?.msg, 'a', 'a had been evicted, so it is written at once')
})

t.test('a throwing stream never throws into the caller', async (t) => {
  let calls = 0
  const log = createLogger({
    stream: {
      write: () => {
        calls++
        throw new Error('EPIPE')
      },
    },
  })
  t.doesNotThrow(() => log.error('x'))
  t.equal(calls, 1)
})

t.test('silentLogger', async (t) => {
  t.equal(silentLogger.level, 'silent')
  t.equal(silentLogger.name, 'silent')
  for (const level of RECORD_LEVELS) {
    t.equal(silentLogger.isEnabled(level), false)
    t.equal(silentLogger[level]('x', { a: 1 }), undefined)
    t.equal(silentLogger.rateLimited('k', 1)[level]('x'), undefined)
  }
  t.equal(silentLogger.child({ a: 1 }), silentLogger)
  t.ok(Object.isFrozen(silentLogger))
})
