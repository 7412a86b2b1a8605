"""`make demo`: two small graphs with their gradients, then the course's improved MNIST classifier trained on the
bundled digits, with a checkpoint and a loss-curve figure written to ``runs/``.

Run as ``python -m tinyautograd.demo [--epochs N] [--device cuda] [--out DIR]``. The classifier is the course's
784-50-10 network made wider and deeper and trained the modern way: 784-128-64-10, each hidden layer Linear,
BatchNorm1d, ReLU; cross-entropy; Adam with a cosine-annealed learning rate; digits shifted by up to two pixels
(RandomCrop with padding) as augmentation. The data is the 4,000 training / 1,000 test digits shipped inside the
package (``vision.datasets.MNIST(root=None)``), so nothing is downloaded. Needs the ``tutorials`` extra (tqdm and
matplotlib), which ``make demo`` installs.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

import tinyautograd as torch
from tinyautograd import nn
from tinyautograd.utils.data import DataLoader
from tinyautograd.vision import datasets, transforms

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # the usual normalisation constants of the full training set


def chain_rule_graph() -> None:
    """The course's first graph: t = x + y, z = t^2, so dz/dx = dz/dy = 2(x + y)."""
    x, y = torch.tensor(3.0, requires_grad=True), torch.tensor(4.0, requires_grad=True)
    z = (x + y) ** 2
    z.backward()
    print(f"t = x + y, z = t**2 at x=3, y=4: z = {z.item():g}, dz/dx = {x.grad.item():g}, "
          f"dz/dy = {y.grad.item():g} (= 2(x + y))")


