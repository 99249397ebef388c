"""README.md and README_CN.md stay in step (same commands, same tables), and the results tables in both are
the ones scripts/make_results.py makes from results/*.json and pretrained/ (never edited by hand)."""
import re

import pytest

from src.release.results import BEGIN, END, collect, markdown
from tests.conftest import REPO_ROOT

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def read(name):
    return (REPO_ROOT / name).read_text(encoding="utf-8")


def code_blocks(text):
    """The command blocks (the ```text tree of "Script and sample code" is prose, translated)."""
    return [block for block in re.findall(r"^```[^\n]*\n.*?^```", text, flags=re.S | re.M)
            if not block.startswith("```text")]


def tables(text):
    """Per markdown table (outside code blocks), the sequence of numbers in its cells."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                found.append(current)
            current.extend(NUMBER.findall(line))
        else:
            current = None
    return found


def between_markers(text):
    return text.split(BEGIN)[1].split(END)[0].strip()


def test_chinese_readme_has_the_same_commands_and_tables():
    english, chinese = read("README.md"), read("README_CN.md")
    assert code_blocks(chinese) == code_blocks(english)
    assert tables(chinese) == tables(english)
    assert "README_CN.md" in english and "README.md" in chinese


@pytest.mark.parametrize("name, language", [("README.md", "en"), ("README_CN.md", "cn")])
def test_results_tables_are_the_generated_ones(name, language):
    table, training = collect(str(REPO_ROOT / "results"), str(REPO_ROOT / "pretrained"))
    assert between_markers(read(name)) == markdown(table, training, language)
