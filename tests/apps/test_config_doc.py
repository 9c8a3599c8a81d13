"""docs/configuration.md is generated from the configuration's declaration and kept current."""
import dataclasses

from alphapulse.apps import config as C
from alphapulse.apps import config_doc as D


def test_committed_page_is_current():
    assert D.DOC_PATH.read_text() == D.render(), \
        "docs/configuration.md is stale: run python -m alphapulse.apps.config_doc --write"


def test_every_section_and_key_is_on_the_page():
    page = D.render()
    for f in dataclasses.fields(C.Config):
        if f.name != "bridges":
            assert f"## [{f.name}]" in page
            for key in dataclasses.fields(getattr(C.Config(), f.name)):
                assert f"| `{key.name}` |" in page, f"{f.name}.{key.name}"


def test_comments_beside_and_above_fields_are_read():
    @dataclasses.dataclass
    class Sample:
        # a heading for b
        b: int = 1
        c: str = "x#y"      # beside c
        d: int = 2          # first line of d
                            # its continuation
        e: int = 3

    notes = D.field_comments(Sample)
    assert notes == {"b": "a heading for b", "c": "beside c",
                     "d": "first line of d its continuation", "e": ""}
