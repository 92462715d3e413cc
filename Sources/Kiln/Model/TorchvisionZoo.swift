/// torchvision's architectures with torchvision's module names (`conv1`, `layer1.0.bn2`,
/// `features.0`, `fc`), so `PyTorchWeights.load` reads a `torch.save(model.state_dict())` of them
/// as it is: `kiln train --base resnet18 --weights resnet18.pth --cut avgpool --freeze-base --head …`.
/// Channels-last images in, logits out; PyTorch's symmetric padding is a `ZeroPadding2D` before a
/// valid convolution (TensorFlow's `same` would pad a stride-2 layer differently), and batch norm
/// uses PyTorch's ε = 1e-5 and momentum 0.1 (Kiln's 0.9).
public enum TorchvisionZoo: String, CaseIterable, Sendable {
    case resnet18, resnet34, resnet50
    case vgg11, vgg11BN = "vgg11_bn", vgg16, vgg16BN = "vgg16_bn"
    case mobilenetV2 = "mobilenet_v2", efficientnetB0 = "efficientnet_b0"

    /// The network for `inputShape` images (torchvision's pretrained weights fit 224×224×3) and `classes` outputs.
    public func make(inputShape: [Int] = [224, 224, 3], classes: Int = 1000) throws -> Model {
        guard inputShape.count == 3 else { throw TensorError.shape("\(rawValue) takes images (height, width, channels), got \(inputShape)") }
        let input = Input(shape: inputShape)
        switch self {
        case .resnet18: return try Self.resnet(input, blocks: [2, 2, 2, 2], bottleneck: false, classes: classes, name: rawValue)
        case .resnet34: return try Self.resnet(input, blocks: [3, 4, 6, 3], bottleneck: false, classes: classes, name: rawValue)
        case .resnet50: return try Self.resnet(input, blocks: [3, 4, 6, 3], bottleneck: true, classes: classes, name: rawValue)
        case .vgg11, .vgg11BN: return try Self.vgg(input, [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0], batchNorm: self == .vgg11BN, classes: classes, name: rawValue)
        case .mobilenetV2: return try Self.mobilenetV2(input, classes: classes, name: rawValue)
        case .efficientnetB0: return try Self.efficientnetB0(input, classes: classes, name: rawValue)
        case .vgg16, .vgg16BN:
            return try Self.vgg(input, [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0], batchNorm: self == .vgg16BN,
                                classes: classes, name: rawValue)
        }
    }

    /// `nn.Conv2d(…, padding: padding, bias: bias)`.
    private static func conv(_ x: SymbolicTensor, _ filters: Int, _ kernel: Int, stride: Int = 1, padding: Int, bias: Bool = false, name: String) throws -> SymbolicTensor {
        let padded = padding == 0 ? x : try ZeroPadding2D(padding: (padding, padding, padding, padding), name: name + ".pad")(x)
        return try Conv2D(filters, kernelSize: kernel, strides: stride, useBias: bias, name: name)(padded)
    }

    private static func batchNorm(_ x: SymbolicTensor, name: String) throws -> SymbolicTensor {
        try BatchNormalization(momentum: 0.9, epsilon: 1e-5, name: name)(x)
    }

