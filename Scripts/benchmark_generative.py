#!/usr/bin/env python3
"""Kiln against Keras (TensorFlow CPU) and PyTorch (CPU) on the generative workloads of GenerativeZoo:

  dcgan  Keras's DCGAN guide on 28×28×1 images: one discriminator and one generator update per step
         (a real and a generated half, Adam 2e-4, β1 0.5), batch 64
  vae    the convolutional VAE (Conv2D 32/64 stride 2 → Dense 16 → 2-D latent → Conv2DTranspose 64/32),
         reconstruction cross-entropy summed over pixels + KL, Adam 1e-3, batch 128

Random images (speed does not depend on the values). Keras runs the guide's `train_step` under `fit`;
PyTorch the same step by hand. Each measurement runs in its own process, engines interleaved; the
best of the rounds counts. Prints a table and, with --record, adds it to docs/benchmarks.md. Run
through `Scripts/benchmark.sh generative`; with --elbo, compares the VAE's test loss after --epochs
on the real Fashion-MNIST over --seeds instead (Kiln through `kiln train --model vae`); with
--quality, judges the DCGAN's samples after --epochs, Kiln's (Examples/DCGAN) and Keras's, by one
classifier (see `quality`).
"""
import datetime, json, os, resource, statistics, subprocess, sys, time
from pathlib import Path

from benchmark import best_of_rounds, dated_table, machine, publish, run_workload, workload_parser  # Scripts/benchmark.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
BATCH = {"dcgan": 64, "vae": 128}
LATENT = {"dcgan": 64, "vae": 2}


def steps_per_second(train_window, windows):
    rates = []
    for window in range(windows + 1):
        start = time.perf_counter()
        steps = train_window()
        if window:
            rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def keras_worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf, keras
    from keras import layers, ops
    keras.utils.set_random_seed(1)
    batch = BATCH[args.workload]
    x = np.random.default_rng(1).random((args.steps * batch, 28, 28, 1), dtype=np.float32)
    if args.workload == "dcgan":
        model = keras_dcgan(keras, layers, ops, tf)
    else:
        model = keras_vae(keras, layers, ops)
    def window():
        model.fit(x, None if args.workload == "dcgan" else x, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        return args.steps
    return steps_per_second(window, args.windows)


def keras_dcgan(keras, layers, ops, tf):
    """Keras's "DCGAN overriding train_step" guide with GenerativeZoo.dcgan's two models."""
    leaky = lambda: layers.LeakyReLU(negative_slope=0.2)
    generator = keras.Sequential([keras.Input((64,)), layers.Dense(7 * 7 * 128), leaky(), layers.Reshape((7, 7, 128)),
                                  layers.Conv2DTranspose(128, 4, strides=2, padding="same"), leaky(),
                                  layers.Conv2DTranspose(64, 4, strides=2, padding="same"), leaky(),
                                  layers.Conv2D(1, 5, padding="same", activation="sigmoid")])
    discriminator = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(64, 4, strides=2, padding="same"), leaky(),
                                      layers.Conv2D(128, 4, strides=2, padding="same"), leaky(), layers.Flatten(),
                                      layers.Dropout(0.2), layers.Dense(1)])

    class GAN(keras.Model):  # Keras's "DCGAN overriding train_step" guide
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = generator, discriminator
            self.d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
            self.g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
            self.seed = keras.random.SeedGenerator(1)

        def train_step(self, real):
            n = ops.shape(real)[0]
            noise = keras.random.normal((n, 64), seed=self.seed)
            labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))], axis=0)
            with tf.GradientTape() as tape:
                fake = self.generator(noise, training=True)
                d_loss = self.loss_fn(labels, self.discriminator(ops.concatenate([real, ops.stop_gradient(fake)], 0), training=True))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
            with tf.GradientTape() as tape:
                g_loss = self.loss_fn(ops.ones((n, 1)), self.discriminator(self.generator(noise, training=True), training=True))
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
            return {"d_loss": d_loss, "g_loss": g_loss}
    model = GAN()
    model.compile()
    return model