def shopping_graph() -> None:
    """The course's shopping graph: two apples at 100, three oranges at 150, tax 1.1."""
    apple, apple_num = torch.tensor(100.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    orange, orange_num = torch.tensor(150.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    tax = torch.tensor(1.1, requires_grad=True)
    price = (apple * apple_num + orange * orange_num) * tax
    price.backward()
    print(f"2 apples at 100 + 3 oranges at 150, tax 1.1: price {price.item():.0f}; d/dapple "
          f"{apple.grad.item():.1f}, d/dapple_num {apple_num.grad.item():.0f}, d/dorange {orange.grad.item():.1f}, "
          f"d/dorange_num {orange_num.grad.item():.0f}, d/dtax {tax.grad.item():.0f}")


def classifier(hidden: Sequence[int] = (128, 64)) -> nn.Sequential:
    """(N, 1, 28, 28) images -> (N, 10) logits: Flatten, then per hidden width Linear, BatchNorm1d, ReLU, then a
    plain Linear. The hidden Linears have no bias: batch-norm subtracts the batch mean, which cancels any bias."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = 28 * 28
    for size in hidden:
        layers += [nn.Linear(width, size, bias=False), nn.BatchNorm1d(size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, 10))


def evaluate(model: nn.Module, loader: DataLoader, device: str) -> float:
    """Percentage of ``loader``'s digits that ``model`` (in eval mode) classifies correctly."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1)
            correct += int((predicted == labels.to(device)).sum().item())
            total += len(labels)
    model.train()
    return 100.0 * correct / total


def save_figure(path: Path, step_losses: list[float], steps_per_epoch: int, accuracies: list[float]) -> None:
    """Training loss per step (and its per-epoch mean) on the left axis, test accuracy per epoch on the right,
    written as a PNG with matplotlib's Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes = figure.add_subplot()
    epochs_axis = [i / steps_per_epoch for i in range(1, len(step_losses) + 1)]
    loss_axes.plot(epochs_axis, step_losses, color="tab:blue", alpha=0.35, linewidth=0.8, label="loss per step")
    means = [sum(step_losses[e * steps_per_epoch:(e + 1) * steps_per_epoch]) / steps_per_epoch
             for e in range(len(accuracies))]
    loss_axes.plot([e + 0.5 for e in range(len(means))], means, color="tab:blue", marker="o",
                   label="mean loss per epoch")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("cross-entropy loss (training)")
    loss_axes.set_yscale("log")
    accuracy_axes = loss_axes.twinx()
    accuracy_axes.plot(range(1, len(accuracies) + 1), accuracies, color="tab:red", marker="s",
                       label="test accuracy")
    accuracy_axes.set_ylabel("test accuracy (%)")
    handles = loss_axes.get_legend_handles_labels()[0] + accuracy_axes.get_legend_handles_labels()[0]
    loss_axes.legend(handles=handles, loc="center right")
    loss_axes.set_title("tinyautograd: 784-128-64-10 BatchNorm/ReLU MLP, Adam, bundled MNIST (4,000 digits)")
    figure.savefig(path, dpi=120)


def train_mnist(epochs: int, device: str, out: Path, *, batch_size: int = 64, lr: float = 3e-3,
                seed: int = 0) -> dict[str, Any]:
    """Train :func:`classifier` on the bundled digits, printing test accuracy per epoch; save the checkpoint
    (``out/mnist_classifier.pt``, read it back with ``tinyautograd.load``) and the figure (``out/loss_curve.png``).
    Returns the checkpoint's contents."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    normalize = transforms.Normalize(MNIST_MEAN, MNIST_STD)
    train_set = datasets.MNIST(root=None, train=True, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.RandomCrop(28, padding=2), normalize]))
    test_set = datasets.MNIST(root=None, train=False, transform=transforms.Compose([transforms.ToTensor(), normalize]))
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_set, batch_size=500)

    model = classifier().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
    print(f"MNIST ({len(train_set):,} training / {len(test_set):,} test digits, bundled) on {device}: "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, Adam lr {lr:g} (cosine), batch {batch_size}")

    step_losses: list[float] = []
    accuracies: list[float] = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        bar = tqdm(train_loader, desc=f"epoch {epoch:2d}/{epochs}", unit="batch", leave=False, dynamic_ncols=True)
        for images, labels in bar:
            optimizer.zero_grad()
            loss = loss_fn(model(images.to(device)), labels.to(device))
            loss.backward()
            optimizer.step()
            scheduler.step()
            step_losses.append(loss.item())
            bar.set_postfix(loss=f"{step_losses[-1]:.4f}")
        accuracies.append(evaluate(model, test_loader, device))
        epoch_loss = sum(step_losses[-len(train_loader):]) / len(train_loader)
        tqdm.write(f"epoch {epoch:2d}/{epochs}  train loss {epoch_loss:.4f}  test accuracy {accuracies[-1]:5.1f}%  "
                   f"({time.perf_counter() - start:.1f} s)")

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(), "epoch": epochs, "test_accuracy": accuracies}
    checkpoint_path, figure_path = out / "mnist_classifier.pt", out / "loss_curve.png"
    torch.save(checkpoint, checkpoint_path)
    save_figure(figure_path, step_losses, len(train_loader), accuracies)

    # the checkpoint alone rebuilds the trained classifier
    reloaded = classifier().to(device)
    reloaded.load_state_dict(torch.load(checkpoint_path, map_location=device)["model"])
    print(f"saved {checkpoint_path} (reloaded into a fresh model: test accuracy "
          f"{evaluate(reloaded, test_loader, device):.1f}%) and {figure_path}")
    return checkpoint


def _device(text: str) -> str:
    """argparse type for --device: a device string tinyautograd accepts ('cpu', 'cuda', 'cuda:1')."""
    try:
        torch.device(text)
    except (RuntimeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinyautograd.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="passes over the 4,000 training digits (15)")
    parser.add_argument("--device", type=_device, default="cpu", help="cpu (default) or cuda (needs CuPy and a GPU)")
    parser.add_argument("--out", type=Path, default=Path("runs"),
                        help="folder for the checkpoint and the figure (runs/)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the initial weights, shuffling and crops")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1 (got {args.epochs})")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is usable here (tinyautograd.cuda.is_available() is False); "
                     "install CuPy for your CUDA version (pip install 'tinyautograd[cuda]') on a machine with a GPU, "
                     "or leave --device out to train on the cpu")
    try:
        import matplotlib  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError as error:
        parser.error(f"the demo needs tqdm and matplotlib ({error}); install them with "
                     "pip install 'tinyautograd[tutorials]' (make demo does)")

    chain_rule_graph()
    shopping_graph()
    train_mnist(args.epochs, args.device, args.out, seed=args.seed)


if __name__ == "__main__":
    main()
