"""The package's layers import only downward: cli -> study -> engine | simulator | server -> ... -> formats -> errors.

Each top-level part of `specscope` has a rank; a module may import its own part and parts of lower rank
only (imports inside functions count too). The data flow this encodes: specscope/docs/design.md.
"""

import ast
from pathlib import Path

import specscope

RANKS = {
    "__init__": 0, "configs": 0, "data": 0, "presets": 0,  # the package and its data folders
    "errors": 0,
    "settings": 1, "tree_spec": 1,
    "formats": 2, "ngram": 2,
    "costs": 3,
    "policy": 4, "workloads": 4,
    "engine": 5, "simulator": 5,
    "server": 6, "analysis": 6,
    "study": 7,
    "cli": 8, "__main__": 9,
}
ROOT = Path(specscope.__file__).parent


def part(module: str) -> str:
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specscope"):
            if node.module == "specscope":  # `from specscope import x`: x is the part
                for alias in node.names:  # `from specscope import __version__`: the package itself
                    yield ("specscope" if alias.name.startswith("__") else f"specscope.{alias.name}"), node.lineno
            else:
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("specscope"):
                    yield alias.name, node.lineno


def test_every_part_has_a_rank():
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert parts <= set(RANKS), f"give these parts a rank in RANKS: {sorted(parts - set(RANKS))}"


def test_no_module_imports_a_layer_above_it():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(("specscope",) + path.relative_to(ROOT).with_suffix("").parts)
        here = part(module)
        for target, line in imports(path):
            there = part(target)
            if there != here and RANKS[there] >= RANKS[here] and there != "__init__":
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: {here} (rank {RANKS[here]}) imports "
                             f"{target} (rank {RANKS[there]})")
    assert not wrong, "\n".join(wrong)