def keras_vae(keras, layers, ops):
    """GenerativeZoo.vae in Keras, compiled as Kiln's CLI compiles it (Adam 1e-3, cross-entropy × 784 + KL)."""
    class Sampling(layers.Layer):
        def call(self, code):
            mean, log_var = code[:, :2], code[:, 2:]
            self.add_loss(ops.mean(-0.5 * ops.sum(1 + log_var - ops.square(mean) - ops.exp(log_var), axis=1)))
            return mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean))

    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inputs)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    z = Sampling()(layers.Dense(4)(layers.Dense(16, activation="relu")(layers.Flatten()(h))))
    h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(z))
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    model = keras.Model(inputs, layers.Conv2D(1, 3, padding="same")(h))
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True), loss_weights=[784])
    return model


def keras_elbo(args):
    """Test loss (reconstruction cross-entropy + KL per image) of the Keras VAE after --epochs on Fashion-MNIST."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers, ops
    from benchmark import fashion_mnist
    keras.utils.set_random_seed(args.seed)
    x_train, _, x_test, _ = fashion_mnist()
    x_train, x_test = x_train.astype("float32") / 255, x_test.astype("float32") / 255
    model = keras_vae(keras, layers, ops)
    model.fit(x_train, x_train, batch_size=128, epochs=args.epochs, verbose=0)
    return model.evaluate(x_test, x_test, batch_size=128, verbose=0)


def keras_dcgan_samples(args):
    """1,000 samples of the Keras DCGAN after --epochs on the real Fashion-MNIST (batch 64), into --output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf, keras
    from keras import layers, ops
    from benchmark import fashion_mnist
    keras.utils.set_random_seed(args.seed)
    model = keras_dcgan(keras, layers, ops, tf)
    model.fit(fashion_mnist()[0].astype("float32") / 255, batch_size=64, epochs=args.epochs, verbose=0)
    noise = np.random.default_rng(99).standard_normal((1000, 64)).astype("float32")
    np.save(args.output, model.generator.predict(noise, batch_size=250, verbose=0))


def quality(args):
    """The issue's bar for the DCGAN: of 1,000 samples after --epochs, the share a Fashion-MNIST classifier
    (the workshop CNN, `kiln train` for --judge-epochs) gives a class with confidence ≥ 0.9, and the
    classes those cover; Kiln's samples (Examples/DCGAN), Keras's (the same models and step), and as
    controls 1,000 real test images and 1,000 uniform-noise images, all judged by the same classifier."""
    import tempfile
    import numpy as np
    from benchmark import fashion_mnist
    kiln, environment = str(ROOT / ".build/release/kiln"), {**os.environ, "KILN_DEVICE": args.kiln_device}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        subprocess.run([kiln, "train", "--dataset", "fashion-mnist", "--epochs", str(args.judge_epochs), "--seed", "1",
                        "--out", str(scratch / "judge")], check=True, capture_output=True, env=environment)
        judge_accuracy = json.loads((scratch / "judge/metrics.json").read_text())["test_accuracy"]
        subprocess.run([str(ROOT / ".build/release/DCGAN"), str(args.epochs), "60000", str(scratch / "kiln")],
                       check=True, capture_output=True, env=environment)
        subprocess.run([sys.executable, __file__, "--worker", "keras-dcgan", "--epochs", str(args.epochs), "--seed", str(args.seed),
                        "--output", str(scratch / "keras.npy")], check=True, capture_output=True)
        np.save(scratch / "real.npy", fashion_mnist()[2][:1000])  # bytes: `kiln predict` scales them as in training
        np.save(scratch / "noise.npy", np.random.default_rng(1).random((1000, 28, 28, 1), dtype=np.float32))
        rows = []
        for name, path in [("Kiln DCGAN", scratch / "kiln/samples.npy"), ("Keras DCGAN", scratch / "keras.npy"),
                           ("real test images", scratch / "real.npy"), ("uniform noise", scratch / "noise.npy")]:
            subprocess.run([kiln, "predict", str(scratch / "judge/model.safetensors"), str(path), "--output", str(scratch / "scores.npy")],
                           check=True, capture_output=True, env=environment)
            scores = np.load(scratch / "scores.npy").astype("float64")
            if not (np.all(scores >= 0) and np.allclose(scores.sum(1), 1, atol=1e-4)):  # logits: their softmax
                scores = np.exp(scores - scores.max(1, keepdims=True))
                scores /= scores.sum(1, keepdims=True)
            rows.append((name, scores))
    commit, cpu = machine()
    lines = [f"## {datetime.date.today()} — DCGAN samples judged by a classifier, commit {commit}", "",
             f"{cpu}; the DCGAN (Keras's guide, batch 64, Adam 2e-4, β1 0.5) {args.epochs} epochs on the real Fashion-MNIST, "
             f"1,000 samples each; the judge: the workshop CNN after {args.judge_epochs} epochs of `kiln train` (test accuracy "
             f"{judge_accuracy:.4f}); `Scripts/benchmark_generative.py --quality`.", "",
             "| images | confidence ≥ 0.9 | classes among those | per class (all 1,000) |", "|---|---:|---:|---|"]
    for name, p in rows:
        confident = p.max(1) >= 0.9
        covered = len(set(p.argmax(1)[confident]))
        lines.append(f"| {name} | {confident.mean():.1%} | {covered} | {', '.join(str(n) for n in np.bincount(p.argmax(1), minlength=10))} |")
    return "\n".join(lines) + "\n"