    /// torchvision's ResNet (v1.5: a bottleneck's stride is on its 3×3 convolution).
    private static func resnet(_ input: Input, blocks: [Int], bottleneck: Bool, classes: Int, name: String) throws -> Model {
        var x = try ReLU(name: "relu")(batchNorm(conv(input.output, 64, 7, stride: 2, padding: 3, name: "conv1"), name: "bn1"))
        x = try MaxPooling2D(3, strides: 2, name: "maxpool")(ZeroPadding2D(padding: (1, 1, 1, 1), name: "maxpool.pad")(x))  // zeros are below every ReLU output
        var channels = 64
        for (stage, count) in blocks.enumerated() {
            let planes = 64 << stage, out = bottleneck ? planes * 4 : planes
            for index in 0..<count {
                let prefix = "layer\(stage + 1).\(index)", stride = index == 0 && stage > 0 ? 2 : 1
                var y: SymbolicTensor
                if bottleneck {
                    y = try ReLU(name: prefix + ".relu1")(batchNorm(conv(x, planes, 1, padding: 0, name: prefix + ".conv1"), name: prefix + ".bn1"))
                    y = try ReLU(name: prefix + ".relu2")(batchNorm(conv(y, planes, 3, stride: stride, padding: 1, name: prefix + ".conv2"), name: prefix + ".bn2"))
                    y = try batchNorm(conv(y, out, 1, padding: 0, name: prefix + ".conv3"), name: prefix + ".bn3")
                } else {
                    y = try ReLU(name: prefix + ".relu1")(batchNorm(conv(x, planes, 3, stride: stride, padding: 1, name: prefix + ".conv1"), name: prefix + ".bn1"))
                    y = try batchNorm(conv(y, planes, 3, padding: 1, name: prefix + ".conv2"), name: prefix + ".bn2")
                }
                let shortcut = stride != 1 || channels != out
                    ? try batchNorm(conv(x, out, 1, stride: stride, padding: 0, name: prefix + ".downsample.0"), name: prefix + ".downsample.1") : x
                x = try ReLU(name: prefix + ".relu")(Add(name: prefix + ".add")([y, shortcut]))
                channels = out
            }
        }
        let pooled = try GlobalAveragePooling2D(name: "avgpool")(x)
        return try Model(inputs: input, outputs: Dense(classes, name: "fc")(pooled), name: name)
    }

    /// The activation after a `Conv2dNormActivation`.
    private enum After { case relu6, silu, none }

    /// Conv2d + BatchNorm2d + activation as torchvision's `Conv2dNormActivation`, `name.0` and `name.1`;
    /// `depthwise` for a grouped convolution with one group per channel.
    private static func convBN(_ x: SymbolicTensor, _ filters: Int, _ kernel: Int, stride: Int = 1, depthwise: Bool = false, after: After = .relu6,
                               name: String) throws -> SymbolicTensor {
        let pad = (kernel - 1) / 2
        let padded = pad == 0 ? x : try ZeroPadding2D(padding: (pad, pad, pad, pad), name: name + ".pad")(x)
        let convolved = depthwise ? try DepthwiseConv2D(kernel, strides: stride, useBias: false, name: name + ".0")(padded)
                                  : try Conv2D(filters, kernelSize: kernel, strides: stride, useBias: false, name: name + ".0")(padded)
        let normalized = try batchNorm(convolved, name: name + ".1")
        switch after {
        case .relu6: return try ReLU(maxValue: 6, name: name + ".2")(normalized)
        case .silu: return try Activation(.swish, name: name + ".2")(normalized)
        case .none: return normalized
        }
    }

