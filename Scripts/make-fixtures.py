#!/usr/bin/env python3
"""Makes the small real-framework fixtures under Tests/KilnTests/Fixtures (run once; CI needs none
of these frameworks). Run it with Scripts/make-fixtures.sh, which creates the virtual environment.

torch_cnn.safetensors  a PyTorch CNN (conv, batch norm, residual add, max pool, linear) state dict
torch_cnn_x.npy        its input batch, NCHW float32
torch_cnn_y.npy        PyTorch's own outputs (eval mode) for that batch
torch_cnn.onnx         the same network exported to ONNX (opset 13)
torch_cnn.pth, torch_cnn_legacy.pth  its state dict by torch.save (zip and legacy formats)
torch_views.pth, torch_views_legacy.pth, torch_views.npz  strided views in several dtypes, and their values
torch_malicious.pth    a pickle whose loading would run a shell command (it must be refused)
torch_gru.safetensors  Embedding → Conv1d → ReLU → GRU → Linear (last step), with torch_gru_x/y.npy
torch_bilstm.safetensors  Embedding → bidirectional LSTM → RNN → Linear (final state), with torch_bilstm_x/y.npy
torch_sequence.onnx    Conv1d → ReLU → MaxPool1d → bidirectional LSTM → GRU exported to ONNX (opset 13),
                       with torch_sequence_x/y.npy
keras_cnn.keras/.h5    the same kind of network in Keras 3 (functional, channels-last), both file formats
keras_cnn.json         its model.to_json()
keras_cnn_x.npy, keras_cnn_y.npy   input batch (NHWC) and Keras's own outputs
keras_workshop.json    model.to_json() of the workshop CNN (Sequential)
keras_text.keras/.h5  Embedding(mask_zero) → Bidirectional(LSTM) → GRU → Dense on padded token ids;
                       keras_text_x/y.npy its ids and outputs
keras_series.keras/.h5 Conv1D (causal, dilated) → pooling → SimpleRNN (backwards) → LayerNormalization →
                       TimeDistributed(Dense) → GlobalAveragePooling1D → Dense; keras_series_x/y.npy
keras_seq2seq.keras/.h5 an LSTM encoder's returned state (return_state) starting an LSTM decoder (initial_state),
                       a backwards GRU's state starting a SimpleRNN; keras_seq2seq_x/y.npy
keras_dilated_transpose.keras/.h5 Conv2DTranspose with dilation_rate (same and valid padding); _x/_y.npy
torch_dilated_transpose.onnx nn.ConvTranspose2d with dilation, stride, padding and output_padding; _x/_y.npy (NCHW)
keras_bidirectional_state.keras/.h5 Bidirectional LSTM/GRU layers returning their four/two states, one
                       starting another (initial_state); keras_bidirectional_state_x/y.npy
keras_resnet50.json.gz keras.applications.ResNet50(weights=None).to_json(), gzipped (25,636,712 parameters)
keras_weighted.keras/.npz  a classifier and what Keras reports with class and sample weights
tensorboard_*.tfevents event files by the tensorboard package's and TF 2's writers; tensorboard_expected.json
keras_nested.keras/.h5 a functional model calling two Sequential models (a GAN's generator and a
                       discriminator with batch norm) and a head; keras_nested_x/y.npy its input and outputs
"""
import gzip
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "KilnTests" / "Fixtures"


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(y + self.bn2(self.conv2(y)))
        return self.fc(torch.flatten(self.pool(y), 1))


class TextGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.conv = nn.Conv1d(6, 5, 3)
        self.gru = nn.GRU(5, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, ids):
        x = F.relu(self.conv(self.emb(ids).transpose(1, 2))).transpose(1, 2)
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class BiLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.lstm = nn.LSTM(6, 5, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(10, 3, batch_first=True)
        self.fc = nn.Linear(3, 1)

    def forward(self, ids):
        sequence, _ = self.lstm(self.emb(ids))
        _, h = self.rnn(sequence)
        return self.fc(h[0])


class SequenceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3, padding=1)
        self.pool = nn.MaxPool1d(2)
        self.lstm = nn.LSTM(6, 5, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(10, 4, batch_first=True)

    def forward(self, x):  # x: [batch, channels, time]
        y = self.pool(F.relu(self.conv(x))).transpose(1, 2)
        y, _ = self.lstm(y)
        y, _ = self.gru(y)
        return y


def torch_sequence_fixtures():
    torch.manual_seed(1)
    net = SequenceNet().eval()
    x = torch.randn(2, 3, 12)
    with torch.no_grad():
        y = net(x)
    torch.onnx.export(net, (x,), str(OUT / "torch_sequence.onnx"), opset_version=13, dynamo=False, input_names=["x"], output_names=["y"])
    np.save(OUT / "torch_sequence_x.npy", x.numpy())
    np.save(OUT / "torch_sequence_y.npy", y.numpy())
    ids = torch.randint(0, 20, (3, 9))
    for name, model in [("torch_gru", TextGRU()), ("torch_bilstm", BiLSTM())]:
        model.eval()
        with torch.no_grad():
            y = model(ids)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / f"{name}.safetensors"))
        np.save(OUT / f"{name}_x.npy", ids.numpy().astype(np.float32))
        np.save(OUT / f"{name}_y.npy", y.numpy().astype(np.float32))


class Generator(nn.Module):
    """A DCGAN-style upsampling stack: transposed convolutions around a bilinear upsampling."""

    def __init__(self):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(6, 5, 4, stride=2, padding=1)
        self.resize = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up2 = nn.ConvTranspose2d(5, 2, 4, stride=2, padding=1)

    def forward(self, x):
        return torch.tanh(self.up2(self.resize(F.relu(self.up1(x)))))


def torch_depthwise_fixtures():
    torch.manual_seed(4)
    net = nn.Sequential()
    net.add_module("dw", nn.Conv2d(3, 6, 3, padding=1, groups=3))
    net.add_module("pw", nn.Conv2d(6, 4, 1))
    net.eval()
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        y = net(x)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(OUT / "torch_depthwise.safetensors"))
    np.save(OUT / "torch_depthwise_x.npy", x.numpy())
    np.save(OUT / "torch_depthwise_y.npy", y.numpy())


def torch_dilated_transpose_fixtures():
    torch.manual_seed(9)
    net = nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2, dilation=2, padding=1, output_padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(4, 2, (2, 3), dilation=(1, 2), padding=(0, 1))).eval()
    x = torch.randn(2, 3, 4, 5)
    with torch.no_grad():
        y = net(x)
    torch.onnx.export(net, (x,), str(OUT / "torch_dilated_transpose.onnx"), opset_version=13, dynamo=False, input_names=["x"], output_names=["y"])
    np.save(OUT / "torch_dilated_transpose_x.npy", x.numpy())
    np.save(OUT / "torch_dilated_transpose_y.npy", y.numpy())


def torch_generative_fixtures():
    torch.manual_seed(3)
    net = Generator().eval()
    x = torch.randn(2, 6, 3, 3)
    with torch.no_grad():
        y = net(x)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(OUT / "torch_generator.safetensors"))
    torch.onnx.export(net, (x,), str(OUT / "torch_generator.onnx"), opset_version=13, dynamo=False, input_names=["x"], output_names=["y"])
    np.save(OUT / "torch_generator_x.npy", x.numpy())  # NCHW, as the ONNX graph takes it
    np.save(OUT / "torch_generator_y.npy", y.numpy())


