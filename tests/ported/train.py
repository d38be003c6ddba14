'''Train CIFAR-10-style models, written as a typical PyTorch project's main.py is (the style of
kuangliu/pytorch-cifar's): tests/test_porting.py runs it as it is and with only its import
lines swapped to tinyres, on the same data and weights, and compares the runs.'''
import os

import numpy as np
import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset

device = 'cuda' if torch.cuda.is_available() else 'cpu'


class ArrayDataset(Dataset):
    '''Images (N, 3, 32, 32) float arrays and integer labels, one sample at a time.'''

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return torch.from_numpy(self.images[index]), int(self.labels[index])


def run(net, trainset, testset, epochs=2, lr=0.05, batch_size=16, checkpoint='ckpt.pth', workers=0):
    net = net.to(device)
    if device == 'cuda':
        net = torch.nn.DataParallel(net)
        cudnn.benchmark = True

    trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size, shuffle=False, num_workers=workers)
    testloader = DataLoader(testset, batch_size=100, shuffle=False, num_workers=workers)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)

    best_acc = 0
    history = []
    for epoch in range(epochs):
        net.train()
        train_loss = 0
        correct = 0
        total = 0
        for batch_idx, (inputs, targets) in enumerate(trainloader):
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()

            train_loss += loss.item()
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()

        net.eval()
        test_loss = 0
        test_correct = 0
        test_total = 0
        with torch.no_grad():
            for batch_idx, (inputs, targets) in enumerate(testloader):
                inputs, targets = inputs.to(device), targets.to(device)
                outputs = net(inputs)
                loss = criterion(outputs, targets)
                test_loss += loss.item()
                _, predicted = outputs.max(1)
                test_total += targets.size(0)
                test_correct += predicted.eq(targets).sum().item()

        acc = 100.*test_correct/test_total
        if acc > best_acc:
            state = {'net': net.state_dict(), 'acc': acc, 'epoch': epoch}
            if not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
                os.mkdir(os.path.dirname(checkpoint))
            torch.save(state, checkpoint)
            best_acc = acc
        history.append({'train_loss': train_loss/(batch_idx+1), 'train_acc': 100.*correct/total,
                        'test_loss': test_loss/len(testloader), 'test_acc': acc,
                        'lr': optimizer.param_groups[0]['lr']})
        scheduler.step()

    saved = torch.load(checkpoint)
    net.load_state_dict(saved['net'])
    return history, saved['acc'], saved['epoch']


def synthetic_cifar(n, seed=0, dtype='float32'):
    '''Class k: a bright square at one of ten places, on noise (learnable in a few steps).'''
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 10, n)
    images = rng.normal(0, 0.5, (n, 3, 32, 32))
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 5)
        images[i, :, 4 + 12 * r:12 + 12 * r, 2 + 6 * c:6 + 6 * c] += 2.0
    return images.astype(dtype), labels
