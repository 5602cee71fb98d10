"""PyTorch Lightning with ProvmlLogger: the graph answers training-data, hyperparameters,
run-metrics and prediction-trace for what the Trainer did (a tiny MLP, CPU, 2 epochs)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib.integrations import _lightning_run, digest
from tests.frameworks.conftest import Captured, ask, framework

torch = framework("torch")
pl = framework("lightning.pytorch")

from capture_lib.integrations import lightning as provml_lightning  # noqa: E402
from capture_lib.integrations.lightning import ProvmlLogger  # noqa: E402

pytestmark = [
    # Lightning 2.6 with torch 2.13 warns about torch's own pytree API, and about a tiny
    # DataLoader's lack of workers: neither is the integration's
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*smaller than the logging interval.*"),
]


class MLP(pl.LightningModule):  # type: ignore[name-defined]
    def __init__(self, lr: float = 0.1, hidden: int = 8, api_token: str = "tok-123",
                 fail_at_epoch: int = -1) -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.current_epoch == self.hparams.fail_at_epoch:
            raise RuntimeError("diverged")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        return self.net(batch[0])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _data() -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g)


def _loader(x: Any, y: Any) -> Any:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


def _trainer(root: Path, logger: Any, **kwargs: Any) -> Any:
    options: dict[str, Any] = dict(
        max_epochs=2, log_every_n_steps=1, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(root), logger=logger,
    )  # fmt: skip
    options.update(kwargs)
    return pl.Trainer(**options)


def _train(root: Path, logger: Any, **kwargs: Any) -> tuple[Any, Any, Any]:
    x, y = _data()
    pl.seed_everything(0, verbose=False)
    model = MLP(**kwargs.pop("hparams", {}))
    trainer = _trainer(root, logger, **kwargs)
    trainer.fit(model, _loader(x, y), _loader(x, y))
    return trainer, model, trainer.predict(model, _loader(x, y))


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_graph_answers_for_fit_and_predict(captured: Captured, tmp_path: Path) -> None:
    trainer, _, _ = _train(tmp_path, ProvmlLogger("lightning-demo"))
    ckpt = trainer.checkpoint_callback.best_model_path
    sha = _sha(ckpt)
    x, y = _data()
    store = captured.store()

    rows = ask(store, "training-data", model=sha)
    data = {r["role"]: r["sha256"] for r in rows}
    assert data["train.0"] == digest.data_reference(x.numpy(), 1 << 30)["sha256"]
    assert data["train.1"] == digest.data_reference(y.numpy(), 1 << 30)["sha256"]
    assert data["validation.0"] == data["train.0"]

    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["lr"] == "0.1" and hp["hidden"] == "8" and hp["max_epochs"] == "2"
    assert hp["optimizer"] == "SGD" and hp["batch_size"] == "16"
    assert hp["api_token"] == "***"  # the redactor, as for hand-written capture

    (training,) = {r["training"] for r in rows}
    metrics = ask(store, "run-metrics", training=training)
    epochs = {(r["metric"], int(r["index"])) for r in metrics}
    assert {("train_loss_epoch", 0), ("train_loss_epoch", 1), ("val_loss", 1)} <= epochs
    assert sum(r["metric"] == "train_loss_step" for r in metrics) == 8  # 4 batches x 2
    steps = sorted(r["step"] for r in captured.records()
                   if r["kind"] == "metric" and r["name"] == "train_loss_step")  # fmt: skip
    assert steps == list(range(8))

    (prediction,) = [r for r in captured.records() if r["kind"] == "task_end"
                     and r["stage"] == "inference"]  # fmt: skip
    (row,) = ask(store, "predictions", model=sha)
    (trace,) = ask(store, "prediction-trace", prediction=row["prediction"])
    assert trace["modelSha256"] == sha  # the in-memory model after fit: its last checkpoint
    assert set(trace["trainingData"].split()) == set(data.values())
    assert json.loads(trace["hyperparameters"])["lr"] == 0.1
    assert json.loads(row["value"])["batches"] == 4
    assert prediction["generated"]["prediction"]["hashing"] == "full"


def test_predict_from_a_checkpoint_path_traces_to_that_file(
    captured: Captured, tmp_path: Path
) -> None:
    trainer, _, _ = _train(tmp_path, ProvmlLogger(), max_epochs=1)
    ckpt = trainer.checkpoint_callback.best_model_path
    fresh = MLP()  # other weights: the checkpoint's are loaded by predict
    x, y = _data()
    trainer.predict(fresh, _loader(x, y), ckpt_path=ckpt)
    store = captured.store()
    (row,) = ask(store, "predictions", model=_sha(ckpt))[-1:]
    (trace,) = ask(store, "prediction-trace", prediction=row["prediction"])
    assert trace["modelSha256"] == _sha(ckpt) and trace["trainingData"]


def test_results_are_the_same_with_and_without_the_logger(
    captured: Captured, tmp_path: Path
) -> None:
    _, plain, plain_out = _train(tmp_path / "a", False)
    _, logged, logged_out = _train(tmp_path / "b", ProvmlLogger())
    for (name, a), (_, b) in zip(plain.state_dict().items(), logged.state_dict().items(),
                                 strict=True):  # fmt: skip
        assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(plain_out, logged_out, strict=True))


def test_a_failed_training_ends_failed(captured: Captured, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="diverged"):
        _train(tmp_path, ProvmlLogger("failing"), hparams={"fail_at_epoch": 1})
    records = captured.records()
    (end,) = [r for r in records if r["kind"] == "task_end"]
    assert end["status"] == "failed" and "RuntimeError: diverged" in end["error"]
    (wf_end,) = [r for r in records if r["kind"] == "workflow_end"]
    assert wf_end["status"] == "failed"
    # the checkpoint of the first epoch is still a model of that training
    assert any(k.startswith("checkpoint:") for k in end["generated"])


def test_a_failing_capture_never_reaches_the_training(
    captured: Captured, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("capture is broken")

    monkeypatch.setattr(_lightning_run.Run, "metrics", broken)
    monkeypatch.setattr(_lightning_run.Run, "checkpoint", broken)
    _, logged, _ = _train(tmp_path / "b", ProvmlLogger())
    _, plain, _ = _train(tmp_path / "a", False)
    pairs = zip(plain.state_dict().values(), logged.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert cl.stats()["lost"]["integration_error"] >= 2


def test_autolog_adds_a_logger_to_every_trainer_and_is_undone(
    captured: Captured, tmp_path: Path
) -> None:
    original = pl.Trainer.__init__
    assert cl.autolog(exclude=["sklearn"])["lightning"] == "enabled"
    try:
        alone = _trainer(tmp_path / "a", False)
        (added,) = alone.loggers
        assert isinstance(added, ProvmlLogger)
        csv = pl.loggers.CSVLogger(tmp_path / "csv")
        beside = _trainer(tmp_path / "b", csv)
        assert beside.loggers[0] is csv and isinstance(beside.loggers[1], ProvmlLogger)
        assert beside.loggers[1].version == csv.version
        x, y = _data()
        alone.fit(MLP(), _loader(x, y), _loader(x, y))
        # where checkpoints go is unchanged: <default_root_dir>/checkpoints
        (ckpt,) = (tmp_path / "a" / "checkpoints").iterdir()
        assert ask(captured.store(), "training-data", model=_sha(ckpt))
    finally:
        cl.autolog(disable=True)
    assert pl.Trainer.__init__ is original
    assert not any(isinstance(lg, ProvmlLogger) for lg in _trainer(tmp_path, False).loggers)
    assert not provml_lightning.enabled()


def test_importing_the_integration_does_not_import_lightning() -> None:
    code = ("import sys, capture_lib.integrations.lightning; "
            "assert 'lightning' not in sys.modules and 'torch' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
