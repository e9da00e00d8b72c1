import t from 'tap'
import { aeadUsPerMessage, averagePacket, addedFloorRatio, deltaPercent, goalVerdict } from '../../bench/lib/floor.js'

t.test('averagePacket: whole bytes, NaN without packets', async (t) => {
  t.equal(averagePacket(1190 * 3 + 1, 3), 1190)
  t.equal(averagePacket(100, 3), 33)
  t.ok(Number.isNaN(averagePacket(0, 0)))
})

t.test('aeadUsPerMessage: each flow\'s packets × its cost, ÷ messages', async (t) => {
  // 1000 messages in 50 data packets at 3 µs and 10 ACK packets at 2 µs: (150 + 20) / 1000.
  t.equal(aeadUsPerMessage([{ packets: 50, sealOpenUs: 3 }, { packets: 10, sealOpenUs: 2 }], 1000), 0.17)
  // A direction that sent nothing costs nothing, whatever its (unmeasured) cost says.
  t.equal(aeadUsPerMessage([{ packets: 50, sealOpenUs: 3 }, { packets: 0, sealOpenUs: NaN }], 1000), 0.15)
  t.ok(Number.isNaN(aeadUsPerMessage([{ packets: 1, sealOpenUs: 1 }], 0)))
})

t.test('addedFloorRatio: (unprotected + AEAD) ÷ unprotected, for CPU or RTT µs', async (t) => {
  t.equal(addedFloorRatio(0.5, 2), 1.25)
  t.equal(addedFloorRatio(0, 2), 1)
  t.ok(Number.isNaN(addedFloorRatio(0.5, 0)))
  t.ok(Number.isNaN(addedFloorRatio(0.5, NaN)))
  t.ok(Number.isNaN(addedFloorRatio(NaN, 2)))
})

t.test('deltaPercent: a ratio as a signed change', async (t) => {
  t.equal(deltaPercent(1.12), '+12 %')
  t.equal(deltaPercent(1), '+0 %')
  t.equal(deltaPercent(0.97), '-3 %')
  t.equal(deltaPercent(2.456), '+146 %')
  t.equal(deltaPercent(NaN), '—')
  t.equal(deltaPercent(null), '—')
})

t.test('goalVerdict: below floor only when not met and the limit is under the floor', async (t) => {
  t.equal(goalVerdict(true, 1.15, null), 'met')
  t.equal(goalVerdict(false, 1.15, null), 'NOT MET')
  t.equal(goalVerdict(false, 1.15, 1.10), 'NOT MET', 'floor under the limit: the protocol could still meet it')
  t.equal(goalVerdict(false, 1.15, 1.15), 'NOT MET', 'a limit equal to the floor is reachable')
  t.equal(goalVerdict(false, 1.15, 1.30), 'NOT MET (below floor)')
  t.equal(goalVerdict(true, 1.15, 1.30), 'met', 'a floor never changes a measured verdict')
  t.equal(goalVerdict(false, null, 1.30), 'NOT MET', 'no limit, nothing to compare')
  t.equal(goalVerdict(false, 1.15, NaN), 'NOT MET', 'floor not measured')
})
