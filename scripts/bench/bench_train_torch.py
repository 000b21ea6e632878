#!/usr/bin/python3
"""The network of a Darknet cfg (scripts/bench/bench_lenet.cfg) in PyTorch, trained the same way: plain SGD with the cfg's
learning rate, momentum and decay, mean cross-entropy (Darknet's softmax layer), the cfg's batch, synthetic data
(uniform pixels, random labels) from a fixed seed. Reads [net], [convolutional], [maxpool], [connected] and
[softmax] sections, with Darknet's meanings (pad=1: padding size/2; maxpool padding size-1, the extra pixel on the
far side, i.e. none for even sizes). Prints one line of key=value pairs, like scripts/bench/bench_train.c.

  /usr/bin/python3 scripts/bench/bench_train_torch.py [-c CFG] [-t THREADS] [-w WARMUP] [-n BATCHES] [-s SEED]
Run it with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set to THREADS too (Debian's torch takes BLAS from OpenBLAS).
"""
import argparse
import sys
import time

import torch
from torch import nn


def read_cfg(path):
    sections = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#")[0].strip()
            if not line:
                continue
            if line.startswith("["):
                sections.append((line.strip("[]"), {}))
            elif "=" in line:
                k, v = line.split("=", 1)
                sections[-1][1][k.strip()] = v.strip()
    return sections


def activation(name):
    acts = {"relu": nn.ReLU(), "linear": None, "leaky": nn.LeakyReLU(0.1), "logistic": nn.Sigmoid()}
    if name not in acts:
        sys.exit(f"bench_train_torch.py: activation '{name}' not supported")
    return acts[name]


def build(sections):
    net = sections[0][1]
    c, h, w = int(net.get("channels", 3)), int(net["height"]), int(net["width"])
    layers = []
    for kind, o in sections[1:]:
        if kind in ("convolutional", "conv"):
            size, stride, n = int(o.get("size", 1)), int(o.get("stride", 1)), int(o["filters"])
            pad = size // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
            if int(o.get("batch_normalize", 0)):
                sys.exit("bench_train_torch.py: batch_normalize not supported")
            layers.append(nn.Conv2d(c, n, size, stride=stride, padding=pad))
            a = activation(o.get("activation", "logistic"))
            if a:
                layers.append(a)
            c, h, w = n, (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
        elif kind in ("maxpool", "max"):
            stride = int(o.get("stride", 1))
            size = int(o.get("size", stride))
            padding = int(o.get("padding", size - 1))
            if padding != size - 1 or size % 2:
                sys.exit("bench_train_torch.py: only maxpool with the default padding and an even size")
            layers.append(nn.MaxPool2d(size, stride=stride))
            h, w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
        elif kind == "connected":
            if not any(isinstance(x, nn.Flatten) for x in layers):
                layers.append(nn.Flatten())
            n = int(o["output"])
            layers.append(nn.Linear(c * h * w, n))
            a = activation(o.get("activation", "logistic"))
            if a:
                layers.append(a)
            c, h, w = n, 1, 1
        elif kind == "softmax":
            pass  # nn.CrossEntropyLoss applies it
        else:
            sys.exit(f"bench_train_torch.py: section [{kind}] not supported")
    return nn.Sequential(*layers), (int(net.get("channels", 3)), int(net["height"]), int(net["width"])), c, net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--cfg", default="scripts/bench/bench_lenet.cfg")
    ap.add_argument("-t", "--threads", type=int, default=1)
    ap.add_argument("-w", "--warmup", type=int, default=2)
    ap.add_argument("-n", "--batches", type=int, default=10)
    ap.add_argument("-s", "--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    model, shape, classes, net = build(read_cfg(a.cfg))
    batch = int(net.get("batch", 1))
    opt = torch.optim.SGD(model.parameters(), lr=float(net.get("learning_rate", 0.001)),
                          momentum=float(net.get("momentum", 0.9)), weight_decay=float(net.get("decay", 0.0001)))
    loss_fn = nn.CrossEntropyLoss()
    nb = a.warmup + a.batches
    x = torch.rand(nb, batch, *shape)
    y = torch.randint(0, classes, (nb, batch))

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[i]), y[i])
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    w0, c0 = time.perf_counter(), time.process_time()
    total = 0.0
    for i in range(a.warmup, nb):
        total += float(step(i))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    images = batch * a.batches
    print(f"variant=pytorch threads={a.threads} batch={batch} batches={a.batches} images={images} "
          f"seconds={wall:.4f} cpu_seconds={cpu:.4f} img_per_s={images / wall:.1f} loss={total / a.batches:.6f} "
          f"torch={torch.__version__}")


if __name__ == "__main__":
    main()
