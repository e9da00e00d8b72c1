import t from 'tap'
import {
  ClosedError,
  CONFIG_VALUE_QUOTE_MAX,
  ConfigError,
  DuplicateIdError,
  ErrorCode,
  HandshakeError,
  isWarpmeshError,
  NativeModuleError,
  PeerDownError,
  QueueFullError,
  SessionClosedError,
  TimeoutError,
  UnknownPeerError,
  WarpmeshError,
} from '../lib/errors.js'

const cause = new Error('low-level')

const cases: Array<{
  err: WarpmeshError
  name: string
  code: string
  message: string
  cls: abstract new (...args: never[]) => WarpmeshError
}> = [
  { err: new WarpmeshError('boom'), name: 'WarpmeshError', code: 'ERR_WARPMESH', message: 'boom', cls: WarpmeshError },
  {
    err: new ConfigError('WARPMESH_BIND', 'abc', 'host:port, e.g. 0.0.0.0:7400'),
    name: 'ConfigError',
    code: 'ERR_WARPMESH_CONFIG',
    message: 'WARPMESH_BIND="abc" is invalid: expected host:port, e.g. 0.0.0.0:7400',
    cls: ConfigError,
  },
  {
    err: new SessionClosedError('idle-timeout'),
    name: 'SessionClosedError',
    code: 'ERR_WARPMESH_SESSION_CLOSED',
    message: 'session closed: idle-timeout',
    cls: SessionClosedError,
  },
  { err: new TimeoutError(), name: 'TimeoutError', code: 'ERR_WARPMESH_TIMEOUT', message: 'timed out', cls: TimeoutError },
  {
    err: new TimeoutError({ timeoutMs: 250 }),
    name: 'TimeoutError',
    code: 'ERR_WARPMESH_TIMEOUT',
    message: 'timed out after 250 ms',
    cls: TimeoutError,
  },
  {
    err: new PeerDownError('lobby-1'),
    name: 'PeerDownError',
    code: 'ERR_WARPMESH_PEER_DOWN',
    message: 'peer "lobby-1" is down',
    cls: PeerDownError,
  },
  {
    err: new UnknownPeerError('lobby-9'),
    name: 'UnknownPeerError',
    code: 'ERR_WARPMESH_UNKNOWN_PEER',
    message: 'unknown peer "lobby-9"',
    cls: UnknownPeerError,
  },
  { err: new ClosedError(), name: 'ClosedError', code: 'ERR_WARPMESH_CLOSED', message: 'closed', cls: ClosedError },
  { err: new QueueFullError(), name: 'QueueFullError', code: 'ERR_WARPMESH_QUEUE_FULL', message: 'queue full', cls: QueueFullError },
  {
    err: new QueueFullError({ limit: 1024 }),
    name: 'QueueFullError',
    code: 'ERR_WARPMESH_QUEUE_FULL',
    message: 'queue full (limit 1024)',
    cls: QueueFullError,
  },
  {
    err: new DuplicateIdError('lobby-1'),
    name: 'DuplicateIdError',
    code: 'ERR_WARPMESH_DUPLICATE_ID',
    message: 'node id "lobby-1" is already held by a live node',
    cls: DuplicateIdError,
  },
  {
    err: new DuplicateIdError('lobby-1', { holder: '10.0.0.5:7401' }),
    name: 'DuplicateIdError',
    code: 'ERR_WARPMESH_DUPLICATE_ID',
    message: 'node id "lobby-1" is already held by a live node at 10.0.0.5:7401',
    cls: DuplicateIdError,
  },
  {
    err: new HandshakeError('no matching network key'),
    name: 'HandshakeError',
    code: 'ERR_WARPMESH_HANDSHAKE',
    message: 'no matching network key',
    cls: HandshakeError,
  },
  {
    err: new NativeModuleError('sodium-native', 'Cannot find module \'sodium-native\''),
    name: 'NativeModuleError',
    code: 'ERR_WARPMESH_NATIVE_MODULE',
    message: 'cannot load the native module sodium-native (Cannot find module \'sodium-native\'): protected sessions need it to ' +
      'encrypt every packet; install it where warpmesh runs (`npm ci`, or `npm install sodium-native`), on a platform it ships ' +
      `a prebuilt binary for (${process.platform}-${process.arch} here), and keep it out of bundlers (it loads a .node file)`,
    cls: NativeModuleError,
  },
]

