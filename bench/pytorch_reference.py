"""PyTorch reference for src/bench/train-throughput.ts: training images/s (Adam, random data)
of the same nets. Prints one JSON line: {"torch": version, "threads": n, "results": {model: img/s}}.
Usage: python3 bench/pytorch_reference.py [--batch 64] [--seconds 3] [--threads N] [models...]"""
import argparse, json, math, time, warnings
warnings.filterwarnings("ignore")
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


def _pool(t):
    return F.max_pool2d(t, 3, 2, ceil_mode=True)


class BAlexNet(nn.Module):
    """B-AlexNet as src/model/zoo.ts bAlexNet (three exits; LRN n=3, k=2, beta=0.75)."""
    def __init__(self):
        super().__init__()
        self.lrn = nn.LocalResponseNorm(3, alpha=5e-5 * 3, beta=0.75, k=2)
        self.c1, self.c2 = nn.Conv2d(3, 32, 5, padding=2), nn.Conv2d(32, 64, 5, padding=2)
        self.c3, self.c4, self.c5 = nn.Conv2d(64, 96, 3, padding=1), nn.Conv2d(96, 96, 3, padding=1), nn.Conv2d(96, 64, 3, padding=1)
        self.d1, self.d2, self.d3 = nn.LazyLinear(256), nn.Linear(256, 128), nn.Linear(128, 10)
        self.h1a, self.h1b, self.h1d = nn.Conv2d(64, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1), nn.LazyLinear(10)
        self.h2a, self.h2d = nn.Conv2d(96, 32, 3, padding=1), nn.LazyLinear(10)

    def forward(self, x):
        s0 = self.c2(self.lrn(_pool(F.relu(self.c1(x)))))
        h = self.lrn(_pool(F.relu(s0)))
        e1 = self.h1d(_pool(F.relu(self.h1b(F.relu(self.h1a(h))))).flatten(1))
        s1 = self.c3(h)
        h = self.lrn(_pool(F.relu(s1)))
        e2 = self.h2d(_pool(F.relu(self.h2a(h))).flatten(1))
        t = _pool(F.relu(self.c5(F.relu(self.c4(F.relu(s1))))))
        t = F.dropout(F.relu(self.d1(t.flatten(1))), 0.5, self.training)
        t = F.dropout(F.relu(self.d2(t)), 0.5, self.training)
        return [e1, e2, self.d3(t)]


class ResBlock(nn.Module):
    """The reference's block: avg-pool-1 strided, zero-padded shortcut (option A)."""
    def __init__(self, c, f, stride):
        super().__init__()
        self.c, self.f, self.stride = c, f, stride
        self.conv1, self.bn1 = nn.Conv2d(c, f, 3, stride, 1), nn.BatchNorm2d(f)
        self.conv2, self.bn2 = nn.Conv2d(f, f, 3, 1, 1), nn.BatchNorm2d(f)

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = F.avg_pool2d(x, 1, self.stride) if self.stride > 1 else x
        if self.f > self.c:
            s = F.pad(s, (0, 0, 0, 0, self.f - self.c, 0))
        return F.relu(h + s)


class BResNet20(nn.Module):
    """B-ResNet-20 as src/model/zoo.ts bResNet(20)."""
    def __init__(self, n=3):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16)
        self.s1 = nn.Sequential(*[ResBlock(16, 16, 1) for _ in range(n)])
        self.s2 = nn.Sequential(*[ResBlock(16 if i == 0 else 32, 32, 2 if i == 0 else 1) for i in range(n)],
                                *[ResBlock(32 if i == 0 else 64, 64, 2 if i == 0 else 1) for i in range(n)])
        self.d = nn.Linear(576, 10)
        self.lrn = nn.LocalResponseNorm(3, alpha=5e-5 * 3, beta=0.75, k=2)
        self.h1 = nn.ModuleList([nn.Conv2d(16, 64, 5, padding=2), nn.Conv2d(64, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)])
        self.h1d = nn.Linear(28800, 10)
        self.h2, self.h2d = ResBlock(16, 16, 1), nn.Linear(14400, 10)

    def forward(self, x):
        s0 = F.relu(self.bn(self.stem(x)))
        a, b, c = self.h1
        e1 = self.h1d(F.relu(c(F.relu(b(self.lrn(F.relu(a(s0))))))).flatten(1))
        s1 = self.s1(s0)
        e2 = self.h2d(self.h2(s1).flatten(1))
        t = F.avg_pool2d(self.s2(s1), 6, 1)
        return [e1, e2, self.d(t.flatten(1))]


class ResNet20(nn.Module):
    """The trunk of B-ResNet-20 alone (its baseline): the reference's ResNet-20, pad-0 stem."""
    def __init__(self, n=3):
        super().__init__()
        full = BResNet20(n)
        self.stem, self.bn, self.s1, self.s2, self.d = full.stem, full.bn, full.s1, full.s2, full.d

    def forward(self, x):
        t = F.avg_pool2d(self.s2(self.s1(F.relu(self.bn(self.stem(x))))), 6, 1)
        return [self.d(t.flatten(1))]


MODELS = {'b-lenet': (BLeNet, (1, 28, 28)), 'lenet-20-50': (LeNet2050, (1, 28, 28)),
          'b-alexnet': (BAlexNet, (3, 32, 32)), 'resnet-20': (ResNet20, (3, 32, 32)),
          'b-resnet-20': (BResNet20, (3, 32, 32))}


def throughput(name, batch, seconds):
    make, shape = MODELS[name]
    net = make()
    x = torch.rand(batch, *shape)
    net(x)  # materialises lazy layers
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
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
