import Foundation

/// Keras's `TensorBoard` callback: event files TensorBoard reads (`tensorboard --logdir …`), in
/// `logDir/train` and `logDir/validation` as Keras lays them out. Per epoch: every metric as
/// `epoch_<name>` (`val_` metrics in the validation run, under the same tag), the learning rate;
/// every `updateFrequency` steps the running metrics as `batch_<name>`; every `histogramFrequency`
/// epochs a histogram of each weight (`<layer>/<weight>/histogram`) and of its last gradient
/// (`<layer>/<weight>/gradient`); the model summary as text; images from `images` each epoch and
/// from `addImage`. Files are rewritten atomically after each epoch and at the end.
public final class TensorBoard: Callback {
    public let logDir: URL
    public let histogramFrequency: Int
    public let updateFrequency: Int?
    /// PNG images to log after an epoch, by tag (a generator's samples).
    public var images: ((_ epoch: Int) throws -> [String: Data])?
    private var train: EventFileWriter?
    private var validation: EventFileWriter?
    private var step = 0

    /// `histogramFrequency` 0 writes no histograms; `updateFrequency` nil logs per epoch only.
    public init(logDir: URL, histogramFrequency: Int = 0, updateFrequency: Int? = nil, images: ((_ epoch: Int) throws -> [String: Data])? = nil) throws {
        guard histogramFrequency >= 0, (updateFrequency ?? 1) > 0 else {
            throw TrainingError.incompatible("TensorBoard: histogramFrequency must be ≥ 0 and updateFrequency positive")
        }
        (self.logDir, self.histogramFrequency, self.updateFrequency, self.images) = (logDir, histogramFrequency, updateFrequency, images)
    }

    private func writers() throws -> (train: EventFileWriter, validation: EventFileWriter) {
        if train == nil { (train, validation) = (try EventFileWriter(folder: logDir.appendingPathComponent("train")),
                                                 try EventFileWriter(folder: logDir.appendingPathComponent("validation"))) }
        return (train!, validation!)
    }

    public func trainingWillBegin(_ state: TrainingState) throws {
        step = state.model.epochsTrained * state.stepsPerEpoch
        let summary = state.model.summary().split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")  // Markdown code block
        try writers().train.write([Self.text(summary, tag: "model/summary")], step: state.model.epochsTrained)
        try train!.flush()
    }

    public func epochWillBegin(_ epoch: Int, _ state: TrainingState) throws {
        state.keepsGradients = histogramFrequency > 0 && epoch % histogramFrequency == 0
    }

    public func batchDidEnd(_ step: Int, _ state: TrainingState) throws {
        self.step += 1
        guard let updateFrequency, self.step % updateFrequency == 0 else { return }
        let logs = try state.logs()
        try writers().train.write(logs.keys.sorted().map { Self.scalar(logs[$0]!, tag: "batch_" + $0) }, step: self.step)
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Float], _ state: TrainingState) throws {
        let (train, validation) = try writers()
        let names = logs.keys.sorted()
        try train.write(names.filter { !$0.hasPrefix("val_") }.map { Self.scalar(logs[$0]!, tag: "epoch_" + $0) }, step: epoch)
        try validation.write(names.filter { $0.hasPrefix("val_") }.map { Self.scalar(logs[$0]!, tag: "epoch_" + $0.dropFirst(4)) }, step: epoch)
        if state.keepsGradients {
            var values: [Tensorboard_Summary.Value] = []
            for weight in state.model.weights {
                values.append(try Self.histogram(try weight.value.toArray(), tag: weight.path + "/histogram"))
                if let gradient = state.gradients[weight.path] { values.append(try Self.histogram(try gradient.toArray(), tag: weight.path + "/gradient")) }
            }
            try train.write(values, step: epoch)
        }
        if let images { try train.write(try images(epoch).sorted { $0.key < $1.key }.map { try Self.image($0.value, tag: $0.key) }, step: epoch) }
        try train.flush()
        try validation.flush()
    }

    public func trainingDidEnd(_ state: TrainingState) throws {
        state.keepsGradients = false
        try train?.flush()
        try validation?.flush()
    }

    /// Logs a PNG (a confusion matrix, a sample grid) in the training run at `step`.
    public func addImage(_ png: Data, tag: String, step: Int) throws {
        try writers().train.write([try Self.image(png, tag: tag)], step: step)
        try train!.flush()
    }

    /// The event files written so far (training run, validation run).
    public var files: [URL] { [train?.url, validation?.url].compactMap { $0 } }

    static func scalar(_ value: Float, tag: String) -> Tensorboard_Summary.Value {
        var summary = Tensorboard_Summary.Value()
        (summary.tag, summary.simpleValue) = (tag, value)
        return summary
    }

    /// TensorBoard's text plugin: a string tensor tagged with the plugin's name.
    static func text(_ text: String, tag: String) -> Tensorboard_Summary.Value {
        var summary = Tensorboard_Summary.Value()
        summary.tag = tag
        summary.metadata.pluginData.pluginName = "text"
        summary.tensor.dtype = 7  // DT_STRING
        summary.tensor.tensorShape = Tensorboard_TensorShapeProto()
        summary.tensor.stringVal = [Data(text.utf8)]
        return summary
    }

    /// 30 equal buckets between the values' extremes, as `tf.summary.histogram`.
    static func histogram(_ values: [Float], tag: String, buckets: Int = 30) throws -> Tensorboard_Summary.Value {
        guard let low = values.min(), let high = values.max(), low.isFinite, high.isFinite else {
            throw TrainingError.incompatible("TensorBoard: \(tag) holds no values or non-finite ones")
        }
        var histogram = Tensorboard_HistogramProto()
        (histogram.min, histogram.max, histogram.num) = (Double(low), Double(high), Double(values.count))
        histogram.sum = values.reduce(0) { $0 + Double($1) }
        histogram.sumSquares = values.reduce(0) { $0 + Double($1) * Double($1) }
        let width = Double(high - low) / Double(buckets)
        histogram.bucketLimit = width == 0 ? [Double(high)] : (1...buckets).map { Double(low) + width * Double($0) }
        var counts = [Double](repeating: 0, count: histogram.bucketLimit.count)
        for v in values { counts[width == 0 ? 0 : min(Int((Double(v - low) / width)), counts.count - 1)] += 1 }
        histogram.bucket = counts
        var summary = Tensorboard_Summary.Value()
        (summary.tag, summary.histo) = (tag, histogram)
        return summary
    }

    static func image(_ png: Data, tag: String) throws -> Tensorboard_Summary.Value {
        let bytes = [UInt8](png.prefix(26))
        guard bytes.count == 26, bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) else { throw TrainingError.incompatible("TensorBoard: image '\(tag)' is not a PNG") }
        func u32(_ at: Int) -> Int32 { Int32(bitPattern: bytes[at..<(at + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        var image = Tensorboard_Summary.Image()
        (image.width, image.height, image.encodedImageString) = (u32(16), u32(20), png)
        image.colorspace = [0: 1, 2: 3, 4: 2, 6: 4][Int(bytes[25])] ?? 3  // PNG colour type → channels
        var summary = Tensorboard_Summary.Value()
        (summary.tag, summary.image) = (tag, image)
        return summary
    }
}
