import numpy as np
import pytest

from facepars.core import classes

from fixtures import SEED_MERGE


@pytest.mark.parametrize("source", sorted(classes.SOURCE_TABLES))
@pytest.mark.parametrize("taxonomy", sorted(classes.TAXONOMIES))
def test_every_source_id_maps_to_a_target_class(source, taxonomy):
    table = classes.SOURCE_TABLES[source]
    tax = classes.TAXONOMIES[taxonomy]
    lut, valid = table.lookup_table(tax)
    n = len(table.labels)
    assert valid[:n].all() and not valid[n:].any()
    assert (lut[:n] < tax.table.num_classes).all()


def test_kaggle_to_seed8_is_the_seed_merge():
    lut, _ = classes.SOURCE_TABLES["kaggle"].lookup_table(classes.TAXONOMIES["seed8"])
    assert {i: int(lut[i]) for i in range(18)} == SEED_MERGE


@pytest.mark.parametrize("source", ["kaggle", "celebamask_hq", "synthetic"])
def test_every_seed8_class_is_reachable_from_each_source_with_them(source):
    lut, valid = classes.SOURCE_TABLES[source].lookup_table(classes.TAXONOMIES["seed8"])
    assert set(lut[valid].tolist()) == set(range(8))


def test_seed8_table_is_the_design_table():
    t = classes.TAXONOMIES["seed8"].table
    assert t.names == ("background", "skin", "eyebrows", "eyes", "nose", "mouth", "ears",
                       "glasses")
    assert t.face_classes == tuple(range(1, 8))
    assert t.flip_pairs == ()


def test_hair_taxonomy_adds_hair_as_class_8():
    tax = classes.TAXONOMIES["seed8_hair"]
    assert tax.table.names[8] == "hair"
    lut, _ = classes.SOURCE_TABLES["kaggle"].lookup_table(tax)
    assert lut[10] == 8 and lut[15] == 0 and lut[17] == 0


def test_lapa11_keeps_left_right_and_records_flip_pairs():
    tax = classes.TAXONOMIES["lapa11"]
    lut, _ = classes.SOURCE_TABLES["lapa"].lookup_table(tax)
    np.testing.assert_array_equal(lut[:11], np.arange(11))
    perm = tax.table.flip_permutation()
    names = tax.table.names
    for a, b in tax.table.flip_pairs:
        assert perm[a] == b and perm[b] == a
        assert names[a].replace("left", "right") == names[b]
    assert set(tax.table.flip_pairs) == {(2, 3), (4, 5)}


@pytest.mark.parametrize("taxonomy", sorted(classes.TAXONOMIES))
def test_class_table_round_trips_through_json(taxonomy):
    table = classes.TAXONOMIES[taxonomy].table
    assert classes.ClassTable.from_json(table.to_json()) == table
    assert len(set(table.colors)) == table.num_classes


def test_incomplete_taxonomy_is_refused():
    table = classes.ClassTable("x", ("background", "b"), ((0, 0, 0), (1, 1, 1)), (1,))
    with pytest.raises(ValueError, match="parts without a class"):
        classes.Taxonomy(table, {"background": "b"})


def test_a_table_whose_class_0_is_not_background_is_refused():
    """Prediction and overlays read class 0 as "no face part"; a table that puts
    skin first would paint every unparsed pixel as skin."""
    with pytest.raises(ValueError, match="class 0 must be 'background'"):
        classes.ClassTable("x", ("skin", "background"), ((0, 0, 0), (1, 1, 1)), (0,))
    data = classes.TAXONOMIES["seed8"].table.to_json()
    data["classes"][0]["name"], data["classes"][1]["name"] = "skin", "background"
    with pytest.raises(ValueError, match="class 0 must be"):
        classes.ClassTable.from_json(data)


def test_the_parts_classes_come_from_the_taxonomies():
    seed8, lapa11 = (classes.TAXONOMIES[n].table for n in ("seed8", "lapa11"))
    assert seed8.classes_of(("l_eye", "r_eye")) == (3,)
    assert lapa11.classes_of(("l_eye", "r_eye")) == (4, 5)
    assert lapa11.classes_of(("u_lip", "l_lip", "inner_mouth")) == (7, 9, 8)
    assert lapa11.classes_of(("glasses",)) == ()  # background in lapa11
