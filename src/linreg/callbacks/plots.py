"""Pictures of a run: the data with the fitted line, predictions against the truth, the loss curve."""

from pathlib import Path

import lightning as L
import matplotlib
import matplotlib.image
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from linreg.callbacks.baseline import ComparesWithLeastSquares
from linreg.data import Table, TabularDataModule
from linreg.least_squares import LeastSquares
from linreg.model import Regressor
from linreg.report import format_equation
from linreg.runtime import replaced_atomically

MAX_POINTS = 5000  # a scatter of millions of rows shows no more than this many, and draws far slower
# Drawn to be read as TensorBoard shows them, a card about 350 pixels wide: 480 × 360 pixels, large text,
# thick lines.
SIZE = (4.8, 3.6)  # inches, at 100 dots per inch
STYLE = {
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 13,
    "legend.fontsize": 10,
    "lines.linewidth": 2.2,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
LOSS_LABELS = {"MSELoss": "MSE", "L1Loss": "mean absolute error", "HuberLoss": "Huber loss"}


class RunPlots(ComparesWithLeastSquares):
    """Draws the pictures when training ends: PNG files in `dirpath`, images in TensorBoard.

    The loss curve gets the epoch losses at least every `trainer.log_every_n_steps` steps (every epoch
    of epochs that long) and the last one: reading the metrics costs as much as a one-step epoch.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.history: dict[str, list[tuple[int, float]]] = {"train/loss": [], "val/loss": []}
        self.next_record_step = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The previous epoch's losses are complete now (the model logs train/loss when its epoch ends).
        if trainer.current_epoch > 0 and trainer.global_step >= self.next_record_step:
            self.record(trainer)

    def record(self, trainer: L.Trainer) -> None:
        """The losses of the epoch that ended last (epochs counted from 1)."""
        epochs_done, metrics = trainer.current_epoch, trainer.callback_metrics
        for name, points in self.history.items():
            if name in metrics and (not points or points[-1][0] < epochs_done):
                points.append((epochs_done, float(metrics[name])))
        self.next_record_step = trainer.global_step + max(trainer.log_every_n_steps, 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record(trainer)
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        model, datamodule = pl_module, trainer.datamodule
        optimum = model.exact_optimum(self.least_squares) if self.least_squares else None
        best = optimum.train_loss if optimum and model.loss_is_mse else None  # (the optimum of an MSE only)
        with matplotlib.rc_context(STYLE):
            figures = {"loss": loss_figure(self.history, loss_label(model), best, model.linear is not None)}
            if len(model.data.feature_names) == 1 and len(model.data.target_names) == 1:
                figures["fit"] = fit_figure(model, datamodule, optimum)
            else:
                figures["predicted_vs_actual"] = predicted_vs_actual_figure(model, datamodule)
        for name, figure in figures.items():
            save_figure(figure, name, self.dirpath, trainer)


def save_figure(figure: Figure, name: str, dirpath: Path, trainer: L.Trainer) -> None:
    """As `dirpath/<name>.png` and as the TensorBoard image `plots/<name>`: drawn once, the same pixels in both
    (each drawing, with its layout, takes most of the time a small run spends after training)."""
    figure.set_dpi(100)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    with replaced_atomically(dirpath / f"{name}.png") as temporary:
        matplotlib.image.imsave(temporary, pixels, format="png")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            step = trainer.global_step
            logger.experiment.add_image(f"plots/{name}", pixels[..., :3], global_step=step, dataformats="HWC")


def predictions(model: Regressor, features: torch.Tensor) -> torch.Tensor:
    """The model's predictions, on its device and in its precision (trainer.precision=16-true: half), as float32
    on the CPU: Lightning converts the batches it hands the model, not these rows."""
    with torch.no_grad():
        return model(features.to(model.device, model.dtype)).float().cpu()


def labelled_splits(datamodule: TabularDataModule) -> list[tuple[str, Table]]:
    return [
        (name, getattr(datamodule, name).sample(MAX_POINTS))
        for name in ("train", "val")
        if len(getattr(datamodule, name))
    ]


def loss_label(model: Regressor) -> str:
    """The loss curve's axis: which loss, and in which units the targets were when it was computed."""
    units = "standardized targets" if model.data.normalize_targets else "target units"
    name = type(model.loss_fn).__name__
    return f"{LOSS_LABELS.get(name, name)} ({units})"


def fit_figure(model: Regressor, datamodule: TabularDataModule, optimum: LeastSquares | None) -> Figure:
    """One feature, one target: the rows, the fitted line (or curve) and the least-squares line (`optimum`: least
    squares, or ridge, lasso, elastic net), in original units."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    low, high = float("inf"), float("-inf")
    for name, table in labelled_splits(datamodule):
        x = table.features.cpu().numpy()  # (matplotlib walks a tensor element by element)
        axes.scatter(x[:, 0], table.targets.cpu().numpy()[:, 0], s=36, alpha=0.8, label=f"{name} rows")
        low, high = min(low, float(x.min())), max(high, float(x.max()))
    ends = torch.tensor([low, high], dtype=torch.float64)
    if optimum is not None:
        weight, bias = optimum.equation(model.feature_normalizer, model.target_normalizer)
        line = (ends * weight[0, 0] + bias[0]).numpy()
        axes.plot(ends.numpy(), line, color="grey", linestyle="--", label=optimum.name)
    grid = ends if model.linear is not None else torch.linspace(low, high, 200, dtype=torch.float64)  # a curve
    fitted = predictions(model, grid[:, None].float())[:, 0]
    axes.plot(grid.numpy(), fitted.numpy(), color="black", linewidth=1.4, label="trained")
    names = model.data.feature_names, model.data.target_names
    axes.set(xlabel=names[0][0], ylabel=names[1][0])
    title = (
        model.net_name
        if model.linear is None
        else format_equation(*model.equation(), *names, model.net.bias is not None)
    )
    axes.set_title(title)
    axes.legend()
    return figure


def predicted_vs_actual_figure(model: Regressor, datamodule: TabularDataModule) -> Figure:
    """Each target's predictions against its true values; a perfect model sits on the diagonal."""
    targets = model.data.target_names
    figure = Figure(figsize=(SIZE[0] * min(len(targets), 3), SIZE[1]), layout="constrained")
    axes_row = figure.subplots(1, len(targets), squeeze=False)[0]
    for name, table in labelled_splits(datamodule):
        predicted, actual = predictions(model, table.features).numpy(), table.targets.cpu().numpy()
        for column, axes in enumerate(axes_row):
            axes.scatter(actual[:, column], predicted[:, column], s=24, alpha=0.7, label=f"{name} rows")
    for column, axes in enumerate(axes_row):
        low, high = axes.get_xlim()
        axes.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = actual")
        axes.set(xlabel=f"actual {targets[column]}", ylabel=f"predicted {targets[column]}")
        axes.legend()
    return figure


def loss_figure(
    history: dict[str, list[tuple[int, float]]],
    label: str = "loss",
    least_squares_loss: float | None = None,
    is_optimum: bool = True,
) -> Figure:
    """The loss by epoch and the least-squares loss: the optimum a linear net should reach (`is_optimum`), or the
    baseline another net should beat; on a log scale where positive."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    for name, points in history.items():
        if points:
            axes.plot(*zip(*points, strict=True), label=name)
    if least_squares_loss is not None:
        line = "exact optimum (train)" if is_optimum else "least squares (train)"
        axes.axhline(least_squares_loss, color="grey", linestyle="--", label=line)
    if all(v > 0 for points in history.values() for _, v in points) and (
        least_squares_loss is None or least_squares_loss > 0
    ):
        axes.set_yscale("log")
    axes.set(xlabel="epoch", ylabel=label)
    axes.legend()
    return figure
