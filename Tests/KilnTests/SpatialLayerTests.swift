import Foundation
import Testing
@testable import Kiln

/// ZeroPadding2D, Cropping2D and UpSampling2D (nearest and bilinear) against references, by finite differences,
/// and through a checkpoint.
@Suite("Padding, cropping and upsampling") struct SpatialLayerTests {
    @Test(arguments: Backend.all)
    func layersMatchTheirReferences(_ backend: Backend) throws {
        let d = backend.device
        var random = Random("spatial")
        let (n, h, w, c) = (2, 5, 3, 3)
        let values = random.floats(n * h * w * c)
        func at(_ b: Int, _ y: Int, _ x: Int, _ k: Int) -> Double { Double(values[((b * h + y) * w + x) * c + k]) }
        let cases: [(Layer, [Int], (Int, Int, Int, Int) -> Double)] = [
            (ZeroPadding2D(padding: (1, 2, 0, 1)), [8, 4, 3], { b, y, x, k in (1..<6).contains(y) && x < 3 ? at(b, y - 1, x, k) : 0 }),
            (Cropping2D(cropping: (1, 2, 1, 0)), [2, 2, 3], { b, y, x, k in at(b, y + 1, x + 1, k) }),
            (UpSampling2D(size: (2, 3)), [10, 9, 3], { b, y, x, k in at(b, y / 2, x / 3, k) }),
            (UpSampling2D(size: (2, 3), interpolation: .bilinear), [10, 9, 3], { b, y, x, k in
                // TensorFlow's half-pixel bilinear resize: output o samples input (o + ½)/factor − ½, clamped.
                func taps(_ o: Int, _ factor: Int, _ size: Int) -> [(Int, Double)] {
                    let source = max(0, (Double(o) + 0.5) / Double(factor) - 0.5), low = Int(source.rounded(.down))
                    return [(low, 1 - (source - Double(low))), (min(low + 1, size - 1), source - Double(low))]
                }
                return taps(y, 2, h).reduce(0) { sum, r in taps(x, 3, w).reduce(sum) { $0 + r.1 * $1.1 * at(b, r.0, $1.0, k) } }
            }),
        ]
        for (layer, shape, reference) in cases {
            let model = try Sequential([Input(shape: [h, w, c]), layer])
            #expect(model.outputs[0].shape == shape, "\(layer.typeName)")
            try model.place(on: d)
            let input = try Tensor(values, shape: [n, h, w, c], on: d)
            let expected = (0..<n * shape.reduce(1, *)).map { i -> Double in
                let (rest, k) = i.quotientAndRemainder(dividingBy: shape[2])
                let (rows, x) = rest.quotientAndRemainder(dividingBy: shape[1])
                let (b, y) = rows.quotientAndRemainder(dividingBy: shape[0])
                return reference(b, y, x, k)
            }
            expectClose(try model(input).toArray(), expected, "\(layer.typeName) on \(backend)")
            let weights = try Tensor(random.floats(expected.count), shape: [n] + shape, on: d)
            input.requiresGrad = true
            try (model(input) * weights).sum().backward()
            try expectGradient(at: values, gradient: try input.grad!.toArray(), "\(layer.typeName) on \(backend)") { x in
                Double(try (model(Tensor(x, shape: [n, h, w, c], on: d)) * weights).sum().item())
            }
        }
        #expect { try Sequential([Input(shape: [4, 4, 1]), Cropping2D(cropping: (2, 2, 0, 0))]) } throws: { "\($0)".contains("cannot crop") }
    }

    @Test func checkpointRoundTrip() throws {
        let model = try Sequential([Input(shape: [6, 6, 2]), ZeroPadding2D(1), Conv2D(4, kernelSize: 3), Cropping2D(cropping: (1, 0, 0, 1)),
                                    UpSampling2D(), GlobalAveragePooling2D(), Dense(2)])
        try model.place(on: CPUDevice.shared, seed: 1)
        let x = try Tensor.normal([2, 6, 6, 2], seed: 2)
        let url = try temporaryFolder().appendingPathComponent("spatial.safetensors")
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url, device: CPUDevice.shared).model
        #expect(try loaded(x).toArray() == model(x).toArray())
        let (crop, upsample) = (try #require(loaded.layers[3] as? Cropping2D), try #require(loaded.layers[4] as? UpSampling2D))
        #expect(crop.cropping == (1, 0, 0, 1) && upsample.size == (2, 2))
        let keras = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4, 4, 1]}}, {"class_name": "ZeroPadding2D", "config": {"name": "p", "padding": [[1, 2], [3, 0]]}}, {"class_name": "UpSampling2D", "config": {"name": "u", "size": [2, 2], "interpolation": "bicubic"}}]}}"#
        #expect { try KerasConfig.model(fromJSON: Data(keras.utf8), file: "m.json") } throws: { "\($0)".contains("interpolation 'bicubic' is not supported") }
    }

    /// keras.applications.ResNet50's architecture (its to_json(), refused before for ZeroPadding2D) builds
    /// with Keras's parameter count and output.
    @Test func kerasResNet50Architecture() throws {
        let url = fixtures.appendingPathComponent("keras_resnet50.json.gz")
        let json = try Compression.gunzipIfNeeded(Data(contentsOf: url), file: url.path)
        let model = try KerasConfig.model(fromJSON: json, file: url.path)
        #expect(model.parameterCount == 25_636_712 && model.inputs[0].shape == [224, 224, 3] && model.outputs[0].shape == [1000])
        #expect(model.layers.contains { $0 is ZeroPadding2D })
    }

    /// SpatialDropout2D drops whole channels per image during training (scaling the rest), passes
    /// everything through at inference, and resumes its mask stream from a checkpoint.
    @Test(arguments: Backend.all)
    func spatialDropoutDropsWholeChannels(_ backend: Backend) throws {
        let d = backend.device
        let layer = SpatialDropout2D(0.4, name: "sd")
        let model = try Sequential([Input(shape: [3, 4, 50]), layer])
        try model.place(on: d, seed: 5)
        let x = try Tensor.ones([4, 3, 4, 50], on: d)
        #expect(try model(x).toArray() == x.toArray())
        let y = try model(x, training: true).toArray()
        var dropped = 0
        for image in 0..<4 {
            for channel in 0..<50 {
                let values = Set((0..<12).map { y[(image * 12 + $0) * 50 + channel] })
                #expect(values == [0] || values == [Float(1 / 0.6)], "image \(image), channel \(channel): \(values)")
                if values == [0] { dropped += 1 }
            }
        }
        #expect(abs(Double(dropped) / 200 - 0.4) < 0.15, "dropped \(dropped) of 200 channels")
        let url = try temporaryFolder().appendingPathComponent("sd.safetensors")
        try Checkpoint.save(model, to: url)
        let loaded = try Checkpoint.load(url, device: d).model
        #expect(try loaded(x, training: true).toArray() == model(x, training: true).toArray(), "the same mask stream after a reload")
        #expect(loaded.layers[1] is SpatialDropout2D)
    }
}
