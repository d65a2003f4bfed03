from booktune.training.plot import loss_series, plot_loss


def test_series_and_png(tmp_path):
    history = [{"loss": 3.0, "step": 5}, {"loss": 2.5, "step": 10}, {"eval_loss": 2.8, "step": 10},
               {"train_loss": 2.7, "step": 10}]
    assert loss_series(history, "loss") == ([5, 10], [3.0, 2.5])
    path = plot_loss(history, tmp_path / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_short_run_still_gets_a_plot(tmp_path):
    assert plot_loss([{"train_loss": 2.7, "step": 2}], tmp_path / "loss.png").is_file()


def test_nothing_logged_writes_nothing(tmp_path):
    assert plot_loss([], tmp_path / "loss.png") is None
    assert not (tmp_path / "loss.png").exists()
