/// Built-in architectures for `kiln train --model NAME`.
public enum ModelZoo: String, CaseIterable, Sendable {
    case workshopCNN = "workshop-cnn"
    case mlp
    case lenet5
    case cifarSmall = "cifar-small"
    case vggSmall = "vgg-small"
    case resnetSmall = "resnet-small"
    // Forecasters of windows [time, features]: one output, the next value.
    case mlpForecast = "mlp-forecast"
    case lstmForecast = "lstm-forecast"
    case gruForecast = "gru-forecast"
    case conv1DForecast = "conv1d-forecast"
    // Text classifiers of token ids [length] (logits).
    case textLSTM = "text-lstm"
    case textBiLSTM = "text-bilstm"
    case textConv1D = "text-conv1d"

    /// Whether the model forecasts a value from a window (trained with MSE), not a class.
    public var isForecaster: Bool { [.mlpForecast, .lstmForecast, .gruForecast, .conv1DForecast].contains(self) }
    /// Whether the model reads token ids (and needs a vocabulary size).
    public var readsText: Bool { [.textLSTM, .textBiLSTM, .textConv1D].contains(self) }

    /// The model for samples of `inputShape` and `classes` outputs (logits; forecasters have one output);
    /// text models embed ids below `vocabulary`.
    public func make(inputShape: [Int], classes: Int, vocabulary: Int? = nil) throws -> Model {
        let input = Input(shape: inputShape)
        if isForecaster || readsText {
            guard inputShape.count == (readsText ? 1 : 2) else {
                throw TensorError.shape("model \(rawValue) takes \(readsText ? "token ids [length]" : "windows [time, features]"), got samples of shape \(inputShape)")
            }
        }
        let embedding = { Embedding(inputDim: vocabulary ?? 10_000, outputDim: 64, maskZero: true) }
        switch self {
        case .mlpForecast: return try Sequential([input, Flatten(), Dense(32, activation: .relu), Dense(1)], name: rawValue)
        case .lstmForecast: return try Sequential([input, LSTM(32), Dense(1)], name: rawValue)
        case .gruForecast: return try Sequential([input, GRU(32), Dense(1)], name: rawValue)
        case .conv1DForecast:
            return try Sequential([input, Conv1D(32, kernelSize: 5, padding: .causal, activation: .relu), MaxPooling1D(poolSize: 2),
                                   Flatten(), Dense(1)], name: rawValue)
        case .textLSTM: return try Sequential([input, embedding(), LSTM(64), Dense(classes)], name: rawValue)
        case .textBiLSTM: return try Sequential([input, embedding(), Bidirectional(LSTM(32)), Dense(classes)], name: rawValue)
        case .textConv1D:
            return try Sequential([input, Embedding(inputDim: vocabulary ?? 10_000, outputDim: 64), Conv1D(128, kernelSize: 5, padding: .same, activation: .relu),
                                   GlobalMaxPooling1D(), Dense(classes)], name: rawValue)
        case .workshopCNN:
            // The workshop's Fashion-MNIST CNN.
            return try Sequential([input, Conv2D(32, kernelSize: 3, activation: .relu), MaxPooling2D(2),
                                   Conv2D(32, kernelSize: 3, activation: .relu), MaxPooling2D(2),
                                   Conv2D(32, kernelSize: 3, activation: .relu), Dropout(0.2), Flatten(),
                                   Dense(32, activation: .relu), Dense(classes)], name: rawValue)
        case .mlp:
            return try Sequential([input, Flatten(), Dense(128, activation: .relu), Dropout(0.2), Dense(classes)], name: rawValue)
        case .lenet5:
            return try Sequential([input, Conv2D(6, kernelSize: 5, padding: .same, activation: .relu), AveragePooling2D(2),
                                   Conv2D(16, kernelSize: 5, activation: .relu), AveragePooling2D(2), Flatten(),
                                   Dense(120, activation: .relu), Dense(84, activation: .relu), Dense(classes)], name: rawValue)
        case .cifarSmall:
            // The workshop's CIFAR-10 model.
            return try Sequential([input, Conv2D(32, kernelSize: 3, activation: .relu), MaxPooling2D(2),
                                   Conv2D(64, kernelSize: 3, activation: .relu), MaxPooling2D(2),
                                   Conv2D(64, kernelSize: 3, activation: .relu), Flatten(), Dense(64, activation: .relu), Dense(classes)], name: rawValue)
        case .vggSmall:
            var layers: [Layer] = [input]
            for filters in [32, 64] {
                layers += [Conv2D(filters, kernelSize: 3, padding: .same, activation: .relu), BatchNormalization(),
                           Conv2D(filters, kernelSize: 3, padding: .same, activation: .relu), BatchNormalization(), MaxPooling2D(2), Dropout(0.25)]
            }
            return try Sequential(layers + [Flatten(), Dense(128, activation: .relu), Dropout(0.5), Dense(classes)], name: rawValue)
        case .resnetSmall:
            var x = try Conv2D(32, kernelSize: 3, padding: .same, activation: .relu)(input)
            for (filters, stride) in [(32, 1), (64, 2)] {
                let shortcut = stride == 1 ? x : try Conv2D(filters, kernelSize: 1, strides: stride)(x)
                var y = try Conv2D(filters, kernelSize: 3, strides: stride, padding: .same)(x)
                y = try ReLU()(try BatchNormalization()(y))
                y = try BatchNormalization()(try Conv2D(filters, kernelSize: 3, padding: .same)(y))
                x = try ReLU()(try Add()([y, shortcut]))
            }
            return try Model(inputs: input, outputs: try Dense(classes)(try GlobalAveragePooling2D()(x)), name: rawValue)
        }
    }
}
