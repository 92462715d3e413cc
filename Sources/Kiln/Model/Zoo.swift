/// Built-in architectures for `kiln train --model NAME`.
public enum ModelZoo: String, CaseIterable, Sendable {
    case workshopCNN = "workshop-cnn"
    case mlp
    case lenet5
    case cifarSmall = "cifar-small"
    case vggSmall = "vgg-small"
    case resnetSmall = "resnet-small"

    /// The model for samples of `inputShape` and `classes` outputs (logits).
    public func make(inputShape: [Int], classes: Int) throws -> Model {
        let input = Input(shape: inputShape)
        switch self {
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
