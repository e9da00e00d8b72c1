import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import {
  coordinatorOptionsFromEnv,
  DATAGRAM_MAX_BYTES,
  DATAGRAM_MIN_BYTES,
  DEFAULT_COORDINATOR_PORT,
  DEFAULT_LOOPBACK_DATAGRAM,
  DEFAULT_MAX_DATAGRAM,
  DURATION_MAX_MS,
  ENV_VARS,
  type Env,
  EXPECTED_BOOL,
  EXPECTED_ID,
  EXPECTED_LOG_LEVEL,
  EXPECTED_META,
  EXPECTED_ROLE,
  expectedDuration,
  expectedHostPort,
  expectedHostPortList,
  expectedInt,
  formatEnvHelp,
  formatEnvTable,
  formatHostPort,
  HOST_PORT_LIST_MAX,
  META_MAX_PAIRS,
  nodeOptionsFromEnv,
  parseBool,
  parseDurationMs,
  parseHostPort,
  parseHostPortList,
  parseId,
  parseLogLevel,
  parseMeta,
  parsePositiveInt,
  parseRole,
} from '../lib/config.js'
import { coordinatorStartOptions, meshNodeOptions } from '../lib/cli.js'
import { Endpoint } from '../lib/endpoint.js'
import { CONFIG_VALUE_QUOTE_MAX, ConfigError } from '../lib/errors.js'
import { createLogger } from '../lib/log.js'
import { Coordinator } from '../lib/mesh/coordinator.js'
import { MeshNode } from '../lib/mesh/node.js'
import { KEY_LIST_FORM } from '../lib/security/keys.js'

/** Assert `fn` throws a ConfigError with exactly these fields, and a message naming them all. */
function throwsConfig(
  t: Test,
  fn: () => unknown,
  want: { variable: string; value: string | undefined; expected: string; reason?: string },
): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  const label = `${want.variable}=${JSON.stringify(want.value)}`
  if (!(caught instanceof ConfigError)) {
    t.fail(`${label}: expected a ConfigError, got ${String(caught)}`)
    return
  }
  t.equal(caught.code, 'ERR_WARPMESH_CONFIG', `${label}: code`)
  t.equal(caught.variable, want.variable, `${label}: variable`)
  t.equal(caught.value, want.value, `${label}: value`)
  t.equal(caught.expected, want.expected, `${label}: expected`)
  t.equal(caught.reason, want.reason, `${label}: reason`)
  const quoted =
    want.value === undefined || want.value.length <= CONFIG_VALUE_QUOTE_MAX
      ? JSON.stringify(want.value)
      : `${JSON.stringify(want.value.slice(0, CONFIG_VALUE_QUOTE_MAX))}… (${want.value.length} characters)`
  const head = want.value === undefined ? `${want.variable} is not set: ` : `${want.variable}=${quoted} is invalid: `
  const reason = want.reason === undefined ? '' : `${want.reason}; `
  t.equal(caught.message, `${head}${reason}expected ${want.expected}`, `${label}: message`)
}

const HP = expectedHostPort()

t.test('parseHostPort: good values', async (t) => {
  t.same(parseHostPort('V', '0.0.0.0:7400'), { host: '0.0.0.0', port: 7400, family: 4 })
  t.same(parseHostPort('V', '127.0.0.1:1'), { host: '127.0.0.1', port: 1, family: 4 })
  t.same(parseHostPort('V', '10.1.2.3:65535'), { host: '10.1.2.3', port: 65535, family: 4 })
  t.same(parseHostPort('V', '[::1]:7400'), { host: '::1', port: 7400, family: 6 })
  t.same(parseHostPort('V', '[fe80::1%eth0]:7400'), { host: 'fe80::1%eth0', port: 7400, family: 6 })
  t.same(parseHostPort('V', '[::ffff:10.0.0.1]:80'), { host: '::ffff:10.0.0.1', port: 80, family: 6 })
  t.same(parseHostPort('V', 'localhost:7400'), { host: 'localhost', port: 7400, family: 0 })
  t.same(parseHostPort('V', 'coord-1.mesh.example:7400'), { host: 'coord-1.mesh.example', port: 7400, family: 0 })
  t.same(parseHostPort('V', 'my_service:7400'), { host: 'my_service', port: 7400, family: 0 }, 'compose names may hold _')
  t.same(parseHostPort('V', 'example.com.:7400'), { host: 'example.com.', port: 7400, family: 0 }, 'FQDN trailing dot')
  t.same(parseHostPort('V', '  10.0.0.1:7400\r\n'), { host: '10.0.0.1', port: 7400, family: 4 }, 'whitespace and CR')
  t.same(parseHostPort('V', '10.0.0.1:07400'), { host: '10.0.0.1', port: 7400, family: 4 }, 'leading zero in port')
  t.same(parseHostPort('V', '0.0.0.0:0', undefined, { allowPortZero: true }), { host: '0.0.0.0', port: 0, family: 4 })
  // default port
  t.same(parseHostPort('V', 'coord', 7400), { host: 'coord', port: 7400, family: 0 })
  t.same(parseHostPort('V', '10.0.0.1', 7400), { host: '10.0.0.1', port: 7400, family: 4 })
  t.same(parseHostPort('V', '[::1]', 7400), { host: '::1', port: 7400, family: 6 })
  t.same(parseHostPort('V', '::1', 7400), { host: '::1', port: 7400, family: 6 }, 'bare IPv6 with a default port')
  t.same(parseHostPort('V', 'coord:7500', 7400), { host: 'coord', port: 7500, family: 0 }, 'explicit port wins')
  const longest = `${'a.'.repeat(126)}a.`
  t.same(parseHostPort('V', `${longest}:1`), { host: longest, port: 1, family: 0 }, '253 characters plus the root dot')
  t.same(parseHostPort('V', `${'a'.repeat(63)}.b:1`), { host: `${'a'.repeat(63)}.b`, port: 1, family: 0 })
})

