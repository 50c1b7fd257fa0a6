"""Load YAML safely into pydantic models; every error names the file, line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

M = TypeVar("M", bound=BaseModel)


class YamlFileError(Exception):
    """A YAML file that does not load or does not validate; `str()` is `file:line:col: message`."""

    def __init__(self, path: Path, line: int, col: int, message: str):
        self.path, self.line, self.col, self.message = path, line, col, message
        super().__init__(f"{path}:{line}:{col}: {message}")


def read_yaml(path: Path) -> Any:
    """Parse with ruamel's round-trip loader, which keeps positions and builds no Python objects."""
    try:
        return YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlFileError(path, line, col, f"YAML 语法错误: {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(path, 1, 1, f"无法读取: {exc}") from None


def position(node: Any, loc: tuple[Any, ...]) -> tuple[int, int]:
    """The line and column (1-based) of the node at `loc` inside a ruamel document."""
    line, col = 1, 1
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)[0] + 1, node.lc.key(key)[1] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line, col = node.lc.item(key)[0] + 1, node.lc.item(key)[1] + 1
            node = node[key]
        else:
            break
    return line, col


def plain(node: Any) -> Any:
    """ruamel containers → plain dicts and lists (pydantic wants plain data)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def validate(path: Path, node: Any, model: type[M]) -> M:
    """Validate one YAML node into `model`; the first error is raised with its position."""
    try:
        return model.model_validate(plain(node))
    except ValidationError as exc:
        err = exc.errors()[0]
        line, col = position(node, tuple(err["loc"]))
        where = ".".join(str(p) for p in err["loc"]) or "(顶层)"
        raise YamlFileError(path, line, col, f"{where}: {err['msg']}") from None


def load_yaml_model(path: Path, model: type[M]) -> M:
    return validate(path, read_yaml(path), model)
