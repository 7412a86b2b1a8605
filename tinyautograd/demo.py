"""`make demo`: a small graph with its gradients, then the course's XOR network (실습4/5) trained to a low loss.

Run as ``python -m tinyautograd.demo``.
"""
from __future__ import annotations

import argparse

import tinyautograd as torch
from tinyautograd import nn


def chain_rule_graph() -> None:
    """The course's first graph: t = x + y, z = t^2, so dz/dx = dz/dy = 2(x + y)."""
    x = torch.tensor(3.0, requires_grad=True)
    y = torch.tensor(4.0, requires_grad=True)
    t = x + y
    t.retain_grad()
    z = t ** 2
    z.backward()
    print("computational graph: t = x + y, z = t**2 at x=3, y=4")
    print(f"  z = {z.item():g}, dz/dt = {t.grad.item():g}, dz/dx = {x.grad.item():g}, dz/dy = {y.grad.item():g}"
          f"  (2(x + y) = {2 * (3 + 4)})")
    print(f"  grad_fn chain: {z.grad_fn.name()} <- {z.grad_fn.next_functions[0][0].name()}")


def shopping_graph() -> None:
    """실습3: two apples at 100, three oranges at 150, tax 1.1."""
    apple, apple_num = torch.tensor(100.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    orange, orange_num = torch.tensor(150.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    tax = torch.tensor(1.1, requires_grad=True)
    price = (apple * apple_num + orange * orange_num) * tax
    price.backward()
    print("apple-and-orange graph (실습3):")
    print(f"  price {price.item():.0f}; d/dapple {apple.grad.item():.1f}, d/dapple_num {apple_num.grad.item():.0f}, "
          f"d/dorange {orange.grad.item():.1f}, d/dorange_num {orange_num.grad.item():.0f}, "
          f"d/dtax {tax.grad.item():.0f}")


def xor(epochs: int = 20000, lr: float = 0.1) -> float:
    """실습4/5: the 2-3-1 sigmoid network with MSE, uniform(0, 1) init and full-batch SGD."""
    torch.manual_seed(0)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    t = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1), nn.Sigmoid())
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, 0.0, 1.0)
            nn.init.uniform_(m.bias, 0.0, 1.0)
    loss_fn = nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    print(f"XOR (실습4/5): {model}")
    for epoch in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        if epoch % (epochs // 5) == 0 or epoch == epochs - 1:
            print(f"  epoch {epoch:6d}  loss {loss.item():.6f}")
    with torch.no_grad():
        out = model(x)
    print("  predictions:", [round(v, 3) for v in out.reshape(-1).tolist()])
    return loss.item()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20000)
    args = parser.parse_args(argv)
    chain_rule_graph()
    shopping_graph()
    xor(args.epochs)


if __name__ == "__main__":
    main()
