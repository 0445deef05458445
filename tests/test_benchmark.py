"""The benchmark runs on a tiny size and prints its table (speed itself is measured, never asserted)."""

from linreg.benchmark import main


def test_benchmark_prints_rows_per_second_and_ratios(capsys):
    main(["--rows", "3000", "--features", "4", "--batch-sizes", "512", "--epochs", "1", "--quick"])

    report = capsys.readouterr().out
    header, row, baseline = report.splitlines()[-3:]
    assert "template/raw" in header and "template/naive" in header
    batch, raw, naive, ours, *ratios = row.split()
    assert batch == "512" and all(float(value.replace(",", "")) > 0 for value in (raw, naive, ours, *ratios))
    assert baseline.startswith("least-squares baseline:")
