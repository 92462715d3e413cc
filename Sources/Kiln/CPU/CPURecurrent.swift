import CBLAS
import CKernels

/// Recurrent cells on the CPU (CKernels/recurrent.c). A sequence's rows are independent through
/// time, so the time loop runs as one parallel region: each thread takes a block of rows through
/// every step (its rows' GEMM with U, then its rows' cell kernel), with no barrier between steps.
extension CPUDevice {
    public func recurrentStep(_ step: RecurrentStep, _ s: RecurrentSequence) throws {
        try step.validate(s)
        parallelFor(step.batch, grain: max(1, 4096 / step.width)) { rows in forward(step, s, rows: rows) }
    }

    public func recurrentStepBackward(_ step: RecurrentStep, _ s: RecurrentSequence, gradients g: RecurrentGradients) throws {
        try step.validate(s, g)
        parallelFor(step.batch, grain: max(1, 4096 / step.width)) { rows in backward(step, s, g, rows: rows) }
    }

    public func recurrentForward(_ step: RecurrentStep, _ s: RecurrentSequence, recurrentKernel: Buffer) throws {
        try step.validate(s)
        try require(recurrentKernel, step.units * step.width, "recurrentForward recurrent kernel")
        let (u, width) = (step.units, step.width)
        let (source, target, kernel) = ((s.dropped ?? s.hidden).host, (s.recurrent ?? s.gates).host, recurrentKernel.host)
        rowBlocks(step) { rows in
            for t in 0..<step.length {
                var at = step
                at.time = t
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows.count), Int32(width), Int32(u), 1,
                            source + at.stateOffset + rows.lowerBound * u, Int32(u), kernel, Int32(width),
                            step.cell == .gru ? 0 : 1, target + at.gatesOffset + rows.lowerBound * width, Int32(width))
                forward(at, s, rows: rows)
            }
        }
    }

    public func recurrentBackward(_ step: RecurrentStep, _ s: RecurrentSequence, recurrentKernel: Buffer, gradients g: RecurrentGradients) throws {
        try step.validate(s, g)
        try require(recurrentKernel, step.units * step.width, "recurrentBackward recurrent kernel")
        let (u, width) = (step.units, step.width)
        let (source, target, kernel) = ((g.recurrent ?? g.gates).host, (g.through ?? g.hidden).host, recurrentKernel.host)
        rowBlocks(step) { rows in
            for t in (0..<step.length).reversed() {
                var at = step
                at.time = t
                backward(at, s, g, rows: rows)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows.count), Int32(u), Int32(width), 1,
                            source + at.gatesOffset + rows.lowerBound * width, Int32(width), kernel, Int32(width),
                            g.through == nil ? 1 : 0, target + rows.lowerBound * u, Int32(u))
            }
        }
    }

    /// Splits a sequence's rows over the cores, in blocks of at least 8 rows.
    private func rowBlocks(_ step: RecurrentStep, _ body: (Range<Int>) -> Void) {
        let blocks = max(1, min(threads, step.batch / 8))
        parallel(blocks) { block in body(step.batch * block / blocks ..< step.batch * (block + 1) / blocks) }
    }

    /// Step `step.time`'s cell kernel on `rows`.
    private func forward(_ step: RecurrentStep, _ s: RecurrentSequence, rows: Range<Int>) {
        let (u, width, state, first) = (step.units, step.width, step.stateOffset, rows.lowerBound)
        let hidden = s.hidden.host + state, cell = s.cell.map { $0.host + state }
        let gates = s.gates.host + step.gatesOffset, recurrent = s.recurrent.map { $0.host + step.gatesOffset }
        let mask = s.mask.map { $0.host + step.maskOffset }, dropped = s.dropped.map { $0.host + state + step.batch * u }
        var shape = kiln_recurrent(cell: step.cell.rawValue, relu: step.relu ? 1 : 0, batch: rows.count, units: u)
        kiln_recurrent_step(&shape, gates + first * width, s.inputBias?.host, recurrent.map { $0 + first * width }, s.recurrentBias?.host,
                            hidden + first * u, hidden + (step.batch + first) * u,
                            cell.map { $0 + first * u }, cell.map { $0 + (step.batch + first) * u }, mask.map { $0 + first },
                            s.dropoutMask.map { $0.host + first * u }, dropped.map { $0 + first * u })
    }

    /// Step `step.time`'s backward cell kernel on `rows`.
    private func backward(_ step: RecurrentStep, _ s: RecurrentSequence, _ g: RecurrentGradients, rows: Range<Int>) {
        let (u, width, state, first) = (step.units, step.width, step.stateOffset, rows.lowerBound)
        let hidden = s.hidden.host + state, cell = s.cell.map { $0.host + state }
        let gates = s.gates.host + step.gatesOffset, recurrent = s.recurrent.map { $0.host + step.gatesOffset }
        let mask = s.mask.map { $0.host + step.maskOffset }, output = g.output.map { $0.host + state }
        let gradGates = g.gates.host + step.gatesOffset, gradRecurrent = g.recurrent.map { $0.host + step.gatesOffset }
        var shape = kiln_recurrent(cell: step.cell.rawValue, relu: step.relu ? 1 : 0, batch: rows.count, units: u)
        kiln_recurrent_step_backward(&shape, gates + first * width, recurrent.map { $0 + first * width },
                                     hidden + first * u, hidden + (step.batch + first) * u,
                                     cell.map { $0 + first * u }, cell.map { $0 + (step.batch + first) * u }, mask.map { $0 + first },
                                     output.map { $0 + first * u }, g.through.map { $0.host + first * u }, s.dropoutMask.map { $0.host + first * u },
                                     g.hidden.host + first * u, g.cell.map { $0.host + first * u },
                                     gradGates + first * width, gradRecurrent.map { $0 + first * width })
    }
}
