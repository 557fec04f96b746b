"""Config keys described from the config classes (issue 23, item 14): the comment ending a field's line, along
the MRO, a block above as a fallback, the shipped YAML's comment where the class has none; every key of every
shipped recipe gets a line."""
from __future__ import annotations

from pydantic import BaseModel, Field

from rlaif.pipelines.online_dpo import DEFAULT_CONFIG, load_online_config
from rlaif.train.config import CONFIG_DIR, CONFIGS, load_config
from rlaif.train.config_docs import KeyDoc, class_comments, key_docs


class Section(BaseModel):
    size: int = 3  # how big


class Base(BaseModel):
    a: int = 1  # the base says a
    b: int = 2
    # a block above says c,
    # over two lines
    c: int = Field(3, gt=0)
    d: Section | None = None  # an optional section


class Child(Base):
    a: int = 5
    b: int = 6  # the child says b
    # a block that a trailing comment beats
    e: str = "x"  # e's own line


def test_comments_come_from_the_class_and_its_parents():
    got = class_comments(Child)
    assert got["a"] == "the base says a" and got["b"] == "the child says b"
    assert got["c"] == "a block above says c, over two lines" and got["e"] == "e's own line"


def test_key_docs_take_values_yaml_comments_and_sections(tmp_path):
    yaml = tmp_path / "child.yaml"
    yaml.write_text("a: 5\nb: 6   # not used: the class says it\nsize: 9\n")
    docs = key_docs(Child(d={"size": 4}), yaml)
    assert docs == [KeyDoc("a", 5, "the base says a"), KeyDoc("b", 6, "the child says b"),
                    KeyDoc("c", 3, "a block above says c, over two lines"),
                    KeyDoc("d", {"size": 4}, "an optional section"), KeyDoc("d.size", 4, "how big"),
                    KeyDoc("e", "x", "e's own line")]
    assert key_docs(Child())[4] == KeyDoc("d.size", 3, "how big")  # a section that is off: its own defaults


def test_every_shipped_recipe_key_has_a_line():
    bare = []
    for recipe in CONFIGS:
        path = CONFIG_DIR / f"{recipe}.yaml"
        bare += [f"{recipe} {d.key}" for d in key_docs(load_config(recipe, path), path) if not d.text]
    bare += [f"online-dpo {d.key}" for d in key_docs(load_online_config(DEFAULT_CONFIG, []), DEFAULT_CONFIG,
                                                       CONFIG_DIR / "dpo.yaml") if not d.text]
    assert not bare, "give these keys a comment on their line in the config class:\n" + "\n".join(bare)