def residual_cnn():
    """The seeded ResidualCNN of torch_cnn.*, with non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(0)
    model = ResidualCNN()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return model.eval()


class Evil:
    """What a malicious checkpoint holds: unpickling it runs a shell command."""
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/kiln-pickle-was-executed",))


def torch_checkpoint_fixtures():
    """torch.save files: the ResidualCNN's state dict (zip and legacy formats), tensors stored as
    views of other storages in several dtypes with their values as .npz, and a malicious pickle."""
    sd = residual_cnn().state_dict()
    torch.save(sd, OUT / "torch_cnn.pth")
    torch.save(sd, OUT / "torch_cnn_legacy.pth", _use_new_zipfile_serialization=False)
    torch.manual_seed(1)
    a, b = torch.randn(3, 5), torch.randn(4, 3)
    views = {"transposed": a.t(), "offset": b[1:, 1:], "strided": a[:, ::2], "same_storage": a, "half": b.half(),
             "bfloat16": a.bfloat16(), "double": b.double(), "int64": torch.arange(-3, 4), "scalar": torch.tensor(2.5),
             "parameter": nn.Parameter(torch.ones(2)), "note": "not a tensor"}
    torch.save({"state_dict": views, "epoch": 3}, OUT / "torch_views.pth")
    torch.save({"state_dict": views, "epoch": 3}, OUT / "torch_views_legacy.pth", _use_new_zipfile_serialization=False)
    np.savez(OUT / "torch_views.npz", **{k: np.ascontiguousarray(v.detach().float().numpy()) for k, v in views.items() if torch.is_tensor(v)})
    torch.save({"weight": torch.ones(2), "payload": Evil()}, OUT / "torch_malicious.pth")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    model = residual_cnn()
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        y = model(x)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(OUT / "torch_cnn.safetensors"))
    np.save(OUT / "torch_cnn_x.npy", x.numpy().astype(np.float32))
    np.save(OUT / "torch_cnn_y.npy", y.numpy().astype(np.float32))
    torch.onnx.export(model, (x,), str(OUT / "torch_cnn.onnx"), opset_version=13, dynamo=False,
                      input_names=["input"], output_names=["logits"])
    torch_sequence_fixtures()
    torch_generative_fixtures()
    torch_dilated_transpose_fixtures()
    torch_depthwise_fixtures()
    torch_checkpoint_fixtures()
    keras_fixtures()
    keras_weighted_fixtures()
    tensorboard_fixtures()
    torchvision_fixtures()
    keras_applications_fixtures()
    print("wrote", sorted(p.name for p in OUT.iterdir()))


def keras_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    y = layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    y = layers.BatchNormalization(name="bn2")(y)
    x = layers.Add(name="add")([x, y])
    x = layers.Activation("relu", name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(5, name="fc")(x)
    model = keras.Model(inputs, outputs, name="keras_cnn")
    rng = np.random.default_rng(0)
    for name in ("bn1", "bn2"):  # non-trivial batch-norm statistics
        bn = model.get_layer(name)
        bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.uniform(-0.5, 0.5, 8), rng.uniform(-0.5, 0.5, 8), rng.uniform(0.5, 2.0, 8)])
    x = rng.random((2, 8, 8, 3), dtype=np.float32)
    y = model.predict(x, verbose=0)
    model.save(OUT / "keras_cnn.keras")
    model.save(OUT / "keras_cnn.h5")
    (OUT / "keras_cnn.json").write_text(model.to_json())
    np.save(OUT / "keras_cnn_x.npy", x)
    np.save(OUT / "keras_cnn_y.npy", y.astype(np.float32))
    workshop = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.Dropout(0.2), layers.Flatten(),
        layers.Dense(32, activation="relu"), layers.Dense(10),
    ])
    (OUT / "keras_workshop.json").write_text(workshop.to_json())
    keras_nested_fixtures()
    keras_sequence_fixtures()
    keras_generative_fixtures()
    keras_gru_v1_fixtures()
    keras_seq2seq_fixtures()
    keras_bidirectional_state_fixtures()
    keras_dilated_transpose_fixtures()
    keras_depthwise_fixtures()
    keras_normalization_fixtures()
    (OUT / "keras_efficientnetb0.json.gz").write_bytes(gzip.compress(keras.applications.EfficientNetB0(weights=None).to_json().encode()))
    (OUT / "keras_mobilenet.json.gz").write_bytes(gzip.compress(keras.applications.MobileNet(weights=None).to_json().encode()))
    (OUT / "keras_resnet50.json.gz").write_bytes(gzip.compress(keras.applications.ResNet50(weights=None).to_json().encode()))


def keras_sequence_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    text = keras.Sequential([
        keras.Input((9,)), layers.Embedding(20, 6, mask_zero=True, name="embedding"),
        layers.Bidirectional(layers.LSTM(5, return_sequences=True, name="lstm"), name="bidirectional"),
        layers.GRU(4, name="gru"), layers.Dense(2, name="dense"),
    ], name="keras_text")
    ids = rng.integers(1, 20, (4, 9)).astype(np.float32)
    for row, length in enumerate([9, 6, 3, 1]):
        ids[row, length:] = 0
    save_keras(text, "keras_text", ids)
    series = keras.Sequential([
        keras.Input((10, 3)), layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu", name="conv"),
        layers.MaxPooling1D(2, name="pool"), layers.SimpleRNN(4, return_sequences=True, go_backwards=True, name="rnn"),
        layers.LayerNormalization(name="norm"), layers.TimeDistributed(layers.Dense(3, name="step"), name="steps"),
        layers.GlobalAveragePooling1D(name="average"), layers.Dense(1, name="out"),
    ], name="keras_series")
    norm = series.get_layer("norm")
    norm.set_weights([rng.uniform(0.5, 1.5, 4), rng.uniform(-0.5, 0.5, 4)])
    save_keras(series, "keras_series", rng.standard_normal((3, 10, 3)).astype(np.float32))


def keras_generative_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    generator = keras.Sequential([
        keras.Input((8,)), layers.Dense(3 * 3 * 6, name="dense"), layers.Reshape((3, 3, 6), name="reshape"),
        layers.Conv2DTranspose(5, 4, strides=2, padding="same", activation="relu", name="up1"),
        layers.UpSampling2D(2, interpolation="bilinear", name="resize"),
        layers.Conv2DTranspose(4, 3, strides=2, padding="valid", output_padding=1, name="up2"),
        layers.GaussianNoise(0.1, name="noise"), layers.GaussianDropout(0.2, name="drop"),
        layers.Conv2D(1, 3, padding="same", dilation_rate=2, activation="tanh", name="out"),
    ], name="keras_generator")
    save_keras(generator, "keras_generator", np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32))


def keras_gru_v1_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input((6, 3)), layers.GRU(4, reset_after=False, return_sequences=True, name="gru_v1"),
        layers.GRU(3, reset_after=False, go_backwards=True, name="gru_v1_back"), layers.Dense(2, name="dense"),
    ], name="keras_gru_v1")
    rng = np.random.default_rng(4)
    for layer in model.layers[:2]:  # non-zero biases
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel, recurrent, rng.uniform(-0.5, 0.5, bias.shape)])
    save_keras(model, "keras_gru_v1", rng.standard_normal((3, 6, 3)).astype(np.float32))


def keras_seq2seq_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(7)
    x = keras.Input((7, 3), name="x")
    encoded, h, c = layers.LSTM(5, return_state=True, name="encoder")(x)
    decoded = layers.LSTM(5, return_sequences=True, name="decoder")(x, initial_state=[h, c])
    _, state = layers.GRU(4, return_sequences=True, return_state=True, go_backwards=True, name="gru")(decoded)
    last = layers.SimpleRNN(4, name="rnn")(decoded, initial_state=[state])
    y = layers.Dense(2, name="dense")(layers.Concatenate(name="joined")([last, encoded, c]))
    model = keras.Model(x, y, name="keras_seq2seq")
    rng = np.random.default_rng(7)
    for layer in [model.get_layer(n) for n in ["encoder", "decoder", "gru", "rnn", "dense"]]:  # non-zero biases
        *weights, bias = layer.get_weights()
        layer.set_weights(weights + [rng.uniform(-0.5, 0.5, bias.shape)])
    save_keras(model, "keras_seq2seq", rng.standard_normal((3, 7, 3)).astype(np.float32))


def keras_bidirectional_state_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(8)
    x = keras.Input((6, 3), name="x")
    encoded, hf, cf, hb, cb = layers.Bidirectional(layers.LSTM(4, return_state=True, name="lstm"), name="encoder")(x)
    decoded = layers.Bidirectional(layers.LSTM(4, return_sequences=True, name="lstm"), merge_mode="ave", name="decoder")(x, initial_state=[hf, cf, hb, cb])
    _, gf, gb = layers.Bidirectional(layers.GRU(3, return_state=True, name="gru"), merge_mode="mul", name="summary")(decoded)
    y = layers.Dense(2, name="dense")(layers.Concatenate(name="joined")([encoded, gf, gb, cb]))
    model = keras.Model(x, y, name="keras_bidirectional_state")
    rng = np.random.default_rng(8)
    for layer in [model.get_layer(n) for n in ["encoder", "decoder", "summary", "dense"]]:  # non-zero biases
        weights = layer.get_weights()
        layer.set_weights([w if w.ndim > 1 and w.shape[0] > 2 else rng.uniform(-0.5, 0.5, w.shape) for w in weights])
    save_keras(model, "keras_bidirectional_state", rng.standard_normal((3, 6, 3)).astype(np.float32))


def keras_dilated_transpose_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(9)
    model = keras.Sequential([
        keras.Input((5, 4, 3)), layers.Conv2DTranspose(4, 3, dilation_rate=2, padding="same", activation="relu", name="same"),
        layers.Conv2DTranspose(2, (2, 3), dilation_rate=(1, 2), name="valid"),
    ], name="keras_dilated_transpose")
    rng = np.random.default_rng(9)
    for layer in model.layers:  # non-zero biases
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.uniform(-0.5, 0.5, bias.shape)])
    save_keras(model, "keras_dilated_transpose", rng.standard_normal((2, 5, 4, 3)).astype(np.float32))


def keras_depthwise_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((9, 8, 3)), layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu", name="dw"),
        layers.DepthwiseConv2D((3, 2), strides=2, name="dw_strided"), layers.SeparableConv2D(5, 3, padding="same", name="sep"),
        layers.SeparableConv2D(4, 2, strides=2, depth_multiplier=2, activation="relu", name="sep_strided"),
        layers.DepthwiseConv2D(2, padding="same", dilation_rate=2, name="dw_dilated"),
        layers.SeparableConv2D(3, (1, 2), dilation_rate=(1, 2), padding="same", name="sep_dilated"), layers.Flatten(), layers.Dense(3, name="out"),
    ], name="keras_depthwise")
    rng = np.random.default_rng(5)
    for layer in model.layers[:6]:  # non-zero biases
        weights = layer.get_weights()
        layer.set_weights(weights[:-1] + [rng.uniform(-0.5, 0.5, weights[-1].shape)])
    save_keras(model, "keras_depthwise", rng.standard_normal((2, 9, 8, 3)).astype(np.float32))


def keras_normalization_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    adapted = layers.Normalization(name="adapted")
    adapted.adapt(rng.normal(3, 2, (50, 4)).astype(np.float32))
    model = keras.Sequential([keras.Input((4,)), adapted, layers.Normalization(mean=[1, 2, 3, 4], variance=[1, 4, 9, 16], name="given"),
                              layers.Dense(2, name="dense")], name="keras_normalization")
    save_keras(model, "keras_normalization", rng.normal(3, 2, (3, 4)).astype(np.float32))


def save_keras(model, name, x):
    model.save(OUT / f"{name}.keras")
    model.save(OUT / f"{name}.h5")
    np.save(OUT / f"{name}_x.npy", x)
    np.save(OUT / f"{name}_y.npy", model.predict(x, verbose=0).astype(np.float32))


def keras_nested_fixtures():
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    generator = keras.Sequential([keras.Input((3,)), layers.Dense(5, activation="tanh", name="dense"),
                                  layers.Dense(4, name="dense_1")], name="generator")
    discriminator = keras.Sequential([keras.Input((4,)), layers.Dense(6, name="dense"), layers.BatchNormalization(name="bn"),
                                      layers.Activation("relu", name="relu"), layers.Dense(1, name="dense_1")], name="discriminator")
    rng = np.random.default_rng(1)
    bn = discriminator.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 1.5, 6), rng.uniform(-0.5, 0.5, 6), rng.uniform(-0.5, 0.5, 6), rng.uniform(0.5, 2.0, 6)])
    noise = keras.Input((3,), name="noise")
    outputs = layers.Dense(2, name="head")(discriminator(generator(noise)))
    model = keras.Model(noise, outputs, name="keras_nested")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    model.save(OUT / "keras_nested.keras")
    model.save(OUT / "keras_nested.h5")
    np.save(OUT / "keras_nested_x.npy", x)
    np.save(OUT / "keras_nested_y.npy", model.predict(x, verbose=0).astype(np.float32))


def keras_weighted_fixtures():
    """keras_weighted.keras: a softmax classifier before training; keras_weighted.npz: its data
    (x, y, per-sample weights w) and what Keras 3 reports: evaluate with sample weights, and one
    epoch of SGD (batches of 8, no shuffling) with class weights and with sample weights, each
    from the saved weights: history rows and the weights after (`<run>_weight_<i>`)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(8)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20).astype(np.int32)
    w = rng.uniform(0.2, 3.0, 20).astype(np.float32)
    class_weight = {0: 1.0, 1: 4.0, 2: 0.5}

    def fresh():
        model = keras.models.load_model(OUT / "keras_weighted.keras", compile=False)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], weighted_metrics=["accuracy"])
        return model

    model = keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="relu", name="hidden"),
                              layers.Dense(3, activation="softmax", name="out")], name="keras_weighted")
    model.save(OUT / "keras_weighted.keras")
    results = {"x": x, "y": y, "w": w, "class_weight": np.array([class_weight[c] for c in range(3)], np.float32)}
    for name, value in fresh().evaluate(x, y, sample_weight=w, batch_size=8, verbose=0, return_dict=True).items():
        results[f"evaluate_{name}"] = np.float32(value)
    for run, extra in (("class_weight", {"class_weight": class_weight}), ("sample_weight", {"sample_weight": w})):
        model = fresh()
        history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, **extra).history
        for name, values in history.items():
            results[f"{run}_{name}"] = np.float32(values[-1])
        for i, weight in enumerate(model.get_weights()):
            results[f"{run}_weight_{i}"] = weight.astype(np.float32)
    np.savez(OUT / "keras_weighted.npz", **results)


