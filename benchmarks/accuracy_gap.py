"""Accuracy gap: test accuracy of the integer model minus its float32 twin's, after the
same epochs, over several seeds (the example trainer, `--compare`, one process per model).

Usage: python benchmarks/accuracy_gap.py --dataset digits --model lenet --seeds 0 1 2 [-- --mu 3 ...]
  Arguments after `--` go to keras_int.examples.train (a candidate setting).
Prints one row per seed and the mean and spread (min, max) of the gap, in points.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def run(dataset, model, seed, epochs, extra):
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "keras_int.examples.train", "--dataset", dataset, "--model", model,
                   "--seed", str(seed), "--compare", "--out", out, *extra]
        if epochs:
            command += ["--epochs", str(epochs)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"training failed ({' '.join(command)}):\n{result.stderr[-3000:]}")
        with open(os.path.join(out, "report.json")) as f:
            integer, float32 = json.load(f)["results"][:2]
    return integer["test_accuracy"], float32["test_accuracy"]


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--epochs", type=int, default=None, help="default: the example's for the dataset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    setting = " ".join(extra) or "defaults"
    print(f"{args.model} on {args.dataset}, {setting}, epochs {args.epochs or 'default'}")
    print("| seed | integer | float32 | gap (points) |")
    print("|---|---|---|---|")
    gaps = []
    for seed in args.seeds:
        integer, float32 = run(args.dataset, args.model, seed, args.epochs, extra)
        gaps.append(100 * (integer - float32))
        print(f"| {seed} | {integer:.4f} | {float32:.4f} | {gaps[-1]:+.2f} |", flush=True)
    print(f"gap mean {sum(gaps) / len(gaps):+.2f} points, min {min(gaps):+.2f}, max {max(gaps):+.2f} "
          f"({len(gaps)} seeds)")


if __name__ == "__main__":
    main()
