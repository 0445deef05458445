"""The benchmark runs on a tiny size and prints its table (speed itself is measured, never asserted)."""

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from speed import main  # noqa: E402  (benchmarks/ is not part of the installed package)


def test_benchmark_prints_rows_per_second_and_ratios_and_nothing_else(capsys):
    main(["--rows", "3000", "--features", "4", "--batch-sizes", "512", "--epochs", "1", "--quick"])

    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bars, banners or tips
    title, header, row, baseline = captured.out.strip().splitlines()
    assert title.startswith("Throughput, 3,000 x 4 rows")
    assert header.split()[-3:] == ["template/bare", "template/naive", "template/raw"]
    batch, *figures = row.split()
    assert batch == "512" and len(figures) == 7 and all(float(value.replace(",", "")) > 0 for value in figures)
    assert baseline.startswith("least-squares baseline:")


def test_read_benchmark_prints_seconds_ratios_and_peak_memory(capsys, monkeypatch):
    import read

    # The peak-memory run is a new Python process that imports torch (seconds): stood in for here.
    monkeypatch.setattr(read, "peak_read_bytes", lambda path: 12_000)
    read.main(["--rows", "2000", "--columns", "3"])

    captured = capsys.readouterr()
    assert captured.err == ""
    title, header, *rows, memory = captured.out.strip().splitlines()
    assert title.startswith("Reading 2,000 x 3 numbers") and header.split()[0] == "reader"
    assert [row.split()[0] for row in rows] == ["pyarrow.csv.read_csv", "template,", "template,"]
    assert rows[0].split()[-1] == "1" and all(float(row.split()[-1]) > 0 for row in rows)
    assert memory.startswith("peak memory of the template CSV read:") and "x the float32 table" in memory


def test_stream_benchmark_prints_rows_per_second_ratios_and_peak_memory(capsys, monkeypatch):
    import stream

    # The peak-memory runs are whole scripts/train.py processes (seconds each): stood in for here.
    peaks = iter([1500.0, 1000.0])
    monkeypatch.setattr(stream, "run_train_script", lambda *arguments: (1.0, next(peaks)))
    stream.main(["--rows", "3000", "--features", "3", "--batch-size", "256"])

    captured = capsys.readouterr()
    assert captured.err == ""
    title, header, *rows, throughput, survey, memory = captured.out.strip().splitlines()
    assert title.startswith("Streaming, 3,000 x 3 rows") and header.split() == ["seconds", "rows/s"]
    assert [row.rsplit(maxsplit=2)[0].strip() for row in rows] == ["in memory (baseline)", "streamed", "survey"]
    assert all(float(value.replace(",", "")) > 0 for row in rows for value in row.split()[-2:])
    assert float(throughput.split()[-1]) > 0 and float(survey.split()[-1]) > 0
    assert memory.endswith("= 1,000 MiB (the same on 10,000 rows) + 500 MiB")


def test_answer_benchmark_prints_seconds_peaks_and_ratios_of_each_program(capsys, monkeypatch):
    import answer

    # Every figure is a whole process (seconds each): stood in for here, the command of each checked instead.
    commands = []

    def measured(command):
        commands.append(command)
        return 2.0 if "statsmodels" in " ".join(command) else 3.0, 1000.0 + len(commands)

    monkeypatch.setattr(answer, "measured_process", measured)
    answer.main(["--rows", "2000", "--features", "3", "--repeats", "1"])

    captured = capsys.readouterr()
    assert captured.err == ""
    times, memory, startup = captured.out.strip().split("\n\n")
    title, header, *rows = times.splitlines()
    assert title.startswith("Time to a least-squares answer, 3 features")
    assert header.split()[:3] == ["rows", "file", "program"]
    assert [row.split()[2] for row in rows] == ["template", "statsmodels", "scikit-learn", "pyarrow"] * 2
    assert [row.split()[1] for row in rows] == ["parquet"] * 4 + ["csv"] * 4
    assert all(row.split()[-1] == "1.00" for row in rows if row.split()[2] == "statsmodels")
    assert rows[0].split()[-1] == "1.50"  # 3 s against statsmodels' 2 s
    _, base, *peaks = memory.splitlines()
    assert base.startswith("base (1,000 rows)")
    assert [peak.split()[:3] for peak in peaks] == [["2,000", "rows,", "parquet"], ["2,000", "rows,", "csv"]]
    assert startup.startswith("default run (make train): 3.00 s")
    assert any("data.path=" in part for command in commands for part in command)  # the template's own command
