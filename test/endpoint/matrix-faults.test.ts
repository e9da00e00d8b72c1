// Simulation matrix, part 3: duplication, reordering, jitter, and all at once.
import t from 'tap'
import { matrixCase } from './matrix.js'

matrixCase(t, 'duplication 5 %', { duplicate: 0.05 }, 15, { allUnreliable: true })
matrixCase(t, 'reordering 5 % (+10 ms)', { reorder: 0.05 }, 16)
matrixCase(t, 'jitter 1 ms on 0.5 ms delay', { jitterMs: 1 }, 17)
matrixCase(t, 'loss 10 % + duplication 5 % + reordering 5 % + jitter 0.5 ms', { loss: 0.1, duplicate: 0.05, reorder: 0.05, jitterMs: 0.5 }, 18)
