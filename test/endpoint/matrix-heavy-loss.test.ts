// Simulation matrix, part 2: random loss 10 / 30 % (both directions).
import t from 'tap'
import { matrixCase } from './matrix.js'

matrixCase(t, 'loss 10 %', { loss: 0.1 }, 13)
matrixCase(t, 'loss 30 %', { loss: 0.3 }, 14)
