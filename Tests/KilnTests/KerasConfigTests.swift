import Foundation
import Testing
@testable import Kiln

@Suite("Keras model JSON") struct KerasConfigTests {
    /// `model.to_json()` of a Keras 3 Sequential (the workshop CNN), abridged only in dtype policies.
    static let keras3Sequential = """
    {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "layers": [
     {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1], "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true, "filters": 32, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28, 1]}},
     {"module": "keras.layers", "class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "trainable": true, "pool_size": [2, 2], "padding": "valid", "strides": [2, 2], "data_format": "channels_last"}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d_1", "filters": 32, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true, "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.001}, "registered_name": null}}, "registered_name": null},
     {"module": "keras.layers", "class_name": "MaxPooling2D", "config": {"name": "max_pooling2d_1", "pool_size": [2, 2], "padding": "valid", "strides": [2, 2], "data_format": "channels_last"}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d_2", "filters": 32, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "dropout", "rate": 0.2, "seed": null, "noise_shape": null}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten", "data_format": "channels_last"}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 32, "activation": "relu", "use_bias": true}, "registered_name": null},
     {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense_1", "units": 10, "activation": "linear", "use_bias": true}, "registered_name": null}
    ], "build_input_shape": [null, 28, 28, 1]}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28, 1]}}
    """

    /// A Keras 2 functional model with a residual add and a concatenation (inbound_nodes as nested lists).
    static let keras2Functional = """
    {"class_name": "Functional", "config": {"name": "model", "layers": [
     {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 8, 8, 3], "dtype": "float32", "name": "input_1"}, "name": "input_1", "inbound_nodes": []},
     {"class_name": "Conv2D", "config": {"name": "conv", "filters": 3, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "activation": "linear", "use_bias": true}, "name": "conv", "inbound_nodes": [[["input_1", 0, 0, {}]]]},
     {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [3], "momentum": 0.9, "epsilon": 0.001, "center": true, "scale": true}, "name": "bn", "inbound_nodes": [[["conv", 0, 0, {}]]]},
     {"class_name": "Add", "config": {"name": "add"}, "name": "add", "inbound_nodes": [[["bn", 0, 0, {}], ["input_1", 0, 0, {}]]]},
     {"class_name": "ReLU", "config": {"name": "relu", "max_value": null, "negative_slope": 0.0, "threshold": 0.0}, "name": "relu", "inbound_nodes": [[["add", 0, 0, {}]]]},
     {"class_name": "Concatenate", "config": {"name": "concat", "axis": -1}, "name": "concat", "inbound_nodes": [[["relu", 0, 0, {}], ["input_1", 0, 0, {}]]]},
     {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap", "data_format": "channels_last"}, "name": "gap", "inbound_nodes": [[["concat", 0, 0, {}]]]},
     {"class_name": "Dense", "config": {"name": "out", "units": 4, "activation": "softmax", "use_bias": true}, "name": "out", "inbound_nodes": [[["gap", 0, 0, {}]]]}
    ], "input_layers": [["input_1", 0, 0]], "output_layers": [["out", 0, 0]]}}
    """

    @Test func readsKeras3Sequential() throws {
        let model = try KerasConfig.model(fromJSON: Data(Self.keras3Sequential.utf8))
        #expect(model.parameterCount == 28_394)
        #expect(model.layers.map(\.name).suffix(2) == ["dense", "dense_1"])
        let conv = model.layers.compactMap { $0 as? Conv2D }
        #expect(conv.count == 3 && conv[1].kernelRegularizer == .l2(0.001))
    }

    @Test func readsKeras2FunctionalWithBranches() throws {
        let model = try KerasConfig.model(fromJSON: Data(Self.keras2Functional.utf8))
        #expect(model.outputs[0].shape == [4])
        #expect(model.parameterCount == 84 + 12 + 28)
        try model.place(on: CPUDevice.shared)
        let y = try model(Tensor.full(0.5, shape: [2, 8, 8, 3])).toArray()
        #expect(abs(y[0..<4].reduce(0, +) - 1) < 1e-5, "softmax output")
    }

    @Test func writesWhatItReads() throws {
        for model in [try ModelZoo.resnetSmall.make(inputShape: [16, 16, 3], classes: 5), try ModelZoo.vggSmall.make(inputShape: [16, 16, 3], classes: 5)] {
            let json = try JSONSerialization.data(withJSONObject: try KerasConfig.json(of: model))
            let again = try KerasConfig.model(fromJSON: json)
            #expect(again.summary() == model.summary())
            #expect(try JSONSerialization.data(withJSONObject: KerasConfig.json(of: again), options: .sortedKeys)
                    == JSONSerialization.data(withJSONObject: KerasConfig.json(of: model), options: .sortedKeys))
        }
    }

    @Test func unsupportedLayersAreNamed() throws {
        let json = Self.keras3Sequential.replacingOccurrences(of: "\"class_name\": \"Dropout\"", with: "\"class_name\": \"SpatialDropout3D\"")
            .replacingOccurrences(of: "\"class_name\": \"Flatten\"", with: "\"class_name\": \"ConvLSTM2D\"")
        #expect { try KerasConfig.model(fromJSON: Data(json.utf8), file: "m.json") } throws: {
            "\($0)".contains("m.json") && "\($0)".contains("ConvLSTM2D, SpatialDropout3D")
        }
        #expect { try KerasConfig.model(fromJSON: Data("[1, 2]".utf8), file: "m.json") } throws: { "\($0)".contains("not a JSON object") }
    }
}