t.test('parseHostPort: each kind of bad value', async (t) => {
  const bad = (value: string, reason: string, defaultPort?: number, options = {}): void =>
    throwsConfig(t, () => parseHostPort('WARPMESH_BIND', value, defaultPort, options), {
      variable: 'WARPMESH_BIND',
      value,
      expected: expectedHostPort(undefined, defaultPort),
      reason,
    })
  bad('', 'the value is empty')
  bad('   ', 'the value is empty')
  bad('abc', 'the port is missing')
  bad('10.0.0.1', 'the port is missing')
  bad('10.0.0.1:', 'the port is missing')
  bad(':7400', 'the host is missing')
  bad('10.0.0.1:abc', 'port "abc" is not a number')
  bad('10.0.0.1:-1', 'port "-1" is not a number')
  bad('10.0.0.1:+80', 'port "+80" is not a number')
  bad('10.0.0.1:80.5', 'port "80.5" is not a number')
  bad('10.0.0.1:123456', 'port 123456 is out of range 1..65535')
  bad('10.0.0.1:70000', 'port 70000 is out of range 1..65535')
  bad('10.0.0.1:0', 'port 0 is out of range 1..65535')
  bad('10.0.0.1:65536', 'port 65536 is out of range 0..65535', undefined, { allowPortZero: true })
  bad('999.1.1.1:80', '"999.1.1.1" is not a valid IPv4 address')
  bad('1.2.3:80', '"1.2.3" is not a valid IPv4 address')
  bad('01.2.3.4:80', '"01.2.3.4" is not a valid IPv4 address')
  bad('bad host:80', '"bad host" is not an IP address or host name')
  bad('-lead.example:80', '"-lead.example" is not an IP address or host name')
  bad('trail-.example:80', '"trail-.example" is not an IP address or host name')
  bad('a..b:80', '"a..b" is not an IP address or host name')
  bad(`${'a'.repeat(64)}:80`, 'a label of the host name is 64 characters long, at most 63 allowed')
  bad(`x.${'a'.repeat(64)}.y:80`, 'a label of the host name is 64 characters long, at most 63 allowed')
  bad(`${'a.'.repeat(127)}ab:80`, 'the host name is 256 characters long, at most 253 allowed')
  bad('ho$t:80', '"ho$t" is not an IP address or host name')
  bad('::1:7400', 'the port is missing; write IPv6 addresses in brackets, e.g. [::1]:7400')
  bad('::1', 'the port is missing; write IPv6 addresses in brackets, e.g. [::1]:7400')
  bad('a:b:c', 'too many ":"; write IPv6 addresses in brackets, e.g. [::1]:7400')
  bad('[::1', 'missing "]" after the IPv6 address')
  bad('[::1]7400', 'unexpected "7400" after "]"')
  bad('[::1]:', 'the port is missing')
  bad('[::1]', 'the port is missing')
  bad('[10.0.0.1]:80', '"10.0.0.1" is not an IPv6 address')
  bad('[zz::1]:80', '"zz::1" is not an IPv6 address')
  bad('[::1]:99999', 'port 99999 is out of range 1..65535')
})

t.test('parseHostPort: unspecified addresses', async (t) => {
  t.same(parseHostPort('V', '0.0.0.0:1'), { host: '0.0.0.0', port: 1, family: 4 }, 'allowed by default')
  t.same(parseHostPort('V', '[::]:1'), { host: '::', port: 1, family: 6 })
  const options = { allowUnspecified: false, example: '203.0.113.10:7401' }
  for (const [value, host] of [
    ['0.0.0.0:7401', '0.0.0.0'],
    ['[::]:7401', '::'],
    ['[0:0::0]:7401', '0:0::0'],
  ] as const) {
    throwsConfig(t, () => parseHostPort('WARPMESH_ADVERTISE', value, undefined, options), {
      variable: 'WARPMESH_ADVERTISE',
      value,
      expected: 'host:port, e.g. 203.0.113.10:7401',
      reason: `${host} is the unspecified address; give an address other nodes can reach`,
    })
  }
  t.same(parseHostPort('V', '[::2]:1', undefined, options), { host: '::2', port: 1, family: 6 })
  t.same(parseHostPort('V', 'zero:1', undefined, options), { host: 'zero', port: 1, family: 0 })
})

t.test('expected forms', async (t) => {
  t.equal(expectedHostPort(), 'host:port, e.g. 0.0.0.0:7400', 'the form of issue 3')
  t.equal(expectedHostPort('x:1', 7400), 'host:port or host (port 7400), e.g. x:1')
  t.equal(expectedHostPortList(), `comma-separated host:port list (at most ${HOST_PORT_LIST_MAX}), e.g. 10.0.0.1:7400,10.0.0.2:7400`)
  t.equal(expectedDuration(), 'a positive duration, in milliseconds or seconds, e.g. 250, 250ms or 2s')
  t.equal(expectedDuration(10), 'a duration of at least 10 ms, in milliseconds or seconds, e.g. 250, 250ms or 2s')
  t.equal(expectedDuration(undefined, 99), 'a positive duration of at most 99 ms, in milliseconds or seconds, e.g. 250, 250ms or 2s')
  t.equal(expectedDuration(10, 99), 'a duration from 10 ms to 99 ms, in milliseconds or seconds, e.g. 250, 250ms or 2s')
  t.equal(expectedInt(1, 3), 'a whole number from 1 to 3')
  // The exact message of the brief.
  throwsConfig(t, () => parseHostPort('WARPMESH_BIND', '10.0.0.1:x'), {
    variable: 'WARPMESH_BIND',
    value: '10.0.0.1:x',
    expected: 'host:port, e.g. 0.0.0.0:7400',
    reason: 'port "x" is not a number',
  })
})

t.test('formatHostPort round-trips', async (t) => {
  for (const text of ['10.0.0.1:7400', '[::1]:7400', '[fe80::1%eth0]:1', 'host.example:0']) {
    t.equal(formatHostPort(parseHostPort('V', text, undefined, { allowPortZero: true })), text)
  }
})

t.test('parseHostPortList', async (t) => {
  t.same(parseHostPortList('V', '10.0.0.1:7400'), [{ host: '10.0.0.1', port: 7400, family: 4 }])
  t.same(parseHostPortList('V', '10.0.0.1:7400, [::1]:7401 ,coord', 7400), [
    { host: '10.0.0.1', port: 7400, family: 4 },
    { host: '::1', port: 7401, family: 6 },
    { host: 'coord', port: 7400, family: 0 },
  ])
  t.same(parseHostPortList('V', 'a:1,a:2'), [
    { host: 'a', port: 1, family: 0 },
    { host: 'a', port: 2, family: 0 },
  ], 'same host, other port is not a duplicate')
  t.same(parseHostPortList('V', '[fe80::1%eth0]:1,[fe80::1%eth1]:1').length, 2, 'other zone is not a duplicate')
  const max = Array.from({ length: HOST_PORT_LIST_MAX }, (_, i) => `10.0.0.${i + 1}:7400`).join(',')
  t.equal(parseHostPortList('V', max).length, HOST_PORT_LIST_MAX)

  const V = 'WARPMESH_COORDINATORS'
  const bad = (value: string, reason: string, defaultPort?: number, options = {}): void =>
    throwsConfig(t, () => parseHostPortList(V, value, defaultPort, options), {
      variable: V,
      value,
      expected: expectedHostPortList(undefined, defaultPort),
      reason,
    })
  bad('', 'the value is empty')
  bad(' , ', 'item 1 is empty')
  bad('a:1,,b:2', 'item 2 is empty')
  bad('a:1,b:2,', 'item 3 is empty')
  bad('a:1,b:x', 'item 2 ("b:x"): port "x" is not a number')
  bad('a:1, b ', 'item 2 ("b"): the port is missing')
  bad('a:1,b:2,A:1', 'item 3 ("A:1") repeats item 1', undefined)
  bad('coord,coord:7400', 'item 2 ("coord:7400") repeats item 1', 7400)
  bad('[::1]:1,[0:0::1]:1', 'item 2 ("[0:0::1]:1") repeats item 1')
  bad('[fe80::1%eth0]:1,[fe80:0::1%eth0]:1', 'item 2 ("[fe80:0::1%eth0]:1") repeats item 1')
  bad(`${max},10.0.0.99:7400`, `${HOST_PORT_LIST_MAX + 1} addresses given, at most ${HOST_PORT_LIST_MAX} allowed`)
  bad('a:1,b:2,c:3', '3 addresses given, at most 2 allowed', undefined, { maxItems: 2 })
  throwsConfig(t, () => parseHostPortList(V, '0.0.0.0:7400', 7400, { allowUnspecified: false, example: 'c:1' }), {
    variable: V,
    value: '0.0.0.0:7400',
    expected: expectedHostPortList('c:1', 7400),
    reason: 'item 1 ("0.0.0.0:7400"): 0.0.0.0 is the unspecified address; give an address other nodes can reach',
  })
})

