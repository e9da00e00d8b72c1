import t from 'tap'
import { createHmac, hkdfSync } from 'node:crypto'
import { CookieJar } from '../../lib/security/cookie.js'
import {
  createNonce, deriveSessionKeys, type InitiatorTranscript, NONCE_LENGTH, PROOF_LENGTH, proveInitiator, proveResponder,
  SESSION_KEY_LENGTH, type Transcript, verifyInitiator, verifyResponder,
} from '../../lib/security/handshake.js'
import { keyId } from '../../lib/security/keys.js'

const KEY = Buffer.alloc(32, 0x11)
const OLD_KEY = Buffer.alloc(32, 0x22)
const OTHER_KEY = Buffer.alloc(32, 0x33)

function transcript(): Transcript {
  return {
    initiatorNonce: Buffer.alloc(NONCE_LENGTH, 0xa1),
    initiatorConnId: 0x01020304,
    initiatorEpoch: 0xdeadbeef,
    responderEpoch: 7,
    cookie: Buffer.alloc(20, 0xc0),
    initiatorMaxDatagram: 32768,
    responderNonce: Buffer.alloc(NONCE_LENGTH, 0xb2),
    responderConnId: 0xfffffffe,
    responderMaxDatagram: 1200,
  }
}

/** Every way to change one field of a transcript. */
const MUTATIONS: Array<[string, (t: Transcript) => void, boolean]> = [
  // [name, mutate, covered by the initiator proof]
  ['initiatorNonce', (x) => { x.initiatorNonce = Buffer.from(x.initiatorNonce); x.initiatorNonce[0] ^= 1 }, true],
  ['initiatorConnId', (x) => { x.initiatorConnId ^= 1 }, true],
  ['initiatorEpoch', (x) => { x.initiatorEpoch = (x.initiatorEpoch + 1) >>> 0 }, true],
  ['responderEpoch', (x) => { x.responderEpoch ^= 0x80000000 }, true],
  ['cookie bit', (x) => { x.cookie = Buffer.from(x.cookie); x.cookie[19] ^= 0x80 }, true],
  ['cookie length', (x) => { x.cookie = x.cookie.subarray(0, 19) }, true],
  ['responderNonce', (x) => { x.responderNonce = Buffer.from(x.responderNonce); x.responderNonce[31] ^= 1 }, false],
  ['responderConnId', (x) => { x.responderConnId ^= 1 }, false],
  ['initiatorMaxDatagram', (x) => { x.initiatorMaxDatagram = 65000 }, true],
  ['responderMaxDatagram', (x) => { x.responderMaxDatagram = 1201 }, false],
]

t.test('proofs: 16 bytes, deterministic, different per direction and per key', async (t) => {
  const tr = transcript()
  const pi = proveInitiator(KEY, tr)
  const pr = proveResponder(KEY, tr)
  t.equal(pi.length, PROOF_LENGTH)
  t.equal(pr.length, PROOF_LENGTH)
  t.same(proveInitiator(KEY, transcript()), pi)
  t.notSame(pi, pr)
  t.notSame(proveInitiator(OTHER_KEY, tr), pi)
})

t.test('proofs follow the documented encoding', async (t) => {
  const tr = transcript()
  const initiatorPart = Buffer.concat([
    tr.initiatorNonce,
    Buffer.from([0x01, 0x02, 0x03, 0x04, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 20]),
    tr.cookie,
    Buffer.from([0, 0, 0x80, 0]), // initiatorMaxDatagram 32768
  ])
  const mi = Buffer.concat([Buffer.from('warpmesh v1 initiator proof\0'), initiatorPart])
  const mr = Buffer.concat([
    Buffer.from('warpmesh v1 responder proof\0'), initiatorPart, tr.responderNonce, Buffer.from([0xff, 0xff, 0xff, 0xfe]),
    Buffer.from([0, 0, 0x04, 0xb0]), // responderMaxDatagram 1200
  ])
  t.same(proveInitiator(KEY, tr), createHmac('sha256', KEY).update(mi).digest().subarray(0, 16))
  t.same(proveResponder(KEY, tr), createHmac('sha256', KEY).update(mr).digest().subarray(0, 16))
})

