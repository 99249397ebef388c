"""The "Script and sample code" tree of both READMEs lists the same files, and every one of them exists."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tree_paths(readme):
    """Paths named in the README's ```text tree, joined to their folders (``src/`` + ``protocol/`` + ...)."""
    text = (REPO / readme).read_text(encoding="utf-8")
    block = text.split("## Script and sample code" if readme == "README.md" else "## 脚本和示例代码")[1]
    block = block.split("```text\n", 1)[1].split("```", 1)[0]
    paths, stack = [], []
    for line in block.splitlines():
        match = re.match(r"^([│ ]*)[├└]── (\S+)", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4
        names = match.group(2).split("/")[0] + ("/" if match.group(2).endswith("/") else "")
        del stack[depth:]
        paths.append("".join(stack) + names)
        if names.endswith("/"):
            stack.append(names)
    return paths


def test_both_readmes_list_the_same_tree():
    assert tree_paths("README.md") == tree_paths("README_CN.md")


def test_every_listed_path_exists():
    paths = tree_paths("README.md")
    assert "src/protocol/" in paths and "tests/unit/" in paths and "train.py" in paths
    missing = [path for path in paths if not (REPO / path).exists()]
    assert not missing, missing


def test_every_src_package_is_listed():
    listed = set(tree_paths("README.md"))
    packages = {f"src/{p.parent.relative_to(REPO / 'src').as_posix()}/" for p in (REPO / "src").glob("*/__init__.py")}
    assert packages <= listed, sorted(packages - listed)
