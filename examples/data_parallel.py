"""Data-parallel training written out: the same script on one process or on several.

    python examples/data_parallel.py                 # one process
    mpiexec -n 2 python examples/data_parallel.py    # two processes, each half of every batch
    mpiexec -n 2 python examples/data_parallel.py --quick

What it shows, in a plain loop (no Trainer): ``distributed.init`` (a world of one without
mpiexec), ``DistributedSampler`` giving each rank its shard of the data, a global batch
split between the ranks, ``SyncBatchNorm`` and ``DistributedDataParallel`` averaging the
gradients in ``backward()``, the epoch's figures summed over the ranks, and rank 0 alone
printing.  Trains a ResNet-8 on the bundled MNIST digits (offline).
"""
import argparse
import time

import numpy as np

import tinyres
from tinyres import distributed as dist
from tinyres.data import BundledMNIST, DataLoader, DistributedSampler
from tinyres.nn import functional as F


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch, split between the ranks")
    ap.add_argument("--quick", action="store_true", help="1 epoch on 512 digits")
    args = ap.parse_args()
    rank, world = dist.init()
    say = print if rank == 0 else (lambda *a: None)

    train_set, test_set = BundledMNIST(train=True), BundledMNIST(train=False)
    if args.quick:
        args.epochs = 1
        for data in (train_set, test_set):        # digits spread over the classes
            data.data, data.targets = data.data[::len(data) // 512][:512], data.targets[::len(data) // 512][:512]
    normalize = tinyres.data.transforms.Normalize([0.1307], [0.3081])
    train_loader = DataLoader(train_set, args.batch_size // world, transform=normalize,
                              sampler=DistributedSampler(train_set, seed=0))
    test_loader = DataLoader(test_set, 256, transform=normalize,
                             sampler=DistributedSampler(test_set, shuffle=False, even=False))

    tinyres.manual_seed(0)
    net = tinyres.models.resnet8(num_classes=10, in_channels=1)
    model = dist.DistributedDataParallel(dist.convert_sync_batchnorm(net))
    optimizer = tinyres.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    say(f"{world} process(es), {args.batch_size // world} images each per step, {len(train_loader)} steps per epoch")

    for epoch in range(args.epochs):
        model.train()
        start, totals = time.perf_counter(), np.zeros(3)     # loss sum, correct, seen
        for images, labels in train_loader:
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()                                  # ends with the gradients averaged
            optimizer.step()
            totals += [loss.item() * len(labels), (logits.argmax(1) == labels).sum().item(), len(labels)]
        dist.all_reduce(totals)                              # the whole world's epoch
        model.eval()
        correct = np.zeros(2)
        with tinyres.no_grad():
            for images, labels in test_loader:
                correct += [(model(images).argmax(1) == labels).sum().item(), len(labels)]
        dist.all_reduce(correct)
        say(f"epoch {epoch + 1}: train loss {totals[0] / totals[2]:.4f}, train accuracy {totals[1] / totals[2]:.4f}, "
            f"{totals[2] / (time.perf_counter() - start):.0f} images/s")
    say(f"test accuracy: {correct[0] / correct[1]:.4f} on {int(correct[1])} digits")


if __name__ == "__main__":
    main()