t.test('verifyInitiator: the right key verifies; the key hint selects it', async (t) => {
  const tr = transcript()
  const proof = proveInitiator(KEY, tr)
  t.equal(verifyInitiator([KEY], keyId(KEY), tr, proof), KEY)
  t.equal(verifyInitiator([OTHER_KEY, KEY], undefined, tr, proof), KEY, 'no hint: every key is tried')
  t.equal(verifyInitiator([OTHER_KEY, KEY], keyId(KEY), tr, proof), KEY)
  t.equal(verifyInitiator([KEY], keyId(OTHER_KEY), tr, proof), null, 'hint names a key we lack: no trial of others')
  // an initiator-only transcript gives the same proof: responder fields are not covered
  const { responderNonce: _n, responderConnId: _c, responderMaxDatagram: _m, ...initiatorOnly } = tr
  const asSent: InitiatorTranscript = initiatorOnly
  t.same(proveInitiator(KEY, asSent), proof)
  t.equal(verifyInitiator([KEY], keyId(KEY), asSent, proof), KEY)
})

t.test('key rotation: [new, old] verifies proofs made with either', async (t) => {
  const tr = transcript()
  const keys = [KEY, OLD_KEY]
  t.equal(verifyInitiator(keys, keyId(OLD_KEY), tr, proveInitiator(OLD_KEY, tr)), OLD_KEY)
  t.equal(verifyInitiator(keys, keyId(KEY), tr, proveInitiator(KEY, tr)), KEY)
  t.equal(verifyInitiator([OLD_KEY], keyId(KEY), tr, proveInitiator(KEY, tr)), null, '[old] cannot verify new')
})

t.test('wrong key: no verification, whatever the hint', async (t) => {
  const tr = transcript()
  const proof = proveInitiator(OTHER_KEY, tr)
  t.equal(verifyInitiator([KEY, OLD_KEY], undefined, tr, proof), null)
  t.equal(verifyInitiator([KEY], keyId(KEY), tr, proof), null, 'a lying hint does not help')
  t.equal(verifyResponder([KEY], keyId(KEY), tr, proveResponder(OTHER_KEY, tr)), null)
})

t.test('reflection: a proof never verifies in the other direction', async (t) => {
  const tr = transcript()
  const pi = proveInitiator(KEY, tr)
  const pr = proveResponder(KEY, tr)
  t.equal(verifyResponder([KEY], keyId(KEY), tr, pi), null, 'initiator proof sent back as a responder proof')
  t.equal(verifyInitiator([KEY], keyId(KEY), tr, pr), null, 'responder proof sent back as an initiator proof')
  t.equal(verifyResponder([KEY], keyId(KEY), tr, pr), KEY)
})

t.test('any change to a covered transcript field breaks the proof', async (t) => {
  for (const [name, mutate, coveredByInitiator] of MUTATIONS) {
    const tr = transcript()
    const pi = proveInitiator(KEY, tr)
    const pr = proveResponder(KEY, tr)
    mutate(tr)
    t.equal(verifyInitiator([KEY], undefined, tr, pi) === null, coveredByInitiator, `initiator proof, ${name}`)
    t.equal(verifyResponder([KEY], undefined, tr, pr), null, `responder proof, ${name}`)
  }
})

t.test('every single-bit flip of a proof fails; wrong lengths fail', async (t) => {
  const tr = transcript()
  const pi = proveInitiator(KEY, tr)
  let accepted = 0
  for (let bit = 0; bit < PROOF_LENGTH * 8; bit++) {
    const bad = Buffer.from(pi)
    bad[bit >> 3] ^= 1 << (bit & 7)
    if (verifyInitiator([KEY], undefined, tr, bad) !== null) accepted++
  }
  t.equal(accepted, 0)
  t.equal(verifyInitiator([KEY], undefined, tr, pi.subarray(0, 15)), null)
  t.equal(verifyInitiator([KEY], undefined, tr, Buffer.concat([pi, Buffer.alloc(1)])), null)
  t.equal(verifyInitiator([KEY], undefined, tr, Buffer.alloc(0)), null)
  t.equal(verifyInitiator([], undefined, tr, pi), null, 'no keys at all')
})