t.test('parseMeta', async (t) => {
  t.same(parseMeta('V', ''), {})
  t.same(parseMeta('V', '   '), {})
  t.same(parseMeta('V', 'mode=skywars,max=16'), { mode: 'skywars', max: '16' })
  t.same(parseMeta('V', ' mode = sky wars , tags= '), { mode: 'sky wars', tags: '' }, 'trimmed; empty value allowed')
  t.same(parseMeta('V', 'expr=a=b'), { expr: 'a=b' }, 'value may contain =')
  t.same(parseMeta('V', 'A.b_c-9=x'), { 'A.b_c-9': 'x' })
  t.same(parseMeta('V', 'motd=héllo ✓'), { motd: 'héllo ✓' })
  const proto = parseMeta('V', '__proto__=x,constructor=y')
  t.ok(Object.hasOwn(proto, '__proto__'), '__proto__ is an ordinary own property')
  t.equal(proto['__proto__'], 'x')
  t.equal(proto.constructor, 'y')
  t.equal(Object.getPrototypeOf(proto), Object.prototype, 'prototype untouched')
  const maxKey = 'k'.repeat(32)
  t.same(parseMeta('V', `${maxKey}=${'v'.repeat(128)}`), { [maxKey]: 'v'.repeat(128) })
  t.same(parseMeta('V', `k=${'é'.repeat(64)}`), { k: 'é'.repeat(64) }, '128 bytes of 2-byte characters')
  const maxPairs = Array.from({ length: META_MAX_PAIRS }, (_, i) => `k${i}=${i}`).join(',')
  t.equal(Object.keys(parseMeta('V', maxPairs)).length, META_MAX_PAIRS)

  const V = 'WARPMESH_META'
  const bad = (value: string, reason: string): void =>
    throwsConfig(t, () => parseMeta(V, value), { variable: V, value, expected: EXPECTED_META, reason })
  bad('a=1,,b=2', 'item 2 is empty')
  bad('a=1,', 'item 2 is empty')
  bad('a=1,novalue', 'item 2 ("novalue") has no "="')
  bad('=x', 'item 1 ("=x") has an empty key')
  bad(' = x', 'item 1 ("= x") has an empty key')
  bad('bad key=x', 'key "bad key" of item 1: the character " " at position 4 is not allowed')
  bad('a/b=x', 'key "a/b" of item 1: the character "/" at position 2 is not allowed')
  bad(`${'k'.repeat(33)}=x`, `key "${'k'.repeat(33)}" of item 1: 33 characters long, at most 32 allowed`)
  bad('a=1,a=2', 'key "a" appears twice')
  bad(`k=${'v'.repeat(129)}`, 'the value of "k" is 129 bytes, at most 128 allowed')
  bad(`k=${'é'.repeat(65)}`, 'the value of "k" is 130 bytes, at most 128 allowed')
  bad('k=a\u0001b', 'the value of "k" contains a control character')
  bad('k=a\u007fb', 'the value of "k" contains a control character')
  bad(`${maxPairs},extra=1`, `${META_MAX_PAIRS + 1} pairs given, at most ${META_MAX_PAIRS} allowed`)
})

t.test('parseId', async (t) => {
  t.equal(parseId('V', 'lobby-1'), 'lobby-1')
  t.equal(parseId('V', ' eu.proxy:2_a \r'), 'eu.proxy:2_a')
  t.equal(parseId('V', 'x'.repeat(64)), 'x'.repeat(64))
  const bad = (value: string, reason: string): void =>
    throwsConfig(t, () => parseId('WARPMESH_ID', value), { variable: 'WARPMESH_ID', value, expected: EXPECTED_ID, reason })
  bad('', 'the value is empty')
  bad('  ', 'the value is empty')
  bad('x'.repeat(65), '65 characters long, at most 64 allowed')
  bad('lobby 1', 'the character " " at position 6 is not allowed')
  bad('lobby/1', 'the character "/" at position 6 is not allowed')
  bad('lobbyé', 'the character "é" at position 6 is not allowed')
  bad('😀x', 'the character "😀" at position 1 is not allowed')
  bad('a\tb', 'the character "\\t" at position 2 is not allowed')
})

t.test('parseRole', async (t) => {
  t.equal(parseRole('V', 'proxy'), 'proxy')
  t.equal(parseRole('V', 'downstream'), 'downstream')
  t.equal(parseRole('V', 'mini_game-2'), 'mini_game-2')
  t.equal(parseRole('V', 'r'.repeat(32)), 'r'.repeat(32))
  const bad = (value: string, reason: string): void =>
    throwsConfig(t, () => parseRole('WARPMESH_ROLE', value), {
      variable: 'WARPMESH_ROLE',
      value,
      expected: EXPECTED_ROLE,
      reason,
    })
  bad('', 'the value is empty')
  bad('Proxy', 'the character "P" at position 1 is not allowed (roles are lowercase)')
  bad('lobby.eu', 'the character "." at position 6 is not allowed')
  bad('r'.repeat(33), '33 characters long, at most 32 allowed')
})

t.test('parseLogLevel', async (t) => {
  for (const level of ['error', 'warn', 'info', 'debug', 'trace', 'silent'] as const) {
    t.equal(parseLogLevel('V', level), level)
  }
  t.equal(parseLogLevel('V', ' DEBUG '), 'debug', 'case-insensitive')
  for (const value of ['', 'verbose', 'warning', 'info,debug']) {
    throwsConfig(t, () => parseLogLevel('WARPMESH_LOG', value), {
      variable: 'WARPMESH_LOG',
      value,
      expected: EXPECTED_LOG_LEVEL,
    })
  }
  t.equal(EXPECTED_LOG_LEVEL, 'one of error, warn, info, debug, trace, silent')
})

