"""Autograd through the template's model agrees with the notebooks' hand-written calculus."""

import pytest
import torch

from linreg.assembly import build_model
from linreg.least_squares import solve_training_sums
from linreg.runtime import build


def least_squares_of(datamodule):
    return solve_training_sums(datamodule.training_sums, datamodule.feature_normalizer, datamodule.target_normalizer)


@pytest.fixture
def book_model(make_config):
    """The thermometer model at the book's start, w=1 and b=0, on raw inputs; and its data."""
    cfg = make_config("experiment=dlwpt_thermometer", "data.normalize=none")
    datamodule = build(cfg.data)
    datamodule.setup("fit")
    return build_model(cfg, datamodule, least_squares_of(datamodule)), datamodule.train


def test_gradient_of_the_mse_is_the_books_analytic_gradient(book_model):
    model, table = book_model
    loss = model.loss_fn(model(table.features), table.targets)
    loss.backward()

    assert loss.item() == pytest.approx(1763.8848, rel=1e-6)
    gradient = [model.linear.weight.grad.item(), model.linear.bias.grad.item()]
    assert gradient == pytest.approx([4517.2969, 82.6000], rel=1e-5)


def test_gradient_matches_a_central_finite_difference(book_model):
    model, table = book_model
    model.double()
    x, y = table.features.double(), table.targets.double()
    model.loss_fn(model(x), y).backward()

    delta = 0.1
    for parameter in (model.linear.weight, model.linear.bias):
        with torch.no_grad():
            parameter += delta
            loss_plus = model.loss_fn(model(x), y).item()
            parameter -= 2 * delta
            loss_minus = model.loss_fn(model(x), y).item()
            parameter += delta
        assert (loss_plus - loss_minus) / (2 * delta) == pytest.approx(parameter.grad.item(), rel=1e-9)


def test_one_optimizer_step_is_the_manual_update(make_config):
    cfg = make_config("data=crops", "data.normalize=none", "optimizer=sgd", "optimizer.lr=0.01")
    datamodule = build(cfg.data)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule, least_squares_of(datamodule))
    optimizer = model.configure_optimizers()["optimizer"]
    x, y = datamodule.train.features / 100, datamodule.train.targets / 100

    model.loss_fn(model(x), y).backward()
    expected = [p.detach() - 0.01 * p.grad for p in (model.linear.weight, model.linear.bias)]
    optimizer.step()

    torch.testing.assert_close(model.linear.weight.detach(), expected[0], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(model.linear.bias.detach(), expected[1], rtol=1e-6, atol=1e-8)