t.test('malformed transcripts: verify returns null, prove throws RangeError', async (t) => {
  const bad: Array<[string, Partial<Transcript>]> = [
    ['short initiatorNonce', { initiatorNonce: Buffer.alloc(31) }],
    ['missing initiatorNonce', { initiatorNonce: undefined as unknown as Buffer }],
    ['initiatorConnId not uint32', { initiatorConnId: -1 }],
    ['initiatorEpoch not uint32', { initiatorEpoch: 2 ** 32 }],
    ['responderEpoch not uint32', { responderEpoch: 0.5 }],
    ['cookie too long', { cookie: Buffer.alloc(256) }],
    ['missing cookie', { cookie: undefined as unknown as Buffer }],
    ['long responderNonce', { responderNonce: Buffer.alloc(33) }],
    ['responderConnId not a number', { responderConnId: '1' as unknown as number }],
  ]
  const good = transcript()
  const pi = proveInitiator(KEY, good)
  const pr = proveResponder(KEY, good)
  for (const [name, patch] of bad) {
    const tr = { ...transcript(), ...patch }
    const responderOnly = name.startsWith('long responderNonce') || name.startsWith('responderConnId')
    t.equal(verifyResponder([KEY], undefined, tr, pr), null, `verifyResponder: ${name}`)
    t.throws(() => proveResponder(KEY, tr), RangeError, `proveResponder: ${name}`)
    if (!responderOnly) {
      t.equal(verifyInitiator([KEY], undefined, tr, pi), null, `verifyInitiator: ${name}`)
      t.throws(() => proveInitiator(KEY, tr), RangeError, `proveInitiator: ${name}`)
    }
  }
  t.equal(verifyInitiator([KEY], undefined, { ...good, cookie: Buffer.alloc(255) }, pi), null, '255-byte cookie is well-formed')
  t.equal(proveInitiator(KEY, { ...good, cookie: Buffer.alloc(0) }).length, 16, 'empty cookie is well-formed')
})

t.test('deriveSessionKeys: HKDF-SHA256 as documented, directions differ, both sides agree', async (t) => {
  const ni = createNonce()
  const nr = createNonce()
  const keys = deriveSessionKeys(KEY, ni, nr, 1, 2)
  t.equal(keys.initiatorToResponder.length, SESSION_KEY_LENGTH)
  t.equal(keys.responderToInitiator.length, SESSION_KEY_LENGTH)
  t.notSame(keys.initiatorToResponder, keys.responderToInitiator)
  t.same(deriveSessionKeys(Buffer.from(KEY), Buffer.from(ni), Buffer.from(nr), 1, 2), keys, 'deterministic')

  const salt = Buffer.concat([ni, nr])
  const ids = Buffer.from([0, 0, 0, 1, 0, 0, 0, 2])
  const expect = (label: string): Buffer =>
    Buffer.from(hkdfSync('sha256', KEY, salt, Buffer.concat([Buffer.from(label), ids]), 32))
  t.same(keys.initiatorToResponder, expect('warpmesh v1 initiator to responder'))
  t.same(keys.responderToInitiator, expect('warpmesh v1 responder to initiator'))

  const variants = [
    deriveSessionKeys(OTHER_KEY, ni, nr, 1, 2),
    deriveSessionKeys(KEY, nr, ni, 1, 2),
    deriveSessionKeys(KEY, ni, createNonce(), 1, 2),
    deriveSessionKeys(KEY, ni, nr, 2, 1),
    deriveSessionKeys(KEY, ni, nr, 1, 3),
  ]
  for (const [i, v] of variants.entries()) {
    t.notSame(v.initiatorToResponder, keys.initiatorToResponder, `variant ${i}: i2r changes`)
    t.notSame(v.responderToInitiator, keys.responderToInitiator, `variant ${i}: r2i changes`)
  }
  t.throws(() => deriveSessionKeys(KEY, ni.subarray(1), nr, 1, 2), RangeError)
  t.throws(() => deriveSessionKeys(KEY, ni, Buffer.alloc(33), 1, 2), RangeError)
  t.throws(() => deriveSessionKeys(KEY, ni, nr, -1, 2), RangeError)
  t.throws(() => deriveSessionKeys(KEY, ni, nr, 1, 2 ** 32), RangeError)
})

