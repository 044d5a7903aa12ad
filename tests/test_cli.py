import json


def test_info_json(cli):
    out = cli(
        "info", "--network", "es_pong", "--projection", "fastfood", "--d", "6000", "--json"
    ).stdout
    info = json.loads(out)
    assert info["D"] == 1_005_974 and info["d"] == 6000
    assert abs(info["compression"] - 1_005_974 / 6000) < 1e-6
    assert 0 < info["projection_bytes"] < 8 * 4 * 2**20  # a few L = 2^20 floats


def test_info_human(cli):
    out = cli("info", "--network", "fc_mnist", "--projection", "sparse", "--d", "750").stdout
    assert "199,210" in out and "D/d" in out


def test_bad_inputs_one_line_nonzero(cli):
    for args, needle in [
        (["info", "--network", "resnet", "--d", "3"], "unknown network 'resnet'"),
        (["info", "--network", "mlp", "--d", "0"], "--d must be a positive integer"),
        (["info", "--network", "mlp", "--projection", "dense", "--d", "100000"], "exceeds D=562"),
        (
            ["info", "--network", "mlp", "--projection", "gauss", "--d", "3"],
            "--projection: invalid choice: 'gauss'",
        ),
        (
            ["info", "--network", "es_pong", "--projection", "dense", "--d", "6000"],
            "sparse or fastfood",
        ),
    ]:
        proc = cli(*args, check=False)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_info_reads_no_data(cli, tmp_path):
    """`rlsub info mnist_fc` with an empty data folder, an empty cache and no network (a
    proxy on a closed port): D from the network, nothing downloaded."""
    import os
    import subprocess
    import sys

    empty, cache = tmp_path / "data", tmp_path / "cache"
    empty.mkdir()
    env = {
        **os.environ,
        "RLSUB_DATA_DIR": str(empty),
        "RLSUB_CACHE": str(cache),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "rlsub", "info", "mnist_fc"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "D 199,210" in proc.stdout and "task        mnist" in proc.stdout
    env.pop("RLSUB_DATA_DIR")
    proc = subprocess.run(
        [sys.executable, "-m", "rlsub", "info", "cifar10_lenet", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["D"] == 62_006
    assert list(empty.iterdir()) == [] and not cache.exists()
