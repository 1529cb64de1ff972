"""Train a network with integers (and optionally its float32 twin) and compare.

    python -m keras_int.examples.train --dataset digits --epochs 2 --compare
    python -m keras_int.examples.train --model resnet20 --dataset digits --compare
    python -m keras_int.examples.train --replicas 2 --compare    # tf.distribute.MirroredStrategy

Each model trains in its own process, so that its peak memory (max RSS) is
its own. Writes report.json and report.png (accuracy curves and exponent
traces) to --out.
"""

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time

DEFAULT_EPOCHS = {"digits": 20, "mnist": 2, "fashion_mnist": 2, "cifar10": 2, "fortunes": 10}
# IntegerSGD's update bit width mu per model. ResNet-20 (batch norm, BN
# momentum 0.9 in both twins) on the digits, batch 64, evaluate accuracy
# after 15-20 epochs, seeds 0/1/2: mu 5: 0.75 (seed 0; 0.63-0.94 from epoch
# to epoch), mu 4: 0.92 (seed 0), mu 3: 0.97/0.94/0.96, mu 2: 0.97/0.96/0.92;
# float32 twin (SGD 0.01, momentum 0.9): 0.98 (seed 0); with --niti-schedule
# (3 -> 2 -> 1, 20 epochs) 0.987/0.987/0.996. At mu 5 the int8
# steps are too coarse for the 21 batch-normalised convolutions; at every mu
# the integer evaluate accuracy jumps from epoch to epoch more than float's:
# the moving statistics lag the weights' coarse steps (training-mode batch
# statistics on the test set, or statistics refreshed with the final weights,
# give the float accuracy; tests/test_batch_norm_training.py).
MAX_PLOTTED_EXPONENTS = 16
DEFAULT_MU = {"lenet": 5, "vgg_small": 5, "resnet20": 3, "vit_tiny": 3, "text_transformer": 3}