t.test('parseBool', async (t) => {
  for (const value of ['1', 'true', 'TRUE', 'yes', 'on', ' On ']) t.equal(parseBool('V', value), true, value)
  for (const value of ['0', 'false', 'False', 'no', 'off']) t.equal(parseBool('V', value), false, value)
  for (const value of ['', '2', 'y', 'enabled']) {
    throwsConfig(t, () => parseBool('WARPMESH_INSECURE', value), {
      variable: 'WARPMESH_INSECURE',
      value,
      expected: EXPECTED_BOOL,
    })
  }
})

t.test('parseDurationMs', async (t) => {
  t.equal(parseDurationMs('V', '250'), 250)
  t.equal(parseDurationMs('V', '250ms'), 250)
  t.equal(parseDurationMs('V', '250 ms'), 250)
  t.equal(parseDurationMs('V', '2s'), 2000)
  t.equal(parseDurationMs('V', '2S'), 2000)
  t.equal(parseDurationMs('V', '0.5s'), 500)
  t.equal(parseDurationMs('V', '1.1s'), 1100, 'no binary fraction noise')
  t.equal(parseDurationMs('V', '0.25'), 0.25)
  t.equal(parseDurationMs('V', '0.0001s'), 0.1)
  t.equal(parseDurationMs('V', String(DURATION_MAX_MS)), DURATION_MAX_MS)
  t.equal(parseDurationMs('V', '10', { min: 10, max: 10 }), 10)

  const V = 'WARPMESH_HEARTBEAT_MS'
  const bad = (value: string, reason: string | undefined, range: { min?: number; max?: number } = {}): void =>
    throwsConfig(t, () => parseDurationMs(V, value, range), {
      variable: V,
      value,
      expected: expectedDuration(range.min, range.max),
      ...(reason === undefined ? {} : { reason }),
    })
  bad('', undefined)
  bad('abc', undefined)
  bad('-5', undefined)
  bad('1e3', undefined)
  bad('5m', 'unknown unit "m"')
  bad('1.5 min', 'unknown unit "min"')
  bad('2 s 3', undefined)
  bad('.5s', undefined)
  bad('0', 'the duration must be positive')
  bad('0ms', 'the duration must be positive')
  bad('0.0000001s', 'the duration must be positive')
  bad('5', '5 is less than the minimum of 10 ms', { min: 10 })
  bad('0.005s', '0.005s is less than the minimum of 10 ms', { min: 10 })
  bad('61s', '61s is more than the maximum of 60000 ms', { min: 10, max: 60000 })
  bad('2147483648', `2147483648 is more than the maximum of ${DURATION_MAX_MS} ms`)
  bad('99999999999999999999999s', `99999999999999999999999s is more than the maximum of ${DURATION_MAX_MS} ms`)
})

t.test('parsePositiveInt', async (t) => {
  t.equal(parsePositiveInt('V', '3'), 3)
  t.equal(parsePositiveInt('V', ' 007 '), 7)
  t.equal(parsePositiveInt('V', '1', { min: 1, max: 1 }), 1)
  t.equal(parsePositiveInt('V', '0', { min: 0 }), 0)
  t.equal(parsePositiveInt('V', String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER)
  const V = 'WARPMESH_LEASE_MISSES'
  const bad = (value: string, reason: string | undefined, range: { min?: number; max?: number } = {}): void =>
    throwsConfig(t, () => parsePositiveInt(V, value, range), {
      variable: V,
      value,
      expected: expectedInt(range.min ?? 1, range.max ?? Number.MAX_SAFE_INTEGER),
      ...(reason === undefined ? {} : { reason }),
    })
  bad('', undefined)
  bad('abc', undefined)
  bad('-1', undefined)
  bad('1.5', undefined)
  bad('3x', undefined)
  bad('1e2', undefined)
  bad('0', '0 is out of range')
  bad('101', '101 is out of range', { min: 1, max: 100 })
  bad('9007199254740993', '9007199254740993 is out of range')
})

const NODE_ENV: Env = { WARPMESH_ID: 'lobby-1', WARPMESH_COORDINATORS: '127.0.0.1:7400', WARPMESH_INSECURE: '1' }
const INSECURE = { keys: [], insecure: true }
const KEY_HEX = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'

t.test('nodeOptionsFromEnv: defaults', async (t) => {
  t.same(nodeOptionsFromEnv(NODE_ENV), {
    id: 'lobby-1',
    role: 'downstream',
    bind: { host: '0.0.0.0', port: 0, family: 4 },
    coordinators: [{ host: '127.0.0.1', port: 7400, family: 4 }],
    meta: {},
    logLevel: 'info',
    heartbeatMs: 1000,
    leaseMisses: 3,
    warmup: 3000,
    maxDatagram: 1200,
    loopbackDatagram: 32768,
    ...INSECURE,
  })
  const config = nodeOptionsFromEnv(NODE_ENV)
  t.notOk('advertise' in config, 'no advertise key when unset')
  t.notOk('metrics' in config, 'no metrics key when unset')
  // Empty and whitespace-only count as unset.
  const blank = nodeOptionsFromEnv({
    ...NODE_ENV,
    WARPMESH_ROLE: '',
    WARPMESH_BIND: ' ',
    WARPMESH_ADVERTISE: '',
    WARPMESH_META: '',
    WARPMESH_LOG: '\r',
    WARPMESH_METRICS: '',
    WARPMESH_HEARTBEAT_MS: '',
    WARPMESH_LEASE_MISSES: '',
    WARPMESH_WARMUP: ' ',
    WARPMESH_MAX_DATAGRAM: '',
    WARPMESH_LOOPBACK_DATAGRAM: ' \r',
  })
  t.same(blank, config)
})

t.test('nodeOptionsFromEnv: every variable set', async (t) => {
  t.same(
    nodeOptionsFromEnv({
      WARPMESH_ID: 'proxy-eu-1',
      WARPMESH_ROLE: 'proxy',
      WARPMESH_BIND: '[::]:7401',
      WARPMESH_ADVERTISE: '203.0.113.10:7401',
      WARPMESH_COORDINATORS: 'coord-a,coord-b:7500',
      WARPMESH_META: 'region=eu,max=500',
      WARPMESH_LOG: 'debug',
      WARPMESH_METRICS: '127.0.0.1:9464',
      WARPMESH_HEARTBEAT_MS: '500ms',
      WARPMESH_LEASE_MISSES: '5',
      WARPMESH_WARMUP: '500',
      WARPMESH_MAX_DATAGRAM: '8972',
      WARPMESH_LOOPBACK_DATAGRAM: '1200',
      WARPMESH_KEY: KEY_HEX,
      UNRELATED: 'ignored',
    }),
    {
      id: 'proxy-eu-1',
      role: 'proxy',
      bind: { host: '::', port: 7401, family: 6 },
      advertise: { host: '203.0.113.10', port: 7401, family: 4 },
      coordinators: [
        { host: 'coord-a', port: DEFAULT_COORDINATOR_PORT, family: 0 },
        { host: 'coord-b', port: 7500, family: 0 },
      ],
      meta: { region: 'eu', max: '500' },
      logLevel: 'debug',
      metrics: { host: '127.0.0.1', port: 9464, family: 4 },
      heartbeatMs: 500,
      leaseMisses: 5,
      warmup: 500,
      maxDatagram: 8972,
      loopbackDatagram: 1200,
      keys: [Buffer.from(KEY_HEX, 'hex')],
      insecure: false,
    },
  )
})

t.test('nodeOptionsFromEnv: errors name the variable, first one wins', async (t) => {
  throwsConfig(t, () => nodeOptionsFromEnv({}), { variable: 'WARPMESH_ID', value: undefined, expected: EXPECTED_ID })
  throwsConfig(t, () => nodeOptionsFromEnv({ WARPMESH_ID: '  ' }), {
    variable: 'WARPMESH_ID',
    value: undefined,
    expected: EXPECTED_ID,
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ WARPMESH_ID: 'lobby-1' }), {
    variable: 'WARPMESH_COORDINATORS',
    value: undefined,
    expected: 'comma-separated host:port list (at most 16, port 7400 if omitted), e.g. 10.0.0.1:7400,10.0.0.2',
  })
  // Two bad variables: the one checked first (ENV_VARS order) is reported.
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_ROLE: 'Proxy', WARPMESH_LOG: 'loud' }), {
    variable: 'WARPMESH_ROLE',
    value: 'Proxy',
    expected: EXPECTED_ROLE,
    reason: 'the character "P" at position 1 is not allowed (roles are lowercase)',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_BIND: 'abc' }), {
    variable: 'WARPMESH_BIND',
    value: 'abc',
    expected: 'host:port, e.g. 0.0.0.0:7400',
    reason: 'the port is missing',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_ADVERTISE: '0.0.0.0:7401' }), {
    variable: 'WARPMESH_ADVERTISE',
    value: '0.0.0.0:7401',
    expected: 'host:port, e.g. 203.0.113.10:7401',
    reason: '0.0.0.0 is the unspecified address; give an address other nodes can reach',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_ADVERTISE: '203.0.113.10:0' }), {
    variable: 'WARPMESH_ADVERTISE',
    value: '203.0.113.10:0',
    expected: 'host:port, e.g. 203.0.113.10:7401',
    reason: 'port 0 is out of range 1..65535',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_COORDINATORS: 'a,a:7400' }), {
    variable: 'WARPMESH_COORDINATORS',
    value: 'a,a:7400',
    expected: 'comma-separated host:port list (at most 16, port 7400 if omitted), e.g. 10.0.0.1:7400,10.0.0.2',
    reason: 'item 2 ("a:7400") repeats item 1',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_META: 'x' }), {
    variable: 'WARPMESH_META',
    value: 'x',
    expected: EXPECTED_META,
    reason: 'item 1 ("x") has no "="',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_LOG: 'loud' }), {
    variable: 'WARPMESH_LOG',
    value: 'loud',
    expected: EXPECTED_LOG_LEVEL,
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_METRICS: '127.0.0.1' }), {
    variable: 'WARPMESH_METRICS',
    value: '127.0.0.1',
    expected: 'host:port, e.g. 127.0.0.1:9464',
    reason: 'the port is missing',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_HEARTBEAT_MS: '5' }), {
    variable: 'WARPMESH_HEARTBEAT_MS',
    value: '5',
    expected: expectedDuration(10, 60000),
    reason: '5 is less than the minimum of 10 ms',
  })
  throwsConfig(t, () => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_LEASE_MISSES: '0' }), {
    variable: 'WARPMESH_LEASE_MISSES',
    value: '0',
    expected: 'a whole number from 1 to 100',
    reason: '0 is out of range',
  })
})