t.test('createNonce: 32 fresh random bytes', async (t) => {
  const a = createNonce()
  t.equal(a.length, NONCE_LENGTH)
  t.notSame(a, createNonce())
})

t.test('the whole handshake, as the endpoint will run it', async (t) => {
  const initiatorKeys = [KEY, OLD_KEY] // rotating: new first
  const responderKeys = [OLD_KEY] // not yet rotated
  const jar = new CookieJar({ now: () => 5000 })
  const address = '198.18.0.2'
  const port = 40000

  // HELLO: the initiator offers its newest key id
  const hello = { connId: 0x0a0b0c0d, epoch: 11, nonce: createNonce(), keyId: keyId(initiatorKeys[0]), maxDatagram: 32768 }
  // CHALLENGE: stateless; the responder lacks the offered key, so it names its own newest
  const challengeKeyId = responderKeys.some((k) => keyId(k) === hello.keyId) ? hello.keyId : keyId(responderKeys[0])
  const challenge = { epoch: 22, cookie: jar.issue(address, port, hello.connId, hello.nonce), keyId: challengeKeyId }
  // CONNECT: the initiator proves with the key the responder named
  const key = initiatorKeys.find((k) => keyId(k) === challenge.keyId)
  t.equal(key, OLD_KEY)
  const sent: InitiatorTranscript = {
    initiatorNonce: hello.nonce, initiatorConnId: hello.connId, initiatorEpoch: hello.epoch,
    responderEpoch: challenge.epoch, cookie: challenge.cookie, initiatorMaxDatagram: hello.maxDatagram,
  }
  const connect = { ...hello, cookie: challenge.cookie, keyId: keyId(key!), proof: proveInitiator(key!, sent) }

  // responder: cookie first (cheap, proves the address), then the proof
  t.equal(jar.verify(connect.cookie, address, port, connect.connId, connect.nonce), true)
  const seen: InitiatorTranscript = {
    initiatorNonce: connect.nonce, initiatorConnId: connect.connId, initiatorEpoch: connect.epoch,
    responderEpoch: 22, cookie: connect.cookie, initiatorMaxDatagram: connect.maxDatagram,
  }
  const matched = verifyInitiator(responderKeys, connect.keyId, seen, connect.proof)
  t.equal(matched, OLD_KEY)
  const full: Transcript = { ...seen, responderNonce: createNonce(), responderConnId: 0x11223344, responderMaxDatagram: 4096 }
  const accept = {
    connId: full.responderConnId, nonce: full.responderNonce, keyId: keyId(matched!), maxDatagram: full.responderMaxDatagram,
    proof: proveResponder(matched!, full),
  }

  // initiator: check the responder's proof with the key it used
  const initiatorFull: Transcript = {
    ...sent, responderNonce: accept.nonce, responderConnId: accept.connId, responderMaxDatagram: accept.maxDatagram,
  }
  t.equal(verifyResponder([key!], accept.keyId, initiatorFull, accept.proof), key)

  const i = deriveSessionKeys(key!, hello.nonce, accept.nonce, hello.connId, accept.connId)
  const r = deriveSessionKeys(matched!, connect.nonce, full.responderNonce, connect.connId, full.responderConnId)
  t.same(i, r, 'both sides derive the same session keys')

  // a node holding none of the keys fails on both sides, with a clear null
  t.equal(verifyInitiator([OTHER_KEY], connect.keyId, seen, connect.proof), null)
  t.equal(verifyResponder([OTHER_KEY], accept.keyId, initiatorFull, accept.proof), null)
  // no message carries a key
  for (const msg of [hello, challenge, connect, accept]) {
    const bytes = JSON.stringify(msg)
    for (const k of [KEY, OLD_KEY]) t.notOk(bytes.includes(k.toString('hex')) || bytes.includes(JSON.stringify([...k])))
  }
})
