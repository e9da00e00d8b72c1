import t from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../../lib/errors.js'
import {
  generateKey, KEY_LIST_FORM, keyId, keysWithId, loadKeys, MAX_KEY_FILE_BYTES, MAX_KEYS, parseKeys,
} from '../../lib/security/keys.js'

const HEX_A = 'a1b2c3d4'.repeat(8) // 64 hex digits
const HEX_B = '0f1e2d3c'.repeat(8)

/** Everything of an error a user or a log could ever see. */
function visible(err: unknown): string {
  const e = err as ConfigError
  return JSON.stringify({ ...e, message: e.message, stack: e.stack, cause: String(e.cause) })
}

function catchConfig(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

/**
 * The first 6-character stretch of `secret` (other than its first 4
 * characters) that shows anywhere in the error, or undefined.
 */
function leaked(err: ConfigError, secret: string): string | undefined {
  const shown = visible(err)
  for (let i = 1; i + 6 <= secret.length; i++) {
    if (shown.includes(secret.slice(i, i + 6))) return secret.slice(i, i + 6)
  }
  return undefined
}

t.test('generateKey: 32 random bytes as 64 hex characters, accepted by parseKeys', async (t) => {
  const a = generateKey()
  const b = generateKey()
  t.match(a, /^[0-9a-f]{64}$/)
  t.not(a, b)
  t.same(parseKeys(a, 'WARPMESH_KEY'), [Buffer.from(a, 'hex')])
})

t.test('parseKeys: hex, either case, 64 hex digits or more', async (t) => {
  t.same(parseKeys(HEX_A, 'K'), [Buffer.from(HEX_A, 'hex')])
  t.same(parseKeys(HEX_A.toUpperCase(), 'K'), [Buffer.from(HEX_A, 'hex')])
  const long = HEX_A + HEX_B
  const [key] = parseKeys(long, 'K')
  t.equal(key.length, 64)
  t.same(key, Buffer.from(long, 'hex'))
})

t.test('parseKeys: base64 with and without padding, base64url', async (t) => {
  const bytes = randomBytes(32)
  t.same(parseKeys(bytes.toString('base64'), 'K'), [bytes])
  t.same(parseKeys(bytes.toString('base64').replace(/=+$/, ''), 'K'), [bytes])
  // 0xfb 0xff encodes as "+/8" in base64 and "-_8" in base64url
  const special = Buffer.concat([Buffer.from([0xfb, 0xff, 0xfb, 0xff]), randomBytes(32)])
  const url = special.toString('base64url')
  t.match(url, /[-_]/)
  t.same(parseKeys(url, 'K'), [special])
  t.same(parseKeys(special.toString('base64'), 'K'), [special])
})

t.test('parseKeys: comma-separated, whitespace around entries ignored, order kept (newest first)', async (t) => {
  const c = randomBytes(40)
  const keys = parseKeys(` ${HEX_A} ,\n${HEX_B},${c.toString('base64')}  `, 'K')
  t.same(keys, [Buffer.from(HEX_A, 'hex'), Buffer.from(HEX_B, 'hex'), c])
})

t.test('parseKeys errors: named class, code, fields, message names the variable and the expected form', async (t) => {
  const err = catchConfig(() => parseKeys('not a key', 'WARPMESH_KEY'))
  t.equal(err.name, 'ConfigError')
  t.equal(err.code, 'ERR_WARPMESH_CONFIG')
  t.equal(err.variable, 'WARPMESH_KEY')
  t.equal(err.value, '[redacted: 9 characters]')
  t.equal(err.expected, KEY_LIST_FORM)
  t.equal(err.reason, 'the key (9 characters) has a character that is neither hex nor base64 at position 4')
  // the message format is ConfigError's; it carries all three parts
  t.ok(err.message.startsWith('WARPMESH_KEY="[redacted: 9 characters]" is invalid'), err.message)
  t.ok(err.message.includes(err.reason as string))
  t.ok(err.message.includes(KEY_LIST_FORM))
  t.match(err.message, /warpmesh keygen/)
  t.notMatch(visible(err), 'not a key')
})

t.test('parseKeys: too short keys are refused and never printed', async (t) => {
  const shortHex = HEX_A.slice(0, 62)
  let err = catchConfig(() => parseKeys(shortHex, 'WARPMESH_KEY'))
  t.equal(err.reason, 'the key (62 characters, starting a1b2…) is 31 bytes of hex, shorter than 32 bytes (64 hex digits)')
  t.equal(err.value, '[redacted: 62 characters, starting a1b2…]')
  t.equal(leaked(err, shortHex), undefined, 'key not shown')

  const shortB64 = randomBytes(31).toString('base64')
  err = catchConfig(() => parseKeys(shortB64, 'WARPMESH_KEY'))
  t.equal(err.reason, `the key (${shortB64.length} characters, starting ${shortB64.slice(0, 4)}…) is 31 bytes of base64, shorter than 32 bytes`)
  t.equal(leaked(err, shortB64), undefined, 'key not shown')

  err = catchConfig(() => parseKeys('abc', 'K'))
  t.equal(err.reason, 'the key (3 characters) is 3 hex digits, an odd number')
  err = catchConfig(() => parseKeys(HEX_A + 'a', 'K'))
  t.equal(err.reason, 'the key (65 characters, starting a1b2…) is 65 hex digits, an odd number')
})

t.test('parseKeys: malformed base64 and garbage', async (t) => {
  // 45 characters: a length no base64 encoding has
  let err = catchConfig(() => parseKeys('g'.repeat(45), 'K'))
  t.match(err.reason, /is not valid base64 \(bad length or padding\)$/)
  // padded but not a multiple of 4
  err = catchConfig(() => parseKeys('g'.repeat(42) + '=', 'K'))
  t.match(err.reason, /is not valid base64 \(bad length or padding\)$/)
  err = catchConfig(() => parseKeys('gggg=gggg' + 'g'.repeat(40), 'K'))
  t.match(err.reason, /is not valid base64 \(misplaced "="\)$/)
  const garbage = 'zz' + generateKey().slice(2) + '!'
  err = catchConfig(() => parseKeys(garbage, 'WARPMESH_KEY'))
  t.equal(err.reason, 'the key (65 characters, starting zz' + garbage.slice(2, 4) + '…) has a character that is neither hex nor base64 at position 65')
  t.equal(leaked(err, garbage), undefined, 'key not shown')
})

t.test('parseKeys: list problems name the entry and show no key of the list', async (t) => {
  const good = generateKey()
  const bad = generateKey().slice(0, 40)
  let err = catchConfig(() => parseKeys(`${good},${bad}`, 'WARPMESH_KEY'))
  t.equal(err.reason, `key 2 of 2 (40 characters, starting ${bad.slice(0, 4)}…) is 20 bytes of hex, shorter than 32 bytes (64 hex digits)`)
  t.equal(err.value, '[redacted: 105 characters, starting ' + good.slice(0, 4) + '…]')
  t.equal(leaked(err, good), undefined, 'key not shown')
  t.equal(leaked(err, bad), undefined, 'key not shown')

  err = catchConfig(() => parseKeys(`${good},`, 'K'))
  t.equal(err.reason, 'key 2 of 2 is empty')
  err = catchConfig(() => parseKeys('', 'K'))
  t.equal(err.reason, 'contains no key')
  t.equal(err.value, '[redacted: 0 characters]')
  err = catchConfig(() => parseKeys(' \n ', 'K'))
  t.equal(err.reason, 'contains no key')
  err = catchConfig(() => parseKeys(`${good},${HEX_A},${good}`, 'K'))
  t.equal(err.reason, 'key 3 of 3 repeats key 1')
  t.equal(leaked(err, good), undefined, 'key not shown')

  const many = Array.from({ length: MAX_KEYS + 1 }, () => generateKey()).join(',')
  err = catchConfig(() => parseKeys(many, 'K'))
  t.equal(err.reason, `has ${MAX_KEYS + 1} keys, more than ${MAX_KEYS}`)
  t.equal(parseKeys(many.split(',').slice(0, MAX_KEYS).join(','), 'K').length, MAX_KEYS)
})

t.test('loadKeys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warpmesh-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, contents: string | Buffer): string => {
    const path = join(dir, name)
    writeFileSync(path, contents)
    return path
  }

  t.test('WARPMESH_KEY', async (t) => {
    t.same(loadKeys({ WARPMESH_KEY: `${HEX_A},${HEX_B}` }), {
      keys: [Buffer.from(HEX_A, 'hex'), Buffer.from(HEX_B, 'hex')], insecure: false,
    })
    // a key wins over WARPMESH_INSECURE: protection is never silently off
    t.same(loadKeys({ WARPMESH_KEY: HEX_A, WARPMESH_INSECURE: '1' }), { keys: [Buffer.from(HEX_A, 'hex')], insecure: false })
    // empty variables count as unset
    t.same(loadKeys({ WARPMESH_KEY: HEX_A, WARPMESH_KEY_FILE: '', WARPMESH_INSECURE: '' }).keys, [Buffer.from(HEX_A, 'hex')])
    const err = catchConfig(() => loadKeys({ WARPMESH_KEY: 'short' }))
    t.equal(err.variable, 'WARPMESH_KEY')
    t.notMatch(visible(err), 'short')
  })

  t.test('WARPMESH_KEY_FILE: contents trimmed', async (t) => {
    const path = file('k1', `\n  ${HEX_A},\n${HEX_B}\n\n`)
    t.same(loadKeys({ WARPMESH_KEY_FILE: path }), {
      keys: [Buffer.from(HEX_A, 'hex'), Buffer.from(HEX_B, 'hex')], insecure: false,
    })
  })

  t.test('WARPMESH_KEY_FILE errors name the variable and the path, never the contents', async (t) => {
    const secret = generateKey().slice(0, 60)
    const path = file('bad', secret + '\n')
    let err = catchConfig(() => loadKeys({ WARPMESH_KEY_FILE: path }))
    t.equal(err.variable, 'WARPMESH_KEY_FILE')
    t.equal(err.value, path)
    t.equal(err.reason, `the key (60 characters, starting ${secret.slice(0, 4)}…) is 30 bytes of hex, shorter than 32 bytes (64 hex digits)`)
    t.ok(err.message.startsWith(`WARPMESH_KEY_FILE=${JSON.stringify(path)} is invalid: `))
    t.equal(leaked(err, secret), undefined, 'key not shown')

    err = catchConfig(() => loadKeys({ WARPMESH_KEY_FILE: file('empty', ' \n') }))
    t.equal(err.reason, 'contains no key')

    const missing = join(dir, 'missing')
    err = catchConfig(() => loadKeys({ WARPMESH_KEY_FILE: missing }))
    t.equal(err.variable, 'WARPMESH_KEY_FILE')
    t.equal(err.value, missing)
    t.equal(err.reason, `the file cannot be read (ENOENT: no such file or directory, open '${missing}')`)
    t.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT')

    err = catchConfig(() => loadKeys({ WARPMESH_KEY_FILE: dir }))
    t.equal(err.reason, 'the file cannot be read (EISDIR: illegal operation on a directory, read)')

    const big = file('big', Buffer.alloc(MAX_KEY_FILE_BYTES + 1, 0x61))
    err = catchConfig(() => loadKeys({ WARPMESH_KEY_FILE: big }))
    t.equal(err.reason, `the file is larger than ${MAX_KEY_FILE_BYTES} bytes`)
    // exactly at the cap is read (and then judged on its contents)
    const atCap = file('atcap', HEX_A + ' '.repeat(MAX_KEY_FILE_BYTES - HEX_A.length))
    t.same(loadKeys({ WARPMESH_KEY_FILE: atCap }).keys, [Buffer.from(HEX_A, 'hex')])
  })

  t.test('both WARPMESH_KEY and WARPMESH_KEY_FILE: error', async (t) => {
    const path = file('k2', HEX_A)
    const err = catchConfig(() => loadKeys({ WARPMESH_KEY: HEX_B, WARPMESH_KEY_FILE: path }))
    t.equal(err.variable, 'WARPMESH_KEY_FILE')
    t.equal(err.value, path)
    t.equal(err.reason, 'WARPMESH_KEY is set too')
    t.equal(err.expected, 'either WARPMESH_KEY or WARPMESH_KEY_FILE, not both')
    t.ok(err.message.startsWith(`WARPMESH_KEY_FILE=${JSON.stringify(path)} is invalid: WARPMESH_KEY is set too`), err.message)
    t.equal(leaked(err, HEX_B), undefined, 'key not shown')
  })

  t.test('no key: error explaining how to fix it, unless WARPMESH_INSECURE', async (t) => {
    const err = catchConfig(() => loadKeys({}))
    t.equal(err.variable, 'WARPMESH_KEY')
    t.equal(err.value, undefined)
    t.equal(err.reason, 'neither is WARPMESH_KEY_FILE, and WARPMESH_INSECURE is not set')
    t.match(err.message, /^WARPMESH_KEY is not set: neither is WARPMESH_KEY_FILE/)
    t.match(err.message, /run `warpmesh keygen` and set its output as WARPMESH_KEY on every node/)
    t.match(err.message, /WARPMESH_INSECURE=1 runs without authentication or encryption/)
    t.same(loadKeys({ WARPMESH_INSECURE: '1' }), { keys: [], insecure: true })
    t.same(loadKeys({ WARPMESH_INSECURE: 'true', WARPMESH_KEY: '' }), { keys: [], insecure: true })
  })

  t.test('WARPMESH_INSECURE: any other non-empty value is an error naming it', async (t) => {
    for (const value of ['0', 'false', 'yes', 'TRUE', ' 1', 'on']) {
      const err = catchConfig(() => loadKeys({ WARPMESH_INSECURE: value, WARPMESH_KEY: HEX_A }))
      t.equal(err.variable, 'WARPMESH_INSECURE', value)
      t.equal(err.value, value)
      t.equal(err.reason, 'is not a recognised value')
      t.equal(err.expected, '1 or true (or unset)')
      t.ok(err.message.startsWith(`WARPMESH_INSECURE=${JSON.stringify(value)} is invalid`), err.message)
    }
  })
  t.end()
})