t.test('nodeOptionsFromEnv reads process.env by default', async (t) => {
  const saved = { ...process.env }
  t.teardown(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key]
    Object.assign(process.env, saved)
  })
  for (const key of Object.keys(process.env)) if (key.startsWith('WARPMESH_')) delete process.env[key]
  process.env.WARPMESH_ID = 'from-process-env'
  process.env.WARPMESH_COORDINATORS = '127.0.0.1'
  process.env.WARPMESH_INSECURE = '1'
  t.equal(nodeOptionsFromEnv().id, 'from-process-env')
  t.equal(coordinatorOptionsFromEnv().id, 'from-process-env')
})

t.test('coordinatorOptionsFromEnv', async (t) => {
  t.same(coordinatorOptionsFromEnv({ WARPMESH_INSECURE: 'true' }), {
    id: 'coordinator',
    bind: { host: '0.0.0.0', port: 7400, family: 4 },
    logLevel: 'info',
    heartbeatMs: 1000,
    leaseMisses: 3,
    maxDatagram: 1200,
    loopbackDatagram: 32768,
    ...INSECURE,
  })
  t.same(
    coordinatorOptionsFromEnv({
      WARPMESH_ID: 'coord-b',
      WARPMESH_BIND: '127.0.0.1:0',
      WARPMESH_LOG: 'warn',
      WARPMESH_METRICS: '[::1]:9464',
      WARPMESH_HEARTBEAT_MS: '2s',
      WARPMESH_LEASE_MISSES: '4',
      WARPMESH_MAX_DATAGRAM: '1400',
      WARPMESH_LOOPBACK_DATAGRAM: '65000',
      WARPMESH_COORDINATORS: 'not even parsed',
      WARPMESH_ROLE: 'Not Parsed Either',
      WARPMESH_KEY: KEY_HEX,
    }),
    {
      id: 'coord-b',
      bind: { host: '127.0.0.1', port: 0, family: 4 },
      logLevel: 'warn',
      metrics: { host: '::1', port: 9464, family: 6 },
      heartbeatMs: 2000,
      leaseMisses: 4,
      maxDatagram: 1400,
      loopbackDatagram: 65000,
      keys: [Buffer.from(KEY_HEX, 'hex')],
      insecure: false,
    },
  )
  throwsConfig(t, () => coordinatorOptionsFromEnv({ WARPMESH_ID: 'a b' }), {
    variable: 'WARPMESH_ID',
    value: 'a b',
    expected: EXPECTED_ID,
    reason: 'the character " " at position 2 is not allowed',
  })
  throwsConfig(t, () => coordinatorOptionsFromEnv({ WARPMESH_BIND: '7400' }), {
    variable: 'WARPMESH_BIND',
    value: '7400',
    expected: 'host:port, e.g. 0.0.0.0:7400',
    reason: '"7400" is not a valid IPv4 address',
  })
  throwsConfig(t, () => coordinatorOptionsFromEnv({ WARPMESH_LOG: 'x' }), {
    variable: 'WARPMESH_LOG',
    value: 'x',
    expected: EXPECTED_LOG_LEVEL,
  })
  throwsConfig(t, () => coordinatorOptionsFromEnv({ WARPMESH_METRICS: '0.0.0.0:9464' }), {
    variable: 'WARPMESH_METRICS',
    value: '0.0.0.0:9464',
    expected: 'host:port, e.g. 127.0.0.1:9464',
    reason: '0.0.0.0 is the unspecified address; give an address other nodes can reach',
  })
  throwsConfig(t, () => coordinatorOptionsFromEnv({ WARPMESH_HEARTBEAT_MS: '2m' }), {
    variable: 'WARPMESH_HEARTBEAT_MS',
    value: '2m',
    expected: expectedDuration(10, 60000),
    reason: 'unknown unit "m"',
  })
})