t.test('name, code, message, instanceof', async (t) => {
  for (const c of cases) {
    t.equal(c.err.name, c.name, c.name)
    t.equal(c.err.code, c.code, `${c.name} code`)
    t.equal(c.err.message, c.message, `${c.name} message`)
    t.ok(c.err instanceof c.cls, `${c.name} instanceof own class`)
    t.ok(c.err instanceof WarpmeshError, `${c.name} instanceof WarpmeshError`)
    t.ok(c.err instanceof Error, `${c.name} instanceof Error`)
    t.ok(c.err.stack?.startsWith(`${c.name}: ${c.message}`), `${c.name} stack header`)
    t.equal(String(c.err), `${c.name}: ${c.message}`)
    t.notOk(Object.hasOwn(c.err, 'cause'), `${c.name} has no cause unless given`)
    t.notOk(Object.keys(c.err).includes('name'), 'name is not an own enumerable field')
    t.ok(isWarpmeshError(c.err), `${c.name} isWarpmeshError`)
    t.ok(isWarpmeshError(c.err, c.code as never), `${c.name} isWarpmeshError with its code`)
  }
  // Classes are distinct: no error is an instance of another leaf class.
  t.notOk(new TimeoutError() instanceof ClosedError)
  t.notOk(new PeerDownError('x') instanceof UnknownPeerError)
})

t.test('every code is distinct and listed in ErrorCode', async (t) => {
  const codes = Object.values(ErrorCode)
  t.equal(new Set(codes).size, codes.length)
  for (const c of cases) t.ok(codes.includes(c.code as never), c.code)
  t.ok(codes.every((code) => code.startsWith('ERR_WARPMESH')))
})

t.test('cause is carried (ES2022)', async (t) => {
  const all: WarpmeshError[] = [
    new WarpmeshError('x', ErrorCode.Generic, { cause }),
    new ConfigError('V', 'v', 'e', { cause }),
    new SessionClosedError('closed', { cause }),
    new TimeoutError({ cause }),
    new PeerDownError('p', { cause }),
    new UnknownPeerError('p', { cause }),
    new ClosedError({ cause }),
    new QueueFullError({ cause }),
    new DuplicateIdError('id', { cause }),
    new HandshakeError('h', { cause }),
    new NativeModuleError('m', 'f', { cause }),
  ]
  for (const err of all) t.equal(err.cause, cause, err.name)
  t.equal(new ClosedError({ cause: undefined }).cause, undefined, 'explicit undefined cause is kept as given')
})

