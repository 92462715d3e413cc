import CKernels

/// Recurrent cell steps on the CPU (CKernels/recurrent.c), rows split over threads.
extension CPUDevice {
    public func recurrentStep(_ step: RecurrentStep, _ s: RecurrentSequence) throws {
        try step.validate(s)
        let (u, width, state) = (step.units, step.width, step.stateOffset)
        let hidden = s.hidden.host + state, cell = s.cell.map { $0.host + state }
        let gates = s.gates.host + step.gatesOffset, recurrent = s.recurrent.map { $0.host + step.gatesOffset }
        let mask = s.mask.map { $0.host + step.maskOffset }, bias = s.recurrentBias?.host
        let dropoutMask = s.dropoutMask?.host, dropped = s.dropped.map { $0.host + state + step.batch * u }
        parallelFor(step.batch, grain: max(1, 4096 / width)) { rows in
            let first = rows.lowerBound
            var shape = kiln_recurrent(cell: step.cell.rawValue, relu: step.relu ? 1 : 0, batch: rows.count, units: u)
            kiln_recurrent_step(&shape, gates + first * width, recurrent.map { $0 + first * width }, bias,
                                hidden + first * u, hidden + (step.batch + first) * u,
                                cell.map { $0 + first * u }, cell.map { $0 + (step.batch + first) * u }, mask.map { $0 + first },
                                dropoutMask.map { $0 + first * u }, dropped.map { $0 + first * u })
        }
    }

    public func recurrentStepBackward(_ step: RecurrentStep, _ s: RecurrentSequence, gradients g: RecurrentGradients) throws {
        try step.validate(s, g)
        let (u, width, state) = (step.units, step.width, step.stateOffset)
        let hidden = s.hidden.host + state, cell = s.cell.map { $0.host + state }
        let gates = s.gates.host + step.gatesOffset, recurrent = s.recurrent.map { $0.host + step.gatesOffset }
        let mask = s.mask.map { $0.host + step.maskOffset }, output = g.output.map { $0.host + state }
        let gradGates = g.gates.host + step.gatesOffset, gradRecurrent = g.recurrent.map { $0.host + step.gatesOffset }
        let (gradHidden, gradCell) = (g.hidden.host, g.cell?.host)
        let through = g.through?.host, dropoutMask = s.dropoutMask?.host
        parallelFor(step.batch, grain: max(1, 4096 / width)) { rows in
            let first = rows.lowerBound
            var shape = kiln_recurrent(cell: step.cell.rawValue, relu: step.relu ? 1 : 0, batch: rows.count, units: u)
            kiln_recurrent_step_backward(&shape, gates + first * width, recurrent.map { $0 + first * width },
                                         hidden + first * u, hidden + (step.batch + first) * u,
                                         cell.map { $0 + first * u }, cell.map { $0 + (step.batch + first) * u }, mask.map { $0 + first },
                                         output.map { $0 + first * u }, through.map { $0 + first * u }, dropoutMask.map { $0 + first * u },
                                         gradHidden + first * u, gradCell.map { $0 + first * u },
                                         gradGates + first * width, gradRecurrent.map { $0 + first * width })
        }
    }
}