    /// torchvision's MobileNetV2 (width 1.0): inverted residual blocks `features.1…17`, each a `conv`
    /// sequence of an expanding 1×1 (when the expansion is not 1), a depthwise 3×3 and a linear 1×1
    /// projection, with a residual connection when the shape is kept.
    private static func mobilenetV2(_ input: Input, classes: Int, name: String) throws -> Model {
        var x = try convBN(input.output, 32, 3, stride: 2, name: "features.0")
        var (channels, index) = (32, 1)
        for (expansion, out, count, firstStride) in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)] {
            for repeat_ in 0..<count {
                let prefix = "features.\(index).conv", stride = repeat_ == 0 ? firstStride : 1
                var (y, part) = (x, 0)
                if expansion != 1 {
                    y = try convBN(y, channels * expansion, 1, name: "\(prefix).0")
                    part = 1
                }
                y = try convBN(y, channels * expansion, 3, stride: stride, depthwise: true, name: "\(prefix).\(part)")
                y = try Conv2D(out, kernelSize: 1, useBias: false, name: "\(prefix).\(part + 1)")(y)
                y = try batchNorm(y, name: "\(prefix).\(part + 2)")
                x = stride == 1 && channels == out ? try Add(name: "features.\(index).add")([x, y]) : y
                (channels, index) = (out, index + 1)
            }
        }
        x = try convBN(x, 1280, 1, name: "features.18")
        let pooled = try Dropout(0.2, name: "classifier.0")(GlobalAveragePooling2D(name: "avgpool")(x))
        return try Model(inputs: input, outputs: Dense(classes, name: "classifier.1")(pooled), name: name)
    }

    /// torchvision's EfficientNet-B0: MBConv blocks `features.S.J.block` (expanding 1×1, depthwise k×k,
    /// squeeze-and-excitation `fc1`/`fc2` on a quarter of the block's input channels, linear 1×1
    /// projection; SiLU throughout), a residual where the shape is kept (stochastic depth is the
    /// identity at inference), then a 1×1 to 1280 channels and the classifier.
    private static func efficientnetB0(_ input: Input, classes: Int, name: String) throws -> Model {
        var x = try convBN(input.output, 32, 3, stride: 2, after: .silu, name: "features.0")
        var channels = 32
        for (stage, (expansion, kernel, firstStride, out, count)) in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                                                                       (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)].enumerated() {
            for index in 0..<count {
                let prefix = "features.\(stage + 1).\(index).block", stride = index == 0 ? firstStride : 1
                let expanded = channels * expansion
                var (y, part) = (x, 0)
                if expansion != 1 {
                    y = try convBN(y, expanded, 1, after: .silu, name: "\(prefix).0")
                    part = 1
                }
                y = try convBN(y, expanded, kernel, stride: stride, depthwise: true, after: .silu, name: "\(prefix).\(part)")
                let squeeze = "\(prefix).\(part + 1)"
                var scale = try GlobalAveragePooling2D(keepDims: true, name: squeeze + ".avgpool")(y)
                scale = try Conv2D(max(1, channels / 4), kernelSize: 1, activation: .swish, name: squeeze + ".fc1")(scale)
                scale = try Conv2D(expanded, kernelSize: 1, activation: .sigmoid, name: squeeze + ".fc2")(scale)
                y = try Multiply(name: squeeze + ".scale")([y, scale])
                y = try convBN(y, out, 1, after: .none, name: "\(prefix).\(part + 2)")
                x = stride == 1 && channels == out ? try Add(name: "features.\(stage + 1).\(index).add")([x, y]) : y
                channels = out
            }
        }
        x = try convBN(x, 1280, 1, after: .silu, name: "features.8")
        let pooled = try Dropout(0.2, name: "classifier.0")(GlobalAveragePooling2D(name: "avgpool")(x))
        return try Model(inputs: input, outputs: Dense(classes, name: "classifier.1")(pooled), name: name)
    }

    /// torchvision's VGG: `features.N` numbered as the `nn.Sequential` numbers them (0 for a max
    /// pool in `plan`), then the classifier on the flattened 7×7×512 maps (224×224 images).
    private static func vgg(_ input: Input, _ plan: [Int], batchNorm: Bool, classes: Int, name: String) throws -> Model {
        var (x, index): (SymbolicTensor, Int) = (input.output, 0)
        for filters in plan {
            if filters == 0 {
                x = try MaxPooling2D(2, name: "features.\(index)")(x)
                index += 1
                continue
            }
            x = try conv(x, filters, 3, padding: 1, bias: true, name: "features.\(index)")
            if batchNorm { x = try self.batchNorm(x, name: "features.\(index + 1)") }
            x = try ReLU(name: "features.\(index + (batchNorm ? 2 : 1))")(x)
            index += batchNorm ? 3 : 2
        }
        x = try Flatten(name: "flatten")(x)
        x = try Dropout(0.5, name: "classifier.2")(ReLU(name: "classifier.1")(Dense(4096, name: "classifier.0")(x)))
        x = try Dropout(0.5, name: "classifier.5")(ReLU(name: "classifier.4")(Dense(4096, name: "classifier.3")(x)))
        return try Model(inputs: input, outputs: Dense(classes, name: "classifier.6")(x), name: name)
    }
}
