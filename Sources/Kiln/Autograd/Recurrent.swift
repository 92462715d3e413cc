/// The weights and options of a recurrent layer's pass (Keras layouts).
struct RecurrentWeights {
    var cell: RecurrentStep.Cell
    var relu = false
    /// `[features, width]`, `[units, width]`, and the bias `[width]` added to the input projection.
    var kernel: Tensor, recurrentKernel: Tensor, bias: Tensor?
    /// GRU: the bias `[width]` of the recurrent projection (Keras's `reset_after`).
    var recurrentBias: Tensor?
    /// Recurrent dropout: `[batch, units]`, 0 or 1/(1 − rate), one mask per sequence for every step,
    /// applied to the state the recurrent projection reads.
    var recurrentDropoutMask: Tensor?
    /// GRU: false for Keras's `reset_after=False` (ONNX's `linear_before_reset=0`), where the reset gate
    /// scales the state before the candidate's recurrent projection.
    var resetAfter = true
}

extension Tensor {
    /// Runs a recurrent layer over `self` (`[batch, time, features]`) as one differentiable op: the
    /// input projection of every step is one GEMM, then the device runs the time loop (a GEMM with the
    /// recurrent kernel and one fused cell kernel per step, with no host round-trip); the backward pass
    /// runs the steps in reverse and finds the weight gradients with three GEMMs over all steps.
    ///
    /// Returns the states time-major, `[time + 1, batch, units]`: the hidden states h0…hT, and for an
    /// LSTM a last row holding its final cell state cT (`[time + 2, batch, units]`, the layer's returned
    /// state; the other cell states stay inside the op). `mask` is `[batch, time]`, 0 at padded steps.
    func recurrentStates(_ w: RecurrentWeights, initialHidden: Tensor?, initialCell: Tensor?, mask: Tensor?) throws -> Tensor {
        try requireFloat("recurrent layer")
        guard rank == 3 else { throw TensorError.shape("a recurrent layer takes [batch, time, features], got \(shape)") }
        let (batch, time, features) = (shape[0], shape[1], shape[2]), units = w.recurrentKernel.shape[0]
        let probe = RecurrentStep(cell: w.cell, relu: w.relu, batch: batch, units: units, time: 0, length: time)
        let width = probe.width, lstm = w.cell == .lstm, gru = w.cell == .gru
        guard w.kernel.shape == [features, width], w.recurrentKernel.shape == [units, width] else {
            throw TensorError.shape("recurrent kernels \(w.kernel.shape) and \(w.recurrentKernel.shape) do not fit \(features) features and \(units) units")
        }
        for state in [initialHidden, initialCell].compactMap({ $0 }) where state.shape != [batch, units] {
            throw TensorError.shape("an initial state of shape \(state.shape) for a batch of \(batch) and \(units) units")
        }
        if let mask, mask.shape != [batch, time] { throw TensorError.shape("a mask of shape \(mask.shape) for sequences \(shape)") }
        if let dropout = w.recurrentDropoutMask, dropout.shape != [batch, units] {
            throw TensorError.shape("a recurrent dropout mask of shape \(dropout.shape) for a batch of \(batch) and \(units) units")
        }
        if gru, !w.resetAfter { return try resetBeforeStates(w, initialHidden: initialHidden, mask: mask) }
        let d = device, steps = time * batch, stateCount = (time + 1) * batch * units

        // Forward: time-major inputs, gates = x·W, then the steps (whose cell kernel adds the bias).
        let inputs = try permuted([1, 0, 2])
        let gates = try d.makeBuffer(count: steps * width)
        try d.gemm(Gemm(m: steps, n: width, k: features), a: inputs.buffer, b: w.kernel.buffer, c: gates)
        // An LSTM's hidden buffer has a row more, where cT is copied after the loop: the op's output.
        let hidden = try d.makeBuffer(count: stateCount + (lstm ? batch * units : 0)), cell = lstm ? try d.makeBuffer(count: stateCount) : nil
        let recurrent = gru ? try d.makeBuffer(count: steps * width) : nil
        for (state, initial) in [(hidden, initialHidden), (cell, initialCell)] {
            guard let state else { continue }
            if let initial { try d.copy(initial.buffer, to: state, count: batch * units) } else { try d.fill(state, with: 0, offset: 0, count: batch * units) }
        }
        let timeMajorMask = try mask.map { try $0.permuted([1, 0]) }
        let dropoutMask = w.recurrentDropoutMask?.buffer, dropped = dropoutMask == nil ? nil : try d.makeBuffer(count: stateCount)
        if let dropoutMask, let dropped {
            try d.binary(.multiply, hidden, shape: [batch * units], dropoutMask, shape: [batch * units], into: dropped, shape: [batch * units])
        }
        let sequence = RecurrentSequence(gates: gates, inputBias: w.bias?.buffer, recurrent: recurrent, recurrentBias: w.recurrentBias?.buffer, hidden: hidden,
                                         cell: cell, mask: timeMajorMask?.buffer, dropoutMask: dropoutMask, dropped: dropped)
        try d.recurrentForward(probe, sequence, recurrentKernel: w.recurrentKernel.buffer)
        if let cell { try d.copy(cell, offset: time * batch * units, to: hidden, at: stateCount, count: batch * units) }

        let parameters = [w.kernel, w.recurrentKernel, w.bias, w.recurrentBias, initialHidden, initialCell]
        let tracked = [self] + parameters.compactMap { $0 }
        let present = parameters.map { $0 != nil }
        let result = Tensor.record([time + (lstm ? 2 : 1), batch, units], buffer: hidden, from: tracked) { g in
            // Backward: the gradients of h[1...T] are the outputs' gradients; c[T]'s starts the cell carry.
            let outputs = try d.makeBuffer(count: steps * units)
            try d.copy(g.buffer, offset: batch * units, to: outputs, count: steps * units)
            let carry = try d.buffer(repeating: 0, count: batch * units)
            let cellCarry = try cell.map { _ in try d.makeBuffer(count: batch * units) }
            if let cellCarry { try d.copy(g.buffer, offset: stateCount, to: cellCarry, count: batch * units) }
            let gradGates = try d.makeBuffer(count: steps * width), gradRecurrent = gru ? try d.makeBuffer(count: steps * width) : nil
            let through = dropoutMask == nil ? nil : try d.buffer(repeating: 0, count: batch * units)
            let gradients = RecurrentGradients(output: outputs, hidden: carry, cell: cellCarry, gates: gradGates, recurrent: gradRecurrent, through: through)
            try d.recurrentBackward(probe, sequence, recurrentKernel: w.recurrentKernel.buffer, gradients: gradients)
            func tensor(_ shape: [Int], _ compute: (Buffer) throws -> Void) throws -> Tensor {
                let buffer = try d.makeBuffer(count: shape.reduce(1, *))
                try compute(buffer)
                return Tensor(shape: shape, buffer: buffer, device: d)
            }
            func columnSums(_ rows: Buffer) throws -> Tensor {
                try tensor([width]) { try d.reduce(.sum, rows, view: AxisView(outer: 1, axis: steps, inner: width), into: $0) }
            }
            let gradInputs = try tensor([time, batch, features]) {
                try d.gemm(Gemm(m: steps, n: features, k: width, transposeB: true), a: gradGates, b: w.kernel.buffer, c: $0)
            }.permuted([1, 0, 2])
            let gradKernel = try tensor([features, width]) {
                try d.gemm(Gemm(m: features, n: width, k: steps, transposeA: true), a: inputs.buffer, b: gradGates, c: $0)
            }
            let gradRecurrentKernel = try tensor([units, width]) {
                try d.gemm(Gemm(m: units, n: width, k: steps, transposeA: true), a: dropped ?? hidden, b: gradRecurrent ?? gradGates, c: $0)
            }
            let gradInitialHidden = try tensor([batch, units]) {
                let n = [batch * units]
                try d.copy(g.buffer, to: $0, count: batch * units)
                try d.binary(.add, $0, shape: n, carry, shape: n, into: $0, shape: n)
                if let through, let dropoutMask {
                    try d.binary(.multiply, through, shape: n, dropoutMask, shape: n, into: through, shape: n)
                    try d.binary(.add, $0, shape: n, through, shape: n, into: $0, shape: n)
                }
            }
            let all: [Tensor?] = [gradKernel, gradRecurrentKernel, try columnSums(gradGates), try gradRecurrent.map(columnSums),
                                  gradInitialHidden, try cellCarry.map { buffer in try tensor([batch, units]) { try d.copy(buffer, to: $0, count: batch * units) } }]
            return [gradInputs] + zip(all, present).filter(\.1).map(\.0)
        }
        return result
    }