t.test('WARPMESH_MAX_DATAGRAM and WARPMESH_LOOPBACK_DATAGRAM', async (t) => {
  t.equal(DATAGRAM_MIN_BYTES, 576)
  t.equal(DATAGRAM_MAX_BYTES, 65000)
  t.equal(DEFAULT_MAX_DATAGRAM, 1200)
  t.equal(DEFAULT_LOOPBACK_DATAGRAM, 32768)
  const expected = 'a whole number from 576 to 65000'
  const readers = [
    ['node', (env: Env) => nodeOptionsFromEnv({ ...NODE_ENV, ...env })],
    ['coordinator', (env: Env) => coordinatorOptionsFromEnv({ WARPMESH_INSECURE: '1', ...env })],
  ] as const
  const fields = [
    ['WARPMESH_MAX_DATAGRAM', 'maxDatagram', DEFAULT_MAX_DATAGRAM],
    ['WARPMESH_LOOPBACK_DATAGRAM', 'loopbackDatagram', DEFAULT_LOOPBACK_DATAGRAM],
  ] as const
  for (const [who, read] of readers) {
    for (const [name, field, byDefault] of fields) {
      const label = `${who} ${name}`
      t.equal(read({})[field], byDefault, `${label}: unset is the default`)
      for (const blank of ['', ' ', '\r', '\t\n']) {
        t.equal(read({ [name]: blank })[field], byDefault, `${label}=${JSON.stringify(blank)} counts as unset`)
      }
      for (const [value, want] of [['576', 576], ['65000', 65000], ['8972', 8972], [' 1400\r', 1400], ['01500', 1500]] as const) {
        t.equal(read({ [name]: value })[field], want, `${label}=${JSON.stringify(value)}`)
      }
      // The other variable keeps its default.
      const other = fields.find(([n]) => n !== name)!
      t.equal(read({ [name]: '9000' })[other[1]], other[2], `${label}: ${other[0]} untouched`)
      const notInteger = ['abc', '1200.5', '1.5k', '-1200', '+1200', '1e3', '0x4b0', '1200 bytes', '1_200', '12 00', '∞']
      for (const value of notInteger) {
        throwsConfig(t, () => read({ [name]: value }), { variable: name, value, expected })
      }
      for (const value of ['0', '575', '65001', '65536', '99999999999999999999']) {
        throwsConfig(t, () => read({ [name]: value }), { variable: name, value, expected, reason: `${value} is out of range` })
      }
      throwsConfig(t, () => read({ [name]: ' 575\r' }), { variable: name, value: ' 575\r', expected, reason: '575 is out of range' })
    }
  }
  // The parser itself rejects an empty value (the *FromEnv functions treat it as unset).
  const range = { min: DATAGRAM_MIN_BYTES, max: DATAGRAM_MAX_BYTES }
  for (const [name] of fields) {
    throwsConfig(t, () => parsePositiveInt(name, '', range), { variable: name, value: '', expected })
    throwsConfig(t, () => parsePositiveInt(name, '  ', range), { variable: name, value: '  ', expected })
  }
  // The exact messages.
  t.throws(() => nodeOptionsFromEnv({ ...NODE_ENV, WARPMESH_MAX_DATAGRAM: '575' }), {
    message: 'WARPMESH_MAX_DATAGRAM="575" is invalid: 575 is out of range; expected a whole number from 576 to 65000',
  })
  t.throws(() => coordinatorOptionsFromEnv({ WARPMESH_INSECURE: '1', WARPMESH_LOOPBACK_DATAGRAM: '64k' }), {
    message: 'WARPMESH_LOOPBACK_DATAGRAM="64k" is invalid: expected a whole number from 576 to 65000',
  })
  // ENV_VARS order: the heartbeat variables, then WARPMESH_MAX_DATAGRAM, then WARPMESH_LOOPBACK_DATAGRAM, then the keys.
  const both = { WARPMESH_MAX_DATAGRAM: 'x', WARPMESH_LOOPBACK_DATAGRAM: 'y' }
  t.throws(() => nodeOptionsFromEnv({ ...NODE_ENV, ...both }), { variable: 'WARPMESH_MAX_DATAGRAM' })
  t.throws(() => coordinatorOptionsFromEnv({ WARPMESH_INSECURE: '1', ...both }), { variable: 'WARPMESH_MAX_DATAGRAM' })
  t.throws(() => nodeOptionsFromEnv({ ...NODE_ENV, ...both, WARPMESH_LEASE_MISSES: '0' }), { variable: 'WARPMESH_LEASE_MISSES' })
  t.throws(() => coordinatorOptionsFromEnv({ WARPMESH_LOOPBACK_DATAGRAM: 'y', WARPMESH_KEY: 'abcd' }), {
    variable: 'WARPMESH_LOOPBACK_DATAGRAM',
  })
  // The table rows.
  const byName = new Map(ENV_VARS.map((spec) => [spec.name, spec]))
  for (const [name, , byDefault] of fields) {
    const spec = byName.get(name)
    t.equal(spec?.expected, expected, `${name}: expected form`)
    t.same(spec?.node, { default: String(byDefault) }, `${name}: node default`)
    t.same(spec?.coordinator, { default: String(byDefault) }, `${name}: coordinator default`)
  }
  const table = formatEnvTable()
  t.match(table, '| `WARPMESH_MAX_DATAGRAM` | 1200 | a whole number from 576 to 65000 | Largest datagram sent to peers on other hosts')
  t.match(table, '| `WARPMESH_LOOPBACK_DATAGRAM` | 32768 | a whole number from 576 to 65000 | Largest datagram sent to peers at loopback addresses')
})

