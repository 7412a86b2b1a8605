# %% [markdown]
# # 02 · Add and Mul layers, and the apple-and-orange graph
#
# Course topics: **덧셈 그래프 / 곱셈 그래프** (the AddLayer and MulLayer classes) and **실습3**, the shopping
# graph: two apples at 100 and three oranges at 150, with a 10% tax,
#
# $$\text{price} = (\text{apple} \cdot \text{apple\_num} + \text{orange} \cdot \text{orange\_num}) \cdot
#   \text{tax} = 715.$$
#
# We compute the price and its five gradients three ways: with the course's hand-written layers, with
# tinyautograd, and with PyTorch, and draw the graph with every value and gradient on it.
#
# **Two bugs in the notes' code are fixed here.** (1) The apple and orange `MulLayer.forward` calls pass only
# one argument (`mul_apple_layer.forward(apple)`); a product needs both factors, so they become
# `forward(apple, apple_num)` and `forward(orange, orange_num)`. (2) `MulLayer.backward` returns two gradients,
# but the notes keep the pair in one name (`dapple = mul_apple_layer.backward(...)`) and then print
# `dapple_num`, which is never defined; unpacking both (`dapple, dapple_num = ...`) fixes it.

# %%
from __future__ import annotations

import torch

import tinyautograd as tg
from tinyautograd import viz
from _common import assert_close, print_table, savefig


# %% [markdown]
# ## The layers by hand
# A layer is a node of the graph that remembers what its backward pass needs. Addition passes the upstream
# gradient through unchanged to both inputs; multiplication sends each input the upstream gradient times the
# *other* input (the notes' comment: "x와 y를 바꾼다", swap x and y).

# %%
class AddLayer:
    def forward(self, x: float, y: float) -> float:
        return x + y

    def backward(self, dout: float) -> tuple[float, float]:
        return dout * 1, dout * 1


class MulLayer:
    def __init__(self) -> None:
        self.x = self.y = None

    def forward(self, x: float, y: float) -> float:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: float) -> tuple[float, float]:
        return dout * self.y, dout * self.x


# a first check of each layer on its own: d(x + y) = (1, 1), d(x * y) = (y, x)
add, mul = AddLayer(), MulLayer()
assert add.forward(2.0, 5.0) == 7.0 and add.backward(3.0) == (3.0, 3.0)
assert mul.forward(2.0, 5.0) == 10.0 and mul.backward(3.0) == (15.0, 6.0)

# %% [markdown]
# ## 실습3 with the hand-written layers (bugs fixed)

# %%
apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1

mul_apple_layer = MulLayer()
mul_orange_layer = MulLayer()
add_apple_orange_layer = AddLayer()
mul_tax_layer = MulLayer()

# forward
apple_price = mul_apple_layer.forward(apple, apple_num)  # (1) fixed: both factors
orange_price = mul_orange_layer.forward(orange, orange_num)  # (2) fixed: both factors
all_price = add_apple_orange_layer.forward(apple_price, orange_price)  # (3)
price = mul_tax_layer.forward(all_price, tax)  # (4)

# backward, in the reverse order
dprice = 1
dall_price, dtax = mul_tax_layer.backward(dprice)  # (4)
dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)  # (3)
dapple, dapple_num = mul_apple_layer.backward(dapple_price)  # (2) fixed: unpack both gradients
dorange, dorange_num = mul_orange_layer.backward(dorange_price)  # (1) fixed: unpack both gradients

print("price:", round(price))
print("dapple:", dapple)
print("dapple_num:", int(dapple_num))
print("dOrange:", dorange)
print("dOrange_num:", int(dorange_num))
print("dTax:", dtax)

# %% [markdown]
# ## The same graph with autograd
# With tensors the graph builds itself as the price is computed; one `backward()` fills `.grad` of every leaf.
# `retain_grad()` keeps the gradients of the intermediate prices so that the drawing can show them.


# %%
def shopping(lib) -> dict:
    """실습3 in ``lib`` (tinyautograd or torch, float32 as the libraries' default); tensors after backward."""
    t = {name: lib.tensor(float(value), requires_grad=True)
         for name, value in [("apple", apple), ("apple_num", apple_num), ("orange", orange),
                             ("orange_num", orange_num), ("tax", tax)]}
    t["apple_price"] = t["apple"] * t["apple_num"]
    t["orange_price"] = t["orange"] * t["orange_num"]
    t["all_price"] = t["apple_price"] + t["orange_price"]
    t["price"] = t["all_price"] * t["tax"]
    for name in ("apple_price", "orange_price", "all_price", "price"):
        t[name].retain_grad()
    t["price"].backward()
    return t


ours, theirs = shopping(tg), shopping(torch)
hand = {"apple": dapple, "apple_num": dapple_num, "orange": dorange, "orange_num": dorange_num, "tax": dtax,
        "apple_price": dapple_price, "orange_price": dorange_price, "all_price": dall_price, "price": dprice}
print_table(["gradient of price by", "layers by hand", "tinyautograd", "torch"],
            [[name, float(g), ours[name].grad.item(), theirs[name].grad.item()] for name, g in hand.items()])

# %% [markdown]
# Every number is checked: the course's values (price 715; gradients 2.2, 110, 3.3, 165, 650), and the three
# methods against each other (float32 tensors, so to float32 precision).

# %%
course = {"apple": 2.2, "apple_num": 110, "orange": 3.3, "orange_num": 165, "tax": 650}
assert_close(price, 715, "price by hand = 715")
assert_close(ours["price"], 715, "price by tinyautograd = 715", rtol=1e-6)
assert_close(theirs["price"], 715, "price by torch = 715", rtol=1e-6)
for name, expected in course.items():
    assert_close(hand[name], expected, f"d price / d {name} by hand = {expected}")
    assert_close(ours[name].grad, expected, f"d price / d {name} by tinyautograd = {expected}", rtol=1e-6)
    assert_close(ours[name].grad, theirs[name].grad, f"d price / d {name}: tinyautograd = torch", rtol=1e-6)
for name in ("apple_price", "orange_price", "all_price"):
    assert_close(ours[name].grad, hand[name], f"d price / d {name}: tinyautograd = by hand", rtol=1e-6)

# %% [markdown]
# ## The graph
# `viz.draw` lays out what tinyautograd recorded: a `MulBackward0` per product, an `AddBackward0` for the sum.
# Forward values are written above each edge and the gradients of the price in red below, the picture of the
# course's slide. The tax enters late, so it is drawn next to the node that uses it. The DOT text of torch's
# graph (walked through the same public `grad_fn.next_functions` API) is identical, values and gradients included.

# %%
fig = viz.draw(ours["price"], names=ours, title="Exercise 3: price = (100·2 + 150·3)·1.1 = 715")
savefig(fig, "02_shopping_graph")
dot = viz.to_dot(ours["price"], names=ours)
assert dot == viz.to_dot(theirs["price"], names=theirs)
print("agree: the DOT text of the graph, values and gradients included (tinyautograd vs torch)")
print(dot)