def _parse(argv):
    from keras_int.examples.data import DATASETS
    from keras_int.examples.models import MODELS

    parser = argparse.ArgumentParser(prog="python -m keras_int.examples.train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto", choices=DATASETS,
                        help="auto: MNIST through TFDS if it can be loaded, else scikit-learn digits")
    parser.add_argument("--model", default="lenet", choices=MODELS,
                        help="lenet, vgg_small (NITI's VGG-small, no batch norm), resnet20 (the CIFAR "
                        "ResNet-20: IntBatchNormalization, IntAdd; any image --dataset, 8x8 digits end in 2x2 "
                        "maps), vit_tiny (2x2 patches, 2 pre-norm transformer blocks; any image --dataset) or "
                        "text_transformer (--dataset fortunes: language of fortune cookies from their "
                        "characters)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: 20 for digits, 2 for mnist/cifar10, 10 for fortunes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mu", type=int, default=None,
                        help="IntegerSGD update bit width; default: 5 for lenet and vgg_small, 3 for "
                        "resnet20 (on the digits mu 5 reached 0.75 test accuracy, 3 reached 0.94-0.97)")
    parser.add_argument("--bn-momentum", type=float, default=None,
                        help="batch-norm momentum of resnet20, integer model and float32 twin alike "
                        "(default 0.9; Keras' 0.99 needs many more steps than small datasets give "
                        "before the moving statistics that evaluate uses are usable)")
    parser.add_argument("--niti-schedule", action="store_true", default=True,
                        help="the default: mu -> mu - 1 -> mu - 2 (at least 1) at 50%% / 75%% of training: NITI's "
                        "5 -> 4 -> 3 at mu 5; 3 -> 2 -> 1 for resnet20. LeNet, seeds 0/1/2, integer minus float32 "
                        "test accuracy: digits +2.7 points (constant mu 5: -4.3), Fashion-MNIST +2.1 (-0.3); "
                        "benchmarks/README.md")
    parser.add_argument("--constant-mu", dest="niti_schedule", action="store_false",
                        help="keep mu constant (NITI's update rule without its schedule)")
    parser.add_argument("--doubling-decay", type=int, default=None, metavar="STEPS",
                        help="instead of NITI's schedule: keras_int.optimizers.DoublingDecay (the step one less "
                        "after STEPS steps and again each time the step count doubles, down to two less)")
    parser.add_argument("--error-exponent", default="fixed", choices=("fixed", "dynamic"),
                        help="IntegerCrossEntropy's error: fixed (NITI's exponent -7) or dynamic (15 fraction "
                        "bits requantized on the batch's largest error)")
    parser.add_argument("--error-rounding", default="pseudo_stochastic", choices=("pseudo_stochastic", "stochastic"),
                        help="IntegerCrossEntropy's rounding of the error (stochastic: keyed by --seed and the batch)")
    parser.add_argument("--momentum", type=int, default=0,
                        help="IntegerSGD's integer momentum in sixteenths (0: none, NITI's rule)")
    parser.add_argument("--drop-remainder", action="store_true",
                        help="drop each epoch's last, partial batch (whose loss scale 1/size is not a power of two)")
    parser.add_argument("--kernel-initializer", default=None,
                        help="the integer CNNs' kernel initializer (default: Keras' glorot_uniform), e.g. he_uniform")
    parser.add_argument("--embeddings-initializer", default=None,
                        help="the text model's token embedding initializer, integer model and float32 twin alike "
                        "(default: glorot_uniform; uniform is Keras' +-0.05)")
    parser.add_argument("--float-decay", action="store_true",
                        help="the float32 twin's learning rate halves at 50 %% and again at 75 %% of the steps, "
                        "as the integer schedule halves the step (default: constant, as Keras' defaults)")
    parser.add_argument("--step-bits", type=int, default=0,
                        help="IntegerAdam's step_bits (--optimizer adam); the schedule steps down from it "
                        "(0 -> -1 -> -2 by default)")
    parser.add_argument("--weight-bits", type=int, default=8, choices=(8, 16),
                        help="16: the integer optimizer keeps 16-bit master weights (NITI's 16-bit accumulation; "
                        "IntegerAdam's steps keep their value, IntegerSGD's mu then counts master units: add 8)")
    parser.add_argument("--optimizer", default=None, choices=("sgd", "adam"),
                        help="sgd: IntegerSGD(mu) vs float32 SGD 0.01 with momentum 0.9; adam: IntegerAdam vs "
                        "float32 AdamW 1e-3. Default: adam for vit_tiny and text_transformer (on the fortune "
                        "cookies IntegerSGD reached 0.87, IntegerAdam 0.91, AdamW 0.92), sgd for the others")
    parser.add_argument("--bits", type=int, default=8, choices=(8, 16),
                        help="mantissa width of the integer model: 8 (NITI) or 16 (DFP16: int16 dense and "
                             "convolution layers, loss and SGD steps; docs/algorithms.md 16)")
    parser.add_argument("--compare", action="store_true",
                        help="also train the float32 twin (and, with --bits 16, the int8 model)")
    parser.add_argument("--replicas", type=int, default=1,
                        help="train data-parallel under tf.distribute.MirroredStrategy on this many GPUs, or "
                             "logical CPU devices where there are fewer GPUs (--batch-size stays the global "
                             "batch). The integer arithmetic is one device's, bit for bit, when the replicas "
                             "divide every batch and see the same data order (README, 'Scaling out'); this "
                             "example reshuffles every epoch, and Keras reads the distributed data once more "
                             "to build the model, so its order, and results, differ from --replicas 1")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data directory; for fashion_mnist, a directory with its four idx files")
    parser.add_argument("--out", default="runs/latest", help="directory for report.json and report.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's log lines and Keras' progress bars (default: one line per epoch)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    if args.replicas < 1:
        parser.error("--replicas must be >= 1")
    from keras_int.examples.data import TEXT_DATASETS

    if (args.model == "text_transformer") != (args.dataset in TEXT_DATASETS):
        parser.error(f"--model {args.model} does not take --dataset {args.dataset}: text_transformer trains on "
                     f"{', '.join(TEXT_DATASETS)}, the other models on images")
    if args.optimizer is None:
        args.optimizer = "adam" if args.model in ("vit_tiny", "text_transformer") else "sgd"
    if args.mu is None:
        args.mu = DEFAULT_MU[args.model]
    if not 1 <= args.mu <= 30:
        parser.error("--mu must be in [1, 30]")
    if args.bn_momentum is not None:
        if args.model != "resnet20":
            parser.error(f"--bn-momentum: {args.model} has no batch normalization")
        if not 0.0 <= args.bn_momentum <= 1.0:
            parser.error("--bn-momentum must be in [0, 1]")
    return args


class _EpochTimer:
    """Wall time of each training epoch (a keras callback, built lazily)."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self._start)

        return Timer()


def _strategy(replicas):
    """The default strategy, or a MirroredStrategy over `replicas` GPUs (logical CPU
    devices where there are fewer GPUs; set before TensorFlow places anything)."""
    import tensorflow as tf

    if replicas == 1:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= replicas:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(replicas)])
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * replicas)
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])


def _step_schedule(args, steps, values):
    """The integer optimizer's step schedule over `values` (three): NITI's (the next
    value at 50 % and 75 % of `steps`), DoublingDecay (one less per doubling of the
    step count, from the first value down to the last) or none."""
    import keras_int

    first_decay_steps = getattr(args, "doubling_decay", None)
    if first_decay_steps:
        return keras_int.optimizers.DoublingDecay(values[0], first_decay_steps, values[-1])
    if args.niti_schedule:
        return keras_int.optimizers.niti_mu_schedule(steps, values)
    return None


def _integer_loss(args):
    import keras_int

    rounding = getattr(args, "error_rounding", "pseudo_stochastic")
    return keras_int.losses.IntegerCrossEntropy(error_exponent=getattr(args, "error_exponent", "fixed"),
                                                rounding=rounding, seed=args.seed if rounding == "stochastic" else None)


def _compiled(args, integer, info, epochs, options):
    """The example model compiled for training, and its callbacks."""
    import keras

    import keras_int
    from keras_int.examples import models

    model = models.build(args.model, info["input_shape"], info["classes"], integer=integer, **options)
    callbacks = [_EpochTimer()]
    adam = getattr(args, "optimizer", "sgd") == "adam"
    steps = epochs * -(-info["train_examples"] // args.batch_size)
    if integer and adam:
        schedule = _step_schedule(args, steps, [args.step_bits - i for i in range(3)])
        optimizer = keras_int.optimizers.IntegerAdam(step_bits=args.step_bits, step_bits_schedule=schedule,
                                                     weight_bits=getattr(args, "weight_bits", 8))
    elif integer:
        schedule = _step_schedule(args, steps, [max(1, args.mu - i) for i in range(3)])
        optimizer = keras_int.optimizers.IntegerSGD(mu=args.mu, mu_schedule=schedule,
                                                    momentum=getattr(args, "momentum", 0),
                                                    weight_bits=getattr(args, "weight_bits", 8))
    else:
        rate = 1e-3 if adam else 0.01
        if getattr(args, "float_decay", False):  # the integer schedule's halvings, at the same steps
            rate = keras_int.optimizers.niti_mu_schedule(steps, [rate, rate / 2, rate / 4])
        optimizer = (keras.optimizers.AdamW(learning_rate=rate) if adam
                     else keras.optimizers.SGD(learning_rate=rate, momentum=0.9))
    if integer:
        loss = _integer_loss(args)
        callbacks.append(keras_int.callbacks.ExponentTracker())
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model, callbacks


def _log_level(args):
    """TensorFlow's log lines: all with --verbose, else errors only. This process has
    loaded TensorFlow already (quietly: importing keras_int does, tf_int_ops._quiet);
    the training processes it starts read the level when they import it."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if getattr(args, "verbose", False) else "2"


def train_one(args, integer, dataset, bits=8):
    """Trains one model in this process (integer: with `bits`-bit mantissas); returns its results."""
    _log_level(args)
    strategy = _strategy(getattr(args, "replicas", 1))
    import keras

    import keras_int
    from keras_int.examples import data

    keras.utils.set_random_seed(args.seed)
    keras_int.set_default_bits(bits)
    train, test, info = data.load(dataset, args.batch_size, args.data_dir, log=lambda m: None)
    epochs = args.epochs or DEFAULT_EPOCHS[info["name"]]
    options = {} if getattr(args, "bn_momentum", None) is None else {"bn_momentum": args.bn_momentum}
    if integer and getattr(args, "kernel_initializer", None):
        options["kernel_initializer"] = args.kernel_initializer
    if getattr(args, "embeddings_initializer", None):
        options["embeddings_initializer"] = args.embeddings_initializer
    if getattr(args, "drop_remainder", False):
        train = train.rebatch(args.batch_size, drop_remainder=True)
        info = {**info, "train_examples": info["train_examples"] // args.batch_size * args.batch_size}
    if "vocab" in info:
        options["vocab"] = info["vocab"]
    with strategy.scope():  # the model, its optimizer and metrics: variables of the strategy
        model, callbacks = _compiled(args, integer, info, epochs, options)
    replicas = f", {strategy.num_replicas_in_sync} replicas" if strategy.num_replicas_in_sync > 1 else ""
    print(f"\n=== {model.name} on {info['name']}: {epochs} epochs, batch {args.batch_size}{replicas} ===",
          flush=True)
    # shuffle=False: the tf.data pipeline shuffles (Keras warns that it ignores shuffle=True).
    history = model.fit(train, epochs=epochs, validation_data=test, callbacks=callbacks, shuffle=False,
                        verbose=1 if getattr(args, "verbose", False) else 2)
    times = callbacks[0].times
    steady = times[1:] if len(times) > 1 else times  # the first epoch includes tracing
    test_loss, test_accuracy = model.evaluate(test, verbose=0)
    return {
        "model": model.name, "dataset": info["name"], "epochs": epochs,
        "test_accuracy": float(test_accuracy),
        "images_per_second": info["train_examples"] / (sum(steady) / len(steady)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }


def _train_in_child(args, integer, dataset, bits, queue):
    try:
        queue.put(train_one(args, integer, dataset, bits))
    except BaseException as error:  # report it to the parent instead of dying silently
        queue.put({"error": f"{type(error).__name__}: {error}"})
        raise


def _run_isolated(args, integer, dataset, bits=8):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_train_in_child, args=(args, integer, dataset, bits, queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        sys.exit(f"training failed: {result['error']}")
    return result


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_int.callbacks import PREFIX

    integer = results[0]
    exponents = {k: v for k, v in integer["history"].items()
                 if k.startswith(PREFIX) and k.endswith(("output_exponent", "error_exponent"))}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8))
    for result in results:
        epochs = range(1, len(result["history"]["accuracy"]) + 1)
        top.plot(epochs, result["history"]["val_accuracy"], marker="o", label=f"{result['model']} test")
        top.plot(epochs, result["history"]["accuracy"], linestyle="--", label=f"{result['model']} train")
    top.set_xlabel("epoch")
    top.set_ylabel("accuracy")
    top.set_title(f"{integer['dataset']}: integer vs float32")
    top.legend()
    top.grid(alpha=0.3)
    names = sorted(exponents)
    shown = names
    if len(names) > MAX_PLOTTED_EXPONENTS:  # ResNet-20 has 86: a legible, evenly spaced subset
        step = len(names) / MAX_PLOTTED_EXPONENTS
        shown = [names[int(i * step)] for i in range(MAX_PLOTTED_EXPONENTS)]
    for name in shown:
        values = exponents[name]
        bottom.plot(range(1, len(values) + 1), values, marker=".", label=name[len(PREFIX):])
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("exponent e (value = q * 2**e)")
    subset = f", {len(shown)} of {len(names)}; all in report.json" if len(shown) < len(names) else ""
    bottom.set_title(f"DFP exponents of the integer model (ExponentTracker{subset})")
    bottom.legend(fontsize="x-small")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _column_width(results):
    """Wide enough for the longest model name and two spaces (text_transformer_float32 is 24)."""
    return max(22, max(len(r["model"]) for r in results) + 2)


def _print_gap_per_epoch(integer, float32):
    """Test accuracy per epoch of the integer model and its float32 twin, and the gap in
    points (integer minus float32); returns the gaps."""
    ours, theirs = integer["history"]["val_accuracy"], float32["history"]["val_accuracy"]
    gaps = [100 * (a - b) for a, b in zip(ours, theirs)]
    width = _column_width([integer, float32])
    print(f"\n{'epoch':<8}{integer['model']:>{width}}{float32['model']:>{width}}{'gap (points)':>14}")
    for epoch, (a, b, gap) in enumerate(zip(ours, theirs, gaps), 1):
        print(f"{epoch:<8}{a:{width}.4f}{b:{width}.4f}{gap:+14.2f}")
    return gaps


def main(argv=None):
    args = _parse(argv)
    _log_level(args)
    from keras_int.examples import data

    # Resolve "auto" (and check the dataset) once, here, with a clear message.
    try:
        info = data.load(args.dataset, args.batch_size, args.data_dir)[2]
    except data.DatasetError as error:
        sys.exit(f"error: {error}")
    dataset = info["name"]
    os.makedirs(args.out, exist_ok=True)
    results = [_run_isolated(args, True, dataset, args.bits)]
    if args.compare and args.bits == 16:
        results.append(_run_isolated(args, True, dataset, 8))
    if args.compare:
        results.append(_run_isolated(args, False, dataset))

    # The ratio column: the first (integer) model to the float32 twin.
    width = _column_width(results)
    print(f"\n{'':<24}" + "".join(f"{r['model']:>{width}}" for r in results) + ("      ratio" if args.compare else ""))
    for key, label, fmt in (("test_accuracy", "test accuracy", f"{{:{width}.4f}}"),
                            ("images_per_second", "train images/s", f"{{:{width}.1f}}"),
                            ("peak_rss_mib", "peak memory (MiB)", f"{{:{width}.1f}}")):
        row = f"{label:<24}" + "".join(fmt.format(r[key]) for r in results)
        if args.compare:
            row += f"{results[0][key] / results[-1][key]:11.2f}"
        print(row)
    report = {"args": vars(args), "results": results}
    if args.compare:
        report["gap_per_epoch"] = _print_gap_per_epoch(results[0], results[-1])
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    _plot(results, os.path.join(args.out, "report.png"))
    print(f"\nwrote {os.path.join(args.out, 'report.json')} and {os.path.join(args.out, 'report.png')}")
    return report


if __name__ == "__main__":
    main()