def tensorboard_fixtures():
    """tensorboard_torch.tfevents: scalars, a histogram, an image and text written by the tensorboard
    package's writer (through torch.utils.tensorboard); tensorboard_tf.tfevents: scalars as TF 2's
    tf.summary writes them (tensors); tensorboard_expected.json: what TensorBoard's own reader
    (EventAccumulator) finds in both. Then, when .build/debug/kiln exists, a Kiln run with
    --tensorboard is read by that reader and must show every kind of summary Kiln writes."""
    import json
    import shutil
    import subprocess
    import tempfile
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    def accumulate(folder):
        ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
        ea.Reload()
        return ea

    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        torch_dir, tf_dir = pathlib.Path(tmp, "torch"), pathlib.Path(tmp, "tf")
        writer = SummaryWriter(str(torch_dir))
        for step, value in enumerate([0.75, 0.5, 0.25]):
            writer.add_scalar("loss", value, step)
        writer.add_histogram("weights", np.array([-1.0, -0.5, 0.0, 0.25, 0.5, 2.0]), 1, bins=np.array([-1.0, 0.0, 1.0, 2.0]))
        image = np.zeros((4, 6, 3), np.uint8)
        image[1, 2] = [255, 128, 0]
        writer.add_image("grid", image, 2, dataformats="HWC")
        writer.add_text("note", "hello, *TensorBoard*", 3)
        writer.close()
        ea = accumulate(torch_dir)
        h = ea.Histograms("weights")[0].histogram_value
        expected["torch"] = {"loss": [[e.step, e.value] for e in ea.Scalars("loss")],
                             "weights": {"step": 1, "limits": list(h.bucket_limit), "counts": list(h.bucket)},
                             "grid": {"step": 2, "width": ea.Images("grid")[0].width, "height": ea.Images("grid")[0].height},
                             "note": {"step": 3, "text": ea.Tensors("note/text_summary")[0].tensor_proto.string_val[0].decode()}}
        shutil.copy(next(torch_dir.glob("events.out.tfevents.*")), OUT / "tensorboard_torch.tfevents")
        import tensorflow as tf
        with tf.summary.create_file_writer(str(tf_dir)).as_default():
            for step, value in enumerate([1.5, 1.25]):
                tf.summary.scalar("epoch_loss", value, step=step)
        ea = accumulate(tf_dir)
        expected["tf"] = {"epoch_loss": [[e.step, float(tf.make_ndarray(e.tensor_proto))] for e in ea.Tensors("epoch_loss")]}
        shutil.copy(next(tf_dir.glob("events.out.tfevents.*")), OUT / "tensorboard_tf.tfevents")
    (OUT / "tensorboard_expected.json").write_text(json.dumps(expected, indent=1) + "\n")

    kiln = OUT.parent.parent.parent / ".build" / "debug" / "kiln"
    if not kiln.exists():
        print("note: build kiln (swift build) to check its event files with TensorBoard's reader")
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv = pathlib.Path(tmp, "data.csv")
        csv.write_text("a,b,label\n" + "".join(f"{i % 5},{i % 3},{i % 2}\n" for i in range(60)))
        subprocess.run([str(kiln), "train", "--dataset", str(csv), "--model", "mlp", "--epochs", "2", "--tensorboard", "--update-freq", "2",
                        "--out", str(pathlib.Path(tmp, "run"))], check=True, capture_output=True)
        train, validation = accumulate(pathlib.Path(tmp, "run", "train")), accumulate(pathlib.Path(tmp, "run", "validation"))
        tags = train.Tags()
        assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss"} <= set(tags["scalars"]), tags
        assert [e.step for e in train.Scalars("epoch_loss")] == [1, 2], train.Scalars("epoch_loss")
        assert "dense/kernel/histogram" in tags["histograms"] and "dense/kernel/gradient" in tags["histograms"], tags
        assert tags["images"] == ["test/confusion_matrix"] and tags["tensors"] == ["model/summary"], tags
        assert set(validation.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy"}, validation.Tags()
        print("TensorBoard's reader reads Kiln's event files:", tags["scalars"], tags["histograms"][:2], tags["images"], tags["tensors"])


def torchvision_fixtures():
    """Tests/KilnTests/Fixtures/large/ (not committed: tens of MB; the tests skip with a note without
    them): torchvision's resnet18, resnet50, mobilenet_v2 and efficientnet_b0 (built here module for module, with
    torchvision's names, since torchvision needs a CUDA torch) and vgg11_bn's features, random weights with randomised
    batch-norm statistics, saved by torch.save(state_dict) beside an input batch and the outputs."""
    large = OUT / "large"
    large.mkdir(exist_ok=True)

    from torchvision_replicas import ResNet, VGGFeatures, MobileNetV2, EfficientNetB0  # Scripts/, beside this file
    torch.manual_seed(2)
    for name, model, size in [("resnet18", ResNet([2, 2, 2, 2], False), 64), ("resnet50", ResNet([3, 4, 6, 3], True), 64),
                              ("vgg11_bn_features", VGGFeatures(), 32), ("mobilenet_v2", MobileNetV2(), 64),
                              ("efficientnet_b0", EfficientNetB0(), 64)]:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        model.eval()
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            y = model(x)
        torch.save(model.state_dict(), large / f"torchvision_{name}.pth")
        np.save(large / f"torchvision_{name}_x.npy", x.numpy())
        np.save(large / f"torchvision_{name}_y.npy", y.numpy())  # NCHW for the VGG features


KERAS_APPLICATIONS = {  # name: (constructor, input size): the smallest size each accepts, to keep the files small
    "VGG16": ("VGG16", 32), "VGG19": ("VGG19", 32), "ResNet50": ("ResNet50", 32), "ResNet101": ("ResNet101", 32),
    "ResNet152": ("ResNet152", 32), "ResNet50V2": ("ResNet50V2", 32), "ResNet101V2": ("ResNet101V2", 32), "ResNet152V2": ("ResNet152V2", 32),
    "MobileNet": ("MobileNet", 32), "MobileNetV2": ("MobileNetV2", 32), "MobileNetV3Small": ("MobileNetV3Small", 32),
    "MobileNetV3Large": ("MobileNetV3Large", 32), "DenseNet121": ("DenseNet121", 32), "DenseNet169": ("DenseNet169", 32),
    "DenseNet201": ("DenseNet201", 32), "EfficientNetB0": ("EfficientNetB0", 32), "EfficientNetB3": ("EfficientNetB3", 32),
    "EfficientNetB7": ("EfficientNetB7", 32), "EfficientNetV2B0": ("EfficientNetV2B0", 32), "EfficientNetV2S": ("EfficientNetV2S", 32),
    "InceptionV3": ("InceptionV3", 75), "InceptionResNetV2": ("InceptionResNetV2", 75), "Xception": ("Xception", 71),
    "NASNetMobile": ("NASNetMobile", 32), "ConvNeXtTiny": ("ConvNeXtTiny", 32),
}


def keras_applications_fixtures(names=None):
    """Tests/KilnTests/Fixtures/large/keras_app_<Name>.keras/.h5 (not committed; the tests skip with a note
    without them): each keras.applications model with random weights (weights=None), randomised batch-norm
    statistics, at the smallest input it accepts, with a batch and Keras's outputs."""
    import keras

    large = OUT / "large"
    large.mkdir(exist_ok=True)
    rng = np.random.default_rng(3)
    for name in names or KERAS_APPLICATIONS:
        constructor, size = KERAS_APPLICATIONS[name]
        keras.utils.set_random_seed(3)
        model = getattr(keras.applications, constructor)(weights=None, input_shape=(size, size, 3), classes=10)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):  # gamma and beta only where scale/center
                ranges = {"gamma": (0.5, 1.5), "beta": (-0.2, 0.2), "moving_mean": (-0.2, 0.2), "moving_variance": (0.5, 1.5)}
                layer.set_weights([rng.uniform(*ranges[w.name], w.shape) for w in layer.weights])
        x = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)
        model.save(large / f"keras_app_{name}.keras")
        model.save(large / f"keras_app_{name}.h5")
        np.save(large / f"keras_app_{name}_x.npy", x)
        np.save(large / f"keras_app_{name}_y.npy", model.predict(x, verbose=0).astype(np.float32))
        print("wrote", name)


if __name__ == "__main__":
    main()