    /// The GRU whose reset gate scales the state before the candidate's recurrent projection,
    /// h̃ = act(x·W_h + b_h + (r ⊙ h)·U_h + b'_h) (Keras's `reset_after=False`, ONNX's default): the
    /// input projection is one GEMM, the steps run as differentiable tensor ops (no fused kernel, as
    /// r must reach the state before its projection). `recurrentStates`' arguments and layout.
    private func resetBeforeStates(_ w: RecurrentWeights, initialHidden: Tensor?, mask: Tensor?) throws -> Tensor {
        let (batch, time, features) = (shape[0], shape[1], shape[2]), units = w.recurrentKernel.shape[0]
        var projected = try reshaped([batch * time, features]).matmul(w.kernel)
        if let bias = w.bias { projected = try projected.addingBias(bias) }
        projected = try projected.reshaped([batch, time, 3 * units])
        let gatesKernel = try w.recurrentKernel.sliced(0..<2 * units, axis: 1)
        let candidateKernel = try w.recurrentKernel.sliced(2 * units..<3 * units, axis: 1)
        let (gatesBias, candidateBias) = (try w.recurrentBias?.sliced(0..<2 * units, axis: 0), try w.recurrentBias?.sliced(2 * units..<3 * units, axis: 0))
        var h = try initialHidden ?? Tensor.zeros([batch, units], on: device)
        var states = [h]
        for t in 0..<time {
            let step = try projected.selected(t, axis: 1)
            let read = try w.recurrentDropoutMask.map { try h * $0 } ?? h
            var gates = try step.sliced(0..<2 * units, axis: 1) + read.matmul(gatesKernel)
            if let gatesBias { gates = try gates + gatesBias }
            gates = try gates.sigmoid()
            let (z, r) = (try gates.sliced(0..<units, axis: 1), try gates.sliced(units..<2 * units, axis: 1))
            var candidate = try step.sliced(2 * units..<3 * units, axis: 1) + (r * read).matmul(candidateKernel)
            if let candidateBias { candidate = try candidate + candidateBias }
            candidate = try w.relu ? candidate.relu() : candidate.tanh()
            var next = try z * h + (1 - z) * candidate
            if let mask { next = try h + mask.sliced(t..<t + 1, axis: 1) * (next - h) }  // padded steps keep the state
            h = next
            states.append(h)
        }
        return try Tensor.stack(states, axis: 0)
    }
}