t.test('the datagram sizes reach the endpoints of a node and a coordinator', async (t) => {
  const logger = createLogger({ level: 'silent' })
  const coordinatorConfig = coordinatorOptionsFromEnv({
    WARPMESH_INSECURE: '1',
    WARPMESH_BIND: '127.0.0.1:0',
    WARPMESH_MAX_DATAGRAM: '1300',
    WARPMESH_LOOPBACK_DATAGRAM: '1400',
  })
  const coordinatorOptions = coordinatorStartOptions(coordinatorConfig, logger)
  t.equal(coordinatorOptions.maxDatagram, 1300)
  t.equal(coordinatorOptions.loopbackDatagram, 1400)
  const defaults = meshNodeOptions(nodeOptionsFromEnv(NODE_ENV), logger)
  t.equal(defaults.maxDatagram, 1200, 'meshNodeOptions: default maxDatagram')
  t.equal(defaults.loopbackDatagram, 32768, 'meshNodeOptions: default loopbackDatagram')

  // Record what Endpoint.create is given.
  const created: NonNullable<Parameters<typeof Endpoint.create>[0]>[] = []
  const create = Endpoint.create
  Endpoint.create = async (options = {}) => {
    created.push(options)
    return create.call(Endpoint, options)
  }
  t.teardown(() => {
    Endpoint.create = create
  })

  const coordinator = await Coordinator.start(coordinatorOptions)
  t.teardown(() => coordinator.close())
  const nodeEnv = (id: string, max: string, loopback: string): Env => ({
    WARPMESH_ID: id,
    WARPMESH_INSECURE: '1',
    WARPMESH_BIND: '127.0.0.1:0',
    WARPMESH_COORDINATORS: `127.0.0.1:${coordinator.port}`,
    WARPMESH_MAX_DATAGRAM: max,
    WARPMESH_LOOPBACK_DATAGRAM: loopback,
    // The warm-up's private coordinator and nodes create endpoints of their own.
    WARPMESH_WARMUP: '0',
  })
  const aOptions = meshNodeOptions(nodeOptionsFromEnv(nodeEnv('a', '1250', '1300')), logger)
  t.equal(aOptions.maxDatagram, 1250)
  t.equal(aOptions.loopbackDatagram, 1300)
  const a = await MeshNode.start(aOptions)
  t.teardown(() => a.close())
  const b = await MeshNode.start(meshNodeOptions(nodeOptionsFromEnv(nodeEnv('b', '1200', '1500')), logger))
  t.teardown(() => b.close())

  t.same(
    created.map((o) => [o.port, o.maxDatagram, o.loopbackDatagram]),
    [[0, 1300, 1400], [0, 1250, 1300], [0, 1200, 1500]],
    'Endpoint.create got each configuration',
  )
  // Sessions on loopback use the smaller loopbackDatagram of the two sides.
  t.equal(a.endpoint.session('127.0.0.1', coordinator.port)?.maxDatagram, 1300, 'a -> coordinator: a\'s 1300')
  t.equal(b.endpoint.session('127.0.0.1', coordinator.port)?.maxDatagram, 1400, 'b -> coordinator: the coordinator\'s 1400')
  t.equal(coordinator.endpoint.session('127.0.0.1', a.port)?.maxDatagram, 1300, 'coordinator -> a')
  t.equal(coordinator.endpoint.session('127.0.0.1', b.port)?.maxDatagram, 1400, 'coordinator -> b')
  // a learns of b through the coordinator; then a direct session carries a message.
  if (!a.peers().some((p) => p.id === 'b')) {
    await new Promise<void>((resolve) => {
      const up = (p: { id: string }): void => {
        if (p.id !== 'b') return
        a.off('peer-up', up)
        resolve()
      }
      a.on('peer-up', up)
    })
  }
  const got = new Promise<string>((resolve) => b.once('message', (m: { data: Uint8Array }) => resolve(Buffer.from(m.data).toString())))
  a.send('b', Buffer.from('hello'))
  t.equal(await got, 'hello')
  t.equal(a.endpoint.session('127.0.0.1', b.port)?.maxDatagram, 1300, 'a -> b: a\'s 1300')
  t.equal(b.endpoint.session('127.0.0.1', a.port)?.maxDatagram, 1300, 'b -> a: a\'s 1300')
})

t.test('ENV_VARS agrees with what the parsers print', async (t) => {
  const byName = new Map(ENV_VARS.map((spec) => [spec.name, spec]))
  t.equal(byName.size, ENV_VARS.length, 'names are unique')
  t.ok(Object.isFrozen(ENV_VARS))
  const bad: Record<string, string> = {
    WARPMESH_ROLE: 'X',
    WARPMESH_BIND: 'x',
    WARPMESH_ADVERTISE: 'x',
    WARPMESH_COORDINATORS: ',',
    WARPMESH_META: 'x',
    WARPMESH_LOG: 'x',
    WARPMESH_METRICS: 'x',
    WARPMESH_HEARTBEAT_MS: 'x',
    WARPMESH_LEASE_MISSES: 'x',
    WARPMESH_WARMUP: '100001',
    WARPMESH_MAX_DATAGRAM: 'x',
    WARPMESH_LOOPBACK_DATAGRAM: 'x',
  }
  const seen: string[] = []
  for (const [name, value] of [['WARPMESH_ID', '?'], ...Object.entries(bad)] as const) {
    const env = { ...NODE_ENV, [name]: value }
    try {
      nodeOptionsFromEnv(env)
      t.fail(`${name}=${value} accepted`)
    } catch (err) {
      const e = err as ConfigError
      t.equal(e.variable, name)
      t.equal(e.expected, byName.get(name)?.expected, `${name}: table and error agree on the expected form`)
      seen.push(name)
    }
  }
  const parsedHere = ENV_VARS.filter((spec) => spec.node !== undefined && !spec.name.startsWith('WARPMESH_KEY') && spec.name !== 'WARPMESH_INSECURE')
  t.same(seen, parsedHere.map((spec) => spec.name), 'checked in ENV_VARS order, all of them')
  // Defaults in the table are what the functions return.
  const node = nodeOptionsFromEnv(NODE_ENV)
  t.equal(byName.get('WARPMESH_ROLE')?.node?.default, node.role)
  t.equal(byName.get('WARPMESH_BIND')?.node?.default, formatHostPort(node.bind))
  t.equal(byName.get('WARPMESH_LOG')?.node?.default, node.logLevel)
  t.equal(byName.get('WARPMESH_HEARTBEAT_MS')?.node?.default, String(node.heartbeatMs))
  t.equal(byName.get('WARPMESH_LEASE_MISSES')?.node?.default, String(node.leaseMisses))
  t.equal(byName.get('WARPMESH_WARMUP')?.node?.default, String(node.warmup))
  t.equal(byName.get('WARPMESH_WARMUP')?.coordinator, undefined, 'a coordinator does not warm up')
  t.equal(byName.get('WARPMESH_MAX_DATAGRAM')?.node?.default, String(node.maxDatagram))
  t.equal(byName.get('WARPMESH_LOOPBACK_DATAGRAM')?.node?.default, String(node.loopbackDatagram))
  const coordinator = coordinatorOptionsFromEnv({ WARPMESH_INSECURE: '1' })
  t.equal(byName.get('WARPMESH_ID')?.coordinator?.default, coordinator.id)
  t.equal(byName.get('WARPMESH_BIND')?.coordinator?.default, formatHostPort(coordinator.bind))
  t.equal(byName.get('WARPMESH_MAX_DATAGRAM')?.coordinator?.default, String(coordinator.maxDatagram))
  t.equal(byName.get('WARPMESH_LOOPBACK_DATAGRAM')?.coordinator?.default, String(coordinator.loopbackDatagram))
  t.equal(byName.get('WARPMESH_ID')?.node?.required, true)
  t.equal(byName.get('WARPMESH_COORDINATORS')?.node?.required, true)
})