def elbo(args):
    """Kiln's `kiln train --model vae` and the Keras VAE, --epochs each, over --seeds: mean test losses."""
    import tempfile
    results = {"kiln": [], "keras": []}
    for seed in range(1, args.seeds + 1):
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([str(ROOT / ".build/release/kiln"), "train", "--model", "vae", "--epochs", str(args.epochs), "--batch-size", "128",
                            "--validation-split", "0.0001", "--seed", str(seed), "--device", args.kiln_device, "--out", folder],
                           check=True, capture_output=True)
            results["kiln"].append(json.loads(Path(folder, "metrics.json").read_text())["test_loss"])
        output = subprocess.run([sys.executable, __file__, "--worker", "keras-elbo", "--epochs", str(args.epochs), "--seed", str(seed)],
                                check=True, capture_output=True, text=True).stdout
        results["keras"].append(json.loads(output.splitlines()[-1])["test_loss"])
        print(f"seed {seed}: kiln {results['kiln'][-1]:.2f}, keras {results['keras'][-1]:.2f}", file=sys.stderr)
    commit, cpu = machine()
    kiln, keras = statistics.mean(results["kiln"]), statistics.mean(results["keras"])
    return "\n".join([f"## {datetime.date.today()} — VAE test loss (negative ELBO per image), commit {commit}", "",
                      f"{cpu}; the convolutional VAE on the real Fashion-MNIST, {args.epochs} epochs, batch 128, Adam 1e-3, "
                      f"seeds 1–{args.seeds}; Kiln through `kiln train --model vae`, Keras 3 from `Scripts/benchmark_generative.py --elbo`.", "",
                      "| engine | test loss per seed | mean |", "|---|---|---:|",
                      f"| kiln | {', '.join(f'{v:.2f}' for v in results['kiln'])} | {kiln:.2f} |",
                      f"| keras | {', '.join(f'{v:.2f}' for v in results['keras'])} | {keras:.2f} |", "",
                      f"Kiln ÷ Keras: {kiln / keras:.3f}."]) + "\n"


