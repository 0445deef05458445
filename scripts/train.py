"""Train a linear model on a table: python scripts/train.py [group=choice ...] [key=value ...]"""

import hydra
from omegaconf import DictConfig

import linreg  # noqa: F401  (registers the ${pid:} resolver used in run directory names)
from linreg.errors import report_errors


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float:
    from linreg.train import train  # imported here so that --help and --cfg never load torch

    return train(cfg)


if __name__ == "__main__":
    main()
