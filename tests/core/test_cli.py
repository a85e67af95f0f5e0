import json

import pytest

from shared_core import Router
from shared_core.cli import main


@pytest.fixture
def small_train(data_dir, tmp_path):
    # 300 real queries keep the CLI tests quick
    lines = (data_dir / "routerbench" / "train.jsonl").read_text().splitlines()[:300]
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_fit_route_evaluate(small_train, data_dir, tmp_path, capsys):
    models = tmp_path / "models.toml"
    models.write_text(
        '"gpt-4-1106-preview" = "openai:gpt-4.1"\n'
        '"mistralai/mistral-7b-chat" = "google:gemini-2.5-flash-lite"\n'
    )
    out = tmp_path / "router.json"
    assert (
        main(
            [
                "fit",
                str(small_train),
                "-o",
                str(out),
                "--clusters",
                "8",
                "--seed",
                "1",
                "--models",
                str(models),
                "--alpha",
                "0.6",
            ]
        )
        == 0
    )
    assert "provider specs recorded for 2 model(s)" in capsys.readouterr().out
    r = Router.load(out)
    assert r.n_clusters_ == 8 and r.default_alpha == 0.6
    assert r.model_specs == {
        "gpt-4-1106-preview": "openai:gpt-4.1",
        "mistralai/mistral-7b-chat": "google:gemini-2.5-flash-lite",
    }

    assert main(["route", str(out), "Write a haiku about autumn", "--alpha", "0", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] == "mistralai/mistral-7b-chat"  # the cheapest model
    assert decision["spec"] == "google:gemini-2.5-flash-lite"
    assert decision["alpha"] == 0.0

    report_path, plot = tmp_path / "report.json", tmp_path / "plane.png"
    assert (
        main(
            [
                "evaluate",
                str(out),
                str(data_dir / "routerbench" / "test.jsonl"),
                "--alphas",
                "0,0.5,1",
                "--json",
                str(report_path),
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    assert report["n_queries"] == 945 and len(report["sweep"]) == 3
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "router alpha=0.5" in capsys.readouterr().out


def test_fit_writes_the_default_router_location(small_train, tmp_path, monkeypatch):
    monkeypatch.setenv("AVENGERS_ROUTER", str(tmp_path / "default" / "router.json"))
    assert main(["fit", str(small_train), "--clusters", "4"]) == 0
    assert (tmp_path / "default" / "router.json").exists()


def test_errors_are_one_clear_line(small_train, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "hi", "records": {"a": 2}}\n')
    assert main(["fit", str(bad), "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avengers: error: line 1 of bad.jsonl: records['a']: 2.0 is outside")
    assert not (tmp_path / "r.json").exists()  # nothing half-written

    models = tmp_path / "m.toml"
    models.write_text('"gpt5" = "openai:gpt-5"\n')
    assert (
        main(["fit", str(small_train), "-o", str(tmp_path / "r.json"), "--models", str(models)])
        == 2
    )
    assert "--models names 'gpt5', which is not in the data; known: " in capsys.readouterr().err
    models.write_text('"claude-v1" = "mistral:large"\n')
    assert (
        main(["fit", str(small_train), "-o", str(tmp_path / "r.json"), "--models", str(models)])
        == 2
    )
    assert "unknown provider 'mistral'" in capsys.readouterr().err

    (tmp_path / "r.json").write_text("{")
    assert main(["route", str(tmp_path / "r.json"), "hi"]) == 2
    assert "truncated or not JSON" in capsys.readouterr().err


def test_demo_runs_offline(data_dir, tmp_path, capsys):
    assert (
        main(
            [
                "demo",
                "--data",
                str(data_dir / "routerbench"),
                "--out",
                str(tmp_path),
                "--clusters",
                "20",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "gpt-4-1106-preview" in out and "router alpha=0.7" in out and "-> " in out
    assert (tmp_path / "report.json").exists() and (tmp_path / "alpha_model_share.png").exists()


def test_fit_uses_the_library_default_unless_told(small_train, tmp_path):
    out = tmp_path / "r.json"
    assert main(["fit", str(small_train), "-o", str(out), "--clusters", "4"]) == 0
    default, reference = Router.load(out), Router(n_clusters=4)
    assert (default.top_k, default.shrinkage) == (reference.top_k, reference.shrinkage)
    assert (
        main(
            [
                "fit",
                str(small_train),
                "-o",
                str(out),
                "--clusters",
                "4",
                "--method",
                "paper",
                "--top-k",
                "2",
            ]
        )
        == 0
    )
    paper, reference = Router.load(out), Router.paper(n_clusters=4)
    assert (paper.top_k, paper.shrinkage, paper.normalisation) == (2, 0.0, reference.normalisation)


def test_fit_and_evaluate_share_the_embedding_cache(small_train, tmp_path, monkeypatch):
    monkeypatch.setenv("AVENGERS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    assert main(["fit", str(small_train), "-o", str(out), "--clusters", "4"]) == 0
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 1
    assert main(["evaluate", str(out), str(small_train), "--alphas", "0,1"]) == 0
    assert list((tmp_path / "cache").rglob("*.npy")) == cached  # same corpus: a cache hit
    assert main(["fit", str(small_train), "-o", str(out), "--clusters", "4", "--no-cache"]) == 0
    assert list((tmp_path / "cache").rglob("*.npy")) == cached