t.test('keyId: first 4 bytes of HMAC-SHA256(key, "warpmesh key id"), big-endian uint32', async (t) => {
  const key = Buffer.from(HEX_A, 'hex')
  const expected = createHmac('sha256', key).update('warpmesh key id').digest().readUInt32BE(0)
  t.equal(keyId(key), expected)
  t.equal(keyId(key), expected, 'cached value is the same')
  t.equal(keyId(Buffer.from(HEX_A, 'hex')), expected, 'depends on the bytes, not the object')
  t.not(keyId(Buffer.from(HEX_B, 'hex')), expected)
  t.ok(Number.isInteger(expected) && expected >= 0 && expected <= 0xffffffff)
})

t.test('keysWithId: the keys with that id, in order; all keys for undefined', async (t) => {
  const a = Buffer.from(HEX_A, 'hex')
  const b = Buffer.from(HEX_B, 'hex')
  const keys = [a, b]
  t.equal(keysWithId(keys, keyId(b))[0], b)
  t.equal(keysWithId(keys, keyId(b)).length, 1)
  let unused = 0
  while (unused === keyId(a) || unused === keyId(b)) unused++
  t.same(keysWithId(keys, unused), [])
  const all = keysWithId(keys, undefined)
  t.same(all, keys)
  t.not(all, keys, 'a copy')
})
