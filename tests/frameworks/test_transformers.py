"""A Hugging Face Trainer with ProvmlCallback answers the named questions (tiny BERT, CPU)."""

from __future__ import annotations

import enum
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib.integrations import _transformers_data as data
from capture_lib.integrations import transformers as hf
from capture_lib.refs import reference
from tests.frameworks.conftest import Captured, ask, framework

torch = framework("torch")
transformers = framework("transformers")
framework("accelerate")  # the Trainer requires it

SECRET = "hf_not_a_real_token_1234"


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    """Token ids and labels, made here (nothing downloaded)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 100, (n, 8), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.x[i], "labels": self.y[i]}


def _trainer(out: Path, callbacks: list[Any] | None = None, **overrides: Any) -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config)
    options = dict(
        output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=8, logging_steps=2,
        eval_strategy="epoch", save_strategy="epoch", report_to="none", use_cpu=True,
        disable_tqdm=True, seed=0, hub_token=SECRET,
    )  # fmt: skip
    options.update(overrides)
    args = transformers.TrainingArguments(**options)
    return transformers.Trainer(model=model, args=args, train_dataset=Tokens(32, 1),
                                eval_dataset=Tokens(16, 2), callbacks=callbacks)  # fmt: skip


def _losses(trainer: Any) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]


def _checkpoint(out: Path, step: int) -> str:
    return str(reference("model", out / f"checkpoint-{step}", {})["sha256"])


def test_training_answers_the_questions_and_changes_nothing(
    captured: Captured, tmp_path: Path
) -> None:
    plain = _trainer(tmp_path / "plain")
    plain.train()
    trainer = _trainer(tmp_path / "out", callbacks=[hf.ProvmlCallback()])
    trainer.train()
    test = Tokens(4, 3)
    predicted = trainer.predict(test)
    # the same training, step for step, with and without the callback
    assert _losses(trainer) == _losses(plain) and len(_losses(plain)) == 4
    ours = trainer.model.state_dict()
    for name, weights in plain.model.state_dict().items():
        assert torch.equal(weights, ours[name]), name
    assert predicted.predictions.tolist() == plain.predict(test).predictions.tolist()

    records = captured.records()
    assert SECRET not in json.dumps(records)
    assert cl.stats()["lost"] == {}
    store = captured.store()
    final = _checkpoint(tmp_path / "out", 8)  # the last checkpoint is the model it ends with

    rows = ask(store, "training-data", model=final)
    assert {r["role"]: r["sha256"] for r in rows} == {
        "train_dataset": data.dataset_reference(trainer.train_dataset)["sha256"],
        "eval_dataset": data.dataset_reference(trainer.eval_dataset)["sha256"],
    }
    assert {r["role"]: r.get("split") for r in rows} == {
        "train_dataset": "train", "eval_dataset": "eval"
    }  # fmt: skip
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=final)}
    assert float(hp["learning_rate"]) == 5e-05 and float(hp["num_train_epochs"]) == 2
    assert hp["hub_token"] == "***" and hp["model_class"] == "BertForSequenceClassification"
    assert json.loads(hp["model_config"])["hidden_size"] == 16

    (training,) = {r["training"] for r in rows}
    metrics = ask(store, "run-metrics", training=training)
    loss = sorted((int(r["index"]), float(r["value"])) for r in metrics if r["metric"] == "loss")
    assert loss == _losses(trainer)
    evals = {int(r["index"]) for r in metrics if r["metric"] == "eval_loss"}
    assert evals == {4, 8}

    # each checkpoint is a model of this training, evaluated at its step
    first = _checkpoint(tmp_path / "out", 4)
    assert {r["training"] for r in ask(store, "training-data", model=first)} == {training}
    (evaluation,) = [r for r in ask(store, "model-evaluations", model=first)
                     if r["metric"] == "eval_loss"]  # fmt: skip
    logged = [e["eval_loss"] for e in trainer.state.log_history if e.get("step") == 4
              and "eval_loss" in e]  # fmt: skip
    assert [float(evaluation["value"])] == logged

    (prediction,) = ask(store, "predictions", model=final)
    (trace,) = ask(store, "prediction-trace", prediction=prediction["prediction"])
    assert trace["modelSha256"] == final and trace["training"] == training
    assert set(trace["trainingData"].split()) == {r["sha256"] for r in rows}
    assert json.loads(prediction["value"])["samples"] == 4


def test_a_model_not_saved_is_named_by_its_weights(captured: Captured, tmp_path: Path) -> None:
    callback = hf.ProvmlCallback()
    trainer = _trainer(tmp_path / "out", [callback], save_strategy="no", eval_strategy="no",
                       num_train_epochs=1)  # fmt: skip
    trainer.train()
    assert callback.model == data.weights_reference(trainer.model, None)
    store = captured.store()
    rows = ask(store, "training-data", model=callback.model["sha256"])
    assert {r["role"] for r in rows} == {"train_dataset", "eval_dataset"}


def test_capture_failing_inside_a_hook_never_reaches_the_training(
    captured: Captured, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("capture is broken")

    monkeypatch.setattr(data, "hyperparameters", broken)
    monkeypatch.setattr(cl.api.Task, "section", broken)
    trainer = _trainer(tmp_path / "out", [hf.ProvmlCallback()], num_train_epochs=1,
                       eval_strategy="no")  # fmt: skip
    result = trainer.train()  # identical results: the first test
    assert result.global_step == 4 and len(_losses(trainer)) == 2
    assert cl.stats()["lost"]["integration_error"] == 3  # the arguments, then each on_log
    (start,) = captured.tasks("training")  # recorded all the same, without parameters
    assert start.get("params") is None and set(start["used"]) == {"train_dataset", "eval_dataset"}


def test_autolog_adds_the_callback_ends_a_failed_training_and_is_undone(
    captured: Captured, tmp_path: Path
) -> None:
    class Stop(transformers.TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:
                raise KeyboardInterrupt("stopped by hand")

    assert cl.autolog(exclude="sklearn")["transformers"] == "enabled"
    trainer = _trainer(tmp_path / "out", [Stop()], eval_strategy="no")
    assert [type(c).__name__ for c in hf.callbacks(trainer)] == ["ProvmlCallback"]
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"]
    assert end["status"] == "failed" and "stopped by hand" in end["error"]
    # a Trainer given one keeps its own, and only one
    own = hf.ProvmlCallback()
    assert hf.callbacks(_trainer(tmp_path / "own", [own])) == [own]

    assert cl.autolog(disable=True)["transformers"] == "disabled"
    assert not hasattr(transformers.Trainer.__init__, "_provml_wraps")
    assert hf.callbacks(_trainer(tmp_path / "after")) == []


def test_autolog_imports_nothing_until_the_trainer_is_used() -> None:
    code = (
        "import sys, capture_lib as cl\n"
        "cl.init(mode='off')\n"
        "import capture_lib.integrations.transformers\n"
        "assert cl.autolog()['transformers'] == 'enabled'\n"
        "assert 'torch' not in sys.modules and 'transformers.trainer' not in sys.modules\n"
        "from transformers import Trainer\n"
        "assert hasattr(Trainer.__init__, '_provml_wraps')\n"
        "cl.autolog(disable=True)\n"
        "assert not hasattr(Trainer.__init__, '_provml_wraps')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_datasets_are_named_by_fingerprint_or_content_and_rng_is_kept() -> None:
    class Fingerprinted:
        _fingerprint = "0123456789abcdef"
        num_rows = 3
        column_names = ("text", "label")

    ref = data.dataset_reference(Fingerprinted())
    assert ref["hashing"] == "fingerprint" and ref["fingerprint"] == "0123456789abcdef"
    assert ref["sha256"] == data.dataset_reference(Fingerprinted())["sha256"]

    x = torch.arange(12).reshape(4, 3)
    tensors = data.dataset_reference(torch.utils.data.TensorDataset(x, x[:, 0]))
    changed = data.dataset_reference(torch.utils.data.TensorDataset(x + 1, x[:, 0]))
    assert tensors["hashing"] == "full" and tensors["sha256"] != changed["sha256"]

    class Augmented(Tokens):
        def __getitem__(self, i: int) -> dict[str, Any]:
            item = super().__getitem__(i)
            return {**item, "noise": torch.rand(1), "flip": random.random()}

    big = Augmented(data.MAX_ITEMS * 3, 0)
    torch.manual_seed(5)
    random.seed(5)
    expected = (torch.rand(1).item(), random.random())
    torch.manual_seed(5)
    random.seed(5)
    ref = data.dataset_reference(big)
    assert (torch.rand(1).item(), random.random()) == expected  # as if nothing was read
    assert ref["hashing"] == "sampled" and ref["items_hashed"] == data.MAX_ITEMS
    assert data.dataset_reference(Tokens(8, 1))["sha256"] == data.dataset_reference(
        Tokens(8, 1))["sha256"] != data.dataset_reference(Tokens(8, 2))["sha256"]  # fmt: skip
    with pytest.raises(data.digest.Unhashable):
        data.dataset_reference(iter([1, 2]))


class _Items(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, item: Any, n: int = 40) -> None:
        self.item, self.n = item, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.item(i)


def test_items_are_named_as_the_plain_rules_name_them() -> None:
    """The names a dataset's items get are pinned: they were computed by the first, plain
    implementation of the rules (the module doc); the faster one must hash the same
    bytes, for every kind of item (a changed name would split one dataset in two)."""
    import numpy as np

    x, y = torch.arange(40 * 32).reshape(40, 32) % 997, torch.arange(40) % 2
    cases = {
        "a83dff2ab0086fc827fe79ce9be49f2c0eb41557cf345ab2d74729be2020ba64":
            lambda i: {"input_ids": x[i], "labels": y[i]},
        "906ec765b936ae453c7b88c7336d131de52f6b86fe69f8d4f2bde3e22044867c":
            lambda i: {"b": x[i].numpy(), 3: "text", "a": [1, 2, i],
                       "m": torch.ones(2, 2, requires_grad=True)},
        "3d40544bddfabd91809295a5ea55f675022fe9e78df48047f7c96e472e70e6b8":
            lambda i: {"t": x[:, i % 32]},  # not contiguous
        "fd6dc8ba7e8c2c74ad79384ff6f90efe375510a6408629b627367ea5f6302bd7":
            lambda i: {"h": x[i].to(torch.bfloat16)},  # a dtype numpy lacks
        "aa801e9a083542d06e3a9da1df90cba552fea5c346c1c426fa30f22ec3b114ae":
            lambda i: np.asfortranarray(np.arange(i, i + 6).reshape(2, 3)),
        "595a257350150ed8202e14b9af02f7000999948e2b4658f6ca1da3446356b063":
            lambda i: {"outer": {"inner": x[i], "z": (y[i], [x[i][:3]])}},
        "5059f1cbe73d4af76ff680a30043ace25e8c8ea130218e42021e2a57d2eac58d":
            lambda i: {"when": np.array([i, i + 1], dtype="M8[D]")},
        "cb5f02025e21a19147ed5e346a9bf5a297d17db8132d6714dd8590246e17f0fc":
            lambda i: {"v": np.array(float(i))},  # 0-d
        "bcea66731a4dbbf9bdbf0259cb9c237aeebfea568c198c0699b326dc03994f81":
            lambda i: {"v": np.zeros((0, 3))},
        "5c47046cb5fe171051a1ba7ec5f0d641bff9ce5e5a5dd32c01083231cb461d89":
            lambda i: {"v": np.arange(i, i + 4, dtype=">f8")},
        "d1f58969d52c0a26bb111db2099be317d546412811c43d14e2596fb167f288ff":
            lambda i: {"v": np.float32(i)},  # a numpy scalar
        "3a0a05f49017f5abad64b75a65b2c794d15b5a93be0b47f6786430221ccd6ee7":
            lambda i: {"a": np.arange(3) + i},
        # equal to the keys just above, but printed otherwise: not their kept order
        "9ef134746f8c8336de1f25e5df0a3ba3a9503608e83409f54df62819169ec975":
            lambda i: {_Key.A: np.arange(3) + i},
    }  # fmt: skip
    for want, item in cases.items():
        assert data.dataset_reference(_Items(item))["sha256"] == want
        assert data.dataset_reference(_Items(item))["sha256"] == want  # with what it kept


class _Key(str, enum.Enum):
    A = "a"


def test_a_pandas_row_is_named_as_the_plain_rules_name_it() -> None:
    pd = pytest.importorskip("pandas")
    import numpy as np

    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40) % 3})
    want = "bb795fddab4c6b546b0579d3e78b73eb444d7c90a7d91a5adbf24f4207f6c800"
    assert data.dataset_reference(_Items(lambda i: frame.iloc[i]))["sha256"] == want