def torch_worker(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)
    batch = BATCH[args.workload]
    x = torch.rand(args.steps * batch, 1, 28, 28)
    if args.workload == "dcgan":
        leaky = lambda: nn.LeakyReLU(0.2)
        generator = nn.Sequential(nn.Linear(64, 7 * 7 * 128), leaky(), nn.Unflatten(1, (128, 7, 7)),
                                  nn.ConvTranspose2d(128, 128, 4, 2, 1), leaky(), nn.ConvTranspose2d(128, 64, 4, 2, 1), leaky(),
                                  nn.Conv2d(64, 1, 5, padding=2), nn.Sigmoid())
        discriminator = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), leaky(), nn.Conv2d(64, 128, 4, 2, 1), leaky(), nn.Flatten(),
                                      nn.Dropout(0.2), nn.Linear(7 * 7 * 128, 1))
        d_opt = torch.optim.Adam(discriminator.parameters(), 2e-4, betas=(0.5, 0.999), eps=1e-7)
        g_opt = torch.optim.Adam(generator.parameters(), 2e-4, betas=(0.5, 0.999), eps=1e-7)
        bce = nn.BCEWithLogitsLoss()

        def step(real):
            n = real.shape[0]
            fake = generator(torch.randn(n, 64))
            labels = torch.cat([torch.ones(n, 1), torch.zeros(n, 1)])
            d_opt.zero_grad()
            bce(discriminator(torch.cat([real, fake.detach()])), labels).backward()
            d_opt.step()
            g_opt.zero_grad()
            bce(discriminator(fake), torch.ones(n, 1)).backward()
            g_opt.step()
    else:
        class VAE(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = nn.Sequential(nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(), nn.Flatten(),
                                             nn.Linear(7 * 7 * 64, 16), nn.ReLU(), nn.Linear(16, 4))
                self.decoder = nn.Sequential(nn.Linear(2, 7 * 7 * 64), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                                             nn.ConvTranspose2d(64, 64, 3, 2, 1, output_padding=1), nn.ReLU(),
                                             nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(), nn.Conv2d(32, 1, 3, padding=1))

            def forward(self, images):
                code = self.encoder(images)
                mean, log_var = code[:, :2], code[:, 2:]
                kl = (-0.5 * (1 + log_var - mean.square() - log_var.exp()).sum(1)).mean()
                return self.decoder(mean + (0.5 * log_var).exp() * torch.randn_like(mean)), kl

        vae = VAE()
        optimizer = torch.optim.Adam(vae.parameters(), 1e-3, eps=1e-7)

        def step(images):
            optimizer.zero_grad()
            logits, kl = vae(images)
            (F.binary_cross_entropy_with_logits(logits, images) * 784 + kl).backward()
            optimizer.step()

    def window():
        for s in range(0, x.shape[0], batch):
            step(x[s:s + batch])
        return args.steps
    return steps_per_second(window, args.windows)


def main():
    parser = workload_parser(__doc__, BATCH, 20, "dcgan")
    parser.add_argument("--elbo", action="store_true", help="compare the VAE's test loss after --epochs instead of speed")
    parser.add_argument("--quality", action="store_true", help="judge the DCGAN's samples after --epochs (default 5) instead of speed")
    parser.add_argument("--judge-epochs", type=int, default=15)
    parser.add_argument("--output", help="where the keras-dcgan worker writes its samples (.npy)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.epochs = args.epochs or (5 if args.quality or args.worker == "keras-dcgan" else 10)
    if args.worker == "keras-dcgan":
        keras_dcgan_samples(args)
        return
    if args.quality:
        publish(quality(args), args.record)
        return
    if args.worker == "keras-elbo":
        print(json.dumps({"test_loss": keras_elbo(args)}))
        return
    if args.elbo:
        publish(elbo(args), args.record)
        return
    if args.worker:
        rate = (keras_worker if args.worker == "keras" else torch_worker)(args)
        print(json.dumps({"train_steps_per_second": rate, "train_samples_per_second": rate * BATCH[args.workload],
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    engines, workloads = args.engines.split(","), args.workloads.split(",")
    best = best_of_rounds(engines, workloads, args.rounds, lambda engine, workload: run_workload(engine, workload, __file__, "generative", [], args), "train_steps_per_second")
    publish(report(best, engines, workloads, args), args.record)

def report(best, engines, workloads, args):
    def row(workload, engine, r, ratio):
        return [workload, str(BATCH[workload]), engine, f"{r['train_steps_per_second']:.2f}", f"{r['train_samples_per_second']:.0f}",
                ratio("train_steps_per_second"), f"{r['peak_rss_mb']:.0f}"]
    return dated_table("generative models, ", f"Kiln on `{args.kiln_device}`; random 28×28 images (`Scripts/benchmark_generative.py`); "
                       f"median of {args.windows} windows of {args.steps} steps after a warm-up, best of {args.rounds} interleaved rounds.",
                       [("workload", "---"), ("batch", "---:"), ("engine", "---"), ("train steps/s", "---:"), ("samples/s", "---:"),
                        ("Kiln ÷ engine", "---:"), ("peak RSS MB", "---:")],
                       best, engines, workloads, row)

if __name__ == "__main__":
    main()