t.test('fields', async (t) => {
  const config = new ConfigError('WARPMESH_BIND', '1.2.3.4:70000', 'host:port, e.g. 0.0.0.0:7400', {
    reason: 'port 70000 is out of range 1..65535',
  })
  t.equal(config.variable, 'WARPMESH_BIND')
  t.equal(config.value, '1.2.3.4:70000')
  t.equal(config.expected, 'host:port, e.g. 0.0.0.0:7400')
  t.equal(config.reason, 'port 70000 is out of range 1..65535')
  t.equal(
    config.message,
    'WARPMESH_BIND="1.2.3.4:70000" is invalid: port 70000 is out of range 1..65535; expected host:port, e.g. 0.0.0.0:7400',
  )
  t.equal(new ConfigError('V', 'v', 'x').reason, undefined)

  const unset = new ConfigError('WARPMESH_ID', undefined, 'an id, e.g. lobby-1')
  t.equal(unset.value, undefined)
  t.equal(unset.message, 'WARPMESH_ID is not set: expected an id, e.g. lobby-1')

  t.equal(new SessionClosedError('peer-closed').reason, 'peer-closed')
  t.equal(new SessionClosedError('replaced', { message: 'custom' }).message, 'custom')
  t.equal(new TimeoutError({ timeoutMs: 5000 }).timeoutMs, 5000)
  t.equal(new TimeoutError().timeoutMs, undefined)
  t.equal(new TimeoutError({ timeoutMs: 5, message: 'request to a timed out' }).message, 'request to a timed out')
  t.equal(new PeerDownError('lobby-2').peerId, 'lobby-2')
  t.equal(new PeerDownError('x', { message: 'm' }).message, 'm')
  t.equal(new UnknownPeerError('lobby-3').peerId, 'lobby-3')
  t.equal(new UnknownPeerError('x', { message: 'm' }).message, 'm')
  t.equal(new ClosedError({ message: 'node is closed' }).message, 'node is closed')
  t.equal(new QueueFullError({ limit: 8 }).limit, 8)
  t.equal(new QueueFullError().limit, undefined)
  t.equal(new QueueFullError({ message: 'send queue full' }).message, 'send queue full')
  const dup = new DuplicateIdError('lobby-1', { holder: '10.0.0.5:7401' })
  t.equal(dup.id, 'lobby-1')
  t.equal(dup.holder, '10.0.0.5:7401')
  t.equal(new DuplicateIdError('a').holder, undefined)
  t.equal(new DuplicateIdError('a', { message: 'm' }).message, 'm')
  t.equal(new HandshakeError('x', { address: '10.0.0.7:7400' }).address, '10.0.0.7:7400')
  t.equal(new HandshakeError('x').address, undefined)
  t.equal(new NativeModuleError('sodium-native', 'x').module, 'sodium-native')
  // Peer ids are quoted so odd ids stay readable.
  t.equal(new PeerDownError('a"b').message, 'peer "a\\"b" is down')
})

t.test('ConfigError quotes and cuts long values', async (t) => {
  const long = 'x'.repeat(CONFIG_VALUE_QUOTE_MAX + 30)
  const err = new ConfigError('WARPMESH_META', long, 'key=value')
  t.equal(err.value, long, 'field keeps the whole value')
  t.equal(
    err.message,
    `WARPMESH_META="${'x'.repeat(CONFIG_VALUE_QUOTE_MAX)}"… (${long.length} characters) is invalid: expected key=value`,
  )
  const exact = 'y'.repeat(CONFIG_VALUE_QUOTE_MAX)
  t.ok(new ConfigError('V', exact, 'e').message.startsWith(`V="${exact}" is invalid`), 'value at the limit is not cut')
  t.equal(new ConfigError('V', 'a\tb\n', 'e').message, 'V="a\\tb\\n" is invalid: expected e', 'control characters escaped')
})

t.test('isWarpmeshError', async (t) => {
  t.notOk(isWarpmeshError(new Error('x')))
  t.notOk(isWarpmeshError({ code: 'ERR_WARPMESH_CLOSED', message: 'not an Error' }))
  t.notOk(isWarpmeshError(null))
  t.notOk(isWarpmeshError('ERR_WARPMESH'))
  t.notOk(isWarpmeshError(Object.assign(new Error('x'), { code: 42 })))
  t.notOk(isWarpmeshError(Object.assign(new Error('x'), { code: 'ERR_WARPMESHY' })), 'prefix must end at a boundary')
  t.notOk(isWarpmeshError(Object.assign(new Error('x'), { code: 'ECONNRESET' })))
  // An error from another copy of warpmesh: not our class, same code.
  const foreign = Object.assign(new Error('x'), { code: 'ERR_WARPMESH_TIMEOUT' })
  t.ok(isWarpmeshError(foreign))
  t.ok(isWarpmeshError(foreign, ErrorCode.Timeout))
  t.notOk(isWarpmeshError(foreign, ErrorCode.Closed))
  t.notOk(isWarpmeshError(new ClosedError(), ErrorCode.Timeout))
})
