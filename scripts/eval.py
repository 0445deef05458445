"""Evaluate a checkpoint: python scripts/eval.py [ckpt_path=last] [split=test|val|train] [input=file.csv]"""

import hydra
from omegaconf import DictConfig

import linreg  # noqa: F401  (registers the ${pid:} resolver used in run directory names)
from linreg.errors import report_errors


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
@report_errors
def main(cfg: DictConfig) -> None:
    from linreg.evaluate import evaluate  # torch loads only once a job runs

    evaluate(cfg)


if __name__ == "__main__":
    main()
