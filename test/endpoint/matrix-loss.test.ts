// Simulation matrix, part 1: random loss 0 / 1 %. (Split in files so tap runs them in parallel.)
import t from 'tap'
import { matrixCase } from './matrix.js'

matrixCase(t, 'loss 0 %', { loss: 0 }, 11, { allUnreliable: true })
matrixCase(t, 'loss 1 %', { loss: 0.01 }, 12)
