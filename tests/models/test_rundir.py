"""The run directory's contract: the ModelCard train and export write and everything
after training reads."""

import json

import pytest

from facepars.core.classes import TAXONOMIES
from facepars.core.errors import ConfigError
from facepars.models import build_model, rundir
from facepars.models.rundir import ModelCard

TABLE = TAXONOMIES["lapa11"].table


def test_a_card_reads_back_what_it_wrote(tmp_path):
    """Every field survives the file, the framing's points as the (5, 2) array the
    alignment takes."""
    points = [[40.5, 50.0], [88.0, 50.25], [64.0, 70.0], [45.0, 92.0], [83.0, 92.0]]
    card = ModelCard(TABLE, 128, "pad", "lraspp_mobilenetv3", 0.5,
                     {"mode": "landmarks", "points": points, "records": 7})
    path = tmp_path / "class_table.json"
    path.write_text(json.dumps(card.to_json()))
    back = ModelCard.read(str(path))
    assert back == card
    assert back.points.shape == (5, 2) and back.points[1, 1] == 50.25


def test_a_file_from_before_model_width_and_framing_still_reads(tmp_path):
    path = tmp_path / "class_table.json"
    path.write_text(json.dumps({"class_table": TABLE.to_json(), "image_size": 256,
                                "resize": "stretch"}))
    card = ModelCard.read(str(path))
    assert (card.table, card.image_size, card.resize) == (TABLE, 256, "stretch")
    assert card.model is card.width is card.framing is card.points is None


def test_a_file_that_is_no_card_names_itself_and_what_it_lacks(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"class_table": TABLE.to_json(), "resize": "pad"}))
    with pytest.raises(ConfigError, match=rf"{path}: no image_size"):
        ModelCard.read(str(path))


def test_a_network_of_another_size_than_its_card_is_refused_naming_both(tmp_path):
    """The card is the one source of the input size: a best.keras from a run at 32 px
    beside a config.json of 64 px is two runs mixed up, not a model to guess about."""
    build_model("lraspp_mobilenetv3", TABLE.num_classes, 32, width=0.25).save(
        tmp_path / rundir.BEST)
    (tmp_path / rundir.CONFIG).write_text(json.dumps(ModelCard(TABLE, 64, "pad").to_json()))
    with pytest.raises(ConfigError, match=r"best.keras: the network takes \(32, 32\).*64x64"):
        rundir.load(str(tmp_path))
