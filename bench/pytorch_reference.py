"""PyTorch reference for src/bench/train-throughput.ts: training images/s (Adam, random data)
of the same nets. Prints one JSON line: {"torch": version, "threads": n, "results": {model: img/s}}.
Usage: python3 bench/pytorch_reference.py [--batch 64] [--seconds 3] [--threads N] [models...]"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class BLeNet(nn.Module):
    """B-LeNet as src/model/zoo.ts bLeNet: maxPool rounds up (ceil_mode), two exits."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 5, 5, padding=3)
        self.c2 = nn.Conv2d(5, 10, 5, padding=3)
        self.c3 = nn.Conv2d(10, 20, 5, padding=3)
        self.d1 = nn.Linear(720, 84)
        self.d2 = nn.Linear(84, 10)
        self.b1 = nn.Conv2d(5, 10, 3, padding=1)
        self.bd = nn.Linear(640, 10)

    def forward(self, x):
        p = lambda t: F.relu(F.max_pool2d(t, 2, 2, ceil_mode=True))
        s0 = self.c1(x)
        b = p(self.b1(p(s0)))
        e1 = self.bd(b.flatten(1))
        t = p(self.c3(p(self.c2(p(s0)))))
        e2 = self.d2(self.d1(t.flatten(1)))
        return [e1, e2]


class LeNet2050(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 20, 5)
        self.c2 = nn.Conv2d(20, 50, 5)
        self.d1 = nn.Linear(800, 500)
        self.d2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.c1(x), 2, 2))
        x = F.relu(F.max_pool2d(self.c2(x), 2, 2))
        return [self.d2(F.relu(self.d1(x.flatten(1))))]


MODELS = {'b-lenet': (BLeNet, (1, 28, 28)), 'lenet-20-50': (LeNet2050, (1, 28, 28))}


def throughput(name, batch, seconds):
    make, shape = MODELS[name]
    net = make()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, *shape)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        loss = sum(F.cross_entropy(l, y) for l in net(x))
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--seconds', type=float, default=3)
    ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('models', nargs='*', default=list(MODELS))
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    res = {m: throughput(m, a.batch, a.seconds) for m in a.models if m in MODELS}
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'results': res}))


if __name__ == '__main__':
    main()
