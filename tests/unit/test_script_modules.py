"""Every module the shell scripts run (``python -m src.x.y``) exists: a moved module breaks no launcher."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def modules_run_by_scripts():
    found = []
    for script in sorted((REPO / "scripts").glob("*.sh")):
        found += [(script.name, name) for name in re.findall(r"-m (src(?:\.\w+)+)", script.read_text())]
    return found


def test_the_scripts_run_modules_that_exist():
    found = modules_run_by_scripts()
    assert ("quickstart.sh", "src.release.quickstart") in found
    missing = [(script, name) for script, name in found if not (REPO / Path(*name.split("."))).with_suffix(".py").is_file()]
    assert not missing, missing
