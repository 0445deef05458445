"""Predict with a checkpoint: python scripts/predict.py input=new.csv [output=predictions.csv] [ckpt_path=last]"""

import hydra
from omegaconf import DictConfig

import linreg  # noqa: F401  (registers the ${pid:} resolver used in run directory names)
from linreg.errors import report_errors


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
@report_errors
def main(cfg: DictConfig) -> None:
    from linreg.predict import predict  # torch loads only once a job runs

    predict(cfg)


if __name__ == "__main__":
    main()
