"""Which held-out records the voice and answer comparisons use: spread over the whole split, every book its share."""

from booktune.evaluation.compare import pick_records


def test_picks_spread_over_every_book_of_the_split():
    records = [{"id": f"russell-{i}"} for i in range(15)] + [{"id": f"thoreau-{i}"} for i in range(16)]
    picked = pick_records(records, 16)
    assert len(picked) == 16 and len({r["id"] for r in picked}) == 16
    assert sum(r["id"].startswith("thoreau") for r in picked) == 8  # not the first 16 records, all Russell's
    assert picked[0] is records[0] and picked[-1]["id"].startswith("thoreau")


def test_asking_for_more_than_there_are_gives_each_once():
    records = [{"id": i} for i in range(3)]
    assert pick_records(records, 10) == records and pick_records(records, 0) == [] and pick_records([], 4) == []
    assert [r["id"] for r in pick_records([{"id": i} for i in range(10)], 3)] == [0, 3, 6]
