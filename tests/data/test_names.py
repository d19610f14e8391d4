"""data/names.py: the joins' name normalisation and ``match_names`` (exact, normalised, affixes, never a guess)."""

from csg2a_graph.data.names import match_names, normalize_cell_name, normalize_drug_name


def test_normalisation():
    assert normalize_cell_name("NCI-H23") == "NCIH23" and normalize_cell_name("HL-60(TB)") == "HL60TB"
    assert normalize_cell_name("sk-mel-28") == normalize_cell_name("SK MEL 28") == "SKMEL28"
    assert normalize_drug_name("5-Fluorouracil") == "5fluorouracil"


def test_exact_then_normalised_then_affixes_and_the_report():
    m, rep = match_names(["A549", "NCI-H23", "H2869", "NOPE"], ["A549", "NCIH23", "NCI-H2869"], prefixes=("NCI",))
    assert m == {"A549": "A549", "NCI-H23": "NCIH23", "H2869": "NCI-H2869"}
    d = rep.to_dict()
    assert (d["exact"], d["normalized"], d["unmatched"]) == (1, 2, 1) and d["unmatched_names"] == ["NOPE"]
    assert "3 matched" in str(rep) and "NOPE" in str(rep)


def test_ambiguous_names_are_never_guessed():
    # two targets normalise alike: the query is ambiguous and left unmatched
    m, rep = match_names(["KMH2"], ["KM-H2", "KMH-2"])
    assert m == {} and rep.ambiguous == ["KMH2"]
    # two queries land on one target: the exact one keeps it, the other is reported
    m, rep = match_names(["KM-H2", "KMH-2"], ["KM-H2"])
    assert m == {"KM-H2": "KM-H2"} and "KMH-2" in rep.unmatched
