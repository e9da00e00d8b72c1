/**
 * A varint longer than any the process has met (a packet or sequence number
 * past 2^14, an ACK delay over 16 ms) must not throw away the optimized frame
 * decoder and the ACK encoder: both meet such values only well into real
 * traffic, and the unrolled decoder and the comparison chain of `varintSize`
 * deoptimized ("insufficient type feedback") in every node of the bench's
 * clusters when they did. Checked in a child process with V8's own
 * optimization status (--allow-natives-syntax) and its deoptimization trace.
 */
import t from 'tap'
import { deoptsAfter, distModule, OPTIMIZED, runNatives, runNativesOutput } from '../fixtures/natives.js'

const DECODE = distModule('lib/wire/decode.js')
const CODEC = distModule('lib/wire/codec.js')
const FAST = distModule('lib/wire/fast.js')

// readFrame is internal: trained through decodeFrames until V8 has optimized
// it (synchronously: --no-concurrent-recompilation), then traced.
const DECODER_FUNCTIONS = ['decodeFrames', 'readFrame', 'readVarint', 'readShort']

const DECODER = `
import { decodeFrames } from ${JSON.stringify(DECODE)}
import { encodeFrames, FrameType } from ${JSON.stringify(CODEC)}
const ack = (delay) => encodeFrames([{ type: FrameType.ACK, largest: 9, ackDelayUs: delay, firstRange: 2, ranges: [] }])
const small = [ack(40), ack(1000), ack(5000)] // one and two bytes
for (let i = 0; i < 20000; i++) decodeFrames(small[i % small.length])
const optimized = %GetOptimizationStatus(decodeFrames)
console.log('MARK')
const frames = decodeFrames(ack(20000)) // three bytes
const four = decodeFrames(ack(3000000)) // four bytes
console.log(JSON.stringify({ optimized, delays: [frames[0].ackDelayUs, four[0].ackDelayUs] }))
`

const ENCODER = `
import { encodeAckEntry } from ${JSON.stringify(FAST)}
;%PrepareFunctionForOptimization(encodeAckEntry)
for (let i = 0; i < 300; i++) encodeAckEntry(100 + i, i * 20, 0, [])
;%OptimizeFunctionOnNextCall(encodeAckEntry)
encodeAckEntry(5, 10, 0, [])
const optimized = %GetOptimizationStatus(encodeAckEntry)
const entry = encodeAckEntry(70000, 20000, 0, [])
const afterLong = %GetOptimizationStatus(encodeAckEntry)
console.log(JSON.stringify({ optimized, afterLong, bytes: entry.length }))
`

t.test('longer varints keep the optimized frame decoder', async (t) => {
  const out = await runNativesOutput(t, DECODER, ['--trace-deopt'])
  const r = JSON.parse(out.split('\n').findLast((l) => l.startsWith('{'))!) as { optimized: number, delays: number[] }
  t.same(r.delays, [20000, 3000000], 'the long values decoded')
  t.ok(r.optimized & OPTIMIZED, `decodeFrames optimized on short varints (status ${r.optimized})`)
  // Only the decoder's own functions: under tap the child also parses source maps, whose code deoptimizes on its own.
  t.same(deoptsAfter(out, 'MARK').filter((f) => DECODER_FUNCTIONS.includes(f)), [], 'the decoder not deoptimized by three- and four-byte varints')
})

t.test('a three-byte varint keeps the optimized ACK encoder', async (t) => {
  const r = await runNatives<{ optimized: number, afterLong: number, bytes: number }>(t, ENCODER)
  t.ok(r.bytes > 0, 'the entry was encoded')
  t.ok(r.optimized & OPTIMIZED, `encodeAckEntry optimized on short values (status ${r.optimized})`)
  t.ok(r.afterLong & OPTIMIZED, `encodeAckEntry still optimized after three-byte values (status ${r.afterLong})`)
})