t.test('formatEnvTable', async (t) => {
  const table = formatEnvTable()
  const lines = table.split('\n')
  t.equal(lines[0], '| Variable | Default | Expected | Description |')
  t.equal(lines[1], '|---|---|---|---|')
  t.equal(lines.length, ENV_VARS.length + 3, 'header, rule, one row per variable, final newline')
  t.equal(lines.at(-1), '')
  for (const spec of ENV_VARS) t.ok(lines.some((line) => line.startsWith(`| \`${spec.name}\` |`)), spec.name)
  // Every row has exactly 4 cells: escaped pipes do not split cells.
  for (const line of lines.slice(2, -1)) t.equal(line.split(/(?<!\\)\|/).length, 6, line)
  t.match(table, '| `WARPMESH_LOG` | info | one of error, warn, info, debug, trace, silent |')
  t.match(table, '| `WARPMESH_ID` | node: required; coordinator: coordinator |')
  t.match(table, '| `WARPMESH_BIND` | node: 0.0.0.0:0; coordinator: 0.0.0.0:7400 | host:port, e.g. 0.0.0.0:7400 |')
  t.match(table, '| `WARPMESH_ROLE` | downstream |')
  t.match(table, '| `WARPMESH_METRICS` | optional |')
  t.match(table, '| `WARPMESH_META` | optional |')
  t.match(table, '| `WARPMESH_COORDINATORS` | required |')

  const node = formatEnvTable({ scope: 'node' })
  t.match(node, '| `WARPMESH_ID` | required |')
  t.match(node, '| `WARPMESH_BIND` | 0.0.0.0:0 |')
  t.match(node, '`WARPMESH_ROLE`')
  const coordinator = formatEnvTable({ scope: 'coordinator' })
  t.match(coordinator, '| `WARPMESH_ID` | coordinator |')
  t.match(coordinator, '| `WARPMESH_BIND` | 0.0.0.0:7400 |')
  t.notMatch(coordinator, 'WARPMESH_ROLE')
  t.notMatch(coordinator, 'WARPMESH_COORDINATORS')
  t.notMatch(coordinator, 'WARPMESH_ADVERTISE')
})

t.test('the table of docs/configuration.md is formatEnvTable()', async (t) => {
  const readme = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
  const table = formatEnvTable()
  const start = readme.indexOf('| Variable | Default | Expected | Description |\n')
  t.ok(start >= 0, 'docs/configuration.md has the table')
  t.equal(
    readme.slice(start, start + table.length),
    table,
    'docs/configuration.md is up to date (regenerate the table with formatEnvTable() from lib/config.ts)',
  )
  t.notOk(readme.slice(start + table.length).startsWith('|'), 'no stale rows after it')
})

t.test('formatEnvTable: custom rows, escaping, coordinator-only', async (t) => {
  const vars = [
    { name: 'A', expected: 'x|y \\ z', description: 'pipe | here', node: { default: 'a|b' } },
    { name: 'B', expected: 'e', description: 'coordinator only', coordinator: { default: '7' } },
    { name: 'C', expected: 'e', description: 'same default', node: { default: '1' }, coordinator: { default: '1' } },
  ]
  t.equal(
    formatEnvTable({ vars }),
    [
      '| Variable | Default | Expected | Description |',
      '|---|---|---|---|',
      '| `A` | a\\|b | x\\|y \\\\ z | pipe \\| here |',
      '| `B` | 7 (coordinator only) | e | coordinator only |',
      '| `C` | 1 | e | same default |',
      '',
    ].join('\n'),
  )
  t.equal(formatEnvTable({ vars, scope: 'coordinator' }).split('\n').length, 5, 'B and C only')
  t.equal(formatEnvHelp({ vars, scope: 'node' }).split('\n').length, 2 * 3 + 2, 'A and C only')
})

t.test('formatEnvHelp', async (t) => {
  const help = formatEnvHelp()
  t.ok(help.startsWith('Environment variables:\n'))
  t.ok(help.endsWith('\n'))
  t.match(help, '  WARPMESH_BIND (default: node: 0.0.0.0:0; coordinator: 0.0.0.0:7400)\n')
  t.match(help, '      Expected: host:port, e.g. 0.0.0.0:7400\n')
  t.equal(help.split('\n').length, ENV_VARS.length * 3 + 2)
  const coordinator = formatEnvHelp({ scope: 'coordinator' })
  t.match(coordinator, '  WARPMESH_ID (default: coordinator)\n')
  t.match(coordinator, '  WARPMESH_METRICS (optional)\n')
  t.match(formatEnvHelp({ scope: 'node' }), '  WARPMESH_ID (required)\n')
  t.notMatch(coordinator, 'WARPMESH_META')
})

t.test('keys: read last, through loadKeys; no key refuses with guidance', async (t) => {
  const base = { WARPMESH_ID: 'lobby-1', WARPMESH_COORDINATORS: '127.0.0.1' }
  for (const read of [nodeOptionsFromEnv, coordinatorOptionsFromEnv]) {
    let caught: unknown
    try {
      read(base)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError, `${read.name}: no key is a ConfigError`)
    const e = caught as ConfigError
    t.equal(e.variable, 'WARPMESH_KEY')
    t.equal(e.value, undefined)
    t.match(e.message, 'warpmesh keygen')
    t.match(e.message, 'WARPMESH_INSECURE=1')
    // Every other variable is checked before the keys.
    t.throws(() => read({ ...base, WARPMESH_LOG: 'loud' }), { variable: 'WARPMESH_LOG' })
    t.same(read({ ...base, WARPMESH_KEY: ` ${KEY_HEX}\r` }).keys, [Buffer.from(KEY_HEX, 'hex')], 'whitespace ignored')
    t.same(read({ ...base, WARPMESH_KEY: ' ', WARPMESH_INSECURE: '1\r' }).insecure, true, 'blank key is unset')
    t.throws(() => read({ ...base, WARPMESH_INSECURE: 'maybe' }), { variable: 'WARPMESH_INSECURE', value: 'maybe' })
    t.throws(() => read({ ...base, WARPMESH_KEY: 'abcd' }), { variable: 'WARPMESH_KEY' })
    const config = read({ ...base, WARPMESH_KEY: KEY_HEX, WARPMESH_INSECURE: '1' })
    t.equal(config.insecure, false, 'a key always wins over WARPMESH_INSECURE')
  }
  const byName = new Map(ENV_VARS.map((spec) => [spec.name, spec]))
  t.equal(byName.get('WARPMESH_KEY')?.expected, KEY_LIST_FORM, 'table prints the form keys.ts checks')
})
